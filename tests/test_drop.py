"""Tests for dropkit.drop: dropout, spatial_dropout, drop_path and their modules."""

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import binomtest

import dropkit
from dropkit import (
    Dropout,
    DropPath,
    SpatialDropout,
    drop_path,
    dropout,
    spatial_dropout,
)

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
BAD_P = [-0.1, 1.5, float("nan"), float("inf"), "0.5", None, True]
ALPHA = 1e-9  # false-alarm probability of each statistical test


def ops():
    """Each op with keyword arguments that make it valid on a (4, 3, 5, 6) input."""
    return [(dropout, {}), (spatial_dropout, {}), (drop_path, {})]


def kept_fraction_ok(kept, total, p):
    return binomtest(kept, total, 1 - p).pvalue > ALPHA


@pytest.mark.parametrize("op,kw", ops(), ids=lambda v: getattr(v, "__name__", ""))
class TestCommonSemantics:
    """What every op promises: validation, identity when off, zeros at p=1, dtype and
    layout."""

    @pytest.mark.parametrize("p", BAD_P, ids=repr)
    def test_bad_p_raises_naming_value(self, op, kw, p):
        with pytest.raises(ValueError, match=r"between 0 and 1, but got"):
            op(torch.ones(4, 3, 5, 6), p, **kw)
        with pytest.raises(ValueError, match=r"but got"):  # also when dropout is off
            op(torch.ones(4, 3, 5, 6), p, training=False, **kw)

    @pytest.mark.parametrize(
        "x",
        [torch.arange(6).reshape(2, 3), torch.ones(2, 3, dtype=torch.bool)],
        ids=["int64", "bool"],
    )
    def test_non_float_input_raises(self, op, kw, x):
        with pytest.raises(TypeError, match=r"floating-point tensor .* but got dtype"):
            op(x, 0.5, **kw)

    def test_non_tensor_raises(self, op, kw):
        with pytest.raises(TypeError, match="expects a torch.Tensor, but got list"):
            op([[1.0, 2.0]], 0.5, **kw)

    @pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
    def test_eval_returns_input_itself(self, op, kw, p):
        x = torch.randn(4, 3, 5, 6)
        assert op(x, p, training=False, **kw) is x

    def test_p0_returns_input_without_drawing(self, op, kw):
        x = torch.randn(4, 3, 5, 6)
        state = torch.get_rng_state()
        assert op(x, 0.0, **kw) is x
        assert torch.equal(state, torch.get_rng_state()), "p=0 consumed random numbers"

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    def test_p1_zeros_no_nan_zero_grad(self, op, kw, dtype):
        x = torch.randn(4, 3, 5, 6).to(dtype).requires_grad_()
        y = op(x, 1.0, **kw)
        assert torch.equal(y, torch.zeros_like(y)), "p=1 must give all zeros"
        y.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x)), "p=1 must give zero gradients"

    def test_p1_no_nan_even_for_infinite_input(self, op, kw):
        x = torch.full((4, 3, 5, 6), float("inf"))
        assert not op(x, 1.0, **kw).isnan().any()

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    def test_keeps_dtype_and_values(self, op, kw, dtype):
        torch.manual_seed(0)
        x = torch.ones(4, 3, 5, 6, dtype=dtype)
        y = op(x, 0.5, **kw)
        assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
        assert set(y.unique().tolist()) <= {0.0, 2.0}, (
            f"entries must be 0 or 1/(1-p), got {y.unique()}"
        )

    def test_mask_made_on_input_device(self, op, kw):
        y = op(torch.ones(4, 3, 5, 6, device="meta"), 0.5, **kw)
        assert y.device.type == "meta"

    def test_empty_input(self, op, kw):
        x = torch.ones(0, 3, 5, 6)
        assert op(x, 0.5, **kw).shape == x.shape

    def test_generator_drives_mask(self, op, kw):
        x = torch.ones(16, 3, 5, 6)
        a = op(x, 0.5, generator=torch.Generator().manual_seed(7), **kw)
        torch.manual_seed(123)  # the global seed must not matter
        b = op(x, 0.5, generator=torch.Generator().manual_seed(7), **kw)
        c = op(x, 0.5, generator=torch.Generator().manual_seed(8), **kw)
        assert torch.equal(a, b), "the same generator seed must give the same mask"
        assert not torch.equal(a, c), "different generator seeds gave the same mask"

    def test_gradcheck_float64(self, op, kw):
        x = torch.randn(3, 2, 4, 2, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda t: op(t, 0.4, generator=torch.Generator().manual_seed(0), **kw), (x,)
        )

    def test_gradient_is_mask_times_scale(self, op, kw):
        torch.manual_seed(0)
        x = torch.randn(8, 3, 5, 6, requires_grad=True)
        y = op(x, 0.25, **kw)
        y.backward(torch.ones_like(y))
        expected = (y.detach() != 0).float() / 0.75
        assert torch.equal(x.grad, expected), (
            "the gradient must be the mask times 1/(1-p)"
        )

    def test_saves_only_a_bool_mask(self, op, kw):
        x = torch.randn(4, 3, 5, 6, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t
        ):
            op(x, 0.5, **kw)
        assert saved and all(t.dtype == torch.bool for t in saved), [
            t.dtype for t in saved
        ]


