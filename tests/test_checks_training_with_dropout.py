"""Chapter 3's exercise checks pass right answers and catch the typical wrong ones."""

import numpy as np
import pytest
import torch
from torch import nn

from dropkit import checks


def epochs_to_reach(val_acc, target):
    return next((e for e, a in enumerate(val_acc, start=1) if a >= target), None)


class TestCheckEpochsToReach:
    def test_passes_right_answer(self, capsys):
        checks.check_epochs_to_reach(epochs_to_reach)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_accepts_numpy_integer(self, capsys):
        checks.check_epochs_to_reach(lambda a, t: None if max(a) < t else np.int64(np.argmax(np.array(a) >= t) + 1))
        assert "all checks passed" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda a, t: next((e for e, x in enumerate(a) if x >= t), None), "count epochs from 0"),
            (lambda a, t: next((e for e, x in enumerate(a, start=1) if x > t), None), "Use >= target"),
            (lambda a, t: int(np.argmax(np.array(a) >= t)) + 1, "Return None"),
            (lambda a, t: int(np.argmax(a)) + 1 if max(a) >= t else None, "should return 3"),
        ],
        ids=["zero-based", "strict", "never-reached", "argmax-of-accuracy"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_epochs_to_reach(fn)


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


class TestCheckL2Penalty:
    def test_passes_right_answer(self, capsys):
        checks.check_l2_penalty(lambda model: sum((m.weight ** 2).sum() for m in linears(model)) / 2)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda model: sum((w ** 2).sum() for w in model.parameters()) / 2, "includes the biases"),
            (lambda model: sum((m.weight ** 2).sum() for m in linears(model)), "twice"),
            (lambda model: sum(m.weight.abs().sum() for m in linears(model)), "absolute values"),
            (lambda model: (linears(model)[0].weight ** 2).sum() / 2, "two linear layers"),
            (lambda model: torch.tensor(sum((m.weight ** 2).sum().item() for m in linears(model)) / 2), "differentiable"),
        ],
        ids=["with-biases", "no-half", "l1", "first-layer-only", "detached"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_l2_penalty(fn)
