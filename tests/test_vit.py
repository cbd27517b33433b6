"""Tests for chapter 5: DropPath in a ViT block (dropkit.vit, dropkit.vit_model)."""

import pytest
import torch
from scipy.stats import binomtest

import dropkit
from dropkit import DropPath, ViTBlock, drop_path, drop_path_rates

ALPHA = 1e-9  # false-alarm probability of each statistical test
timm = pytest.importorskip("timm")


class TestDropPathPerSample:
    """The behaviour of drop_path / DropPath that a ViT block relies on."""

    def test_each_sample_all_zero_or_all_scaled(self):
        torch.manual_seed(0)
        y = drop_path(torch.ones(2000, 17, 8), 0.25)
        rows = y.reshape(2000, -1)
        assert torch.equal(rows, rows[:, :1].expand_as(rows)), "a sample was partly kept"
        assert set(rows[:, 0].unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}

    def test_kept_samples_binomial(self):
        torch.manual_seed(1)
        n, p = 100_000, 0.3
        kept = int((drop_path(torch.ones(n, 4), p)[:, 0] != 0).sum())
        assert binomtest(kept, n, 1 - p).pvalue > ALPHA, f"kept {kept} of {n} samples at p={p}"

    def test_scale_by_keep_false_keeps_ones(self):
        torch.manual_seed(2)
        y = drop_path(torch.ones(64, 3), 0.5, scale_by_keep=False)
        assert set(y.unique().tolist()) == {0.0, 1.0}
        assert "scale_by_keep=False" in repr(DropPath(0.5, scale_by_keep=False))

    def test_p0_is_input(self):
        x = torch.randn(4, 5)
        assert drop_path(x, 0.0) is x

    def test_p1_zeros_no_nan(self):
        x = torch.randn(4, 5, requires_grad=True)
        y = drop_path(x, 1.0)
        y.sum().backward()
        assert torch.equal(y, torch.zeros_like(y)) and torch.equal(x.grad, torch.zeros_like(x))

    def test_eval_is_identity(self):
        x = torch.randn(4, 5)
        assert DropPath(0.7).eval()(x) is x
        assert drop_path(x, 0.7, training=False) is x


class TestLibraryEquality:
    @pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
    def test_equals_timm_and_torchvision_bit_for_bit(self, p):
        from torchvision.ops import stochastic_depth

        x = torch.randn(32, 17, 16)
        torch.manual_seed(3)
        ours = drop_path(x, p)
        torch.manual_seed(3)
        t = timm.layers.drop_path(x, p, training=True)
        torch.manual_seed(3)
        tv = stochastic_depth(x, p, "row")
        assert torch.equal(ours, t), "differs from timm.layers.drop_path"
        assert torch.equal(ours, tv), "differs from torchvision stochastic_depth(mode='row')"

    def test_module_equals_timm_module(self):
        x = torch.randn(32, 8)
        torch.manual_seed(4)
        ours = DropPath(0.3)(x)
        torch.manual_seed(4)
        assert torch.equal(ours, timm.layers.DropPath(0.3)(x))


class TestDropPathRates:
    def test_values(self):
        assert drop_path_rates(0.1, 3) == [0.0, 0.05, 0.1]
        assert drop_path_rates(0.3, 1) == [0.0]
        rates = drop_path_rates(0.5, 12)
        assert all(isinstance(r, float) for r in rates) and len(rates) == 12
        assert rates[-1] == 0.5 and rates[0] == 0.0
        assert sum(1 - r for r in rates) == pytest.approx(9.0)

    def test_close_to_timm(self):
        from timm.layers import calculate_drop_path_rates

        assert drop_path_rates(0.2, 12) == pytest.approx(calculate_drop_path_rates(0.2, 12), abs=1e-7)

    @pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.1", True])
    def test_bad_rate(self, rate):
        with pytest.raises(ValueError, match="max_rate .* but got"):
            drop_path_rates(rate, 4)

    @pytest.mark.parametrize("depth", [0, -1, 2.0, True])
    def test_bad_depth(self, depth):
        with pytest.raises(ValueError, match="depth must be a positive integer, but got"):
            drop_path_rates(0.1, depth)


