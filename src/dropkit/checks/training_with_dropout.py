"""Exercise checks for Chapter 3: training with dropout."""

import math

import numpy as np
import torch

from dropkit.checks._common import CheckFailed, _passed, _require

__all__ = ["check_epochs_to_reach", "check_l2_penalty", "check_welch_t"]


def check_epochs_to_reach(epochs_to_reach):
    """Check ``epochs_to_reach(val_acc, target)``: the first epoch, counting from 1,
    whose validation accuracy is at least ``target``, or ``None`` if none reaches it."""
    curve = [0.2, 0.4, 0.5, 0.45, 0.6]
    cases = [
        (curve, 0.45, 3, "the first epoch at or above the target, counting from 1"),
        (curve, 0.5, 3, "an accuracy equal to the target reaches it (>=, not >)"),
        ([0.5, 0.1], 0.3, 1, "the first epoch counts as 1"),
        (curve, 0.55, 5, "the last epoch counts too"),
        ([0.2, 0.3], 0.9, None, "None when the target is never reached"),
    ]
    for val_acc, target, expected, rule in cases:
        got = epochs_to_reach(list(val_acc), target)
        if isinstance(got, np.integer):
            got = int(got)
        if got == expected and (expected is not None or got is None):
            continue
        hint = ""
        if expected is not None and got == expected - 1:
            hint = " You count epochs from 0; the first epoch is epoch 1."
        elif expected is None:
            hint = (
                " Return None, not a number, when no epoch reaches the target "
                "(np.argmax of all False is 0)."
            )
        elif expected == 3 and target == 0.5 and got == 5:
            hint = " Use >= target: an epoch that exactly reaches it counts."
        raise CheckFailed(
            f"epochs_to_reach({val_acc}, {target}) returned {got!r}, but should return "
            f"{expected!r}: {rule}.{hint}"
        )
    _passed()


def check_l2_penalty(l2_penalty):
    """Check ``l2_penalty(model)``: half the sum of the squared weight matrices of the
    model's linear layers, biases excluded, as a scalar tensor that gradients flow
    through."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3)
    )
    with torch.no_grad():
        for m in (model[1], model[4]):
            m.bias.fill_(3.0)  # large biases make "biases included" easy to see
    weights = (model[1].weight, model[4].weight)
    expected = sum((w.detach() ** 2).sum() for w in weights) / 2
    got = l2_penalty(model)
    _require(
        isinstance(got, torch.Tensor),
        f"l2_penalty must return a tensor, but returned {type(got).__name__}",
    )
    _require(
        got.numel() == 1,
        f"l2_penalty must return a scalar, but returned shape {tuple(got.shape)}",
    )
    _require(
        got.requires_grad,
        "the penalty must be differentiable: compute it from the parameters, "
        "without .detach() or .item()",
    )
    biases = sum((m.bias.detach() ** 2).sum() for m in (model[1], model[4])) / 2
    if torch.isclose(got.detach(), expected + biases):
        raise CheckFailed(
            "your penalty includes the biases: weight decay (d2l's l2_penalty) acts on "
            "the weights only"
        )
    if torch.isclose(got.detach(), 2 * expected):
        raise CheckFailed(
            "your penalty is twice the expected value: d2l's l2_penalty is "
            "sum(w ** 2) / 2"
        )
    abs_sum = sum(w.detach().abs().sum() for w in weights)
    if torch.isclose(got.detach(), abs_sum) or torch.isclose(got.detach(), abs_sum / 2):
        raise CheckFailed(
            "your penalty sums absolute values (L1); weight decay squares the weights "
            "(L2)"
        )
    _require(
        torch.isclose(got.detach(), expected),
        f"l2_penalty returned {got.item():.4f}, but half the sum of the squared "
        f"weights of the two linear layers is {expected.item():.4f}",
    )
    got.backward()
    _require(
        torch.allclose(model[4].weight.grad, model[4].weight.detach()),
        "the gradient of the penalty with respect to a weight matrix W must be W",
    )
    _passed()


def _welch_reference(a, b):
    """Welch's t of mean(a) - mean(b) and its Welch-Satterthwaite degrees of freedom."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t, df


def _welch_mistakes(a, b):
    """The (t, df) of the usual wrong answers, each with the hint that fixes it."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(a), len(b)
    diff = a.mean() - b.mean()
    t, df = _welch_reference(a, b)
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    va0, vb0 = a.var() / na, b.var() / nb  # np.var's default: divide by n
    df0 = (va0 + vb0) ** 2 / (va0**2 / (na - 1) + vb0**2 / (nb - 1))
    satterthwaite = "Welch's degrees of freedom are the Welch-Satterthwaite formula"
    return [
        (
            (diff / math.sqrt(pooled * (1 / na + 1 / nb)), na + nb - 2),
            "that is Student's t, with a pooled variance and n_a + n_b - 2 degrees of "
            "freedom; Welch's test keeps each sample's own variance, "
            "s_a^2/n_a + s_b^2/n_b",
        ),
        (
            (diff / math.sqrt(va0 + vb0), df0),
            "use the sample variance, which divides by n - 1 (np.var(x, ddof=1)); "
            "np.std and np.var divide by n by default",
        ),
        (
            (diff / math.sqrt(a.var(ddof=1) + b.var(ddof=1)), df),
            "the standard error of a mean is s / sqrt(n): divide each variance by its "
            "sample size",
        ),
        ((-t, df), "the sign is reversed: the statistic is for mean(a) - mean(b)"),
        ((t, na + nb - 2), f"t is right, but {satterthwaite}, not n_a + n_b - 2"),
        ((t, min(na, nb) - 1), f"t is right, but {satterthwaite}, not min(n) - 1"),
    ]


def check_welch_t(welch_t):
    """Check ``welch_t(a, b)``: Welch's t statistic of ``mean(a) - mean(b)`` and its
    Welch-Satterthwaite degrees of freedom, returned as a pair ``(t, df)``, for two
    lists of values (one per seed) of possibly different lengths and variances."""
    cases = [
        ([0.55, 0.57, 0.52, 0.58, 0.56], [0.50, 0.51, 0.49, 0.53, 0.46]),
        ([1.53, 1.41, 1.62], [1.28, 1.27, 1.29, 1.26, 1.30, 1.27]),
        ([12.0, 15.0, 11.0, 14.0], [22.0, 19.0, 25.0, 23.0, 21.0]),
    ]
    for a, b in cases:
        got = welch_t(list(a), list(b))
        try:
            t_got, df_got = (float(v) for v in got)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"welch_t must return a pair (t, df) of numbers, but returned {got!r}"
            ) from None
        t, df = _welch_reference(a, b)
        if math.isclose(t_got, t, rel_tol=1e-6) and math.isclose(
            df_got, df, rel_tol=1e-6
        ):
            continue
        hint = "t = (mean(a) - mean(b)) / sqrt(s_a^2/n_a + s_b^2/n_b)"
        for (t_bad, df_bad), why in _welch_mistakes(a, b):
            if math.isclose(t_got, t_bad, rel_tol=1e-6) and math.isclose(
                df_got, df_bad, rel_tol=1e-6
            ):
                hint = why
                break
        raise CheckFailed(
            f"welch_t({a}, {b}) returned t = {t_got:.4f}, df = {df_got:.3f}, but "
            f"Welch's test gives t = {t:.4f}, df = {df:.3f}: {hint}."
        )
    _passed()
