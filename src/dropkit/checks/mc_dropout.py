"""Exercise checks for Chapter 7: what the network does not know (Monte-Carlo
dropout)."""

import math

import numpy as np
import torch

from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_number,
    _check,
    _describe,
    _numbers_close,
    _require,
)

__all__ = [
    "check_mutual_information",
    "check_variation_ratio",
    "check_expected_calibration_error",
    "check_auroc",
]


def _tensor(out, name, shape):
    """The (N,) answer, a tensor or a numpy array, as a float64 tensor."""
    if isinstance(out, np.ndarray) and out.dtype.kind in "iuf":
        out = torch.from_numpy(out)
    _require(
        isinstance(out, torch.Tensor),
        f"{name} must return a tensor (or a numpy array), but returned "
        f"{_describe(out)}",
    )
    _require(
        tuple(out.shape) == shape,
        f"{name} must return one value per input, shape {shape}, but got "
        f"{tuple(out.shape)}. "
        "The passes are the first dimension of samples (k, N, C): reduce over dim 0 "
        "for "
        "the mean, and over the last dimension for an entropy.",
    )
    return out.detach().double()


def _entropy(p):
    return -torch.special.xlogy(p, p).sum(-1)


def _random_samples(k=7, n=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(k, n, c, generator=g, dtype=torch.float64)).softmax(-1)


@_check
def check_mutual_information(mutual_information):
    """Check ``mutual_information(samples)``: for (k, N, C) probabilities of k passes,
    the (N,) tensor (or numpy array) of mutual informations
    ``H[mean_k p_k] - mean_k H[p_k]`` in nats, with 0 log 0 = 0 (one-hot passes give no
    NaN); float64 and float32 samples (a tolerance of 1e-5 for float32), the samples
    left unchanged."""
    f = _Answer(mutual_information, "mutual_information", ("samples",))
    onehot = (
        torch.eye(2, dtype=torch.float64).repeat(3, 1).reshape(6, 1, 2)
    )  # 3 votes each
    out = _tensor(f(onehot), "mutual_information", (1,))
    _require(
        not torch.isnan(out).any(),
        "one-hot passes gave NaN: 0 * log 0 must count as 0 (use "
        "torch.special.xlogy(p, p), "
        "or clamp p before the log)",
    )
    got = float(out[0])
    if math.isclose(got, 1.0, rel_tol=1e-6):
        raise CheckFailed(
            "two confident passes that disagree half the time have mutual information "
            "log 2 = "
            "0.693 nats, but you returned 1.0: use the natural log (nats), not log2"
        )
    if math.isclose(got, -math.log(2), rel_tol=1e-6):
        raise CheckFailed(
            "your mutual information is negative: it is H[mean] - mean H, the entropy "
            "of the "
            "mean minus the mean of the entropies, not the other way round"
        )
    if abs(got) < 1e-9:
        raise CheckFailed(
            "one-hot passes split 3 to 3 between two classes disagree completely, but "
            "you "
            "returned 0: that is the expected entropy (each one-hot pass has entropy "
            "0). The "
            "mutual information is the entropy of the mean minus it: log 2."
        )
    _require(
        math.isclose(got, math.log(2), rel_tol=1e-6),
        f"confident passes split 3 to 3 between two classes have mutual information "
        f"log 2 = 0.6931, but you returned {got:.4f}",
    )
    agree = torch.full(
        (6, 1, 3), 1 / 3, dtype=torch.float64
    )  # flat, and every pass agrees
    out = _tensor(f(agree), "mutual_information", (1,))
    if math.isclose(float(out[0]), math.log(3), rel_tol=1e-6):
        raise CheckFailed(
            "when every pass gives the same flat probabilities, the passes agree and "
            "the mutual "
            "information is 0, but you returned log 3: that is the predictive entropy. "
            "Subtract the mean of the passes' own entropies."
        )
    _require(
        abs(float(out[0])) < 1e-9,
        "when every pass gives the same probabilities the mutual information is 0, "
        "but you "
        f"returned {float(out[0]):.4g}",
    )
    for dtype, (k, n, c) in ((torch.float64, (7, 5, 4)), (torch.float32, (9, 6, 3))):
        samples = _random_samples(k, n, c).to(dtype)
        ref = samples.double()
        want = _entropy(ref.mean(0)) - _entropy(ref).mean(0)
        out = _tensor(f(samples), "mutual_information", (n,))
        tol = 1e-5 if dtype == torch.float32 else 1e-9
        if torch.allclose(out, want, atol=tol, rtol=tol):
            continue
        if torch.allclose(out, _entropy(ref).mean(0), atol=tol):
            raise CheckFailed(
                "you returned the expected entropy mean_k H[p_k], the part the passes "
                "agree on; "
                "the mutual information is the entropy of the mean minus that"
            )
        if dtype == torch.float64 and torch.allclose(out, want, atol=1e-5, rtol=1e-5):
            raise CheckFailed(
                "on random float64 samples your values agree with H[mean] - mean H "
                "only to float32 precision (about 1e-6): keep the samples' dtype, "
                "float64, instead of converting them to float32"
            )
        raise CheckFailed(
            f"on random {str(dtype).replace('torch.', '')} samples your values "
            f"{out.numpy().round(4)} differ from H[mean] - mean H = "
            f"{want.numpy().round(4)}. Average the probabilities, not the "
            "log-probabilities or logits, before taking the entropy of the mean."
        )


