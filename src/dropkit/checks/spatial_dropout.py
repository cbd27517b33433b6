"""Exercise checks for Chapter 4: noise_shape, spatial dropout and DropBlock."""

import math

import numpy as np
import torch

from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_number,
    _as_tensor,
    _as_vector,
    _check,
    _check_dtypes_and_device,
    _check_fresh,
    _check_mask_dropout,
    _numbers_close,
    _radius,
    _require,
    _signed,
)

__all__ = [
    "check_token_dropout",
    "check_spatial_dropout_nhwc",
    "check_zero_count_pmf",
    "check_drop_block_1d",
    "check_drop_block_gamma",
]


@_check
def check_token_dropout(token_dropout):
    """Check ``token_dropout(x, p)`` for embeddings x of shape (N, T, C): each token's
    whole vector is dropped or kept and scaled by 1/(1-p) (noise shape (N, T, 1)),
    independently per sample and position, afresh on every call.

    On inputs of shapes (64, 50, 16) and (96, 37, 5), at p = 0.2, 0.5 and 0.8: x at
    p = 0, zeros (no NaN) at p = 1, the keep rate of the tokens, the input left
    unchanged, two calls in a row (no reseeding between them) drawing different
    masks, and x's shape, dtype and device.
    """
    _check_mask_dropout(
        _Answer(token_dropout, "token_dropout", ("x", "p")),
        [(64, 50, 16), (96, 37, 5)],
        shared=(2,),
        axes=("sample", "position", "channel"),
        hint="Token dropout keeps or drops a token's whole C-vector: "
        "noise_shape=(None, None, 1).",
    )


@_check
def check_spatial_dropout_nhwc(spatial_dropout_nhwc):
    """Check ``spatial_dropout_nhwc(x, p)`` for channels-last images (N, H, W, C)
    (Keras' SpatialDropout2D): each channel's whole H x W map is dropped or kept and
    scaled by 1/(1-p), independently per sample and channel, afresh on every call.

    On inputs of shapes (64, 6, 5, 16) and (48, 7, 4, 9), at p = 0.2, 0.5 and 0.8, with
    the same probes as :func:`check_token_dropout`.
    """
    _check_mask_dropout(
        _Answer(spatial_dropout_nhwc, "spatial_dropout_nhwc", ("x", "p")),
        [(64, 6, 5, 16), (48, 7, 4, 9)],
        shared=(1, 2),
        axes=("sample", "row", "column", "channel"),
        hint="For (N, H, W, C) the channels are the last axis: noise_shape=(None, 1, "
        "1, None), or "
        "spatial_dropout(x, p, channel_dim=-1). channel_dim=1 would drop rows of the "
        "image.",
    )


@_check
def check_zero_count_pmf(zero_count_pmf):
    """Check ``zero_count_pmf(shape, noise_shape, p)``: the probabilities that dropout
    of a tensor of ``shape`` (no zeros in it) with ``noise_shape`` (Keras notation: an
    int or None per axis, None meaning the axis's own size) leaves exactly 0, 1, ...,
    numel zeros, as numel + 1 numbers (list, array or tensor) that sum to 1, within an
    absolute tolerance of 1e-6."""
    f = _Answer(zero_count_pmf, "zero_count_pmf", ("shape", "noise_shape", "p"))
    cases = [
        ((2, 2, 2), (1, 2, 2), 0.5),
        ((2, 3), (None, 1), 0.3),
        ((5,), (None,), 0.2),
        ((2, 2, 2), (1, 1, 1), 0.7),
        ((3, 4), (1, 4), 0.25),
        ((2, 3, 2), (2, None, 1), 0.4),
    ]
    for shape, noise_shape, p in cases:
        numel = math.prod(shape)
        draws = math.prod(s if n is None else n for s, n in zip(shape, noise_shape))
        size = numel // draws
        expected = _pmf(numel, draws, p)
        case = f"shape={shape}, noise_shape={noise_shape}, p={p}"
        got = _as_vector(
            f(shape, noise_shape, p),
            f"zero_count_pmf{(shape, noise_shape, p)}",
            "probabilities",
        )
        _require(
            got.shape == (numel + 1,),
            f"for {case} return {numel + 1} probabilities (0 to {numel} zeros), but "
            f"got {got.size}",
        )
        _require(
            abs(got.sum() - 1) < 1e-6,
            f"for {case} your probabilities sum to {got.sum():.6g}, not 1",
        )
        if np.allclose(got, expected, atol=1e-6):
            continue
        none_as_one = math.prod(1 if n is None else n for n in noise_shape)
        mistakes = [
            (
                _pmf(numel, numel, p),
                f"you treated every element as its own draw. The mask has only "
                f"{draws} entries; each dropped one zeros {size} elements at once.",
            ),
            (expected[::-1], "you swapped drop and keep: p is the probability to drop"),
            (
                _pmf(numel, none_as_one, p),
                "None in noise_shape means the axis's own size (one draw per index "
                "along it), not 1",
            ),
            (
                _pmf(draws, draws, p, pad=numel + 1),
                f"the count of zeros is a multiple of {size}: j dropped mask entries "
                f"zero j * {size} elements, so the probability of j draws belongs at "
                f"index j * {size}",
            ),
        ]
        for wrong, hint in mistakes:
            _require(
                wrong.shape != got.shape or not np.allclose(got, wrong, atol=1e-6),
                f"for {case} {hint}",
            )
        raise CheckFailed(
            f"for {case} expected {np.round(expected, 4).tolist()}, but got "
            f"{np.round(got, 4).tolist()}"
        )


