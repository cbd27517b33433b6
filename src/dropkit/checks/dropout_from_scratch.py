"""Exercise checks for chapter 1: dropout from scratch."""

import functools

import numpy as np
import torch

from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_tensor,
    _check,
    _check_mask_dropout,
    _describe,
    _require,
    _signed,
)

__all__ = ["check_dropout_layer", "check_scratch_backward", "check_saved_bytes"]

# Multi-dimensional inputs: a (N, D) batch and a (N, C, H, W) one, large enough that a
# mask shared along any axis shows.
_SHAPES = [(48, 64), (32, 6, 5, 7)]


def _check_inverted_dropout(fn, name, params=("X", "p")):
    """Inverted dropout of each entry, as ``F.dropout`` does it: see
    :func:`~dropkit.checks._common._check_mask_dropout`."""
    f = fn if isinstance(fn, _Answer) else _Answer(fn, name, params)
    _check_mask_dropout(f, _SHAPES)


@_check
def check_dropout_layer(dropout_layer):
    """Check a from-scratch ``dropout_layer(X, p)`` (d2l's convention: p drops).

    On inputs of shapes (48, 64) and (32, 6, 5, 7), at p = 0.2, 0.5 and 0.8: X
    unchanged at p=0, zeros (never NaN) at p=1, each entry 0 or X/(1-p) otherwise, one
    independent draw per entry (no mask shared across the batch or along any axis),
    about a fraction p dropped, a fresh mask on every call (two calls in a row, with no
    reseeding between them, differ), the input left unchanged, and the output with X's
    shape, dtype (float16, bfloat16, float64) and device (the meta device stands in
    for a GPU).
    """
    _check_inverted_dropout(dropout_layer, "dropout_layer")


@_check
def check_scratch_backward(dropout_backward):
    """Check a numpy ``dropout_backward(dout, cache)`` against
    ``dropkit.scratch.dropout_forward``: dx = dout * mask / (1 - p) in train mode
    (zeros, not NaN, at p = 1), dx = dout when the cache holds no mask (test mode, and
    train mode at p = 0), an array of dout's shape, dout and the cache left unchanged.
    Tested on (4, 10) and (2, 3, 5) inputs at p = 0, 0.3, 0.5, 0.8 and 1 in train mode,
    and in test mode at p = 0.5."""
    from dropkit.scratch import dropout_forward

    f = _Answer(dropout_backward, "dropout_backward", ("dout", "cache"))
    rng = np.random.default_rng(0)
    for shape in ((4, 10), (2, 3, 5)):
        x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
        for p in (0.0, 0.3, 0.5, 0.8, 1.0):
            out, cache = dropout_forward(x, p, "train", seed=1)
            mask = cache[2]
            what = "mask None, since p = 0" if mask is None else "a bool mask"
            call = f"{f.show(dout, cache)} (train mode, p={p}, {what})"
            dx = f(
                dout,
                cache,
                hint=""
                if mask is not None
                else "The cache's mask is None when dropout was the "
                "identity (test mode, or p = 0): then dx = dout",
            )
            _require(
                isinstance(dx, np.ndarray),
                f"{call} must return a numpy array, but returned {_describe(dx)}",
            )
            _require(
                dx.shape == x.shape,
                f"{call}: dx must have the shape of dout {x.shape}, but has {dx.shape}",
            )
            _require(
                not np.isnan(dx).any(),
                f"at p={p} your dx has NaN: at p=1 the gradient is all zeros, no "
                "division",
            )
            want = dout if mask is None else dout * mask * (1 / (1 - p) if p < 1 else 0)
            if np.allclose(dx, want, rtol=1e-6, atol=1e-12):
                continue
            hint = ""
            if mask is not None and np.allclose(dx, dout * mask):
                hint = " You forgot the scale 1/(1-p)."
            elif mask is not None and np.allclose(dx, dout * mask / p):
                hint = " Divide by the keep probability 1 - p, not by p."
            elif mask is not None and np.allclose(dx, dout * ~mask / (1 - p)):
                hint = (
                    " The mask marks the kept entries (True = kept), not the dropped."
                )
            elif mask is not None and np.allclose(dx, dout):
                hint = " In train mode the gradient goes through the mask."
            raise CheckFailed(
                f"in train mode at p={p}, dx must be dout times the forward pass's "
                "mask scaled by 1/(1-p); yours differs by up to "
                f"{np.abs(dx - want).max():.3g}.{hint}"
            )
    x, dout = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    out, cache = dropout_forward(x, 0.5, "test")
    dx = f(dout, cache)
    _require(
        isinstance(dx, np.ndarray) and np.array_equal(dx, dout),
        "in test mode (cache (0.5, 'test', None)) dropout is the identity, so dx "
        "must equal dout",
    )


