"""Tests for dropkit.lowmem: counter-based dropout that saves nothing for backward."""

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, chisquare, pearsonr

from dropkit.lowmem import LowMemDropout, _keep_mask, _lowbias32, _seed_key, _unsigned, lowmem_dropout

ALPHA = 1e-9


def lowmem(x, p, **kw):
    kw.setdefault("seed", 0)
    kw.setdefault("compile", False)  # eager: same values, no compile time; compiled checked once below
    return lowmem_dropout(x, p, **kw)


class TestSemantics:
    @pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])
    def test_bad_p(self, p):
        with pytest.raises(ValueError, match="but got"):
            lowmem(torch.ones(4), p)
        with pytest.raises(ValueError, match="but got"):
            lowmem(torch.ones(4), p, training=False)

    @pytest.mark.parametrize("seed", [-1, 2**32, 1.5, None, True])
    def test_bad_seed(self, seed):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\), but got"):
            lowmem_dropout(torch.ones(4), 0.5, seed=seed)

    def test_seed_is_required(self):
        with pytest.raises(TypeError):
            lowmem_dropout(torch.ones(4), 0.5)

    def test_non_float(self):
        with pytest.raises(TypeError, match="floating-point"):
            lowmem(torch.arange(4), 0.5)

    @pytest.mark.parametrize("p", [0.0, 0.5])
    def test_off_returns_input(self, p):
        x = torch.randn(8)
        assert lowmem(x, p, training=False) is x
        assert lowmem(x, 0.0) is x

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
    def test_p1_zeros_and_zero_grad(self, dtype):
        x = torch.randn(16, dtype=dtype, requires_grad=True)
        y = lowmem(x, 1.0)
        assert torch.equal(y, torch.zeros_like(y))
        y.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
    def test_values_and_dtype(self, dtype):
        y = lowmem(torch.ones(1000, dtype=dtype), 0.5)
        assert y.dtype == dtype and set(y.unique().tolist()) == {0.0, 2.0}

    def test_same_mask_as_dropout_semantics_on_views(self):
        x = torch.randn(6, 8).t()  # discontiguous: the mask follows row-major order of the values
        y = lowmem(x, 0.5)
        assert y.shape == x.shape
        assert torch.equal(y, lowmem(x.contiguous(), 0.5))

    def test_gradient_is_mask_times_scale_and_nothing_saved(self):
        x = torch.randn(4096, requires_grad=True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            y = lowmem(x, 0.25, seed=3)
        assert saved == [], f"lowmem_dropout saved {[(t.dtype, tuple(t.shape)) for t in saved]} for backward"
        y.backward(torch.ones_like(y))
        assert torch.equal(x.grad, (y.detach() != 0).float() * torch.tensor(1 / 0.75))

    def test_gradcheck(self):
        x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t: lowmem(t, 0.4, seed=9), (x,))

    def test_empty(self):
        assert lowmem(torch.ones(0, 3), 0.5).shape == (0, 3)

    def test_compiled_equals_eager(self):
        x = torch.randn(3, 1000, requires_grad=True)
        compiled = lowmem_dropout(x, 0.3, seed=11, compile=True)
        eager = lowmem_dropout(x, 0.3, seed=11, compile=False)
        assert torch.equal(compiled, eager)
        compiled.sum().backward()
        assert torch.equal(x.grad, (eager.detach() != 0).float() * torch.tensor(1 / 0.7))


class TestRandomness:
    N = 1 << 20

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_keep_rate(self, p):
        kept = int((lowmem(torch.ones(self.N), p, seed=1) != 0).sum())
        assert binomtest(kept, self.N, 1 - p).pvalue > ALPHA, f"kept {kept} of {self.N} at p={p}"

    def test_same_seed_same_mask_other_seeds_differ(self):
        a, b = lowmem(torch.ones(self.N), 0.5, seed=7), lowmem(torch.ones(self.N), 0.5, seed=7)
        assert torch.equal(a, b)
        c = lowmem(torch.ones(self.N), 0.5, seed=8)
        agree = int((a == c).sum())  # independent masks agree on half the entries
        assert binomtest(agree, self.N, 0.5).pvalue > ALPHA

    @pytest.mark.parametrize("lag", [1, 2, 64, 1024])
    def test_no_correlation_between_neighbours(self, lag):
        m = (lowmem(torch.ones(self.N), 0.5, seed=2) != 0).double().numpy()
        r, pvalue = pearsonr(m[:-lag], m[lag:])
        assert pvalue > ALPHA, f"masks {lag} apart correlate: r = {r:.4f}"

    def test_no_correlation_between_consecutive_seeds(self):
        a = (lowmem(torch.ones(self.N), 0.5, seed=100) != 0).double().numpy()
        b = (lowmem(torch.ones(self.N), 0.5, seed=101) != 0).double().numpy()
        r, pvalue = pearsonr(a, b)
        assert pvalue > ALPHA, f"seeds 100 and 101 correlate: r = {r:.4f}"

    def test_hash_output_uniform(self):
        h = _unsigned(_lowbias32(_lowbias32(torch.arange(self.N, dtype=torch.int32)) ^ _seed_key(5, "cpu")))
        counts = torch.bincount(h >> 24, minlength=256).numpy()  # top 8 bits: 256 buckets
        assert chisquare(counts).pvalue > ALPHA
        low = torch.bincount(h & 255, minlength=256).numpy()  # and the low bits
        assert chisquare(low).pvalue > ALPHA

    def test_hash_matches_reference(self):
        def lowbias32(h):  # Chris Wellons' reference, on Python ints
            h ^= h >> 16
            h = (h * 0x7FEB352D) & 0xFFFFFFFF
            h ^= h >> 15
            h = (h * 0x846CA68B) & 0xFFFFFFFF
            return h ^ (h >> 16)

        values = [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1]
        as_int32 = torch.tensor([v - 2**32 if v >= 2**31 else v for v in values], dtype=torch.int32)
        assert _unsigned(_lowbias32(as_int32)).tolist() == [lowbias32(v) for v in values]
        assert _unsigned(_seed_key(2**32 - 1, "cpu")).item() == lowbias32(2**32 - 1)

    def test_threshold_is_the_unsigned_comparison(self):
        key = _seed_key(3, "cpu")
        h = _unsigned(_lowbias32(_lowbias32(torch.arange(1000, dtype=torch.int32)) ^ key))
        for t in (1, 2**31, 3 * 2**30, 2**32 - 1):
            expected = h >= t
            assert torch.equal(_keep_mask(1000, (1000,), key, torch.tensor(t - 2**31, dtype=torch.int32), "cpu"), expected)


class TestModule:
    def test_advances_seed_each_call(self):
        m = LowMemDropout(0.5, seed=4)
        a, b = m(torch.ones(1000)), m(torch.ones(1000))
        assert not torch.equal(a, b), "two calls in one step must use different masks"
        m2 = LowMemDropout(0.5, seed=4)
        assert torch.equal(m2(torch.ones(1000)), a), "a run must be reproducible from its seed"

    def test_eval_identity_and_repr(self):
        m = LowMemDropout(0.3, seed=2).eval()
        x = torch.randn(4)
        assert m(x) is x
        assert repr(m) == "LowMemDropout(p=0.3, seed=2)"

    @pytest.mark.parametrize("kw", [{"p": 2.0}, {"seed": -3}])
    def test_bad_arguments(self, kw):
        with pytest.raises(ValueError, match="but got"):
            LowMemDropout(**kw)
