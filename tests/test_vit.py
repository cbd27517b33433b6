"""Tests for chapter 5: DropPath in a ViT block (dropkit.vit, dropkit.vit_model)."""

import copy

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
        assert torch.equal(rows, rows[:, :1].expand_as(rows)), (
            "a sample was partly kept"
        )
        assert set(rows[:, 0].unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}

    def test_kept_samples_binomial(self):
        torch.manual_seed(1)
        n, p = 100_000, 0.3
        kept = int((drop_path(torch.ones(n, 4), p)[:, 0] != 0).sum())
        assert binomtest(kept, n, 1 - p).pvalue > ALPHA, (
            f"kept {kept} of {n} samples at p={p}"
        )

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
        assert torch.equal(y, torch.zeros_like(y)) and torch.equal(
            x.grad, torch.zeros_like(x)
        )

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
        assert torch.equal(ours, tv), (
            "differs from torchvision stochastic_depth(mode='row')"
        )

    @pytest.mark.parametrize("scale_by_keep", [True, False])
    def test_one_stream_with_timm_and_torchvision_over_a_schedule_reaching_1(
        self, scale_by_keep
    ):
        # drop_path at p = 1 draws its mask, as timm and torchvision do, so that the
        # calls after it take the same random numbers (issue 30)
        from torchvision.ops import stochastic_depth

        rates = drop_path_rates(1.0, 5) * 2  # 0, 0.25, 0.5, 0.75, 1, then again
        x = torch.randn(16, 3, 8)
        runs = {
            "dropkit": lambda t, p: drop_path(t, p, scale_by_keep=scale_by_keep),
            "timm": lambda t, p: timm.layers.drop_path(
                t, p, training=True, scale_by_keep=scale_by_keep
            ),
        }
        if scale_by_keep:
            runs["torchvision"] = lambda t, p: stochastic_depth(t, p, "row")
        outs = {}
        for name, f in runs.items():
            torch.manual_seed(5)
            outs[name] = [f(x, p) for p in rates]
        for name in runs:
            for p, a, b in zip(rates, outs["dropkit"], outs[name]):
                assert torch.equal(a, b), f"differs from {name} at p={p}"
        torch.manual_seed(5)
        drop_path(x, 1.0)
        after = torch.rand(1)
        torch.manual_seed(5)
        torch.empty(16, 1, 1).bernoulli_(0.0)
        assert torch.equal(after, torch.rand(1)), "p = 1 drew another amount"

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

    @pytest.mark.parametrize(
        "depth,stagewise",
        [
            (0, False),
            (1, False),
            (12, False),
            ([2, 2, 6, 2], False),
            ([2, 2, 6, 2], True),
            ((3, 4, 6, 3), True),
            ([2, 0, 3], True),
            ([], False),
            ([], True),
        ],
    )
    def test_matches_timm(self, depth, stagewise):
        from timm.layers import calculate_drop_path_rates

        ours = drop_path_rates(0.2, depth, stagewise=stagewise)
        theirs = calculate_drop_path_rates(0.2, depth, stagewise=stagewise)
        if stagewise:
            assert [len(s) for s in ours] == [len(s) for s in theirs], "stage lengths"
            ours, theirs = sum(ours, []), sum(theirs, [])
        assert all(isinstance(r, float) for r in ours)
        assert len(ours) == len(theirs)
        # timm computes in float32; ours is float64, so they agree to float32 rounding
        assert ours == pytest.approx(theirs, abs=1e-7), (
            "differs from timm beyond float32"
        )

    def test_depth_zero_is_empty(self):
        assert drop_path_rates(0.1, 0) == []
        assert drop_path_rates(0.1, []) == []

    def test_stagewise_groups_the_flat_rates(self):
        assert drop_path_rates(0.2, [1, 2], stagewise=True) == [[0.0], [0.1, 0.2]]
        flat = drop_path_rates(0.3, [2, 2, 6, 2])
        assert sum(drop_path_rates(0.3, [2, 2, 6, 2], stagewise=True), []) == flat
        assert flat == drop_path_rates(0.3, 12), (
            "a list of stages is linear over all blocks"
        )

    def test_stagewise_needs_a_list(self):
        with pytest.raises(ValueError, match="stagewise=True needs depth as a list"):
            drop_path_rates(0.1, 4, stagewise=True)

    @pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), "0.1", True])
    def test_bad_rate(self, rate):
        with pytest.raises(ValueError, match="max_rate .* but got"):
            drop_path_rates(rate, 4)

    @pytest.mark.parametrize("depth", [-1, 2.0, True, "4", [2, -1], [2, 1.5], None])
    def test_bad_depth(self, depth):
        with pytest.raises(
            ValueError, match="depth must be a non-negative integer or a list"
        ):
            drop_path_rates(0.1, depth)