@_check
def check_variation_ratio(variation_ratio):
    """Check ``variation_ratio(samples)``: ``1 - f/k`` with f the number of the k passes
    whose arg-max is the most common class; an (N,) tensor or numpy array for (k, N, C)
    samples (float64 and float32 tested), the samples left unchanged."""
    f = _Answer(variation_ratio, "variation_ratio", ("samples",))
    # input 0: passes vote 0,0,0,1 and are unsure; input 1: every pass votes 2
    samples = torch.tensor(
        [
            [[0.40, 0.35, 0.25], [0.1, 0.1, 0.8]],
            [[0.40, 0.35, 0.25], [0.1, 0.1, 0.8]],
            [[0.40, 0.35, 0.25], [0.1, 0.1, 0.8]],
            [[0.05, 0.90, 0.05], [0.1, 0.1, 0.8]],
        ],
        dtype=torch.float64,
    )
    out = _tensor(f(samples), "variation_ratio", (2,))
    if torch.allclose(out, torch.tensor([0.75, 1.0], dtype=torch.float64)):
        raise CheckFailed(
            "you returned the fraction of passes that agree with the mode (f/k); the "
            "variation "
            "ratio is 1 - f/k, 0 when all passes agree"
        )
    mean_conf = 1 - samples.mean(0).max(-1).values
    if torch.allclose(out, mean_conf):
        raise CheckFailed(
            "you returned 1 - max of the mean probabilities; the variation ratio "
            "counts votes: "
            "each pass votes for its arg-max class, f is the count of the most common "
            "vote"
        )
    _require(
        torch.allclose(out, torch.tensor([0.25, 0.0], dtype=torch.float64)),
        "passes voting 0, 0, 0, 1 have variation ratio 1 - 3/4 = 0.25, and passes "
        "that all "
        f"vote 2 have 0, but you returned {out.numpy().round(4)}",
    )
    for dtype, (k, n, c, seed) in (
        (torch.float64, (9, 6, 5, 1)),
        (torch.float32, (5, 11, 4, 2)),
    ):
        samples = _random_samples(k, n, c, seed=seed).to(dtype)
        votes = samples.argmax(-1)
        want = torch.tensor(
            [1 - torch.bincount(v, minlength=c).max().item() / k for v in votes.T],
            dtype=torch.float64,
        )
        out = _tensor(f(samples), "variation_ratio", (n,))
        _require(
            torch.allclose(out, want, atol=1e-6),
            f"on random samples ({k} passes, {n} inputs, {c} classes) your values "
            f"{out.numpy().round(4)} differ from 1 - f/k = {want.numpy().round(4)}",
        )


