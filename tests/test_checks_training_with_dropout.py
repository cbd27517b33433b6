"""Chapter 3's exercise checks pass right answers and catch the typical wrong ones."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from dropkit import checks


def epochs_to_reach(val_acc, target):
    return next((e for e, a in enumerate(val_acc, start=1) if a >= target), None)


class TestCheckEpochsToReach:
    def test_passes_right_answer(self, capsys):
        checks.check_epochs_to_reach(epochs_to_reach)
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
        ],
        ids=["zero-based", "strict", "never-reached", "argmax-of-accuracy"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_epochs_to_reach(fn)


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def half_sum_of_squares(model):
    return sum((m.weight**2).sum() for m in linears(model)) / 2


class TestCheckL2Penalty:
    def test_passes_right_answer(self, capsys):
        checks.check_l2_penalty(half_sum_of_squares)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (
                lambda model: sum((w**2).sum() for w in model.parameters()) / 2,
                "includes the biases",
            ),
            (lambda model: 2 * half_sum_of_squares(model), "twice"),
            (
                lambda model: sum(m.weight.abs().sum() for m in linears(model)),
                "absolute values",
            ),
            (lambda model: (linears(model)[0].weight ** 2).sum() / 2, "two linear"),
            (
                lambda model: torch.tensor(half_sum_of_squares(model).item()),
                "differentiable",
            ),
        ],
        ids=["with-biases", "no-half", "l1", "first-layer-only", "detached"],
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


class TestCheckWelchT:
    def test_passes_right_answer(self, capsys):
        checks.check_welch_t(welch_t)
        assert capsys.readouterr().out == "all checks passed\n"

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
            (lambda a, b: (welch_t(a, b)[0] * 1.01, welch_t(a, b)[1]), "t = \\("),
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
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_welch_t(fn)