def _pmf(numel, draws, p, pad=None):
    """P(zeros = j * numel / draws) = Binomial(draws, p) at j, on 0..numel (or the
    first ``pad`` places when given, the draws' probabilities at 0..draws)."""
    size = numel // draws
    out = np.zeros(numel + 1 if pad is None else pad)
    for j in range(draws + 1):
        out[j * size if pad is None else j] = (
            math.comb(draws, j) * p**j * (1 - p) ** (draws - j)
        )
    return out


def _drop_block_1d_kept(p, b, length, gamma=None):
    """1 - gamma, the span of starts that cover each position, and the probability
    that each position is kept."""
    if gamma is None:
        gamma = min(1.0, p / b * length / (length - b + 1))
    q = 1.0 - gamma
    spans = [(max(0, t - b + 1), min(t, length - b)) for t in range(length)]
    return q, spans, [q ** (hi - lo + 1) for lo, hi in spans]


def _check_rows_independent(dropped, p, b):
    """Different samples and different channels draw their own masks: two rows agree
    at each position as often as two independent rows do (Hoeffding, over disjoint
    pairs of rows)."""
    kept = _drop_block_1d_kept(p, b, dropped.shape[-1])[2]
    expected = sum(k * k + (1 - k) * (1 - k) for k in kept) / len(kept)
    worst, excess = None, 0.0
    for axis, what in ((0, "sample"), (1, "channel")):
        half = dropped.shape[axis] // 2
        index = torch.arange(half)
        a = dropped.index_select(axis, 2 * index)
        c = dropped.index_select(axis, 2 * index + 1)
        agree = (a == c).double().mean(-1)  # one value in [0, 1] per pair of rows
        over = agree.mean().item() - expected - _radius(agree.numel())
        if over > excess:
            worst, excess = what, over
    _require(
        worst is None,
        f"at p={p}, block_size={b} every {worst} got the same mask: draw one mask "
        "per sample and channel (the block starts of each (n, c) row are their own "
        "draws, as in Algorithm 1 of Ghiasi et al.)",
    )


def _drop_block_1d_rate(p, b, length, rows, gamma=None):
    """Mean and standard deviation of the dropped fraction of ``rows`` independent rows
    of ``length`` positions under 1-D DropBlock: starts Bernoulli(gamma) at the
    length - b + 1 positions where a block fits, each zeroing b positions. Exact
    (overlaps and edges included): position t is kept when none of the starts that
    cover it fires."""
    q, spans, kept = _drop_block_1d_kept(p, b, length, gamma)
    mean = length - sum(kept)
    var = (
        0.0  # of one row's dropped count: sum of the covariances of the kept indicators
    )
    for t, (a0, a1) in enumerate(spans):
        for u, (b0, b1) in enumerate(spans):
            both = (a1 - a0 + 1) + (b1 - b0 + 1) - max(0, min(a1, b1) - max(a0, b0) + 1)
            var += q**both - kept[t] * kept[u]
    return mean / length, math.sqrt(rows * max(var, 0.0)) / (rows * length)


