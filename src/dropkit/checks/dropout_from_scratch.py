"""Exercise checks for Chapter 1: dropout from scratch"""

import math

import numpy as np
import torch

from dropkit.checks._common import _require, _passed, _check_inverted_dropout

__all__ = ['check_dropout_layer', 'check_scratch_backward', 'check_saved_bytes']


def check_dropout_layer(dropout_layer):
    """Check a from-scratch ``dropout_layer(X, p)`` (chapter 1, d2l's convention: p drops).

    It must return X unchanged at p=0, zeros (never NaN) at p=1, entries 0 or X/(1-p) otherwise,
    drop about a fraction p, and keep X's dtype and device.
    """
    _check_inverted_dropout(dropout_layer, "dropout_layer")
    _passed()


def check_scratch_backward(dropout_backward):
    """Check a numpy ``dropout_backward(dout, cache)`` against ``dropkit.scratch.dropout_forward``."""
    from dropkit.scratch import dropout_forward

    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    for p in (0.0, 0.3, 0.5, 1.0):
        out, cache = dropout_forward(x, p, "train", seed=1)
        dx = dropout_backward(dout, cache)
        _require(isinstance(dx, np.ndarray), f"dropout_backward must return an array, but returned {type(dx).__name__}")
        _require(dx.shape == x.shape, f"dx must have the shape of x {x.shape}, but has {dx.shape}")
        _require(not np.isnan(dx).any(), f"at p={p} your dx has NaN: at p=1 the gradient is all zeros, no division")
        # The output is linear in x, out = x * m; so dx = dout * m, with m read off the forward pass.
        m = np.divide(out, x)
        _require(
            np.allclose(dx, dout * m),
            f"in train mode at p={p}, dx must be dout times the forward pass's mask scaled by 1/(1-p); "
            f"yours differs by up to {np.abs(dx - dout * m).max():.3g}",
        )
    out, cache = dropout_forward(x, 0.5, "test")
    dx = dropout_backward(dout, cache)
    _require(np.array_equal(dx, dout), "in test mode dropout is the identity, so dx must equal dout")
    _passed()


def check_saved_bytes(dropout, max_bytes_per_element=1):
    """Check that ``dropout(x, p)`` saves at most ``max_bytes_per_element`` for backward and that
    its gradient is the mask scaled by 1/(1-p)."""
    _check_inverted_dropout(dropout, "dropout")
    saved = []

    def pack(t):
        saved.append(t)
        return t

    n = 4096
    x = torch.randn(n, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = dropout(x, 0.5)
    y.backward(torch.ones(n))
    kept = y.detach() != 0
    _require(
        torch.equal(x.grad, kept.float() * 2),
        "the gradient must be 1/(1-p) = 2 where an entry was kept and 0 where it was dropped",
    )
    # Tensors the graph already holds (x itself) cost nothing extra.
    extra = sum(t.numel() * t.element_size() for t in saved if t is not x and t.data_ptr() != x.data_ptr())
    _require(
        extra <= max_bytes_per_element * n,
        f"your dropout saves {extra / n:g} bytes per element for backward, more than "
        f"{max_bytes_per_element}: a float32 mask costs 4. Save a torch.bool mask and rebuild the scale in backward.",
    )
    _passed()
