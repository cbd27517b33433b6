"""What every exercise check shares: no learner's exception escapes as a traceback, the
message names the call and the input that broke it, the caller's random state is left
alone, and the shared probes (numbers, inputs unchanged, fresh masks) work as stated."""

import inspect
import sys

import numpy as np
import pytest
import torch

from dropkit import checks
from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_number,
    _as_vector,
    _check_fresh,
    _describe,
    _radius,
)

ALL = [getattr(checks, name) for name in checks.__all__ if name.startswith("check_")]


def test_there_are_35_checks_all_wrapped():
    assert len(ALL) == 35  # 31 in Parts I and II, 4 in Part III
    for check in ALL:
        # every public check goes through the shared wrapper (functools.wraps)
        assert hasattr(check, "__wrapped__"), check.__name__


def _raises(*args, **kwargs):
    return 1 / 0


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "answer",
    [_raises, lambda *a, **k: None, lambda *a, **k: "0.5", lambda *a, **k: [1, 2]],
    ids=["raises", "none", "string", "list"],
)
def test_no_traceback_escapes(check, answer):
    # Whatever the learner's function does, the check answers with a CheckFailed.
    with pytest.raises(CheckFailed) as info:
        check(answer)
    if answer is _raises:
        assert "raised ZeroDivisionError" in str(info.value)
        assert "line" in str(info.value)  # the learner's line that raised


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_learner_code_runs_only_through_the_wrapper(check):
    callers = set()

    def answer(*args, **kwargs):
        callers.add(sys._getframe(1).f_code.co_name)
        return 1 / 0

    with pytest.raises(CheckFailed):
        check(answer)
    assert callers == {"attempt"}  # _Answer.attempt, the one wrapper


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_not_a_function(check):
    with pytest.raises(CheckFailed, match="pass your function itself"):
        check(0.5)


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_caller_random_state_is_left_alone(check):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with pytest.raises(CheckFailed):
        check(_raises)
    assert torch.equal(torch.get_rng_state(), before)


def test_passing_check_leaves_random_state_alone(capsys):
    torch.manual_seed(5)
    before = torch.get_rng_state()
    checks.check_dropout_layer(lambda X, p: torch.nn.functional.dropout(X, p))
    assert torch.equal(torch.get_rng_state(), before)
    assert capsys.readouterr().out == "all checks passed\n"


def test_every_check_documents_its_tests():
    for check in ALL:
        doc = inspect.getdoc(check)
        assert doc and len(doc) > 80, check.__name__


class TestAnswer:
    def test_message_names_the_input_that_broke_it(self):
        def only_2d(X, p):  # works for (N, D), not for (N, C, H, W)
            if p == 1:
                return torch.zeros_like(X)
            return X * (torch.rand(X.shape[0], X.shape[1]) >= p) / (1 - p)

        with pytest.raises(CheckFailed) as info:
            checks.check_dropout_layer(only_2d)
        message = str(info.value)
        assert "dropout_layer(X, " in message
        assert "X a float32 tensor of shape (32, 6, 5, 7)" in message
        assert "raised RuntimeError" in message
        assert "line" in message and "torch.rand(X.shape[0], X.shape[1])" in message

    def test_in_place_changes_are_caught(self):
        f = _Answer(lambda x: x.mul_(2), "double", ("x",))
        with pytest.raises(CheckFailed, match="changed its argument x in place"):
            f(torch.ones(3))
        # an in-place operation that leaves the values alone is caught by the version
        f = _Answer(lambda x: x.mul_(1), "same", ("x",))
        with pytest.raises(CheckFailed, match="in place"):
            f(torch.ones(3))
        f = _Answer(lambda a: a.sort(), "sorts", ("values",))
        with pytest.raises(CheckFailed, match=r"values.sort\(\)"):
            f([3, 1, 2])
        f = _Answer(lambda a: a.__imul__(2), "scales", ("dout",))
        with pytest.raises(CheckFailed, match="dout in place"):
            f(np.ones(3))

    def test_describe(self):
        assert _describe(torch.ones(2, 3)) == "a float32 tensor of shape (2, 3)"
        assert "on device 'meta'" in _describe(torch.ones(2, device="meta"))
        assert _describe(np.zeros((2,), dtype=np.float32)).startswith("a float32 array")
        assert _describe(torch.nn.Linear(2, 2)) == "a model (Linear)"
        assert _describe((0.5, "train", np.zeros((4, 10), dtype=bool))) == (
            "(0.5, 'train', a bool array of shape (4, 10))"
        )


class TestNumbers:
    @pytest.mark.parametrize(
        "value",
        [
            0.25,
            np.float32(0.25),
            np.float64(0.25),
            torch.tensor(0.25),
            torch.tensor([0.25], dtype=torch.float64),
            np.array(0.25),
            torch.tensor(0.25, requires_grad=True),
        ],
    )
    def test_accepted(self, value):
        assert _as_number(value, "f()") == pytest.approx(0.25)

    @pytest.mark.parametrize(
        "value", [True, None, "0.25", [0.25], torch.ones(2), np.bool_(True)]
    )
    def test_rejected(self, value):
        with pytest.raises(CheckFailed, match="must return a number"):
            _as_number(value, "f()")

    def test_vectors(self):
        for value in ([1, 2], (1.0, 2.0), np.array([1, 2]), torch.tensor([1.0, 2.0])):
            assert _as_vector(value, "f()").tolist() == [1.0, 2.0]
        with pytest.raises(CheckFailed, match="must return"):
            _as_vector("12", "f()")


class TestFresh:
    def test_frozen_generator(self):
        x = torch.ones(64)

        def frozen():
            with torch.random.fork_rng():
                return torch.rand_like(x) > 0.5

        with pytest.raises(CheckFailed, match="fork_rng"):
            _check_fresh(frozen, "f")

    def test_initial_seed(self):
        x = torch.ones(64)

        def reseed():
            torch.manual_seed(torch.initial_seed())
            return torch.rand_like(x) > 0.5

        with pytest.raises(CheckFailed, match="initial_seed"):
            _check_fresh(reseed, "f")

    def test_fresh_passes(self):
        x = torch.ones(64)
        _check_fresh(lambda: torch.rand_like(x) > 0.5, "f")

    def test_private_generator_passes(self):
        g = torch.Generator().manual_seed(7)  # seeded once, outside: correct
        _check_fresh(lambda: torch.rand(64, generator=g) > 0.5, "f")


def test_false_alarm_bound():
    # Hoeffding's radius at 1e-9 for 10,000 draws, the scale the probes work at.
    assert 0.03 < _radius(10_000) < 0.035