class TestViTBlock:
    def test_shape(self):
        torch.manual_seed(5)
        x = torch.randn(3, 10, 24)
        for rate in (0.0, 0.5):
            assert ViTBlock(24, 3, drop_path=rate)(x).shape == x.shape

    def test_identity_modules_when_rate_zero(self):
        block = ViTBlock(16, 2)
        assert isinstance(block.drop_path1, torch.nn.Identity) and isinstance(block.drop_path2, torch.nn.Identity)
        block = ViTBlock(16, 2, drop_path=0.2)
        assert isinstance(block.drop_path1, DropPath) and block.drop_path2.p == 0.2

    def test_drop_path_one_is_identity_in_training(self):
        torch.manual_seed(6)
        x = torch.randn(4, 9, 16)
        assert torch.equal(ViTBlock(16, 2, drop_path=1.0).train()(x), x)

    def test_drop_path_zero_training_equals_eval(self):
        torch.manual_seed(7)
        block, x = ViTBlock(16, 2), torch.randn(4, 9, 16)
        assert torch.equal(block.train()(x), block.eval()(x))

    def test_eval_is_deterministic_with_drop_path(self):
        torch.manual_seed(8)
        block, x = ViTBlock(16, 2, drop_path=0.5).eval(), torch.randn(4, 9, 16)
        assert torch.equal(block(x), block(x))

    def test_per_sample_branches_in_training(self):
        # At p = 0.5 a sample loses both branches (and comes out as it went in) with probability
        # 1/4, independently of the others: some samples, not all, must be unchanged.
        torch.manual_seed(9)
        block, x = ViTBlock(16, 2, drop_path=0.5).train(), torch.randn(64, 5, 16)
        unchanged = (block(x) == x).reshape(64, -1).all(1)
        assert 0 < int(unchanged.sum()) < 64, f"{int(unchanged.sum())} of 64 samples unchanged"

    def test_loads_timm_block_and_matches(self):
        torch.manual_seed(10)
        theirs = timm.models.vision_transformer.Block(dim=32, num_heads=4).eval()
        ours = ViTBlock(32, 4).eval()
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict(), strict=True)
        x = torch.randn(2, 17, 32)
        assert torch.equal(ours(x), theirs(x))

    def test_loads_timm_block_with_qkv_bias(self):
        torch.manual_seed(11)
        theirs = timm.models.vision_transformer.Block(dim=16, num_heads=2, qkv_bias=True).eval()
        ours = ViTBlock(16, 2, qkv_bias=True).eval()
        ours.load_state_dict(theirs.state_dict(), strict=True)
        x = torch.randn(2, 5, 16)
        assert torch.equal(ours(x), theirs(x))

    @pytest.mark.parametrize(
        "kwargs,match",
        [
            (dict(dim=10, num_heads=3), "divisible by num_heads"),
            (dict(dim=0, num_heads=1), "dim must be a positive integer, but got 0"),
            (dict(dim=8, num_heads=2, drop_path=1.5), "drop_path .* but got 1.5"),
            (dict(dim=8, num_heads=2, mlp_ratio=0), "mlp_ratio must be a positive number, but got 0"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            ViTBlock(**kwargs)

    def test_bad_input_shape(self):
        with pytest.raises(ValueError, match=r"\(N, tokens, 8\), but got \(2, 8\)"):
            ViTBlock(8, 2)(torch.randn(2, 8))


class TestTinyViT:
    def test_lazy_export_and_logits_shape(self):
        pytest.importorskip("d2l")
        torch.manual_seed(12)
        model = dropkit.TinyViT(drop_path_rate=0.2)
        assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
        rates = [0.0 if isinstance(b.drop_path1, torch.nn.Identity) else b.drop_path1.p for b in model.blocks]
        assert rates == pytest.approx(drop_path_rates(0.2, 4))

    def test_bad_patch_size(self):
        pytest.importorskip("d2l")
        with pytest.raises(ValueError, match="patch_size must divide image_size"):
            dropkit.TinyViT(patch_size=3)