class TestViTBlock:
    def test_shape(self):
        torch.manual_seed(5)
        x = torch.randn(3, 10, 24)
        for rate in (0.0, 0.5):
            assert ViTBlock(24, 3, drop_path=rate)(x).shape == x.shape

    def test_identity_modules_when_rate_zero(self):
        block = ViTBlock(16, 2)
        assert isinstance(block.drop_path1, torch.nn.Identity) and isinstance(
            block.drop_path2, torch.nn.Identity
        )
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
        # At p = 0.5 a sample loses both branches (and comes out as it went in) with
        # probability 1/4, independently of the others: some, not all, are unchanged.
        torch.manual_seed(9)
        block, x = ViTBlock(16, 2, drop_path=0.5).train(), torch.randn(64, 5, 16)
        unchanged = (block(x) == x).reshape(64, -1).all(1)
        assert 0 < int(unchanged.sum()) < 64, (
            f"{int(unchanged.sum())} of 64 samples unchanged"
        )

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
        theirs = timm.models.vision_transformer.Block(
            dim=16, num_heads=2, qkv_bias=True
        ).eval()
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
            (
                dict(dim=8, num_heads=2, mlp_ratio=0),
                "mlp_ratio must be a positive number, but got 0",
            ),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            ViTBlock(**kwargs)

    def test_bad_input_shape(self):
        with pytest.raises(ValueError, match=r"\(N, tokens, 8\), but got \(2, 8\)"):
            ViTBlock(8, 2)(torch.randn(2, 8))


def _timm_block(dim, heads, **kwargs):
    return timm.models.vision_transformer.Block(dim, heads, **kwargs)


def _pair(dim=32, heads=4, **kwargs):
    """A timm Block and a ViTBlock with the same arguments and weights."""
    theirs = _timm_block(dim, heads, **kwargs)
    ours = ViTBlock(dim, heads, **kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


DROPS = dict(attn_drop=0.2, proj_drop=0.3, drop_path=0.25)


class TestAttentionDropout:
    def test_timm_names_and_modules(self):
        block = ViTBlock(16, 2, attn_drop=0.1, proj_drop=0.2)
        theirs = _timm_block(16, 2, attn_drop=0.1, proj_drop=0.2)
        ours_drop = {n: m.p for n, m in block.named_modules() if hasattr(m, "p")}
        timm_drop = {n: m.p for n, m in theirs.named_modules() if hasattr(m, "p")}
        assert ours_drop == timm_drop, "dropout modules differ from timm's Block"
        assert ours_drop == {
            "attn.attn_drop": 0.1,
            "attn.proj_drop": 0.2,
            "mlp.drop1": 0.2,
            "mlp.drop2": 0.2,
        }

    def test_timm_block_with_dropout_loads_and_matches_in_eval(self):
        torch.manual_seed(20)
        ours, theirs = _pair(**DROPS)
        ours.eval(), theirs.eval()
        x = torch.randn(4, 9, 32)
        assert torch.equal(ours(x), theirs(x)), "eval output differs from timm (CPU)"

    def test_matches_timm_in_training_under_one_seed(self):
        # Same masks in the same order: SDPA's dropout, proj_drop, drop_path1, drop1,
        # drop2, drop_path2. Bit for bit on CPU.
        torch.manual_seed(21)
        ours, theirs = _pair(**DROPS)
        x = torch.randn(8, 9, 32)
        torch.manual_seed(22)
        a = ours(x)
        torch.manual_seed(22)
        b = theirs(x)
        assert torch.equal(a, b), "training output differs from timm under one seed"

    def test_eval_is_deterministic_and_ignores_attn_drop(self):
        # pytorch#124464: SDPA drops whenever dropout_p > 0, whatever the mode.
        torch.manual_seed(23)
        leaky, clean = ViTBlock(16, 2, attn_drop=0.9), ViTBlock(16, 2)
        clean.load_state_dict(leaky.state_dict())
        leaky.eval(), clean.eval()
        x = torch.randn(4, 7, 16)
        assert torch.equal(leaky(x), leaky(x)), "eval is random: dropout_p reached SDPA"
        assert torch.equal(leaky(x), clean(x))

    def test_sdpa_drops_in_eval_unless_told(self):
        # The pitfall itself, so that the chapter's warning stays true for this torch.
        q, k, v = torch.randn(3, 1, 2, 6, 4).unbind(0)
        torch.manual_seed(24)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
        b = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
        assert not torch.equal(a, b)

    def test_attention_dropout_active_in_training(self):
        torch.manual_seed(25)
        block, x = ViTBlock(16, 2, attn_drop=0.5).train(), torch.randn(4, 7, 16)
        assert not torch.equal(block(x), block(x))

    def test_attn_drop_module_switches_attention_dropout(self):
        # Monte-Carlo dropout turns on only the dropout modules of an eval-mode model.
        torch.manual_seed(26)
        block, x = ViTBlock(16, 2, attn_drop=0.5).eval(), torch.randn(4, 7, 16)
        block.attn.attn_drop.train()
        assert not torch.equal(block(x), block(x))

    def test_proj_drop_zero_means_no_randomness(self):
        torch.manual_seed(27)
        block, x = ViTBlock(16, 2, attn_drop=0.0, proj_drop=0.0), torch.randn(2, 5, 16)
        assert torch.equal(block.train()(x), block.eval()(x))

    def test_unfused_timm_agrees_only_to_rounding(self):
        torch.manual_seed(28)
        ours, theirs = _pair()
        ours.eval(), theirs.eval()
        theirs.attn.fused_attn = False
        x = torch.randn(2, 17, 32)
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=1e-5)

    @pytest.mark.parametrize("name", ["attn_drop", "proj_drop"])
    @pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.1"])
    def test_bad_rates(self, name, value):
        with pytest.raises(ValueError, match=f"{name} .* but got"):
            ViTBlock(8, 2, **{name: value})


