"""Exercise checks for Chapter 7: what the network does not know (Monte-Carlo "
"dropout)."""

import math
import numbers

import torch

from dropkit.checks._common import CheckFailed, _passed, _require

__all__ = [
    "check_mutual_information",
    "check_variation_ratio",
    "check_expected_calibration_error",
    "check_auroc",
]


def _tensor(out, name, shape):
    _require(
        isinstance(out, torch.Tensor),
        f"{name} must return a tensor, but returned {type(out).__name__}",
    )
    _require(
        tuple(out.shape) == shape,
        f"{name} must return one value per input, shape {shape}, but got "
        f"{tuple(out.shape)}. "
        "The passes are the first dimension of samples (k, N, C): reduce over dim 0 "
        "for "
        "the mean, and over the last dimension for an entropy.",
    )
    return out.double()


def _entropy(p):
    return -torch.special.xlogy(p, p).sum(-1)


def _random_samples(k=7, n=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(k, n, c, generator=g, dtype=torch.float64)).softmax(-1)


def check_mutual_information(mutual_information):
    """Check ``mutual_information(samples)``: for (k, N, C) probabilities of k passes,
    the (N,) mutual information ``H[mean_k p_k] - mean_k H[p_k]`` in nats."""
    onehot = (
        torch.eye(2, dtype=torch.float64).repeat(3, 1).reshape(6, 1, 2)
    )  # 3 votes each
    out = _tensor(mutual_information(onehot), "mutual_information", (1,))
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
    out = _tensor(mutual_information(agree), "mutual_information", (1,))
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
    samples = _random_samples()
    mean = samples.mean(0)
    want = _entropy(mean) - _entropy(samples).mean(0)
    out = _tensor(mutual_information(samples), "mutual_information", (5,))
    if torch.allclose(out, _entropy(samples).mean(0), atol=1e-6):
        raise CheckFailed(
            "you returned the expected entropy mean_k H[p_k], the part the passes "
            "agree on; "
            "the mutual information is the entropy of the mean minus that"
        )
    _require(
        torch.allclose(out, want, atol=1e-5),
        f"on random samples your values {out.numpy().round(4)} differ from "
        f"H[mean] - mean H = {want.numpy().round(4)}. Average the probabilities, not "
        "the "
        "log-probabilities or logits, before taking the entropy of the mean.",
    )
    _passed()


def check_variation_ratio(variation_ratio):
    """Check ``variation_ratio(samples)``: ``1 - f/k`` with f the number of the k passes
    whose arg-max is the most common class; (N,) for (k, N, C) samples."""
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
    out = _tensor(variation_ratio(samples), "variation_ratio", (2,))
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
    samples = _random_samples(k=9, n=6, c=5, seed=1)
    votes = samples.argmax(-1)
    want = torch.tensor(
        [1 - torch.bincount(v, minlength=5).max().item() / 9 for v in votes.T],
        dtype=torch.float64,
    )
    out = _tensor(variation_ratio(samples), "variation_ratio", (6,))
    _require(
        torch.allclose(out, want),
        f"on random samples your values {out.numpy().round(4)} differ from 1 - f/k = "
        f"{want.numpy().round(4)}",
    )
    _passed()


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


