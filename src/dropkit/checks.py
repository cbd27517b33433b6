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


# Chapter 4: noise_shape and spatial dropout.


def _check_shared_mask(fn, shape, shared, name, hint):
    """fn(x, p) must drop with one draw per index of the axes not in `shared`, shared along `shared`."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    out = fn(x, 0.0)
    _require(isinstance(out, torch.Tensor), f"{name} must return a tensor, but returned {type(out).__name__}")
    _require(out.shape == x.shape, f"{name} changed the shape: {tuple(x.shape)} in, {tuple(out.shape)} out")
    _require(torch.equal(out, x), f"at p=0 {name} must return its input unchanged, but the values differ")
    out = fn(x, 1.0)
    _require(not torch.isnan(out).any(), f"at p=1 {name} gave NaN: dividing by 1 - p = 0 gives 0/0. Return zeros.")
    _require(torch.equal(out, torch.zeros_like(x)), f"at p=1 {name} must drop everything, but it kept some entries")
    out = fn(torch.ones(shape, dtype=torch.float16), 0.5)
    _require(out.dtype == torch.float16, f"for a float16 input {name} returned {out.dtype}: make the mask from the input")

    p = 0.5
    y = fn(torch.ones(shape), p)
    values = set(torch.unique(y).tolist())
    _require(values <= {0.0, 2.0}, f"at p={p} the entries of {name}(ones, p) must be 0 or 1/(1-p) = 2, but found "
             f"{sorted(values)[:4]}. Did you forget to rescale the kept entries?")
    first = y
    for axis in shared:
        first = first.narrow(axis, 0, 1)
    _require(torch.equal(y, first.expand_as(y)), f"{name} dropped parts of what must be dropped whole. {hint}")
    for axis in range(len(shape)):
        if axis not in shared:
            same = torch.equal(first, first.narrow(axis, 0, 1).expand_as(first))
            what = "sample" if axis == 0 else f"index along axis {axis}"
            _require(not same, f"{name} drew one mask for every {what}: the mask must be drawn separately along "
                     f"axis {axis}, so its noise shape has the axis size there, not 1. {hint}")
    kept, total = int((first != 0).sum()), first.numel()
    _require(_keep_rate_ok(kept, total, p), f"at p={p} {name} kept {kept} of {total} mask entries, far from "
             f"{(1 - p) * total:.0f}. Is p the probability to drop?")
    _passed()


def check_token_dropout(token_dropout):
    """Check ``token_dropout(x, p)`` for embeddings x of shape (N, T, C): each token's whole vector is
    dropped or kept (noise shape (N, T, 1)), independently per sample and position."""
    _check_shared_mask(
        token_dropout, (64, 50, 16), shared=(2,), name="token_dropout",
        hint="Token dropout keeps or drops a token's whole C-vector: noise_shape=(None, None, 1).",
    )


def check_spatial_dropout_nhwc(spatial_dropout_nhwc):
    """Check ``spatial_dropout_nhwc(x, p)`` for channels-last images (N, H, W, C) (Keras'
    SpatialDropout2D): each channel's whole H x W map is dropped or kept, per sample."""
    _check_shared_mask(
        spatial_dropout_nhwc, (64, 6, 5, 16), shared=(1, 2), name="spatial_dropout_nhwc",
        hint="For (N, H, W, C) the channels are the last axis: noise_shape=(None, 1, 1, None), or "
        "spatial_dropout(x, p, channel_dim=-1). channel_dim=1 would drop rows of the image.",
    )


