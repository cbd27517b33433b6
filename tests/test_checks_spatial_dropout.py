"""Chapter 4's exercise checks pass right answers and catch the typical wrong ones."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropkit import checks, dropout, spatial_dropout


def drop_block_1d(x, p, block_size):
    if p == 0:
        return x
    L = x.shape[-1]
    gamma = min(1.0, p / block_size * L / (L - block_size + 1))
    starts = torch.zeros_like(x)
    starts[..., : L - block_size + 1] = torch.bernoulli(
        torch.full_like(x[..., : L - block_size + 1], gamma)
    )
    keep = 1 - F.max_pool1d(F.pad(starts, (block_size - 1, 0)), block_size, stride=1)
    return x * keep * (keep.numel() / keep.sum().clamp(min=1))


def zero_count_pmf(shape, noise_shape, p):
    n = math.prod(shape)
    k = math.prod(size if s is None else s for size, s in zip(shape, noise_shape))
    pmf = [0.0] * (n + 1)
    for j in range(k + 1):
        pmf[j * (n // k)] = math.comb(k, j) * p**j * (1 - p) ** (k - j)
    return pmf


def naive_pmf(shape, noise_shape, p):  # every element its own draw
    n = math.prod(shape)
    return [math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)]


def swapped_pmf(shape, noise_shape, p):  # p read as the keep probability
    return zero_count_pmf(shape, noise_shape, 1 - p)


def unscaled(x, p, noise_shape):
    return dropout(x, p, noise_shape=noise_shape) * (1 - p)


def token_where(x, p):  # unusual: one uniform per token, torch.where
    if p == 1:
        return x * 0
    u = torch.rand(x.shape[:-1] + (1,), dtype=x.dtype, device=x.device)
    return torch.where(u >= p, x / (1 - p), torch.zeros_like(x))


def token_reseeds(x, p):
    torch.manual_seed(0)
    return dropout(x, p, noise_shape=(None, None, 1))


def token_in_place(x, p):
    if p == 1:
        return x.zero_()
    keep = x.new_empty(x.shape[:-1] + (1,)).bernoulli_(1 - p)
    return x.mul_(keep / (1 - p))


class TestCheckTokenDropout:
    @pytest.mark.parametrize(
        "fn",
        [lambda x, p: dropout(x, p, noise_shape=(None, None, 1)), token_where],
        ids=["noise-shape", "where"],
    )
    def test_passes(self, fn, capsys):
        checks.check_token_dropout(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (
                lambda x, p: dropout(x, p, noise_shape=(None, 1, None)),
                "dropped parts of what must be dropped whole",
            ),
            (lambda x, p: dropout(x, p), "dropped parts of what must be dropped whole"),
            (
                lambda x, p: dropout(x, p, noise_shape=(1, None, 1)),
                "every sample of the batch the same mask",
            ),
            (
                lambda x, p: dropout(x, p, noise_shape=(None, 1, 1)),
                "every position",
            ),
            (token_reseeds, "resets torch's global random number generator"),
            (token_in_place, "changed its argument x in place"),
            (
                lambda x, p: (
                    unscaled(x, p, (None, None, 1)) if 0 < p < 1 else dropout(x, p)
                ),
                "forget to rescale",
            ),
            (lambda x, p: dropout(x, 1 - p, noise_shape=(None, None, 1)), "at p=0"),
            (
                lambda x, p: dropout(x.float(), p, noise_shape=(None, None, 1)),
                "float16",
            ),
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_token_dropout(fn)


class TestCheckSpatialDropoutNHWC:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda x, p: spatial_dropout(x, p, channel_dim=-1),
            lambda x, p: dropout(x, p, noise_shape=(None, 1, 1, None)),
            lambda x, p: F.dropout2d(x.permute(0, 3, 1, 2), p).permute(0, 2, 3, 1),
            lambda x, p: spatial_dropout(x.movedim(-1, 1), p).movedim(1, -1),
        ],
        ids=["channel-dim", "noise-shape", "dropout2d-permuted", "movedim"],
    )
    def test_passes(self, fn, capsys):
        checks.check_spatial_dropout_nhwc(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda x, p: spatial_dropout(x, p), "channel_dim=1 would drop rows"),
            (lambda x, p: F.dropout2d(x, p), "channel_dim=1 would drop rows"),
            (lambda x, p: dropout(x, p, noise_shape=(None, 1, 1, 1)), "axis 3"),
            (
                lambda x, p: dropout(x, p, noise_shape=(1, 1, 1, None)),
                "every sample of the batch the same mask",
            ),
            (
                lambda x, p: dropout(x, p, noise_shape=(None, 1, None, None)),
                "dropped parts of what must be dropped whole",
            ),
            (
                lambda x, p: F.dropout2d(x.permute(0, 3, 1, 2).float(), p).permute(
                    0, 2, 3, 1
                ),
                "float16",
            ),
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_spatial_dropout_nhwc(fn)


def pmf_scipy(shape, noise_shape, p):  # unusual: scipy's binomial, as a tensor
    from scipy import stats

    n = math.prod(shape)
    k = math.prod(size if s is None else s for size, s in zip(shape, noise_shape))
    out = torch.zeros(n + 1, dtype=torch.float64)
    out[:: n // k] = torch.from_numpy(stats.binom.pmf(np.arange(k + 1), k, p))
    return out


def pmf_none_as_one(shape, noise_shape, p):
    return zero_count_pmf(shape, [1 if s is None else s for s in noise_shape], p)


def pmf_index_j(shape, noise_shape, p):  # the draws' probabilities at j, not j * size
    n = math.prod(shape)
    k = math.prod(size if s is None else s for size, s in zip(shape, noise_shape))
    pmf = [0.0] * (n + 1)
    for j in range(k + 1):
        pmf[j] = math.comb(k, j) * p**j * (1 - p) ** (k - j)
    return pmf


class TestCheckZeroCountPmf:
    @pytest.mark.parametrize("fn", [zero_count_pmf, pmf_scipy])
    def test_passes(self, fn, capsys):
        checks.check_zero_count_pmf(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (naive_pmf, "treated every element as its own draw"),
            (swapped_pmf, "swapped drop and keep"),
            (lambda s, n, p: zero_count_pmf(s, n, p)[:-1], "return 9 probabilities"),
            (lambda s, n, p: [q * 2 for q in zero_count_pmf(s, n, p)], "sum to 2"),
            (pmf_none_as_one, "None in noise_shape means the axis's own size"),
            (pmf_index_j, "belongs at index j"),
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_zero_count_pmf(fn)


def centred_drop_block_1d(x, p, block_size):
    """A second correct solution: seeds only where a block fits, then a centred pool
    over them padded by b - 1 on both sides (torchvision's way, in 1-D)."""
    if p == 0:
        return x
    L, b = x.shape[-1], block_size
    gamma = min(1.0, p / b * L / (L - b + 1))
    seeds = x.new_empty(x.shape[:-1] + (L - b + 1,)).bernoulli_(gamma)
    covered = F.max_pool1d(F.pad(seeds, (b - 1, b - 1)), b, stride=1)
    keep = 1 - covered
    return x * keep * (keep.numel() / keep.sum().clamp(min=1))


def conv_drop_block_1d(x, p, block_size):
    """A third: a convolution with a kernel of ones counts the starts covering each
    position; seeds drawn as uniforms below gamma."""
    if p == 0:
        return x
    n, c, L = x.shape
    b = block_size
    gamma = min(1.0, p / b * L / (L - b + 1))
    seeds = (x.new_empty(n * c, 1, L - b + 1).uniform_() < gamma).to(x.dtype)
    hits = F.conv1d(F.pad(seeds, (b - 1, b - 1)), x.new_ones(1, 1, b))
    keep = (hits == 0).to(x.dtype).reshape(n, c, L)
    return x * keep * (keep.numel() / keep.sum().clamp(min=1))


class TestCheckDropBlock1d:
    def test_passes(self, capsys):
        checks.check_drop_block_1d(drop_block_1d)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "solution", [drop_block_1d, centred_drop_block_1d, conv_drop_block_1d]
    )
    def test_passes_correct_solutions_under_many_seeds(self, solution, capsys):
        # The rate bound follows the algorithm's own expected rate (below p, from
        # overlaps), with six standard deviations of its exact distribution: no seed may
        # fail a right answer.
        seeds = 20 if solution is drop_block_1d else 5
        for seed in range(seeds):
            checks.check_drop_block_1d(solution, seed=seed)
        assert capsys.readouterr().out == "all checks passed\n" * seeds

    def test_expected_rate_is_exact(self):
        # The closed form against a direct simulation of the algorithm (4096 x 20 rows).
        from dropkit.checks.spatial_dropout import _drop_block_1d_rate

        p, b, length = 0.3, 5, 16
        mean, sd = _drop_block_1d_rate(p, b, length, rows=4096 * 20)
        torch.manual_seed(0)
        frac = (
            (drop_block_1d(torch.ones(4096, 20, length), p, b) == 0)
            .double()
            .mean()
            .item()
        )
        assert abs(frac - mean) < 5 * sd, (frac, mean, sd)
        assert mean < p - 0.03, (
            "overlapping blocks must make the rate visibly lower than p"
        )

    def test_catches_element_dropout(self):
        with pytest.raises(checks.CheckFailed, match="a run of only 1 zero"):
            checks.check_drop_block_1d(lambda x, p, b: dropout(x, p))

    def test_catches_gamma_not_divided_by_block_size(self):
        def no_gamma(x, p, b):
            return drop_block_1d(x, min(1.0, p * b), b) if p > 0 else x

        with pytest.raises(
            checks.CheckFailed, match="divide the start rate by block_size"
        ):
            checks.check_drop_block_1d(no_gamma)

    @pytest.mark.parametrize("seed", range(5))
    def test_catches_missing_edge_factor(self, seed):
        def no_edge(x, p, b):  # gamma = p / b: blocks start at only L - b + 1 positions
            L = x.shape[-1]
            return drop_block_1d(x, p * (L - b + 1) / L, b) if p > 0 else x

        with pytest.raises(
            checks.CheckFailed, match=r"multiply gamma by L / \(L - b \+ 1\)"
        ):
            checks.check_drop_block_1d(no_edge, seed=seed)

    def test_catches_keep_probability(self):
        with pytest.raises(checks.CheckFailed, match="probability to drop"):
            checks.check_drop_block_1d(
                lambda x, p, b: drop_block_1d(x, 1 - p, b) if p > 0 else x
            )

    def test_catches_blocks_past_the_end(self):
        def clipped(x, p, b):  # starts at all L positions, blocks cut off at the end
            if p == 0:
                return x
            seeds = torch.bernoulli(torch.full_like(x, p / b))
            keep = 1 - F.max_pool1d(F.pad(seeds, (b - 1, 0)), b, stride=1)
            return x * keep * (keep.numel() / keep.sum().clamp(min=1))

        with pytest.raises(checks.CheckFailed, match="lying inside the sequence"):
            checks.check_drop_block_1d(clipped)

    def test_catches_inverted_dropout_scale(self):
        def wrong_scale(x, p, b):
            y = drop_block_1d(x, p, b)
            keep = (y != 0).float()
            return x * keep / (1 - p) if p > 0 else x

        with pytest.raises(checks.CheckFailed, match="numel / number kept"):
            checks.check_drop_block_1d(wrong_scale)

    def test_catches_identity(self):
        with pytest.raises(checks.CheckFailed):
            checks.check_drop_block_1d(lambda x, p, b: x)

    def test_catches_odd_sizes_only(self):
        def centred(x, p, b):  # torchvision's padding b // 2: right for odd b only
            if p == 0:
                return x
            L = x.shape[-1]
            gamma = min(1.0, p / b * L / (L - b + 1))
            seeds = torch.zeros_like(x)
            seeds[..., b // 2 : L - b // 2] = torch.bernoulli(
                torch.full_like(x[..., b // 2 : L - b // 2], gamma)
            )
            keep = 1 - F.max_pool1d(seeds, b, stride=1, padding=b // 2)
            return x * keep * (keep.numel() / keep.sum().clamp(min=1))

        with pytest.raises(
            checks.CheckFailed, match=r"drop_block_1d\(x, 0.25, 4\) with x .* raised"
        ):
            checks.check_drop_block_1d(centred)

    def test_catches_scale_per_row(self):
        def per_row(x, p, b):
            y = drop_block_1d(x, p, b)
            keep = (y != 0).to(x.dtype)
            return x * keep * (x.shape[-1] / keep.sum(-1, keepdim=True).clamp(min=1))

        with pytest.raises(checks.CheckFailed, match="numel / number kept"):
            checks.check_drop_block_1d(per_row)

    def test_catches_in_place(self):
        def in_place(x, p, b):
            y = drop_block_1d(x.clone(), p, b)
            return x.copy_(y)

        with pytest.raises(checks.CheckFailed, match="in place"):
            checks.check_drop_block_1d(in_place)

    def test_catches_reseeding(self):
        def reseeds(x, p, b):
            torch.manual_seed(0)
            return drop_block_1d(x, p, b)

        with pytest.raises(checks.CheckFailed, match="resets torch's global"):
            checks.check_drop_block_1d(reseeds)

    def test_catches_ignoring_x(self):
        def mask_only(x, p, b):
            y = drop_block_1d(torch.ones_like(x), p, b)
            return y if p > 0 else x

        with pytest.raises(checks.CheckFailed, match="multiply x itself"):
            checks.check_drop_block_1d(mask_only)


def drop_block_gamma(p, block_size, sizes):
    seeds = math.prod(f - block_size + 1 for f in sizes)
    return p * math.prod(sizes) / (block_size ** len(sizes) * seeds)


class TestCheckDropBlockGamma:
    def test_passes(self, capsys):
        checks.check_drop_block_gamma(drop_block_gamma)
        checks.check_drop_block_gamma(
            lambda p, b, s: torch.tensor(drop_block_gamma(p, b, s))
        )
        checks.check_drop_block_gamma(  # unusual: numpy, float32
            lambda p, b, s: (
                np.float32(p)
                * np.prod(s)
                / (b ** len(s) * np.prod(np.array(s) - b + 1))
            )
        )
        assert capsys.readouterr().out == "all checks passed\n" * 3

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda p, b, s: p / b ** len(s), "factor for the edges is missing"),
            (
                lambda p, b, s: (
                    p * math.prod(s) / (b**2 * math.prod(f - b + 1 for f in s))
                ),
                "not b\\^2",
            ),
            (
                lambda p, b, s: p * math.prod(s) / math.prod(f - b + 1 for f in s),
                "divide by the b\\^d",
            ),
            (
                lambda p, b, s: p / b ** len(s) * (s[0] / (s[0] - b + 1)) ** len(s),
                "not square",
            ),
            (lambda p, b, s: 1 - (1 - p) ** (1 / b ** len(s)), "expected gamma"),
            (lambda p, b, s: [drop_block_gamma(p, b, s)] * 2, "must return a number"),
            (
                lambda p, b, s: (
                    p * math.prod(s) / (b ** len(s) * math.prod(f - b for f in s))
                    if b > 1
                    else p
                ),
                "size - b \\+ 1 positions",
            ),
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_drop_block_gamma(fn)