def _ece(conf, correct, n_bins):
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = torch.bucketize(conf, edges[1:-1])
    total = 0.0
    for m in range(n_bins):
        inside = index == m
        if inside.any():
            gap = (correct[inside].mean() - conf[inside].mean()).abs()
            total += float(inside.sum()) / len(conf) * float(gap)
    return total


@_check
def check_expected_calibration_error(expected_calibration_error):
    """Check ``expected_calibration_error(probs, labels, n_bins)``: top-label
    confidence in ``n_bins`` equal-width bins ``((m-1)/M, m/M]``, the gap |accuracy -
    confidence| weighted by each bin's share of the predictions (empty bins skipped);
    one number (Python, numpy or a one-element tensor, float32 included; relative
    tolerance 1e-5). Tested with 10, 7 and 4 bins on float64 and float32
    probabilities, and with confidences of exactly 1.0 and on a bin edge; probs and
    labels left unchanged."""
    f = _Answer(
        expected_calibration_error,
        "expected_calibration_error",
        ("probs", "labels", "n_bins"),
    )

    def call(probs, labels, n_bins):
        out = f(probs, labels, n_bins)
        return _as_number(out, f.show(probs, labels, n_bins))

    # Predictions overconfident at low confidence and underconfident at high, so that
    # the gaps change sign across the bins and the binning shows in the ECE.
    g = torch.Generator().manual_seed(0)
    probs = (2 * torch.randn(400, 10, generator=g, dtype=torch.float64)).softmax(1)
    conf, pred = probs.max(1)
    hit = torch.rand(400, generator=g, dtype=torch.float64) < (1.6 * conf - 0.45)
    other = (pred + 1 + torch.randint(0, 9, (400,), generator=g)) % 10
    labels = torch.where(hit, pred, other)
    for n_bins, dtype in ((10, torch.float64), (7, torch.float32), (4, torch.float64)):
        given = probs.to(dtype)
        conf, pred = given.double().max(1)
        correct = (pred == labels).double()
        want = _ece(conf, correct, n_bins)
        got = call(given, labels, n_bins)
        _require(
            not math.isnan(got),
            "your ECE is NaN: skip empty bins instead of dividing by 0",
        )
        if _numbers_close(got, want, rel=1e-5, abs_=1e-9):
            continue
        edges = [m / n_bins for m in range(n_bins + 1)]
        inside = [(conf > lo) & (conf <= hi) for lo, hi in zip(edges, edges[1:])]
        gaps = [
            float((correct[b].mean() - conf[b].mean()).abs()) for b in inside if b.any()
        ]
        prob_true = given.double()[torch.arange(400), labels]
        mistakes = [
            (
                sum(gaps) / len(gaps),
                "you averaged the bins' gaps equally; weight each gap by the share of "
                "predictions in its bin, |B_m| / N",
            ),
            (
                max(gaps),
                "you returned the largest gap (the maximum calibration error), not ECE",
            ),
            (
                _ece(prob_true, correct, n_bins),
                "the confidence is the probability of the *predicted* class (the "
                "largest one), not of the true class",
            ),
            (
                _ece(conf, correct, n_bins - 1) if n_bins > 1 else math.nan,
                f"you used {n_bins - 1} bins: n_bins bins have n_bins + 1 edges, "
                "torch.linspace(0, 1, n_bins + 1)",
            ),
            (
                abs(float(correct.mean() - conf.mean())),
                "you compared the overall accuracy with the overall confidence: that "
                "is one bin, not n_bins",
            ),
        ]
        for value, hint in mistakes:
            _require(not _numbers_close(got, value, rel=1e-5, abs_=1e-9), hint)
        raise CheckFailed(
            f"on 400 random predictions with {n_bins} bins your ECE is {got:.6f}, but "
            f"it is {want:.6f}"
        )
    # Confidence exactly 1 (one-hot rows) and on an edge (0.5 belongs to (0.4, 0.5]).
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.55, 0.45]])
    labels = torch.tensor([0, 1, 0, 0, 1])
    out, err = f.attempt(probs, labels, 10)
    if isinstance(err, IndexError):
        raise CheckFailed(
            "a confidence of exactly 1.0 fell outside your bins (IndexError): with "
            "floor(conf * M) it lands in bin M; the last bin is (1 - 1/M, 1]"
        )
    if err is not None:
        raise CheckFailed(f.raised(err, probs, labels, 10))
    got = _as_number(out, f.show(probs, labels, 10))
    conf, pred = probs.double().max(1)
    want = _ece(conf, (pred == labels).double(), 10)
    _require(
        _numbers_close(got, want, rel=1e-5, abs_=1e-9),
        f"with confidences 1.0, 1.0, 0.5, 0.5, 0.55 your ECE is {got:.4f}, but it is "
        f"{want:.4f}. "
        "The bins are right-closed, ((m-1)/M, m/M]: 0.5 belongs to (0.4, 0.5] and 1.0 "
        "to "
        "(0.9, 1.0]; a prediction must not be dropped or counted twice.",
    )


