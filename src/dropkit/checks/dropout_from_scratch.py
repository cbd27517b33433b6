"""Exercise checks for chapter 1: dropout from scratch."""

import numpy as np
import torch

from dropkit.checks._common import _check_inverted_dropout, _passed, _require

__all__ = ["check_dropout_layer", "check_scratch_backward", "check_saved_bytes"]


def check_dropout_layer(dropout_layer):
    """Check a from-scratch ``dropout_layer(X, p)`` (d2l's convention: p drops).

    It must return X unchanged at p=0, zeros (never NaN) at p=1, entries 0 or X/(1-p)
    otherwise, drop about a fraction p, keep X's dtype and device, draw a fresh mask for
    every sample of a batch, and a fresh one on every call.
    """
    _check_inverted_dropout(dropout_layer, "dropout_layer")
    _check_fresh_masks(dropout_layer, "dropout_layer")
    _passed()


def _check_fresh_masks(fn, name):
    """One independent draw per entry and per call.

    For a correct solution each test below fails with probability 2**-1536 or less.
    """
    x = torch.ones(32, 48)

    # Two different seeds before the call must leave two different states after it.
    torch.manual_seed(1)
    first = fn(x, 0.5) != 0
    after_first = torch.get_rng_state()
    torch.manual_seed(2)
    fn(x, 0.5)
    _require(
        not torch.equal(after_first, torch.get_rng_state()),
        f"calling {name} resets torch's global random number generator (is there a "
        "torch.manual_seed inside it?): every call then draws the same mask, so the "
        "network trains with one fixed thinned network, and everything drawn after "
        "it is reseeded too. Seed once, outside the function.",
    )

    _require(
        not (first == first[:1]).all(),
        f"{name} gave every sample of the batch the same mask: draw one random number "
        "per entry of X (torch.rand_like(X)), not one row broadcast over the batch "
        "(torch.rand(X.shape[-1])).",
    )

    torch.manual_seed(3)
    second = fn(x, 0.5) != 0
    _require(
        not torch.equal(first, second),
        f"two calls of {name} drew the same mask: a mask must be drawn afresh on every "
        "call. Is a generator seeded inside the function, or a mask drawn once and "
        "reused?",
    )


def check_scratch_backward(dropout_backward):
    """Check a numpy ``dropout_backward(dout, cache)`` against
    ``dropkit.scratch.dropout_forward``."""
    from dropkit.scratch import dropout_forward

    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    for p in (0.0, 0.3, 0.5, 1.0):
        out, cache = dropout_forward(x, p, "train", seed=1)
        dx = dropout_backward(dout, cache)
        _require(
            isinstance(dx, np.ndarray),
            f"dropout_backward must return an array, but returned {type(dx).__name__}",
        )
        _require(
            dx.shape == x.shape,
            f"dx must have the shape of x {x.shape}, but has {dx.shape}",
        )
        _require(
            not np.isnan(dx).any(),
            f"at p={p} your dx has NaN: at p=1 the gradient is all zeros, no division",
        )
        # The output is linear in x, out = x * m; so dx = dout * m, with m read off
        # the forward pass.
        m = np.divide(out, x)
        _require(
            np.allclose(dx, dout * m),
            f"in train mode at p={p}, dx must be dout times the forward pass's mask "
            "scaled by 1/(1-p); "
            f"yours differs by up to {np.abs(dx - dout * m).max():.3g}",
        )
    out, cache = dropout_forward(x, 0.5, "test")
    dx = dropout_backward(dout, cache)
    _require(
        np.array_equal(dx, dout),
        "in test mode dropout is the identity, so dx must equal dout",
    )
    _passed()


def check_saved_bytes(dropout, max_bytes_per_element=1):
    """Check that ``dropout(x, p)`` saves at most ``max_bytes_per_element`` for backward
    and that its gradient is the mask scaled by 1/(1-p)."""
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
        "the gradient must be 1/(1-p) = 2 where an entry was kept and 0 where it was "
        "dropped",
    )
    # Tensors the graph already holds (x itself) cost nothing extra.
    extra = sum(
        t.numel() * t.element_size()
        for t in saved
        if t is not x and t.data_ptr() != x.data_ptr()
    )
    _require(
        extra <= max_bytes_per_element * n,
        f"your dropout saves {extra / n:g} bytes per element for backward, more than "
        f"{max_bytes_per_element}: a float32 mask costs 4. Save a torch.bool mask and "
        "rebuild the scale in backward.",
    )
    _passed()
