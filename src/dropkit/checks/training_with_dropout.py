"""Exercise checks for Chapter 3: training with dropout."""

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

__all__ = ["check_epochs_to_reach", "check_l2_penalty", "check_welch_t"]


def _epoch(value, call):
    """None, or a whole number (Python, numpy or torch, 3.0 included) as an int."""
    if value is None:
        return None
    number = _as_number(value, call)
    _require(
        number == int(number),
        f"{call} must return a whole epoch number or None, but returned {value!r}",
    )
    return int(number)


@_check
def check_epochs_to_reach(epochs_to_reach):
    """Check ``epochs_to_reach(val_acc, target)``: the first epoch, counting from 1,
    whose validation accuracy is at least ``target``, or ``None`` if none reaches it.
    The epoch may be any whole number (int, numpy or torch integer); ``val_acc`` (a
    list) must be left unchanged."""
    f = _Answer(epochs_to_reach, "epochs_to_reach", ("val_acc", "target"))
    curve = [0.2, 0.4, 0.5, 0.45, 0.6]
    cases = [
        (curve, 0.45, 3, "the first epoch at or above the target, counting from 1"),
        (curve, 0.5, 3, "an accuracy equal to the target reaches it (>=, not >)"),
        ([0.5, 0.1], 0.3, 1, "the first epoch counts as 1"),
        (curve, 0.55, 5, "the last epoch counts too"),
        ([0.3, 0.7, 0.65, 0.8, 0.75], 0.6, 2, "the first epoch, not the best one"),
        ([0.2, 0.3], 0.9, None, "None when the target is never reached"),
        ([0.1], 0.1, 1, "a single epoch that reaches the target"),
    ]
    for val_acc, target, expected, rule in cases:
        call = f"epochs_to_reach({val_acc}, {target})"
        out, err = f.attempt(list(val_acc), target)
        if err is not None:
            hint = (
                "val_acc arrives as a Python list (as train's history gives it): "
                "compare its entries one by one, or convert it with np.asarray first"
                if isinstance(err, TypeError)
                else ""
            )
            raise CheckFailed(f.raised(err, list(val_acc), target, hint=hint))
        got = _epoch(out, call)
        if got == expected:
            continue
        hint = ""
        if expected is not None and got == expected - 1:
            hint = " You count epochs from 0; the first epoch is epoch 1."
        elif expected is None:
            hint = (
                " Return None, not a number, when no epoch reaches the target "
                "(np.argmax of all False is 0)."
            )
        elif got is None:
            hint = " An accuracy of at least the target reaches it."
        elif expected == 3 and target == 0.5 and got == 5:
            hint = " Use >= target: an epoch that exactly reaches it counts."
        else:
            best = 1 + int(np.argmax(val_acc))
            hits = [e for e, a in enumerate(val_acc, start=1) if a >= target]
            last = hits[-1] if hits else None
            if got in (best, last):
                what = {best: "the best epoch", last: "the last epoch to reach it"}
                if best == last:
                    what[got] = "the best epoch, and the last to reach the target"
                hint = (
                    f" That is {what[got]}; return the first epoch that reaches the "
                    "target (stop at the first hit)."
                )
        raise CheckFailed(
            f"{call} returned {got!r}, but should return {expected!r}: {rule}.{hint}"
        )