def _pack(saved, t):
    saved.append(("saved for backward", t))
    return t


def _saved_bytes(y, x):
    """Bytes the graph of ``y`` keeps for backward beyond x itself: tensors saved with
    save_for_backward or by torch's own ops (seen through saved-tensor hooks, by the
    caller) and tensors stored as attributes of a custom Function's ctx (seen here),
    each storage counted once."""
    found, seen, todo = [], set(), [y.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        todo.extend(n for n, _ in getattr(node, "next_functions", ()))
        stack = list(getattr(node, "__dict__", {}).items())
        while stack:
            where, value = stack.pop()
            if isinstance(value, torch.Tensor):
                found.append((f"ctx.{where}", value))
            elif isinstance(value, (list, tuple)):
                stack.extend((f"{where}[{i}]", v) for i, v in enumerate(value))
            elif isinstance(value, dict):
                stack.extend((f"{where}[{k!r}]", v) for k, v in value.items())
    return found


@_check
def check_saved_bytes(dropout, max_bytes_per_element=1):
    """Check that ``dropout(x, p)`` is inverted dropout (as :func:`check_dropout_layer`
    checks it), that its gradient is the mask scaled by 1/(1-p), and that it keeps at
    most ``max_bytes_per_element`` bytes per element for backward, counting tensors
    saved with ``ctx.save_for_backward`` or by torch's own operations and tensors
    stored as attributes of ``ctx``; the input itself costs nothing."""
    f = _Answer(dropout, "dropout", ("x", "p"))
    _check_inverted_dropout(f, "dropout")
    for p, shape in ((0.5, (64, 32, 32)), (0.2, (16, 4096))):
        x = _signed(shape, seed=4).requires_grad_()
        saved = []
        pack = functools.partial(_pack, saved)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = _as_tensor(f(x, p), f.show(x, p), shape=shape)
        _require(
            y.requires_grad,
            f"{f.show(x, p)} returned a tensor that gradients do not flow through: "
            "for an input with requires_grad the output must have a grad_fn",
        )
        stored = saved + _saved_bytes(y, x)
        grad = _signed(shape, seed=5)
        try:
            y.backward(grad)
        except Exception as err:
            raise CheckFailed(
                f"backward through {f.show(x, p)} raised {type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}"
            ) from None
        kept = y.detach() != 0
        want = grad * kept / (1 - p)
        _require(
            x.grad is not None and torch.allclose(x.grad, want, rtol=1e-5, atol=1e-7),
            f"at p={p} the gradient must be 1/(1-p) = {1 / (1 - p):g} times the "
            "incoming gradient where an entry was kept and 0 where it was dropped"
            + (
                ", but it is missing"
                if x.grad is None
                else ": in backward, multiply by the same mask and scale as forward"
            ),
        )
        ignore = {x.untyped_storage().data_ptr()}
        extra, parts = 0, []
        for where, t in stored:
            ptr = t.untyped_storage().data_ptr()
            if ptr in ignore or t.device.type == "meta":
                continue
            ignore.add(ptr)
            size = t.untyped_storage().nbytes()
            extra += size
            dtype = str(t.dtype).replace("torch.", "")
            parts.append(f"{dtype} {tuple(t.shape)} ({where})")
        n = x.numel()
        _require(
            extra <= max_bytes_per_element * n,
            f"your dropout saves {extra / n:g} bytes per element for backward, more "
            f"than {max_bytes_per_element}: each float32 tensor kept costs 4. It keeps "
            + ", ".join(parts)
            + ". Save a torch.bool mask (ctx.save_for_backward(mask)) and rebuild the "
            "scale in backward; a tensor kept as an attribute of ctx counts too.",
        )