class TestTorchCPUBernoulli:
    """dropkit.dropout's CPU mask equals F.dropout's because torch's CPU bernoulli_(p)
    draws one float64 uniform u per element, in memory order, and keeps u < p
    (dropkit.drop._bernoulli_mask draws the same u). If a torch release changes that
    kernel, this says why the equalities with torch fail."""

    CAUSE = (
        "torch {}'s CPU bernoulli_(p) no longer draws one float64 uniform u per "
        "element in memory order and keeps u < p ({}). dropkit.dropout's CPU masks "
        "(dropkit.drop._bernoulli_mask) then differ from F.dropout's and those of "
        "nn.Dropout1d/2d/3d, and chapters 1 and 4 print False where they print True. "
        "torch 2.5.1 and older used MKL's Bernoulli generator on Intel CPUs "
        "(pytorch#84030): use the torch versions pyproject.toml declares."
    )

    @pytest.mark.parametrize("n", [1, 1001, 100_003])
    @pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
    def test_bernoulli_is_uniform_float64_below_p(self, n, dtype):
        torch.manual_seed(0)
        mask = torch.empty(n, dtype=dtype).bernoulli_(0.3)
        after = torch.get_rng_state()
        torch.manual_seed(0)
        u = torch.empty(n, dtype=torch.float64).uniform_()
        version = torch.__version__
        assert torch.equal(mask.bool(), u < 0.3), self.CAUSE.format(
            version, "other masks"
        )
        assert torch.equal(after, torch.get_rng_state()), self.CAUSE.format(
            version, "it consumes the random stream differently"
        )


