"""DropBlock (chapter 4): drop_block2d/3d and DropBlock2d/3d, against torchvision and
timm."""

import math

import pytest
import torch
import torch.nn.functional as F

import dropkit
from dropkit import (
    DropBlock2d,
    DropBlock3d,
    drop_block2d,
    drop_block3d,
    spatial_dropout,
)
from dropkit.drop import _DropoutBase

tv_ops = pytest.importorskip("torchvision.ops")

OPS = [(drop_block2d, (4, 3, 12, 10)), (drop_block3d, (2, 3, 7, 8, 9))]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def expected_rate(p, b, sizes, couple=False):
    """Exact expected dropped fraction: an entry is kept when no seed whose block
    covers it fires."""
    gamma, seeds = p, 1
    for f in sizes:
        gamma, seeds = gamma * f, seeds * (f - b + 1)
    gamma /= b ** len(sizes) * seeds
    covers = [
        torch.tensor(
            [min(t, f - b) - max(0, t - b + 1) + 1 for t in range(f)],
            dtype=torch.float64,
        )
        for f in sizes
    ]
    n = covers[0]
    for c in covers[1:]:
        n = n[..., None] * c
    return (1 - (1 - gamma) ** n).mean().item()


class TestDropBlock2d:
    @pytest.mark.parametrize("p", [0.05, 0.1, 0.3, 0.7])
    @pytest.mark.parametrize(
        "shape,b",
        [((4, 3, 12, 10), 3), ((2, 5, 9, 9), 5), ((3, 2, 7, 11), 7), ((2, 2, 6, 6), 1)],
    )
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_equals_torchvision_bit_for_bit_on_cpu(self, p, shape, b, dtype):
        x = torch.randn(shape, dtype=dtype)
        torch.manual_seed(3)
        ours = drop_block2d(x, p, b)
        torch.manual_seed(3)
        theirs = tv_ops.drop_block2d(x, p, b)
        assert torch.equal(ours, theirs), (
            f"differs from torchvision at p={p}, b={b}, {dtype}"
        )

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_gradient_equals_torchvision_bit_for_bit_on_cpu(self, dtype):
        x = torch.randn(4, 3, 12, 10, dtype=dtype, requires_grad=True)
        grad = torch.randn(4, 3, 12, 10, dtype=dtype)
        torch.manual_seed(3)
        drop_block2d(x, 0.3, 3).backward(grad)
        ours, x.grad = x.grad, None
        torch.manual_seed(3)
        tv_ops.drop_block2d(x, 0.3, 3).backward(grad)
        assert torch.equal(ours, x.grad)

    def test_module_equals_torchvision_module(self):
        x = torch.randn(8, 4, 16, 16)
        torch.manual_seed(0)
        ours = DropBlock2d(0.2, 5)(x)
        torch.manual_seed(0)
        assert torch.equal(ours, tv_ops.DropBlock2d(0.2, 5)(x))

    def test_drop_rate_as_timm_tests_it(self):
        # timm's tests/test_layers_drop.py: p = 0.1, block 7 on (32, 16, 56, 56), within
        # 0.03.
        torch.manual_seed(0)
        y = drop_block2d(torch.ones(32, 16, 56, 56), 0.1, 7)
        assert abs((y == 0).float().mean().item() - 0.1) < 0.03

    @pytest.mark.parametrize("p,b,size", [(0.1, 7, 56), (0.3, 5, 16), (0.5, 3, 9)])
    def test_drop_rate_is_the_algorithms_own(self, p, b, size):
        # Overlaps make the rate lower than p; the exact expectation, within 6 standard
        # errors estimated from the independent (sample, channel) maps.
        torch.manual_seed(1)
        y = drop_block2d(torch.ones(32, 32, size, size), p, b)
        per_map = (y == 0).double().mean((-1, -2)).flatten()
        se = per_map.std().item() / math.sqrt(per_map.numel())
        assert abs(per_map.mean().item() - expected_rate(p, b, (size, size))) < 6 * se
        assert expected_rate(p, b, (size, size)) < p

    @pytest.mark.parametrize("b", [3, 5])
    def test_whole_blocks_zero(self, b):
        # Every zero lies in some all-zero b x b square that fits inside the map.
        torch.manual_seed(2)
        y = drop_block2d(torch.ones(8, 4, 20, 20), 0.3, b)
        zero = (y == 0).float()
        full = F.max_pool2d(
            F.avg_pool2d(zero, b, stride=1).eq(1).float(), b, stride=1, padding=b // 2
        )
        full = F.pad(full, [b // 2] * 4)[
            ..., b // 2 : -(b // 2) or None, b // 2 : -(b // 2) or None
        ]
        covered = F.max_pool2d(
            F.pad(F.avg_pool2d(zero, b, stride=1).eq(1).float(), [b // 2] * 4),
            b,
            stride=1,
            padding=b // 2,
        )
        assert zero.sum() > 0
        assert torch.equal(covered * zero, zero), (
            "a zero that belongs to no whole block"
        )

    def test_kept_entries_scaled_by_numel_over_kept(self):
        torch.manual_seed(4)
        y = drop_block2d(torch.ones(4, 4, 16, 16), 0.3, 3)
        kept = int((y != 0).sum())
        assert torch.allclose(y[y != 0], torch.tensor(y.numel() / (1e-6 + kept)))

    def test_block_of_the_map_size_is_spatial_dropout(self):
        # A block as large as the map zeros whole channels, each with probability p.
        torch.manual_seed(5)
        x = torch.ones(256, 64, 7, 7)
        y = drop_block2d(x, 0.3, 7)
        zero = (y == 0).flatten(2)
        whole = zero.all(-1) | (~zero).all(-1)
        assert whole.all(), "channels must be dropped whole"
        rate = zero.all(-1).double().mean().item()
        n = 256 * 64
        assert abs(rate - 0.3) < 6 * math.sqrt(0.3 * 0.7 / n)
        # The same structure as spatial_dropout's mask: one draw per (sample, channel).
        ref = spatial_dropout(x, 0.3)
        assert ((ref == 0).flatten(2).all(-1) | (ref != 0).flatten(2).all(-1)).all()

    def test_block_size_one_is_element_dropout_rate(self):
        torch.manual_seed(6)
        y = drop_block2d(torch.ones(64, 16, 16, 16), 0.25, 1)
        n = y.numel()
        assert abs((y == 0).sum().item() - 0.25 * n) < 6 * math.sqrt(n * 0.25 * 0.75)

    def test_couple_channels_shares_one_mask(self):
        torch.manual_seed(7)
        y = drop_block2d(torch.ones(4, 6, 12, 12), 0.3, 3, couple_channels=True)
        assert torch.equal(y, y[:, :1].expand_as(y))
        assert not torch.equal(y[0], y[1]), "each sample has its own mask"

    def test_couple_channels_is_torchvision_on_one_channel_broadcast(self):
        x = torch.randn(4, 6, 12, 12)
        torch.manual_seed(8)
        ours = drop_block2d(x, 0.3, 3, couple_channels=True)
        torch.manual_seed(8)
        mask = tv_ops.drop_block2d(torch.ones(4, 1, 12, 12), 0.3, 3)
        assert torch.allclose(ours, x * mask)

    def test_scale_by_keep_false_leaves_kept_entries(self):
        torch.manual_seed(9)
        y = drop_block2d(torch.ones(4, 4, 12, 12), 0.3, 3, scale_by_keep=False)
        assert set(torch.unique(y).tolist()) == {0.0, 1.0}

    def test_timm_couples_channels_and_clips_blocks_at_the_border(self):
        timm_drop = pytest.importorskip("timm.layers.drop")
        torch.manual_seed(10)
        y = timm_drop.drop_block_2d(torch.ones(16, 4, 20, 20), 0.3, 5)
        assert torch.equal(y, y[:, :1].expand_as(y)), (
            "timm shares one mask across channels"
        )
        # timm seeds every position, so some zero runs touching the border are shorter
        # than b; ours never are.
        zero = (y[:, 0] == 0).float()
        edge_run = zero[..., :, 0].sum() > 0
        assert edge_run
        ours = drop_block2d(torch.ones(16, 4, 20, 20), 0.3, 5, couple_channels=True)
        z = (ours[:, 0] == 0).float()
        inside = F.max_pool2d(
            F.pad(F.avg_pool2d(z[:, None], 5, stride=1).eq(1).float(), [2] * 4),
            5,
            stride=1,
            padding=2,
        )
        assert torch.equal(inside[:, 0] * z, z)


class TestDropBlock3d:
    @pytest.mark.parametrize("p,b", [(0.1, 3), (0.4, 5), (0.2, 1)])
    def test_equals_torchvision_bit_for_bit_on_cpu(self, p, b):
        x = torch.randn(2, 3, 7, 8, 9)
        torch.manual_seed(11)
        ours = drop_block3d(x, p, b)
        torch.manual_seed(11)
        assert torch.equal(ours, tv_ops.drop_block3d(x, p, b))

    def test_drop_rate_is_the_algorithms_own(self):
        torch.manual_seed(12)
        y = drop_block3d(torch.ones(32, 16, 10, 10, 10), 0.2, 3)
        per_map = (y == 0).double().mean((-1, -2, -3)).flatten()
        se = per_map.std().item() / math.sqrt(per_map.numel())
        assert abs(per_map.mean().item() - expected_rate(0.2, 3, (10, 10, 10))) < 6 * se

    def test_module(self):
        x = torch.randn(2, 3, 7, 8, 9)
        torch.manual_seed(13)
        ours = DropBlock3d(0.3, 3)(x)
        torch.manual_seed(13)
        assert torch.equal(ours, tv_ops.DropBlock3d(0.3, 3)(x))


@pytest.mark.parametrize("op,shape", OPS)
class TestHouseRules:
    def test_eval_is_identity(self, op, shape):
        x = torch.randn(shape)
        assert op(x, 0.5, 3, training=False) is x

    def test_p0_returns_input(self, op, shape):
        x = torch.randn(shape)
        assert op(x, 0.0, 3) is x

    @pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), True, "0.1"])
    def test_p_validated_before_early_return(self, op, shape, p):
        with pytest.raises(ValueError, match="but got"):
            op(torch.randn(shape), p, 3, training=False)

    @pytest.mark.parametrize(
        "b,match",
        [
            (0, "positive odd int, but got 0"),
            (-3, "positive odd int, but got -3"),
            (2.0, "but got 2.0"),
            (True, "but got True"),
            (4, "must be odd"),
            (13, "larger than the"),
        ],
    )
    @pytest.mark.parametrize("training", [True, False])
    def test_bad_block_size_raises_in_train_and_eval(
        self, op, shape, b, match, training
    ):
        with pytest.raises(ValueError, match=match):
            op(torch.randn(shape), 0.1, b, training=training)

    def test_wrong_rank_raises(self, op, shape):
        with pytest.raises(ValueError, match=f"expects a {len(shape)}-D input"):
            op(torch.randn(shape[1:]), 0.1, 3)

    def test_integer_input_raises(self, op, shape):
        with pytest.raises(TypeError, match="floating-point"):
            op(torch.ones(shape, dtype=torch.int64), 0.1, 3)

    @pytest.mark.parametrize(
        "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64]
    )
    def test_p1_zeros_never_nan(self, op, shape, dtype):
        x = torch.full(shape, float("inf"), dtype=dtype, requires_grad=True)
        y = op(x, 1.0, 3)
        assert y.dtype == dtype and torch.equal(y, torch.zeros_like(y))
        y.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))

    def test_all_dropped_by_chance_gives_zeros_not_nan(self, op, shape):
        # p just below 1 with block 1: the empirical scale must not become numel / eps
        # -> inf.
        x = torch.ones((1, 1) + (1,) * (len(shape) - 2), dtype=torch.float16)
        for seed in range(20):
            torch.manual_seed(seed)
            assert not op(x, 0.999, 1).isnan().any()

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
    def test_dtype_kept_and_large_half_maps_scaled_right(self, op, shape, dtype):
        # More kept entries than float16 can count (65504): the scale is counted in
        # float32.
        spatial = tuple(s * 2 for s in shape[2:])
        maps = -(-80_000 // math.prod(spatial))
        torch.manual_seed(14)
        y = op(torch.ones((maps, 1) + spatial, dtype=dtype), 0.1, 3)
        assert y.dtype == dtype
        kept = int((y != 0).sum())
        assert kept > 65504
        expected = torch.tensor(y.numel() / kept, dtype=torch.float64)
        assert torch.allclose(y[y != 0].double(), expected, rtol=1e-2)

    def test_layout_kept(self, op, shape):
        fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
        x = torch.randn(shape).contiguous(memory_format=fmt)
        torch.manual_seed(15)
        y = op(x, 0.3, 3)
        assert y.is_contiguous(memory_format=fmt)
        torch.manual_seed(15)
        assert torch.equal(y, op(x.contiguous(), 0.3, 3)), (
            "the mask must not depend on the layout"
        )

    def test_meta_device(self, op, shape):
        y = op(torch.ones(shape, device="meta"), 0.3, 3)
        assert y.device.type == "meta" and y.shape == shape

    def test_generator_drives_mask(self, op, shape):
        x = torch.ones(shape)
        a = op(x, 0.3, 3, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(123)
        b = op(x, 0.3, 3, generator=torch.Generator().manual_seed(0))
        c = op(x, 0.3, 3, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a, b) and not torch.equal(a, c)
        state = torch.get_rng_state()
        op(x, 0.3, 3, generator=torch.Generator().manual_seed(0))
        assert torch.equal(state, torch.get_rng_state()), (
            "the global generator must not advance"
        )

    @pytest.mark.parametrize(
        "kw", [{}, {"couple_channels": True}, {"scale_by_keep": False}], ids=str
    )
    def test_saves_only_a_bool_mask(self, op, shape, kw):
        # torchvision keeps its float mask alive for backward: 4 bytes per entry.
        x = torch.randn(shape, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t
        ):
            op(x, 0.3, 3, **kw)
        assert saved and all(t.dtype == torch.bool for t in saved), saved

    def test_gradcheck_float64(self, op, shape):
        small = (1, 2) + (4,) * (len(shape) - 2)
        x = torch.randn(small, dtype=torch.float64, requires_grad=True)
        for kw in ({}, {"couple_channels": True}, {"scale_by_keep": False}):
            gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
            fn = lambda t: op(t, 0.3, 3, generator=gen(), **kw)  # noqa: E731, B023
            assert torch.autograd.gradcheck(fn, (x,))

    @CUDA
    def test_cuda_rate_and_values(self, op, shape):
        x = torch.ones((16, 16) + tuple(s * 2 for s in shape[2:]), device="cuda")
        torch.manual_seed(0)
        y = op(x, 0.2, 3)
        kept = int((y != 0).sum())
        assert torch.allclose(
            y[y != 0], torch.tensor(y.numel() / (1e-6 + kept), device="cuda")
        )
        torch.manual_seed(0)
        assert torch.equal(y, op(x, 0.2, 3)), "same seed, same mask"
        per_map = (y == 0).double().flatten(2).mean(-1).flatten()
        se = per_map.std().item() / math.sqrt(per_map.numel())
        assert abs(per_map.mean().item() - expected_rate(0.2, 3, x.shape[2:])) < 6 * se


class TestModules:
    @pytest.mark.parametrize("cls", [DropBlock2d, DropBlock3d])
    def test_subclass_of_dropout_base_and_repr(self, cls):
        m = cls(0.1, 7, couple_channels=True)
        assert isinstance(m, _DropoutBase)
        options = "p=0.1, block_size=7, couple_channels=True, scale_by_keep=True"
        assert repr(m) == f"{cls.__name__}({options})"
        assert list(m.parameters()) == [] and list(m.buffers()) == []

    @pytest.mark.parametrize(
        "cls,shape", [(DropBlock2d, (2, 3, 9, 9)), (DropBlock3d, (2, 3, 5, 5, 5))]
    )
    def test_eval_is_identity(self, cls, shape):
        m = cls(0.5, 3).eval()
        x = torch.randn(shape)
        assert m(x) is x

    @pytest.mark.parametrize(
        "p,b,match",
        [(1.2, 3, "but got 1.2"), (0.1, 0, "but got 0"), (0.1, 4, "but got 4")],
    )
    def test_bad_arguments(self, p, b, match):
        with pytest.raises(ValueError, match=match):
            DropBlock2d(p, b)

    def test_exported(self):
        for name in ("drop_block2d", "drop_block3d", "DropBlock2d", "DropBlock3d"):
            assert name in dropkit.__all__ and getattr(dropkit, name) is not None