def _params_grads(block, x, seed):
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out = block(x)
    block.zero_grad(set_to_none=True)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    grads = {n: p.grad for n, p in block.named_parameters()}
    return out, x.grad, grads


class TestSkipDropped:
    """ViTBlock(skip_dropped=True) against the masking path under the same seed."""

    def _compare(self, masking, seed, n=16):
        skipping = copy.deepcopy(masking)
        skipping.skip_dropped = True
        x = torch.randn(n, 5, 16, generator=torch.Generator().manual_seed(seed))
        out_m, gx_m, gp_m = _params_grads(masking, x, seed)
        out_s, gx_s, gp_s = _params_grads(skipping, x, seed)
        torch.testing.assert_close(out_s, out_m, msg="outputs differ")
        torch.testing.assert_close(gx_s, gx_m, msg="input gradients differ")
        for name, g in gp_m.items():
            assert gp_s[name] is not None, f"no gradient for {name}"
            torch.testing.assert_close(gp_s[name], g, msg=f"gradient of {name} differs")
        return out_m, x

    def test_same_rate_both_branches(self):
        torch.manual_seed(30)
        self._compare(ViTBlock(16, 2, drop_path=0.4).train(), 31)

    def test_each_branch_uses_its_own_rate(self):
        torch.manual_seed(32)
        block = ViTBlock(16, 2, drop_path=0.1).train()
        block.drop_path2 = DropPath(0.7)
        out, x = self._compare(block, 33, n=64)
        # A sample comes out unchanged only if both branches were dropped: probability
        # 0.1 * 0.7 (about 4 of 64). With 0.7 on both branches it would be about half.
        unchanged = int((out == x).reshape(64, -1).all(1).sum())
        assert unchanged < 20, f"{unchanged} of 64 samples lost both branches"

    def test_each_branch_uses_its_own_scale_by_keep(self):
        torch.manual_seed(34)
        block = ViTBlock(16, 2, drop_path=0.3).train()
        block.drop_path1 = DropPath(0.5, scale_by_keep=False)
        self._compare(block, 35)

    def test_only_one_branch_has_drop_path(self):
        torch.manual_seed(36)
        block = ViTBlock(16, 2).train()
        block.drop_path2 = DropPath(0.5)
        self._compare(block, 37)

    def test_all_dropped_still_gives_zero_parameter_gradients(self):
        torch.manual_seed(39)
        self._compare(ViTBlock(16, 2, drop_path=1.0).train(), 40)

    def test_eval_equals_masking_eval(self):
        torch.manual_seed(38)
        block = ViTBlock(16, 2, drop_path=0.5).eval()
        skipping = copy.deepcopy(block)
        skipping.skip_dropped = True
        x = torch.randn(4, 5, 16)
        assert torch.equal(block(x), skipping(x))


class TestTinyViT:
    def test_lazy_export_and_logits_shape(self):
        pytest.importorskip("d2l")
        torch.manual_seed(12)
        model = dropkit.TinyViT(drop_path_rate=0.2)
        assert model(torch.rand(5, 1, 8, 8)).shape == (5, 10)
        rates = [
            0.0 if isinstance(b.drop_path1, torch.nn.Identity) else b.drop_path1.p
            for b in model.blocks
        ]
        assert rates == pytest.approx(drop_path_rates(0.2, 4))

    def test_bad_patch_size(self):
        pytest.importorskip("d2l")
        with pytest.raises(ValueError, match="patch_size must divide image_size"):
            dropkit.TinyViT(patch_size=3)