class TestDropout:
    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    @pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
    def test_equals_torch_bit_for_bit_on_cpu(self, p, dtype):
        x = torch.randn(32, 64).to(dtype)
        x[0, :4] = torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0])
        torch.manual_seed(0)
        ours = dropout(x, p)
        after_ours = torch.get_rng_state()
        torch.manual_seed(0)
        theirs = F.dropout(x, p)
        # Bit for bit: the same bytes, so -0.0 for a dropped negative entry and NaN
        # for a dropped infinity, as x * 0 gives.
        assert torch.equal(
            ours.view(-1).view(torch.uint8), theirs.view(-1).view(torch.uint8)
        )
        assert torch.equal(after_ours, torch.get_rng_state()), (
            "dropout must consume the random stream exactly as F.dropout does"
        )

    def test_gradient_equals_torch_bit_for_bit_on_cpu(self):
        x = torch.randn(32, 64)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        g = torch.randn(32, 64)
        torch.manual_seed(4)
        dropout(xa, 0.3).backward(g)
        torch.manual_seed(4)
        F.dropout(xb, 0.3).backward(g)
        assert torch.equal(xa.grad, xb.grad)

    @pytest.mark.parametrize(
        "make",
        [
            lambda x: x.to(memory_format=torch.channels_last),
            lambda x: x.transpose(1, 3),
            lambda x: x[:, :, ::2],
        ],
        ids=["channels_last", "transposed", "strided"],
    )
    def test_equals_torch_on_discontiguous_input(self, make):
        x = make(torch.randn(4, 6, 8, 10))
        torch.manual_seed(1)
        ours = dropout(x, 0.3)
        torch.manual_seed(1)
        assert torch.equal(ours, F.dropout(x, 0.3))
        assert ours.stride() == F.dropout(x, 0.3).stride(), (
            "the output layout must follow the input's"
        )

    @pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
    def test_keep_rate_binomial(self, p):
        torch.manual_seed(2)
        y = dropout(torch.ones(200_000), p)
        kept = int((y != 0).sum())
        assert kept_fraction_ok(kept, y.numel(), p), (
            f"kept {kept} of {y.numel()} at p={p}"
        )

    def test_mean_preserved(self):
        torch.manual_seed(3)
        y = dropout(torch.ones(1_000_000), 0.5)
        # sd of the mean is 1/sqrt(n) = 0.001; 6 sd
        assert abs(y.mean().item() - 1.0) < 0.006

    @pytest.mark.parametrize(
        "noise_shape,expected",
        [
            ((1, 3, 4), (1, 3, 4)),
            ((None, 1, None), (2, 1, 4)),
            ((2, 3, 1), (2, 3, 1)),
            ((1, 1, 1), (1, 1, 1)),
            ([None, None, None], (2, 3, 4)),
        ],
    )
    def test_noise_shape_broadcast_structure(self, noise_shape, expected):
        torch.manual_seed(4)
        x = torch.ones(2, 3, 4)
        for _ in range(20):
            y = dropout(x, 0.5, noise_shape=noise_shape)
            # Along every axis where the mask has size 1, all entries must agree.
            for axis, n in enumerate(expected):
                if n == 1:
                    first = y.narrow(axis, 0, 1)
                    assert torch.equal(y, first.expand_as(y)), (
                        f"mask not shared along axis {axis}"
                    )

    @pytest.mark.parametrize(
        "noise_shape,match",
        [
            ((1, 3), r"one entry per dimension of x \(3\), but got 2 entries"),
            ((2, 2, 4), r"noise_shape\[1\] must be 1 .* axis size 3, but got 2"),
            ((0, 3, 4), r"noise_shape\[0\] .* but got 0"),
            ((2, 3, 4.0), r"noise_shape\[2\] .* but got 4.0"),
            ((2, True, 4), r"noise_shape\[1\] .* but got True"),
        ],
    )
    def test_bad_noise_shape(self, noise_shape, match):
        with pytest.raises(ValueError, match=match):
            dropout(torch.ones(2, 3, 4), 0.5, noise_shape=noise_shape)
        with pytest.raises(ValueError, match=match):
            dropout(torch.ones(2, 3, 4), 0.5, training=False, noise_shape=noise_shape)

    def test_noise_shape_not_a_sequence(self):
        with pytest.raises(TypeError, match="noise_shape must be a sequence"):
            dropout(torch.ones(2, 3), 0.5, noise_shape=3)


class TestSpatialDropout:
    @pytest.mark.parametrize(
        "shape,torch_op",
        [
            ((4, 6, 10), F.dropout1d),
            ((4, 6, 5, 5), F.dropout2d),
            ((4, 6, 3, 3, 3), F.dropout3d),
        ],
    )
    def test_equals_torch_dropoutNd(self, shape, torch_op):
        x = torch.randn(shape)
        torch.manual_seed(5)
        ours = spatial_dropout(x, 0.4)
        torch.manual_seed(5)
        assert torch.equal(ours, torch_op(x, 0.4))

    @pytest.mark.parametrize("channel_dim", [1, 2, -1])
    def test_whole_channels_zero_or_scaled(self, channel_dim):
        torch.manual_seed(6)
        x = torch.ones(8, 6, 7, 5)
        y = spatial_dropout(x, 0.5, channel_dim=channel_dim)
        c = channel_dim % 4
        per_channel = y.movedim(c, 1).reshape(8, x.shape[c], -1)
        assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all(), (
            "a channel was partly dropped"
        )

    def test_channels_last_matches_keras_semantics(self):
        # Keras SpatialDropout1D on (N, T, C) is spatial dropout along the last axis:
        # the same draws as
        # channels-first dropout1d on the transposed input.
        x = torch.randn(4, 10, 6)
        torch.manual_seed(7)
        ours = spatial_dropout(x, 0.3, channel_dim=-1)
        torch.manual_seed(7)
        assert torch.equal(
            ours, F.dropout1d(x.transpose(1, 2).contiguous(), 0.3).transpose(1, 2)
        )

    def test_keep_rate_binomial(self):
        torch.manual_seed(8)
        y = spatial_dropout(torch.ones(1000, 200, 2), 0.3)
        kept = int((y[..., 0] != 0).sum())
        assert kept_fraction_ok(kept, 200_000, 0.3)

    @pytest.mark.parametrize(
        "channel_dim,match",
        [
            (0, "batch dimension"),
            (4, "axis of the 4-D input"),
            (-5, "axis of the 4-D input"),
            (1.0, "but got 1.0"),
        ],
    )
    def test_bad_channel_dim(self, channel_dim, match):
        with pytest.raises(ValueError, match=match):
            spatial_dropout(torch.ones(2, 3, 4, 5), 0.5, channel_dim=channel_dim)

    def test_needs_batched_input(self):
        with pytest.raises(ValueError, match="at least 2 dims"):
            spatial_dropout(torch.ones(5), 0.5)