def check_zero_count_pmf(zero_count_pmf):
    """Check ``zero_count_pmf(shape, noise_shape, p)``: the probabilities that dropout of a tensor of
    ``shape`` (no zeros in it) with ``noise_shape`` leaves exactly 0, 1, ..., numel zeros."""
    cases = [((2, 2, 2), (1, 2, 2), 0.5), ((2, 3), (None, 1), 0.3), ((5,), (None,), 0.2), ((2, 2, 2), (1, 1, 1), 0.7), ((3, 4), (1, 4), 0.25)]
    for shape, noise_shape, p in cases:
        numel = math.prod(shape)
        draws = math.prod(s if n is None else n for s, n in zip(shape, noise_shape))
        size = numel // draws
        expected = np.zeros(numel + 1)
        naive = np.zeros(numel + 1)
        for j in range(draws + 1):
            expected[j * size] = math.comb(draws, j) * p**j * (1 - p) ** (draws - j)
        for j in range(numel + 1):
            naive[j] = math.comb(numel, j) * p**j * (1 - p) ** (numel - j)
        flipped = expected[::-1]  # p read as the keep probability
        got = np.asarray(zero_count_pmf(shape, noise_shape, p), dtype=np.float64).ravel()
        case = f"shape={shape}, noise_shape={noise_shape}, p={p}"
        _require(got.shape == (numel + 1,), f"for {case} return {numel + 1} probabilities (0 to {numel} zeros), but got {got.shape[0]}")
        _require(abs(got.sum() - 1) < 1e-9, f"for {case} your probabilities sum to {got.sum():.6g}, not 1")
        if np.allclose(got, expected, atol=1e-9):
            continue
        _require(not np.allclose(got, naive, atol=1e-9), f"for {case} you treated every element as its own draw. "
                 f"The mask has only {draws} entries; each dropped one zeros {size} elements at once.")
        _require(not np.allclose(got, flipped, atol=1e-9), f"for {case} you swapped drop and keep: p is the probability to drop")
        raise CheckFailed(f"for {case} expected {np.round(expected, 4).tolist()}, but got {np.round(got, 4).tolist()}")
    _passed()


def check_drop_block_1d(drop_block_1d):
    """Check ``drop_block_1d(x, p, block_size)`` for x of shape (N, C, L): zero runs of ``block_size``
    positions that lie inside the sequence, about a fraction p of all entries, and scale the rest
    by numel / number kept."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32)
    out = drop_block_1d(x, 0.0, 5)
    _require(isinstance(out, torch.Tensor) and out.shape == x.shape, "drop_block_1d must return a tensor of the input's shape")
    _require(torch.equal(out, x), "at p=0 drop_block_1d must return its input unchanged")
    for p, b in [(0.3, 5), (0.2, 1), (0.3, 7)]:
        y = drop_block_1d(torch.ones(64, 16, 64), p, b)
        dropped = y == 0
        kept = int((~dropped).sum())
        _require(kept > 0, f"at p={p}, block_size={b} drop_block_1d dropped everything")
        # Every run of zeros along L must be at least block_size long.
        d = torch.nn.functional.pad(dropped.float(), (1, 1))
        starts = ((d[..., 1:] - d[..., :-1]) == 1).nonzero()
        ends = ((d[..., 1:] - d[..., :-1]) == -1).nonzero()
        shortest = int((ends[:, 2] - starts[:, 2]).min()) if len(starts) else b
        _require(shortest >= b, f"at block_size={b} a run of only {shortest} zero(s) appeared: drop whole blocks of "
                 f"block_size positions lying inside the sequence, not single elements")
        scale = y.numel() / kept
        _require(torch.allclose(y[~dropped], torch.full((kept,), scale), rtol=1e-4),
                 f"at p={p}, block_size={b} kept entries must be scaled by numel / number kept = {scale:.4f}, but found "
                 f"values from {y[~dropped].min().item():.4f} to {y[~dropped].max().item():.4f}")
        frac = dropped.float().mean().item()
        _require(abs(frac - p) < 0.05, f"at p={p}, block_size={b} you dropped a fraction {frac:.3f} of the entries, "
                 f"far from p. Did you divide the block-start rate by block_size (gamma in the paper)?")
    y = drop_block_1d(torch.ones(256, 8, 16), 0.5, 16)
    rows = (y == 0).float().mean(-1)
    _require(bool(((rows == 0) | (rows == 1)).all()), "with block_size = L a channel must be dropped whole, as in spatial dropout")
    _passed()


__all__ += ["check_token_dropout", "check_spatial_dropout_nhwc", "check_zero_count_pmf", "check_drop_block_1d"]