def check_expected_calibration_error(expected_calibration_error):
    """Check ``expected_calibration_error(probs, labels, n_bins)``: top-label
    confidence in equal-width bins ``((m-1)/M, m/M]``, the gap |accuracy - confidence|
    weighted by each bin's share of the predictions; a float."""

    def call(probs, labels, n_bins):
        out = expected_calibration_error(probs, labels, n_bins)
        if isinstance(out, torch.Tensor) and out.numel() == 1:
            return float(out)
        if isinstance(out, bool) or not isinstance(out, numbers.Real):
            raise CheckFailed(
                f"expected_calibration_error must return a number, but returned {out!r}"
            )
        return float(out)

    g = torch.Generator().manual_seed(0)
    probs = (3 * torch.randn(400, 10, generator=g, dtype=torch.float64)).softmax(1)
    labels = torch.randint(0, 10, (400,), generator=g)
    conf, pred = probs.max(1)
    correct = (pred == labels).double()
    want = _ece(conf, correct, 10)
    got = call(probs, labels, 10)
    _require(
        not math.isnan(got), "your ECE is NaN: skip empty bins instead of dividing by 0"
    )
    full = [m for m in range(10) if ((conf > m / 10) & (conf <= (m + 1) / 10)).any()]
    gaps = [
        float(
            (
                correct[(conf > m / 10) & (conf <= (m + 1) / 10)].mean()
                - conf[(conf > m / 10) & (conf <= (m + 1) / 10)].mean()
            ).abs()
        )
        for m in full
    ]
    if math.isclose(got, sum(gaps) / len(gaps), rel_tol=1e-6):
        raise CheckFailed(
            "you averaged the bins' gaps equally; weight each gap by the share of "
            "predictions "
            "in its bin, |B_m| / N"
        )
    if math.isclose(got, max(gaps), rel_tol=1e-6):
        raise CheckFailed(
            "you returned the largest gap (the maximum calibration error), not ECE"
        )
    prob_true = probs[torch.arange(400), labels]
    if math.isclose(got, _ece(prob_true, correct, 10), rel_tol=1e-6):
        raise CheckFailed(
            "the confidence is the probability of the *predicted* class (the largest "
            "one), not "
            "of the true class"
        )
    _require(
        math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9),
        f"on 400 random predictions with 10 bins your ECE is {got:.6f}, but it is "
        f"{want:.6f}",
    )
    # Confidence exactly 1 (one-hot rows) and on an edge (0.5 belongs to (0.4, 0.5]).
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.55, 0.45]])
    labels = torch.tensor([0, 1, 0, 0, 1])
    try:
        got = call(probs, labels, 10)
    except IndexError:
        raise CheckFailed(
            "a confidence of exactly 1.0 fell outside your bins (IndexError): with "
            "floor(conf * M) it lands in bin M; the last bin is (1 - 1/M, 1]"
        ) from None
    conf, pred = probs.double().max(1)
    want = _ece(conf, (pred == labels).double(), 10)
    _require(
        math.isclose(got, want, rel_tol=1e-6),
        f"with confidences 1.0, 1.0, 0.5, 0.5, 0.55 your ECE is {got:.4f}, but it is "
        f"{want:.4f}. "
        "The bins are right-closed, ((m-1)/M, m/M]: 0.5 belongs to (0.4, 0.5] and 1.0 "
        "to "
        "(0.9, 1.0]; a prediction must not be dropped or counted twice.",
    )
    _passed()


def check_auroc(auroc):
    """Check ``auroc(scores_in, scores_out)``: the probability that a random
    out-of-distribution input scores higher than a random in-distribution one, ties
    counting one half."""
    inside = torch.tensor([0.1, 0.4, 0.35, 0.8], dtype=torch.float64)
    outside = torch.tensor([0.9, 0.4, 0.7], dtype=torch.float64)
    # out > in: 0.9 beats 4; 0.4 beats 0.1, 0.35, ties 0.4; 0.7 beats 3 -> 9.5 / 12
    out = auroc(inside, outside)
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = float(out)
    if isinstance(out, bool) or not isinstance(out, numbers.Real):
        raise CheckFailed(f"auroc must return a number, but returned {out!r}")
    got = float(out)
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
        math.isclose(got, 9.5 / 12, rel_tol=1e-9),
        f"for in-distribution scores {inside.tolist()} and out-of-distribution scores "
        f"{outside.tolist()} the AUROC is 9.5 / 12 = 0.7917, but you returned "
        f"{got:.4f}",
    )
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, generator=g, dtype=torch.float64)
    b = torch.randn(200, generator=g, dtype=torch.float64) + 0.5
    want = float(
        (
            (b[:, None] > a[None]).double() + 0.5 * (b[:, None] == a[None]).double()
        ).mean()
    )
    got = float(auroc(a, b))
    _require(
        math.isclose(got, want, rel_tol=1e-9),
        f"on 300 and 200 random scores your AUROC is {got:.6f}, but it is {want:.6f}",
    )
    _passed()