class TestDropPath:
    def test_whole_samples_zero_or_scaled(self):
        torch.manual_seed(9)
        y = drop_path(torch.ones(64, 5, 7), 0.5)
        flat = y.reshape(64, -1)
        assert ((flat == 0).all(1) | (flat == 2).all(1)).all(), (
            "a sample was partly dropped"
        )

    def test_scale_by_keep_false(self):
        torch.manual_seed(10)
        y = drop_path(torch.ones(64, 5), 0.5, scale_by_keep=False)
        assert set(y.unique().tolist()) == {0.0, 1.0}

    def test_equals_timm_and_torchvision(self):
        timm_layers = pytest.importorskip("timm.layers")
        from torchvision.ops import stochastic_depth

        x = torch.randn(32, 10, 16)
        torch.manual_seed(11)
        ours = drop_path(x, 0.3)
        torch.manual_seed(11)
        assert torch.equal(ours, timm_layers.drop_path(x, 0.3, True))
        torch.manual_seed(11)
        assert torch.equal(ours, stochastic_depth(x, 0.3, "row", True))

    def test_keep_rate_binomial(self):
        torch.manual_seed(12)
        y = drop_path(torch.ones(100_000, 2), 0.25)
        assert kept_fraction_ok(int((y[:, 0] != 0).sum()), 100_000, 0.25)

    def test_needs_batch_dim(self):
        with pytest.raises(ValueError, match="0-dim"):
            drop_path(torch.tensor(1.0), 0.5)


class TestModules:
    @pytest.mark.parametrize(
        "module,text",
        [
            (Dropout(0.3), "Dropout(p=0.3, noise_shape=None)"),
            (
                Dropout(0.3, noise_shape=[None, 1]),
                "Dropout(p=0.3, noise_shape=(None, 1))",
            ),
            (
                SpatialDropout(0.2, channel_dim=-1),
                "SpatialDropout(p=0.2, channel_dim=-1)",
            ),
            (DropPath(0.1), "DropPath(p=0.1, scale_by_keep=True)"),
            (
                DropPath(0.1, scale_by_keep=False),
                "DropPath(p=0.1, scale_by_keep=False)",
            ),
        ],
    )
    def test_repr(self, module, text):
        assert repr(module) == text

    @pytest.mark.parametrize("channel_dim", [0, "1", 1.0, True, None])
    def test_spatial_module_refuses_a_bad_channel_dim_at_construction(
        self, channel_dim
    ):
        with pytest.raises(ValueError, match=f"channel_dim.*{channel_dim!r}|batch"):
            SpatialDropout(0.3, channel_dim=channel_dim)

    @pytest.mark.parametrize("cls", [Dropout, SpatialDropout, DropPath])
    def test_no_parameters_or_buffers(self, cls):
        m = cls(0.5)
        assert (
            list(m.parameters()) == []
            and list(m.buffers()) == []
            and m.state_dict() == {}
        )

    @pytest.mark.parametrize("cls", [Dropout, SpatialDropout, DropPath])
    def test_eval_is_identity(self, cls):
        x = torch.randn(4, 3, 5)
        assert cls(0.5).eval()(x) is x

    @pytest.mark.parametrize("cls", [Dropout, SpatialDropout, DropPath])
    @pytest.mark.parametrize("p", BAD_P, ids=repr)
    def test_bad_p_raises_at_construction(self, cls, p):
        with pytest.raises(ValueError, match="but got"):
            cls(p)

    def test_module_equals_function(self):
        x = torch.randn(4, 3, 5, 5)
        for module, fn in [
            (Dropout(0.3), dropout),
            (SpatialDropout(0.3), spatial_dropout),
            (DropPath(0.3), drop_path),
        ]:
            torch.manual_seed(13)
            a = module(x)
            torch.manual_seed(13)
            assert torch.equal(a, fn(x, 0.3))

    def test_in_a_model(self):
        torch.manual_seed(14)
        net = torch.nn.Sequential(
            torch.nn.Linear(8, 8), Dropout(0.5), torch.nn.Linear(8, 2)
        )
        net(torch.randn(4, 8)).sum().backward()
        net.eval()
        x = torch.randn(4, 8)
        assert torch.equal(net(x), net(x)), "eval mode must be deterministic"