def _pairs_auroc(a, b):
    a, b = a.double(), b.double()
    return float(
        (
            (b[:, None] > a[None]).double() + 0.5 * (b[:, None] == a[None]).double()
        ).mean()
    )


@_check
def check_auroc(auroc):
    """Check ``auroc(scores_in, scores_out)`` for two 1-D tensors of scores: the
    probability that a random out-of-distribution input scores higher than a random
    in-distribution one, ties counting one half, as one number (Python, numpy or a
    one-element tensor, float32 included; relative tolerance 1e-6). Tested on a small
    example with a tie and on float64 and float32 samples of unequal sizes; the scores
    left unchanged."""
    f = _Answer(auroc, "auroc", ("scores_in", "scores_out"))
    inside = torch.tensor([0.1, 0.4, 0.35, 0.8], dtype=torch.float64)
    outside = torch.tensor([0.9, 0.4, 0.7], dtype=torch.float64)
    # out > in: 0.9 beats 4; 0.4 beats 0.1, 0.35, ties 0.4; 0.7 beats 3 -> 9.5 / 12
    out, err = f.attempt(inside, outside)
    if err is not None:
        hint = (
            "Compare every out-of-distribution score with every in-distribution one: "
            "broadcast scores_out[:, None] against scores_in[None, :] (the two sets "
            "have different sizes)"
            if isinstance(err, RuntimeError) and "size" in str(err)
            else ""
        )
        raise CheckFailed(f.raised(err, inside, outside, hint=hint))
    got = _as_number(out, f.show(inside, outside))
    if math.isclose(got, 1 - 9.5 / 12):
        raise CheckFailed(
            "your AUROC is reversed: it is the probability that an out-of-distribution "
            "input "
            "scores *higher* (is more uncertain) than an in-distribution one"
        )
    if math.isclose(got, 9 / 12) or math.isclose(got, 10 / 12):
        raise CheckFailed(
            f"you returned {got:.4f}; a tie between an in- and an out-of-distribution "
            "score "
            "counts one half (it is 9.5 / 12 here)"
        )
    _require(
        _numbers_close(got, 9.5 / 12, rel=1e-6),
        f"for in-distribution scores {inside.tolist()} and out-of-distribution scores "
        f"{outside.tolist()} the AUROC is 9.5 / 12 = 0.7917, but you returned "
        f"{got:.4f}",
    )
    g = torch.Generator().manual_seed(0)
    for dtype, (n_in, n_out) in (
        (torch.float64, (300, 200)),
        (torch.float32, (150, 90)),
    ):
        a = torch.randn(n_in, generator=g, dtype=torch.float64).to(dtype)
        b = (torch.randn(n_out, generator=g, dtype=torch.float64) + 0.5).to(dtype)
        a[:10] = b[:10]  # ties
        want = _pairs_auroc(a, b)
        got = _as_number(f(a, b), f.show(a, b))
        _require(
            _numbers_close(got, want, rel=1e-6),
            f"on {n_in} and {n_out} random {str(dtype).replace('torch.', '')} scores "
            f"your AUROC is {got:.6f}, but it is {want:.6f}",
        )
