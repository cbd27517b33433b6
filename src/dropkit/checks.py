"""Checks for the book's coding exercises.

Each ``check_*`` function runs a learner's code on inputs chosen to expose the usual mistakes and
either prints ``all checks passed`` or raises :class:`CheckFailed` saying, in plain words, what is
wrong and how to fix it. Statistical checks use fixed seeds and bounds six standard deviations wide,
so a correct solution never fails by bad luck.
"""

import math

import numpy as np
import torch

__all__ = ["CheckFailed", "check_dropout_layer", "check_scratch_backward", "check_saved_bytes"]


class CheckFailed(AssertionError):
    """A learner's solution does not do what the exercise asks; the message says what differs."""


def _require(condition, message):
    if not condition:
        raise CheckFailed(message)


def _passed():
    print("all checks passed")


def _keep_rate_ok(kept, total, p):
    """True when `kept` of `total` is within 6 standard deviations of the expected (1 - p) * total."""
    mean, sd = (1 - p) * total, math.sqrt(total * p * (1 - p))
    return abs(kept - mean) <= 6 * sd


def _check_inverted_dropout(fn, name):
    """The behaviour every correct dropout(X, p) shares; used by the checks below."""
    torch.manual_seed(0)
    x = torch.randn(2, 8)
    out = fn(x, 0.0)
    _require(isinstance(out, torch.Tensor), f"{name} must return a tensor, but returned {type(out).__name__}")
    _require(out.shape == x.shape, f"{name} changed the shape: {tuple(x.shape)} in, {tuple(out.shape)} out")
    _require(torch.equal(out, x), f"at p=0 {name} must return its input unchanged, but the values differ")

    out = fn(x, 1.0)
    _require(
        not torch.isnan(out).any(),
        f"at p=1 your output has NaN: dividing by 1 - p = 0 gives 0/0. Return zeros when p == 1.",
    )
    _require(
        torch.equal(out, torch.zeros_like(x)),
        f"at p=1 every entry must be dropped, but {name} kept some. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )

    x = torch.ones(100_000)
    for p in (0.2, 0.5, 0.8):
        out = fn(x, p)
        values = set(torch.unique(out).tolist())
        scale = torch.tensor(1 / (1 - p)).item()
        _require(
            values <= {0.0, scale},
            f"at p={p} the entries of {name}(ones, p) must be 0 or 1/(1-p) = {scale:.4g}, but found "
            f"{sorted(values)[:4]}. Did you forget to rescale the kept entries (inverted dropout)?",
        )
        kept = int((out != 0).sum())
        _require(
            _keep_rate_ok(kept, x.numel(), p),
            f"at p={p} you kept {kept} of {x.numel()} entries, far from the expected {(1 - p) * x.numel():.0f}. "
            "Is p the probability to drop (PyTorch's convention), not to keep?",
        )

    for dtype in (torch.float16, torch.float64):
        out = fn(torch.ones(4, 4, dtype=dtype), 0.5)
        _require(
            out.dtype == dtype,
            f"for a {dtype} input your output is {out.dtype}: the mask must have the input's dtype "
            "(e.g. X.new_empty(X.shape) or torch.rand_like(X)), not torch.rand(X.shape).float()",
        )

    x = torch.ones(4, 4, device="meta")  # a device that is not the CPU, available on every machine
    try:
        out = fn(x, 0.5)
    except RuntimeError as err:
        raise CheckFailed(
            f"for an input on device 'meta' {name} failed ({err}). The mask must be made on the "
            "input's device (torch.rand_like(X) or X.new_empty(X.shape)), not with torch.rand(X.shape), "
            "which always makes it on the CPU."
        ) from None
    _require(out.device == x.device, f"for an input on {x.device} your output is on {out.device}")


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