def test_public_api():
    for name in [
        "dropout",
        "spatial_dropout",
        "drop_path",
        "Dropout",
        "SpatialDropout",
        "DropPath",
        "scratch",
    ]:
        assert hasattr(dropkit, name), name
    assert math.isclose(0.5, dropkit.Dropout().p)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("op", [dropout, spatial_dropout, drop_path])
def test_cuda_mask_on_input_device(op):
    x = torch.ones(8, 4, 6, device="cuda", dtype=torch.float16, requires_grad=True)
    y = op(x, 0.5)
    assert y.device == x.device and y.dtype == x.dtype
    y.sum().backward()
    assert x.grad.device == x.device
    g = torch.Generator(device="cuda").manual_seed(0)
    assert op(x, 0.5, generator=g).device == x.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
class TestDropoutCUDA:
    """What holds on CUDA. Not bit-equality with F.dropout: on CUDA F.dropout runs a
    fused kernel that consumes the random stream its own way (bit-equality is a CPU
    property, tested in TestDropout)."""

    N = 1_000_000

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_values_are_zero_or_x_over_keep(self, dtype, p):
        torch.manual_seed(0)
        x = torch.randn(self.N, device="cuda").to(dtype)
        y = dropout(x, p)
        assert y.device == x.device and y.dtype == dtype and y.shape == x.shape
        # The noise 1/(1-p) in x's dtype, computed as on the CPU: kept entries are x
        # times exactly that number, dropped ones exactly 0.
        scale = torch.ones((), dtype=dtype, device="cuda").div_(1 - p)
        kept = y != 0
        assert torch.equal(y[kept], x[kept] * scale), (
            "kept entries must be x/(1-p) exactly"
        )
        assert torch.equal(y[~kept], torch.zeros_like(y[~kept]))

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_keep_rate_binomial(self, p):
        torch.manual_seed(1)
        x = torch.ones(self.N, device="cuda")
        for name, y in [
            ("dropkit.dropout", dropout(x, p)),
            ("F.dropout", F.dropout(x, p)),
        ]:
            kept = int((y != 0).sum())
            assert kept_fraction_ok(kept, self.N, p), (
                f"{name} kept {kept} of {self.N} at p={p}"
            )

    def test_same_seed_same_mask(self):
        x = torch.randn(64, 128, device="cuda")
        torch.manual_seed(5)
        a = dropout(x, 0.3)
        torch.manual_seed(5)
        b = dropout(x, 0.3)
        c = dropout(x, 0.3)
        assert torch.equal(a, b), "the same seed must give the same mask"
        assert not torch.equal(b, c), "consecutive calls must draw fresh masks"

    def test_generator_drives_mask(self):
        x = torch.ones(64, 128, device="cuda")
        a = dropout(x, 0.5, generator=torch.Generator(device="cuda").manual_seed(7))
        torch.manual_seed(123)  # the global seed must not matter
        b = dropout(x, 0.5, generator=torch.Generator(device="cuda").manual_seed(7))
        assert torch.equal(a, b)

    def test_gradient_and_saved_mask(self):
        torch.manual_seed(2)
        x = torch.randn(4096, device="cuda", requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t) or t, lambda t: t
        ):
            y = dropout(x, 0.25)
        y.backward(torch.ones_like(y))
        assert all(t.dtype == torch.bool and t.device == x.device for t in saved), saved
        expected = (y.detach() != 0).float() * torch.ones((), device="cuda").div_(0.75)
        assert torch.equal(x.grad, expected), (
            "the gradient must be the mask times 1/(1-p)"
        )

    def test_channels_last_layout_kept(self):
        x = torch.randn(8, 16, 5, 5, device="cuda").to(
            memory_format=torch.channels_last
        )
        assert dropout(x, 0.3).stride() == x.stride()

    def test_p1_and_eval(self):
        x = torch.randn(16, device="cuda")
        assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
        assert dropout(x, 0.5, training=False) is x
