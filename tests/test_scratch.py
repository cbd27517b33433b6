"""Tests for dropkit.scratch, the numpy dropout of chapter 1."""

import numpy as np
import pytest
from scipy.stats import binomtest

from dropkit.scratch import dropout_backward, dropout_forward


class TestDropoutForward:
    def test_test_mode_is_identity(self):
        x = np.arange(6.0)
        out, cache = dropout_forward(x, 0.5, "test")
        assert out is x and cache[2] is None

    def test_train_values_and_seed(self):
        x = np.ones((100, 100))
        out, (p, mode, mask) = dropout_forward(x, 0.5, "train", seed=0)
        assert set(np.unique(out)) <= {0.0, 2.0}
        assert mask.dtype == bool
        np.testing.assert_array_equal(out, dropout_forward(x, 0.5, "train", seed=0)[0])
        assert not np.array_equal(out, dropout_forward(x, 0.5, "train", seed=1)[0])

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
    def test_keep_rate(self, p):
        out, _ = dropout_forward(np.ones(100_000), p, "train", seed=3)
        assert binomtest(int((out != 0).sum()), out.size, 1 - p).pvalue > 1e-9

    def test_p1_zeros_no_nan(self):
        out, cache = dropout_forward(np.ones(10), 1.0, "train", seed=0)
        np.testing.assert_array_equal(out, np.zeros(10))
        np.testing.assert_array_equal(
            dropout_backward(np.ones(10), cache), np.zeros(10)
        )

    @pytest.mark.parametrize("p", [-0.5, 2, float("nan"), "a", True])
    def test_bad_p(self, p):
        with pytest.raises(ValueError, match="but got"):
            dropout_forward(np.ones(3), p, "train")

    def test_bad_mode(self):
        with pytest.raises(
            ValueError, match="mode must be 'train' or 'test', but got 'eval'"
        ):
            dropout_forward(np.ones(3), 0.5, "eval")

    def test_integer_input(self):
        with pytest.raises(TypeError, match="floating-point array, but got dtype int"):
            dropout_forward(np.arange(3), 0.5, "train")


class TestDropoutBackward:
    def test_matches_numerical_gradient(self):
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
        _, cache = dropout_forward(x, 0.3, "train", seed=5)
        analytic = dropout_backward(w, cache)
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = 1e-6
            plus = (dropout_forward(x + e, 0.3, "train", seed=5)[0] * w).sum()
            minus = (dropout_forward(x - e, 0.3, "train", seed=5)[0] * w).sum()
            numeric[i] = (plus - minus) / 2e-6
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)

    def test_test_mode_passes_gradient(self):
        dout = np.arange(4.0)
        _, cache = dropout_forward(np.ones(4), 0.5, "test")
        assert dropout_backward(dout, cache) is dout
