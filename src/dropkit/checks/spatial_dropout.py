"""Exercise checks for Chapter 4: noise_shape and spatial dropout"""

import math

import numpy as np
import torch

from dropkit.checks._common import (
    CheckFailed,
    _check_identity_at_zero,
    _keep_rate_ok,
    _passed,
    _require,
)

__all__ = [
    "check_token_dropout",
    "check_spatial_dropout_nhwc",
    "check_zero_count_pmf",
    "check_drop_block_1d",
    "check_drop_block_gamma",
]


def _check_shared_mask(fn, shape, shared, name, hint):
    """fn(x, p) must drop with one draw per index of the axes not in `shared`, shared
    along `shared`."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    _check_identity_at_zero(fn, x, name)
    out = fn(x, 1.0)
    _require(
        not torch.isnan(out).any(),
        f"at p=1 {name} gave NaN: dividing by 1 - p = 0 gives 0/0. Return zeros.",
    )
    _require(
        torch.equal(out, torch.zeros_like(x)),
        f"at p=1 {name} must drop everything, but it kept some entries",
    )
    out = fn(torch.ones(shape, dtype=torch.float16), 0.5)
    _require(
        out.dtype == torch.float16,
        f"for a float16 input {name} returned {out.dtype}: make the mask from the "
        "input",
    )

    p = 0.5
    y = fn(torch.ones(shape), p)
    values = set(torch.unique(y).tolist())
    _require(
        values <= {0.0, 2.0},
        f"at p={p} the entries of {name}(ones, p) must be 0 or 1/(1-p) = 2, but found "
        f"{sorted(values)[:4]}. Did you forget to rescale the kept entries?",
    )
    first = y
    for axis in shared:
        first = first.narrow(axis, 0, 1)
    _require(
        torch.equal(y, first.expand_as(y)),
        f"{name} dropped parts of what must be dropped whole. {hint}",
    )
    for axis in range(len(shape)):
        if axis not in shared:
            same = torch.equal(first, first.narrow(axis, 0, 1).expand_as(first))
            what = "sample" if axis == 0 else f"index along axis {axis}"
            _require(
                not same,
                f"{name} drew one mask for every {what}: the mask must be drawn "
                "separately along "
                f"axis {axis}, so its noise shape has the axis size there, not 1. "
                f"{hint}",
            )
    kept, total = int((first != 0).sum()), first.numel()
    _require(
        _keep_rate_ok(kept, total, p),
        f"at p={p} {name} kept {kept} of {total} mask entries, far from "
        f"{(1 - p) * total:.0f}. Is p the probability to drop?",
    )
    _passed()


def check_token_dropout(token_dropout):
    """Check ``token_dropout(x, p)`` for embeddings x of shape (N, T, C): each token's
    whole vector is dropped or kept (noise shape (N, T, 1)), independently per sample
    and position."""
    _check_shared_mask(
        token_dropout,
        (64, 50, 16),
        shared=(2,),
        name="token_dropout",
        hint="Token dropout keeps or drops a token's whole C-vector: "
        "noise_shape=(None, None, 1).",
    )


def check_spatial_dropout_nhwc(spatial_dropout_nhwc):
    """Check ``spatial_dropout_nhwc(x, p)`` for channels-last images (N, H, W, C)
    (Keras' SpatialDropout2D): each channel's whole H x W map is dropped or kept, per
    sample."""
    _check_shared_mask(
        spatial_dropout_nhwc,
        (64, 6, 5, 16),
        shared=(1, 2),
        name="spatial_dropout_nhwc",
        hint="For (N, H, W, C) the channels are the last axis: noise_shape=(None, 1, "
        "1, None), or "
        "spatial_dropout(x, p, channel_dim=-1). channel_dim=1 would drop rows of the "
        "image.",
    )


def check_zero_count_pmf(zero_count_pmf):
    """Check ``zero_count_pmf(shape, noise_shape, p)``: the probabilities that dropout
    of a tensor of ``shape`` (no zeros in it) with ``noise_shape`` leaves exactly 0, 1,
    ..., numel zeros."""
    cases = [
        ((2, 2, 2), (1, 2, 2), 0.5),
        ((2, 3), (None, 1), 0.3),
        ((5,), (None,), 0.2),
        ((2, 2, 2), (1, 1, 1), 0.7),
        ((3, 4), (1, 4), 0.25),
    ]
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
        got = np.asarray(
            zero_count_pmf(shape, noise_shape, p), dtype=np.float64
        ).ravel()
        case = f"shape={shape}, noise_shape={noise_shape}, p={p}"
        _require(
            got.shape == (numel + 1,),
            f"for {case} return {numel + 1} probabilities (0 to {numel} zeros), but "
            f"got {got.shape[0]}",
        )
        _require(
            abs(got.sum() - 1) < 1e-9,
            f"for {case} your probabilities sum to {got.sum():.6g}, not 1",
        )
        if np.allclose(got, expected, atol=1e-9):
            continue
        _require(
            not np.allclose(got, naive, atol=1e-9),
            f"for {case} you treated every element as its own draw. "
            f"The mask has only {draws} entries; each dropped one zeros {size} "
            "elements at once.",
        )
        _require(
            not np.allclose(got, flipped, atol=1e-9),
            f"for {case} you swapped drop and keep: p is the probability to drop",
        )
        raise CheckFailed(
            f"for {case} expected {np.round(expected, 4).tolist()}, but got "
            f"{np.round(got, 4).tolist()}"
        )
    _passed()


def _drop_block_1d_rate(p, b, length, rows, gamma=None):
    """Mean and standard deviation of the dropped fraction of ``rows`` independent rows
    of ``length`` positions under 1-D DropBlock: starts Bernoulli(gamma) at the
    length - b + 1 positions where a block fits, each zeroing b positions. Exact
    (overlaps and edges included): position t is kept when none of the starts that
    cover it fires."""
    if gamma is None:
        gamma = min(1.0, p / b * length / (length - b + 1))
    q = 1.0 - gamma
    spans = [(max(0, t - b + 1), min(t, length - b)) for t in range(length)]
    kept = [q ** (hi - lo + 1) for lo, hi in spans]
    mean = length - sum(kept)
    var = (
        0.0  # of one row's dropped count: sum of the covariances of the kept indicators
    )
    for t, (a0, a1) in enumerate(spans):
        for u, (b0, b1) in enumerate(spans):
            both = (a1 - a0 + 1) + (b1 - b0 + 1) - max(0, min(a1, b1) - max(a0, b0) + 1)
            var += q**both - kept[t] * kept[u]
    return mean / length, math.sqrt(rows * max(var, 0.0)) / (rows * length)


def check_drop_block_1d(drop_block_1d, seed=0):
    """Check ``drop_block_1d(x, p, block_size)`` for x of shape (N, C, L): zero runs of
    ``block_size`` positions that lie inside the sequence, at the rate that
    gamma = p / b * L / (L - b + 1) gives, and scale the rest by numel / number kept.

    The dropped fraction is compared with its exact expectation under the algorithm (a
    little below p, since blocks overlap), within six standard deviations of the exact
    distribution (a correct solution fails with probability below 1e-8); ``seed`` seeds
    torch's generator."""
    torch.manual_seed(seed)
    x = torch.randn(4, 3, 32)
    out = drop_block_1d(x, 0.0, 5)
    _require(
        isinstance(out, torch.Tensor) and out.shape == x.shape,
        "drop_block_1d must return a tensor of the input's shape",
    )
    _require(
        torch.equal(out, x), "at p=0 drop_block_1d must return its input unchanged"
    )
    for p, b, shape in [
        (0.3, 5, (64, 64, 16)),
        (0.2, 1, (64, 16, 64)),
        (0.3, 7, (64, 64, 24)),
    ]:
        y = drop_block_1d(torch.ones(shape), p, b)
        dropped = y == 0
        kept = int((~dropped).sum())
        _require(kept > 0, f"at p={p}, block_size={b} drop_block_1d dropped everything")
        # Every run of zeros along L must be at least block_size long.
        d = torch.nn.functional.pad(dropped.float(), (1, 1))
        starts = ((d[..., 1:] - d[..., :-1]) == 1).nonzero()
        ends = ((d[..., 1:] - d[..., :-1]) == -1).nonzero()
        shortest = int((ends[:, 2] - starts[:, 2]).min()) if len(starts) else b
        _require(
            shortest >= b,
            f"at block_size={b} a run of only {shortest} zero(s) appeared: drop whole "
            "blocks of "
            f"block_size positions lying inside the sequence, not single elements",
        )
        scale = y.numel() / kept
        _require(
            torch.allclose(y[~dropped], torch.full((kept,), scale), rtol=1e-4),
            f"at p={p}, block_size={b} kept entries must be scaled by numel / number "
            f"kept = {scale:.4f}, but found "
            f"values from {y[~dropped].min().item():.4f} to "
            f"{y[~dropped].max().item():.4f}",
        )
        frac = dropped.float().mean().item()
        length, rows = shape[-1], shape[0] * shape[1]
        mean, sd = _drop_block_1d_rate(p, b, length, rows)
        if abs(frac - mean) <= 6 * sd:
            continue
        case = f"at p={p}, block_size={b}, L={length}"
        got = (
            f"you dropped a fraction {frac:.4f} of the entries, but gamma = "
            f"p / b * L / (L - b + 1) drops {mean:.4f} ± {sd:.4f} on average"
        )
        no_edge, sd_edge = _drop_block_1d_rate(p, b, length, rows, gamma=p / b)
        _require(
            abs(frac - no_edge) > 6 * sd_edge,
            f"{case} {got}, and gamma = p / b, without the factor L / (L - b + 1), "
            f"drops {no_edge:.4f}. Blocks can start "
            f"at only L - b + 1 = {length - b + 1} of the {length} positions: "
            "multiply gamma by L / (L - b + 1) to make up for it.",
        )
        _require(
            frac < mean,
            f"{case} {got}: too many. Each start zeros block_size = {b} positions, so "
            "divide the "
            f"start rate by block_size; and p is the probability to drop, not to keep.",
        )
        raise CheckFailed(
            f"{case} {got}: too few. Is p the probability to drop, and do the starts "
            "lie at the "
            f"L - b + 1 positions where a whole block fits?"
        )
    y = drop_block_1d(torch.ones(256, 8, 16), 0.5, 16)
    rows = (y == 0).float().mean(-1)
    _require(
        bool(((rows == 0) | (rows == 1)).all()),
        "with block_size = L a channel must be dropped whole, as in spatial dropout",
    )
    _passed()


def check_drop_block_gamma(drop_block_gamma):
    """Check ``drop_block_gamma(p, block_size, sizes)``: DropBlock's seed rate for a
    feature map with spatial ``sizes`` (one int per axis: (L,), (H, W) or (D, H, W)),
    the block being a cube of side ``block_size`` that must lie inside the map (Ghiasi
    et al., 2018, eq. 1)."""
    cases = [
        (0.1, 7, (56, 56)),
        (0.3, 5, (16,)),
        (0.2, 3, (9, 20)),
        (0.25, 3, (6, 7, 8)),
        (0.5, 1, (10, 10)),
        (0.4, 5, (5, 5)),
    ]
    for p, b, sizes in cases:
        d, area, seeds = (
            len(sizes),
            math.prod(sizes),
            math.prod(f - b + 1 for f in sizes),
        )
        right = p * area / (b**d * seeds)
        got = drop_block_gamma(p, b, sizes)
        case = f"for p={p}, block_size={b}, sizes={sizes}"
        _require(
            isinstance(got, (int, float))
            or (isinstance(got, torch.Tensor) and got.numel() == 1),
            f"{case} return one number, but got {got!r}",
        )
        got = float(got)
        if math.isclose(got, right, rel_tol=1e-6):
            continue
        wrong = [
            (
                p / b**d,
                "the factor for the edges is missing: block centres can only lie "
                "where the whole "
                f"block fits, at {seeds} of the {area} positions, so multiply by "
                f"{area} / {seeds}",
            ),
            (
                p * area / (b * seeds),
                f"each block drops b^{d} = {b**d} entries in {d} dimension(s), not b",
            ),
            (
                p * area / (b**2 * seeds),
                f"each block drops b^{d} = {b**d} entries in {d} dimension(s), not b^2",
            ),
            (p * area / seeds, "divide by the b^d entries that one block drops"),
            (
                p / b**d * (sizes[0] / (sizes[0] - b + 1)) ** d,
                "the map is not square: use each axis's own size",
            ),
        ]
        for value, hint in wrong:
            _require(
                not math.isclose(got, value, rel_tol=1e-9),
                f"{case} you returned {got:.6g}, not {right:.6g}: {hint}",
            )
        raise CheckFailed(
            f"{case} expected gamma = p * prod(sizes) / (b^d * prod(size - b + 1)) = "
            f"{right:.6g}, but got {got:.6g}"
        )
    _passed()
