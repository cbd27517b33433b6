"""Tests for chapter 2's noise dropouts: alpha_dropout, feature_alpha_dropout,
gaussian_dropout and their modules (dropkit.drop)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dropkit
from dropkit import (
    AlphaDropout,
    FeatureAlphaDropout,
    GaussianDropout,
    alpha_dropout,
    feature_alpha_dropout,
    gaussian_dropout,
)
from dropkit.drop import _DropoutBase

FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
BITS = {
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
}
BAD_P = [-0.1, 1.5, float("nan"), float("inf"), "0.5", None, True]
OPS = [alpha_dropout, feature_alpha_dropout, gaussian_dropout]
MODULES = [
    (AlphaDropout, alpha_dropout),
    (FeatureAlphaDropout, feature_alpha_dropout),
    (GaussianDropout, gaussian_dropout),
]
SELU_NEG = 1.7580993408473766  # lambda * alpha of SELU, as in ATen


def same_bits(a, b):
    """Equal bit for bit (torch.equal treats 0.0 and -0.0 as equal)."""
    return a.dtype == b.dtype and torch.equal(
        a.view(BITS[a.dtype]), b.view(BITS[b.dtype])
    )


def test_exported():
    for name in (
        "AlphaDropout",
        "FeatureAlphaDropout",
        "GaussianDropout",
        "alpha_dropout",
        "feature_alpha_dropout",
        "gaussian_dropout",
    ):
        assert name in dropkit.__all__ and hasattr(dropkit, name), name


@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
class TestCommonSemantics:
    @pytest.mark.parametrize("p", BAD_P, ids=repr)
    def test_bad_p_raises_naming_value(self, op, p):
        with pytest.raises(ValueError, match=r"between 0 and 1, but got"):
            op(torch.ones(4, 3, 5), p)
        with pytest.raises(ValueError, match=r"but got"):  # also when dropout is off
            op(torch.ones(4, 3, 5), p, training=False)

    @pytest.mark.parametrize(
        "x", [torch.arange(6).reshape(2, 3), torch.ones(2, 3, dtype=torch.bool)]
    )
    def test_non_float_input_raises(self, op, x):
        with pytest.raises(TypeError, match=r"floating-point tensor .* but got dtype"):
            op(x, 0.5)

    def test_non_tensor_raises(self, op):
        with pytest.raises(TypeError, match="expects a torch.Tensor, but got list"):
            op([[1.0, 2.0]], 0.5)

    @pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
    def test_eval_returns_input_itself(self, op, p):
        x = torch.randn(4, 3, 5)
        assert op(x, p, training=False) is x

    def test_p0_returns_input_without_drawing(self, op):
        x = torch.randn(4, 3, 5)
        state = torch.get_rng_state()
        assert op(x, 0.0) is x
        assert torch.equal(state, torch.get_rng_state()), "p=0 consumed random numbers"

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    def test_p1_zeros_no_nan_zero_grad(self, op, dtype):
        x = torch.randn(4, 3, 5).to(dtype)
        x[0, 0, 0] = float("inf")
        x.requires_grad_()
        out = op(x, 1.0)
        assert out.dtype == dtype
        assert not torch.isnan(out).any() and not out.any(), (
            "p=1 must give zeros, never NaN"
        )
        out.sum().backward()
        assert not x.grad.any()

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    def test_keeps_dtype(self, op, dtype):
        assert op(torch.ones(4, 3, 5, dtype=dtype), 0.3).dtype == dtype

    def test_keeps_layout_channels_last(self, op):
        x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
        out = op(x, 0.3)
        assert out.is_contiguous(memory_format=torch.channels_last)

    def test_meta_device(self, op):
        out = op(torch.ones(4, 3, 5, device="meta"), 0.3)
        assert out.device.type == "meta" and out.shape == (4, 3, 5)

    def test_generator_drives_noise(self, op):
        x = torch.randn(8, 4, 5)
        a = op(x, 0.3, generator=torch.Generator().manual_seed(7))
        torch.manual_seed(123)  # the global stream must not matter
        b = op(x, 0.3, generator=torch.Generator().manual_seed(7))
        c = op(x, 0.3, generator=torch.Generator().manual_seed(8))
        assert torch.equal(a, b)
        assert not torch.equal(a, c)

    def test_same_global_seed_same_output(self, op):
        x = torch.randn(8, 4, 5)
        torch.manual_seed(3)
        a = op(x, 0.3)
        torch.manual_seed(3)
        assert torch.equal(a, op(x, 0.3))

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_gradcheck_float64(self, op, p):
        x = torch.randn(4, 3, 5, dtype=torch.float64, requires_grad=True)
        g = torch.Generator()

        def fn(x):
            return op(x, p, generator=g.manual_seed(0))

        assert torch.autograd.gradcheck(fn, (x,))

    def test_empty_input(self, op):
        assert op(torch.empty(0, 3), 0.5).shape == (0, 3)


class TestAlphaDropoutEqualsTorch:
    """Bit for bit on CPU under the same seed, in every float dtype."""

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    @pytest.mark.parametrize("p", [0.05, 0.1, 0.5, 0.9])
    def test_alpha_dropout(self, dtype, p):
        x = torch.randn(64, 33).to(dtype)
        torch.manual_seed(3)
        ref = F.alpha_dropout(x, p, training=True)
        torch.manual_seed(3)
        assert same_bits(alpha_dropout(x, p), ref)

    @pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
    @pytest.mark.parametrize(
        "shape", [(4, 6), (4, 6, 7), (4, 6, 5, 5), (2, 3, 4, 4, 4)]
    )
    def test_feature_alpha_dropout(self, dtype, shape):
        x = torch.randn(shape).to(dtype)
        torch.manual_seed(4)
        ref = F.feature_alpha_dropout(x, 0.2, training=True)
        torch.manual_seed(4)
        assert same_bits(feature_alpha_dropout(x, 0.2), ref)

    def test_modules_equal_torch_modules(self):
        x = torch.randn(8, 6, 5)
        for ours, theirs in (
            (AlphaDropout(0.2), nn.AlphaDropout(0.2)),
            (FeatureAlphaDropout(0.2), nn.FeatureAlphaDropout(0.2)),
        ):
            torch.manual_seed(5)
            ref = theirs(x)
            torch.manual_seed(5)
            assert same_bits(ours(x), ref), type(ours).__name__

    def test_p1_values_equal_torch(self):
        # torch computes x * 0 at p = 1: the same values (up to the sign of zero) for
        # finite x.
        x = torch.randn(5, 4)
        assert torch.equal(
            alpha_dropout(x, 1.0), F.alpha_dropout(x, 1.0, training=True)
        )

    def test_dropped_and_kept_values(self):
        p = 0.3
        a = 1 / math.sqrt((SELU_NEG**2 * p + 1) * (1 - p))
        x = torch.full((10_000,), 0.5, dtype=torch.float64)
        out = alpha_dropout(x, p)
        values = sorted(set(out.tolist()))
        assert len(values) == 2
        assert math.isclose(
            values[0], -a * SELU_NEG * (1 - p), rel_tol=1e-12
        )  # dropped
        assert math.isclose(
            values[1], a * 0.5 + a * SELU_NEG * p, rel_tol=1e-12
        )  # kept

    def test_feature_mask_shared_over_positions(self):
        out = feature_alpha_dropout(torch.ones(16, 8, 5, 5), 0.5)
        flat = out.flatten(2)
        assert torch.equal(flat, flat[..., :1].expand_as(flat)), (
            "one draw per (sample, channel)"
        )

    @pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
    def test_keeps_zero_mean_unit_variance(self, p):
        # Mean 0 and variance 1 of a standard-normal input are kept; bounds 6 standard
        # errors (the fourth central moment of the output is below 10 for these p).
        torch.manual_seed(0)
        n = 2_000_000
        out = alpha_dropout(torch.randn(n, dtype=torch.float64), p)
        se_mean, se_var = 1 / math.sqrt(n), math.sqrt(10 / n)
        assert abs(out.mean().item()) < 6 * se_mean, f"mean {out.mean().item()}"
        assert abs(out.var().item() - 1) < 6 * se_var, f"variance {out.var().item()}"

    def test_feature_needs_two_dims(self):
        with pytest.raises(ValueError, match=r"at least 2 dims, but got shape \(5,\)"):
            feature_alpha_dropout(torch.ones(5), 0.5)
        with pytest.raises(ValueError, match="at least 2 dims"):  # also in eval
            feature_alpha_dropout(torch.ones(5), 0.5, training=False)


class TestGaussianDropout:
    @pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
    def test_mean_and_variance_match_inverted_dropout(self, p):
        # N(1, p/(1-p)): mean 1 and variance p/(1-p), as m/(1-p); bounds 6 s.e.
        torch.manual_seed(1)
        n = 2_000_000
        r = gaussian_dropout(torch.ones(n, dtype=torch.float64), p)
        var = p / (1 - p)
        assert abs(r.mean().item() - 1) < 6 * math.sqrt(var / n)
        assert abs(r.var().item() - var) < 6 * math.sqrt(2 * var**2 / n)

    def test_third_moment_is_zero_unlike_bernoulli(self):
        torch.manual_seed(2)
        n, p = 2_000_000, 0.2
        g = (gaussian_dropout(torch.ones(n, dtype=torch.float64), p) - 1) ** 3
        b = (dropkit.dropout(torch.ones(n, dtype=torch.float64), p) - 1) ** 3
        se = g.std().item() / math.sqrt(n)
        assert abs(g.mean().item()) < 6 * se
        assert math.isclose(
            b.mean().item(), p * (2 * p - 1) / (1 - p) ** 2, rel_tol=0.02
        )

    def test_is_normal_noise_times_input(self):
        # At p = 0.5 the standard deviation is 1, so the noise is 1 + randn bit for bit.
        x = torch.randn(4, 8)
        torch.manual_seed(0)
        out = gaussian_dropout(x, 0.5)
        torch.manual_seed(0)
        assert torch.equal(out, x * (1 + torch.randn(4, 8)))

    def test_no_entry_dropped(self):
        out = gaussian_dropout(torch.ones(10_000), 0.1)
        assert (out != 0).all()


@pytest.mark.parametrize("cls,op", MODULES, ids=lambda v: getattr(v, "__name__", ""))
class TestModules:
    def test_subclasses_dropout_base(self, cls, op):
        assert isinstance(cls(), _DropoutBase)

    def test_default_and_repr(self, cls, op):
        assert cls().p == 0.5
        assert repr(cls(0.2)) == f"{cls.__name__}(p=0.2)"

    def test_forward_is_the_op(self, cls, op):
        x = torch.randn(4, 6, 5)
        torch.manual_seed(9)
        a = cls(0.3)(x)
        torch.manual_seed(9)
        assert torch.equal(a, op(x, 0.3))

    def test_eval_is_identity(self, cls, op):
        x = torch.randn(4, 6, 5)
        assert cls(0.3).eval()(x) is x

    @pytest.mark.parametrize("p", BAD_P, ids=repr)
    def test_bad_p_raises(self, cls, op, p):
        with pytest.raises(ValueError, match="but got"):
            cls(p)

    def test_no_parameters(self, cls, op):
        assert not list(cls().parameters()) and not list(cls().buffers())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
class TestCuda:
    """On CUDA: what holds whatever the kernels, plus equality with torch where no
    fused kernel is involved (torch's alpha dropout uses our bernoulli_ draw)."""

    @pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
    def test_device_dtype_and_generator(self, op):
        x = torch.randn(8, 4, 6, device="cuda", dtype=torch.float16)
        g = torch.Generator(device="cuda")
        a, b = (
            op(x, 0.3, generator=g.manual_seed(0)),
            op(x, 0.3, generator=g.manual_seed(0)),
        )
        assert a.device == x.device and a.dtype == x.dtype and torch.equal(a, b)
        assert not op(x, 1.0).any()

    def test_alpha_dropout_two_values(self):
        p = 0.3
        a = 1 / math.sqrt((SELU_NEG**2 * p + 1) * (1 - p))
        out = alpha_dropout(
            torch.full((100_000,), 0.5, device="cuda", dtype=torch.float64), p
        )
        values = torch.unique(out).tolist()
        assert len(values) == 2
        assert math.isclose(values[0], -a * SELU_NEG * (1 - p), rel_tol=1e-12)
        kept = (out == values[1]).double().mean().item()
        assert abs(kept - (1 - p)) < 6 * math.sqrt(p * (1 - p) / out.numel())

    @pytest.mark.parametrize(
        "ours,theirs",
        [
            (alpha_dropout, F.alpha_dropout),
            (feature_alpha_dropout, F.feature_alpha_dropout),
        ],
    )
    def test_alpha_equals_torch_on_cuda(self, ours, theirs):
        x = torch.randn(16, 8, 5, device="cuda")
        torch.manual_seed(11)
        ref = theirs(x, 0.2, training=True)
        torch.manual_seed(11)
        assert torch.equal(ours(x, 0.2), ref)
