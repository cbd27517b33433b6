"""Chapter 3's exercise checks pass right answers and catch the typical wrong ones."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from dropkit import checks


def epochs_to_reach(val_acc, target):
    return next((e for e, a in enumerate(val_acc, start=1) if a >= target), None)


def epochs_numpy(val_acc, target):  # unusual: numpy, returns np.int64 + 1 or None
    hits = np.flatnonzero(np.asarray(val_acc) >= target)
    return hits[0] + 1 if hits.size else None


def epochs_tensor(val_acc, target):  # unusual: a 0-dim integer tensor
    hits = (torch.tensor(val_acc) >= target).nonzero()
    return hits[0, 0] + 1 if len(hits) else None


def epochs_last(val_acc, target):  # no break: the last epoch that reaches it
    found = None
    for epoch, acc in enumerate(val_acc, start=1):
        if acc >= target:
            found = epoch
    return found


def epochs_sorting(val_acc, target):  # sorts the caller's list
    val_acc.sort()
    return epochs_to_reach(val_acc, target)


class TestCheckEpochsToReach:
    @pytest.mark.parametrize("fn", [epochs_to_reach, epochs_numpy, epochs_tensor])
    def test_passes(self, fn, capsys):
        checks.check_epochs_to_reach(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_accepts_numpy_integer(self, capsys):
        checks.check_epochs_to_reach(
            lambda a, t: (
                None if max(a) < t else np.int64(np.argmax(np.array(a) >= t) + 1)
            )
        )
        assert "all checks passed" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "fn,message",
        [
            (
                lambda a, t: next((e for e, x in enumerate(a) if x >= t), None),
                "count epochs from 0",
            ),
            (
                lambda a, t: next((e for e, x in enumerate(a, start=1) if x > t), None),
                "Use >= target",
            ),
            (lambda a, t: int(np.argmax(np.array(a) >= t)) + 1, "Return None"),
            (lambda a, t: int(np.argmax(a)) + 1 if max(a) >= t else None, "return 3"),
            (epochs_last, "the last to reach the target"),
            (epochs_sorting, "changed its argument val_acc in place"),
            (lambda a, t: str(epochs_to_reach(a, t)), "must return a number"),
        ],
        ids=[
            "zero-based",
            "strict",
            "never-reached",
            "argmax-of-accuracy",
            "last",
            "sorts",
            "string",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_epochs_to_reach(fn)


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def half_sum_of_squares(model):
    return sum((m.weight**2).sum() for m in linears(model)) / 2


def l2_matrix_norms(model):  # unusual: Frobenius norms, squared
    norms = [torch.linalg.matrix_norm(m.weight) ** 2 for m in linears(model)]
    return 0.5 * torch.stack(norms).sum()


def l2_two_dim(model):  # unusual: every 2-D parameter (only linear weights here)
    return sum(p.pow(2).sum() for p in model.parameters() if p.dim() == 2) / 2


class TestCheckL2Penalty:
    @pytest.mark.parametrize("fn", [half_sum_of_squares, l2_matrix_norms, l2_two_dim])
    def test_passes(self, fn, capsys):
        checks.check_l2_penalty(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (
                lambda model: sum((w**2).sum() for w in model.parameters()) / 2,
                "includes every parameter",
            ),
            (
                lambda model: (
                    sum(
                        (m.weight**2).sum() + (m.bias**2).sum()
                        for m in linears(model)
                        if m.bias is not None
                    )
                    / 2
                ),
                "returned",
            ),
            (
                lambda model: (
                    sum(
                        (w**2).sum()
                        for n, w in model.named_parameters()
                        if "weight" in n
                    )
                    / 2
                ),
                "LayerNorm's weight",
            ),
            (
                lambda model: (
                    sum(torch.linalg.matrix_norm(m.weight) for m in linears(model)) / 2
                ),
                "squared norms",
            ),
            (
                lambda model: (
                    sum(
                        (m.weight.data.pow_(2)).sum() for m in linears(model)
                    ).requires_grad_()
                    / 2
                ),
                "changed its argument model in place",
            ),
            (lambda model: 2 * half_sum_of_squares(model), "twice"),
            (
                lambda model: sum(m.weight.abs().sum() for m in linears(model)),
                "absolute values",
            ),
            (
                lambda model: (linears(model)[0].weight ** 2).sum() / 2,
                "3 linear layers",
            ),
            (
                lambda model: torch.tensor(half_sum_of_squares(model).item()),
                "differentiable",
            ),
        ],
        ids=[
            "every-parameter",
            "with-biases-skipping-none",
            "named-weight",
            "norms",
            "in-place",
            "no-half",
            "l1",
            "first-layer-only",
            "detached",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_l2_penalty(fn)


def welch_t(a, b):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return (a.mean() - b.mean()) / np.sqrt(va + vb), df


def welch_with_se(se):
    """Welch's t with a wrong standard error ``se(a, b)``, the right df."""

    def fn(a, b):
        a, b = np.asarray(a), np.asarray(b)
        return (a.mean() - b.mean()) / se(a, b), welch_t(a, b)[1]

    return fn


def student(a, b):
    result = stats.ttest_ind(a, b)  # equal_var=True: the pooled variance
    return result.statistic, len(a) + len(b) - 2


def biased_variance(a, b):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var() / len(a), b.var() / len(b)  # np.var divides by n
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return (a.mean() - b.mean()) / np.sqrt(va + vb), df


def satterthwaite_by_n(a, b):
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / len(a) + vb**2 / len(b))
    return (a.mean() - b.mean()) / np.sqrt(va + vb), df


class TestCheckWelchT:
    def test_passes_right_answer(self, capsys):
        checks.check_welch_t(welch_t)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_passes_float32_torch(self, capsys):
        def welch_torch(a, b):
            a, b = torch.tensor(a), torch.tensor(b)  # float32
            va, vb = a.var() / len(a), b.var() / len(b)
            df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
            return torch.stack([(a.mean() - b.mean()) / (va + vb).sqrt(), df])

        checks.check_welch_t(welch_torch)
        assert "all checks passed" in capsys.readouterr().out

    def test_passes_scipy(self, capsys):
        def with_scipy(a, b):
            result = stats.ttest_ind(a, b, equal_var=False)
            return result.statistic, welch_t(a, b)[1]

        checks.check_welch_t(with_scipy)
        assert "all checks passed" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "fn,message",
        [
            (student, "Student's t"),
            (biased_variance, "divides by n - 1"),
            (
                welch_with_se(lambda a, b: np.sqrt(a.var(ddof=1) + b.var(ddof=1))),
                r"s / sqrt\(n\)",
            ),
            (lambda a, b: (-welch_t(a, b)[0], welch_t(a, b)[1]), "sign is reversed"),
            (lambda a, b: (welch_t(a, b)[0], len(a) + len(b) - 2), "n_a \\+ n_b - 2"),
            (lambda a, b: (welch_t(a, b)[0], min(len(a), len(b)) - 1), "min"),
            (lambda a, b: welch_t(a, b)[0], "a pair"),
            (lambda a, b: (welch_t(a, b)[0] * 1.01, welch_t(a, b)[1]), "but t is"),
            (satterthwaite_by_n, "divided by n - 1, not n"),
            (lambda a, b: {"t": 1.0, "df": 2.0}, "a pair"),
        ],
        ids=[
            "student",
            "ddof-0",
            "no-sqrt-n",
            "reversed",
            "pooled-df",
            "min-df",
            "t-only",
            "off",
            "satterthwaite-by-n",
            "dict",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_welch_t(fn)