@_check
def check_drop_block_1d(drop_block_1d, seed=0):
    """Check ``drop_block_1d(x, p, block_size)`` for x of shape (N, C, L): zero runs of
    ``block_size`` positions that lie inside the sequence, at the rate that
    gamma = p / b * L / (L - b + 1) gives, and scale the rest by (number of entries) /
    (number kept), counted over the whole tensor.

    Tested at odd and even block sizes (1, 2, 4, 5, 7) and with block_size = L. The
    dropped fraction is compared with its exact expectation under the algorithm (a
    little below p, since blocks overlap), within six standard deviations of the exact
    distribution (a correct solution fails with probability below 1e-8); ``seed`` seeds
    torch's generator. Also: x itself (or an equal tensor) at p = 0, the kept entries
    x * scale for an input that is not all ones, the input left unchanged, a fresh mask
    on every call (no reseeding in between), and the output with x's shape, dtype and
    device.
    """
    f = _Answer(drop_block_1d, "drop_block_1d", ("x", "p", "block_size"))
    torch.manual_seed(seed)
    x = _signed((4, 3, 32), seed=seed)
    out = _as_tensor(f(x, 0.0, 5), f.show(x, 0.0, 5), shape=x.shape, dtype=x.dtype)
    _require(
        torch.equal(out, x), "at p=0 drop_block_1d must return its input unchanged"
    )
    for p, b, shape in [
        (0.3, 5, (64, 64, 16)),
        (0.2, 1, (64, 16, 64)),
        (0.3, 7, (64, 64, 24)),
        (0.25, 4, (64, 48, 20)),
        (0.4, 2, (64, 32, 12)),
    ]:
        call = f.show(torch.ones(shape), p, b)
        y = _as_tensor(f(torch.ones(shape), p, b), call, shape=shape)
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
        _check_rows_independent(dropped, p, b)
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
    y = _as_tensor(
        f(torch.ones(256, 8, 16), 0.5, 16),
        f.show(torch.ones(256, 8, 16), 0.5, 16),
        shape=(256, 8, 16),
    )
    rows = (y == 0).float().mean(-1)
    _require(
        bool(((rows == 0) | (rows == 1)).all()),
        "with block_size = L a channel must be dropped whole, as in spatial dropout",
    )
    x = _signed((64, 16, 24), seed=seed + 1)
    y = _as_tensor(f(x, 0.3, 4), f.show(x, 0.3, 4), shape=x.shape, dtype=x.dtype)
    keep = y != 0
    scale = y.numel() / max(int(keep.sum()), 1)
    _require(
        torch.allclose(y[keep], x[keep] * scale, rtol=1e-4),
        "the kept entries must be the input's entries times numel / number kept: "
        "multiply x itself by the mask and the scale",
    )
    x = torch.ones(16, 8, 32)
    _check_fresh(lambda: f(x, 0.3, 5) != 0, "drop_block_1d")

    def run(t, attempt=False):
        if attempt:
            return f.attempt(t, 0.3, 5)
        return _as_tensor(f(t, 0.3, 5), f.show(t, 0.3, 5), shape=t.shape)

    _check_dtypes_and_device(
        run,
        lambda dtype, device: torch.ones(16, 8, 32, dtype=dtype, device=device),
        "drop_block_1d",
    )


@_check
def check_drop_block_gamma(drop_block_gamma):
    """Check ``drop_block_gamma(p, block_size, sizes)``: DropBlock's seed rate for a
    feature map with spatial ``sizes`` (one int per axis: (L,), (H, W) or (D, H, W)),
    the block being a cube of side ``block_size`` that must lie inside the map (Ghiasi
    et al., 2018, eq. 1), as one number (Python, numpy or a one-element tensor, float32
    included), within a relative tolerance of 1e-5."""
    f = _Answer(drop_block_gamma, "drop_block_gamma", ("p", "block_size", "sizes"))
    cases = [
        (0.1, 7, (56, 56)),
        (0.3, 5, (16,)),
        (0.2, 3, (9, 20)),
        (0.25, 3, (6, 7, 8)),
        (0.5, 1, (10, 10)),
        (0.4, 5, (5, 5)),
        (0.15, 4, (12, 9)),
    ]
    for p, b, sizes in cases:
        d, area, seeds = (
            len(sizes),
            math.prod(sizes),
            math.prod(f - b + 1 for f in sizes),
        )
        right = p * area / (b**d * seeds)
        case = f"for p={p}, block_size={b}, sizes={sizes}"
        got = _as_number(f(p, b, sizes), f"drop_block_gamma({p}, {b}, {sizes})")
        if _numbers_close(got, right):
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
            (
                p * area / (b**d * math.prod(f - b for f in sizes)),
                "a block fits at size - b + 1 positions along an axis, not size - b",
            ),
        ]
        for value, hint in wrong:
            _require(
                not _numbers_close(got, value),
                f"{case} you returned {got:.6g}, not {right:.6g}: {hint}",
            )
        raise CheckFailed(
            f"{case} expected gamma = p * prod(sizes) / (b^d * prod(size - b + 1)) = "
            f"{right:.6g}, but got {got:.6g}"
        )
