"""Exercise checks for Chapter 4: noise_shape and spatial dropout"""

import math

import numpy as np
import torch

from dropkit.checks._common import CheckFailed, _require, _passed, _keep_rate_ok, _check_identity_at_zero

__all__ = ['check_token_dropout', 'check_spatial_dropout_nhwc', 'check_zero_count_pmf', 'check_drop_block_1d']


def _check_shared_mask(fn, shape, shared, name, hint):
    """fn(x, p) must drop with one draw per index of the axes not in `shared`, shared along `shared`."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    _check_identity_at_zero(fn, x, name)
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