class _Model(torch.nn.Module):
    """A model laid out as d2l's: its layers in ``self.net``."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _l2_model():
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(6, 5),
        nn.LayerNorm(5),  # a 'weight' that is not a linear layer's matrix
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Sequential(nn.Linear(5, 4), nn.ReLU()),  # nested
        nn.Linear(4, 3, bias=False),  # no bias to skip
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.fill_(3.0)  # large biases make "biases included" easy to see
        net[2].weight.fill_(2.0)
        net[2].bias.fill_(1.0)
    return _Model(net)


@_check
def check_l2_penalty(l2_penalty):
    """Check ``l2_penalty(model)``: half the sum of the squared weight matrices of the
    model's linear layers (``nn.Linear``, nested ones included), biases and every other
    parameter (a LayerNorm's weight, say) excluded, as a one-element tensor that
    gradients flow through: its gradient with respect to each linear weight W is W, and
    0 for every other parameter. The model (laid out as d2l's, its layers in
    ``model.net``) must be left unchanged."""
    from torch import nn

    f = _Answer(l2_penalty, "l2_penalty", ("model",))
    model = _l2_model()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    weights = [m.weight for m in linears]
    expected = float(sum((w.detach().double() ** 2).sum() for w in weights) / 2)
    call = "l2_penalty(model)"
    got = f(model)
    _require(
        isinstance(got, torch.Tensor),
        f"l2_penalty must return a tensor, but returned {_describe(got)}",
    )
    _require(
        got.numel() == 1,
        f"l2_penalty must return a scalar, but returned shape {tuple(got.shape)}",
    )
    _require(
        got.requires_grad,
        "the penalty must be differentiable: compute it from the parameters, "
        "without .detach(), .item() or torch.tensor(...)",
    )
    value = _as_number(got, call)

    def near(v):
        return _numbers_close(value, float(v))

    params = dict(model.named_parameters())
    squares = {n: float((w.detach().double() ** 2).sum()) for n, w in params.items()}
    biases = sum(v for n, v in squares.items() if n.endswith("bias"))
    norm_weight = squares["net.2.weight"]
    abs_sum = float(sum(w.detach().double().abs().sum() for w in weights))
    mistakes = [
        (expected + biases / 2, "your penalty includes the biases"),
        (sum(squares.values()) / 2, "your penalty includes every parameter"),
        (
            expected + norm_weight / 2,
            "your penalty includes the LayerNorm's weight: only the weight matrices "
            "of linear layers (isinstance(m, nn.Linear)) are decayed",
        ),
        (
            2 * expected,
            "your penalty is twice the expected value: d2l's l2_penalty is "
            "sum(w ** 2) / 2",
        ),
        (abs_sum, "your penalty sums absolute values (L1)"),
        (abs_sum / 2, "your penalty sums absolute values (L1)"),
        (
            sum(math.sqrt(float((w.detach().double() ** 2).sum())) for w in weights)
            / 2,
            "you summed norms ||W||, not squared norms ||W||^2",
        ),
    ]
    if not near(expected):
        for wrong, hint in mistakes:
            if near(wrong):
                raise CheckFailed(
                    f"{hint}; weight decay (d2l's l2_penalty) acts on the weights "
                    "of the linear layers only, half the sum of their squares"
                )
        raise CheckFailed(
            f"l2_penalty returned {value:.4f}, but half the sum of the squared weight "
            f"matrices of the model's {len(linears)} linear layers (a nested one "
            f"included) is {expected:.4f}"
        )
    try:
        got.reshape(()).backward()
    except Exception as err:
        raise CheckFailed(
            f"backward through your penalty raised {type(err).__name__}: {err}"
        ) from None
    decayed = {id(w) for w in weights}
    for name, w in params.items():
        want = w.detach() if id(w) in decayed else torch.zeros_like(w)
        grad = w.grad if w.grad is not None else torch.zeros_like(w)
        _require(
            torch.allclose(grad, want, rtol=1e-5, atol=1e-6),
            f"the gradient of the penalty with respect to {name} must be "
            + ("the weight itself, W" if id(w) in decayed else "0")
            + ", but it differs",
        )


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
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
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
        (
            (t, (va + vb) ** 2 / (va**2 / na + vb**2 / nb)),
            "t is right, but in the Welch-Satterthwaite degrees of freedom each "
            "term of the denominator is divided by n - 1, not n",
        ),
    ]


@_check
def check_welch_t(welch_t):
    """Check ``welch_t(a, b)``: Welch's t statistic of ``mean(a) - mean(b)`` and its
    Welch-Satterthwaite degrees of freedom, returned as a pair ``(t, df)`` of numbers
    (Python, numpy or torch, float32 included; relative tolerance 1e-5), for two lists
    of values (one per seed) of possibly different lengths and variances; the lists
    must be left unchanged."""
    f = _Answer(welch_t, "welch_t", ("a", "b"))
    cases = [
        ([0.55, 0.57, 0.52, 0.58, 0.56], [0.50, 0.51, 0.49, 0.53, 0.46]),
        ([1.53, 1.41, 1.62], [1.28, 1.27, 1.29, 1.26, 1.30, 1.27]),
        ([12.0, 15.0, 11.0, 14.0], [22.0, 19.0, 25.0, 23.0, 21.0]),
    ]
    for a, b in cases:
        call = f"welch_t({a}, {b})"
        got = f(list(a), list(b))
        pair = None
        if isinstance(got, (tuple, list, np.ndarray, torch.Tensor)) and len(got) == 2:
            pair = [_as_number(v, f"each of the two values of {call}") for v in got]
        _require(
            pair is not None,
            f"welch_t must return a pair (t, df) of numbers, but returned "
            f"{_describe(got)}",
        )
        t_got, df_got = pair
        t, df = _welch_reference(a, b)
        if _numbers_close(t_got, t) and _numbers_close(df_got, df):
            continue
        if _numbers_close(t_got, t) and 0 <= df_got <= 1:
            hint = (
                "t is right, but the second number must be the degrees of freedom, "
                "not a p-value"
            )
        elif _numbers_close(t_got, t):
            hint = (
                "t is right, but the degrees of freedom are Welch-Satterthwaite's, "
                "(s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + "
                "(s_b^2/n_b)^2/(n_b-1))"
            )
        elif _numbers_close(df_got, df):
            hint = (
                "the degrees of freedom are right, but t is (mean(a) - mean(b)) / "
                "sqrt(s_a^2/n_a + s_b^2/n_b)"
            )
        else:
            hint = "t = (mean(a) - mean(b)) / sqrt(s_a^2/n_a + s_b^2/n_b)"
        for (t_bad, df_bad), why in _welch_mistakes(a, b):
            if _numbers_close(t_got, t_bad) and _numbers_close(df_got, df_bad):
                hint = why
                break
        raise CheckFailed(
            f"welch_t({a}, {b}) returned t = {t_got:.4f}, df = {df_got:.3f}, but "
            f"Welch's test gives t = {t:.4f}, df = {df:.3f}: {hint}."
        )
