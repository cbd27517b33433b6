"""Tests for dropkit.data (offline d2l data modules) and dropkit.training."""

import random

import numpy as np
import pytest
import torch

from dropkit.data import MNIST1D, Digits
from dropkit.models import DropoutMLP
from dropkit.training import train


@pytest.fixture(scope="module")
def mnist1d():
    return MNIST1D(batch_size=100, num_samples=1000, seed=3)


class TestMNIST1D:
    def test_shapes_and_split(self, mnist1d):
        assert mnist1d.X.shape == (1000, 1, 40) and mnist1d.X.dtype == torch.float32
        assert mnist1d.y.dtype == torch.int64 and set(mnist1d.y.tolist()) == set(
            range(10)
        )
        assert mnist1d.num_train == 800
        xb, yb = next(iter(mnist1d.val_dataloader()))
        assert xb.shape == (100, 1, 40) and yb.shape == (100,)
        assert (
            len(mnist1d.train_dataloader()) == 8 and len(mnist1d.val_dataloader()) == 2
        )

    def test_deterministic_and_leaves_global_rng_alone(self, mnist1d):
        np.random.seed(123)
        random.seed(123)
        other = MNIST1D(num_samples=1000, seed=3)
        assert torch.equal(other.X, mnist1d.X) and torch.equal(other.y, mnist1d.y)
        assert np.random.rand() == np.random.RandomState(123).rand(), (
            "numpy's global state was changed"
        )
        assert random.random() == random.Random(123).random(), (
            "random's global state was changed"
        )
        assert not torch.equal(MNIST1D(num_samples=1000, seed=4).X, mnist1d.X)

    @pytest.mark.parametrize(
        "kw,match",
        [
            ({"num_samples": 995}, "multiple of 10"),
            ({"batch_size": 0}, "batch_size"),
            ({"num_samples": -10}, "num_samples"),
        ],
    )
    def test_bad_arguments(self, kw, match):
        with pytest.raises(ValueError, match=match):
            MNIST1D(**kw)


class TestDigits:
    def test_shapes_split_and_range(self):
        data = Digits(num_train=500, seed=1)
        assert (
            data.X.shape == (1797, 1, 8, 8) and 0 <= data.X.min() and data.X.max() <= 1
        )
        assert sum(len(b[1]) for b in data.train_dataloader()) == 500
        assert sum(len(b[1]) for b in data.val_dataloader()) == 1297
        assert torch.equal(Digits(num_train=500, seed=1).y, data.y)

    def test_bad_num_train(self):
        with pytest.raises(
            ValueError,
            match="num_train must leave images for validation .* but got 1797",
        ):
            Digits(num_train=1797)


class TestTraining:
    def test_train_learns_and_returns_curves(self, mnist1d):
        torch.manual_seed(0)
        curves = train(
            DropoutMLP(dropout_1=0.2, dropout_2=0.2, lr=0.3), mnist1d, max_epochs=3
        )
        assert set(curves) == {"train_loss", "val_loss", "val_acc"}
        assert len(curves["train_loss"]) == len(curves["val_acc"]) == 3  # one per epoch
        assert curves["train_loss"][-1] < curves["train_loss"][0]
        assert curves["val_acc"][-1] > 0.2, (
            "should beat chance (0.1) after three epochs"
        )

    def test_same_seed_same_run(self, mnist1d):
        runs = []
        for _ in range(2):
            torch.manual_seed(1)
            runs.append(train(DropoutMLP(lr=0.1), mnist1d, max_epochs=1))
        assert runs[0] == runs[1]

    def test_eval_sets_measure_in_eval_mode_and_leave_training_alone(self, mnist1d):
        X, y = mnist1d.X[: mnist1d.num_train], mnist1d.y[: mnist1d.num_train]
        runs = []
        for sets in (None, {"fit": (X, y)}):
            torch.manual_seed(2)
            model = DropoutMLP(dropout_1=0.5, dropout_2=0.5, lr=0.1)
            runs.append((train(model, mnist1d, max_epochs=2, eval_sets=sets), model))
        (plain, _), (curves, model) = runs
        assert set(curves) == set(plain) | {"fit_loss", "fit_acc"}
        # the evaluations draw no random numbers: the training run is the same
        assert all(curves[k] == plain[k] for k in plain)
        model.eval()
        with torch.no_grad():
            out = model(X)  # eval mode: the whole network, dropout off
        assert curves["fit_loss"][-1] == pytest.approx(float(model.loss(out, y)))
        assert curves["fit_acc"][-1] == pytest.approx(float(model.accuracy(out, y)))
        assert len(curves["fit_acc"]) == 2

    @pytest.mark.parametrize(
        "sets, error, match",
        [
            ([1, 2], TypeError, "eval_sets must be a dict of name: \\(X, y\\)"),
            ({"train": (1, 2)}, ValueError, "other than 'train' and 'val'.*'train'"),
            ({"fit": 3}, ValueError, "eval_sets\\['fit'\\] must be a pair"),
        ],
    )
    def test_bad_eval_sets(self, mnist1d, sets, error, match):
        with pytest.raises(error, match=match):
            train(DropoutMLP(), mnist1d, 1, eval_sets=sets)

    @pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
    def test_bad_epochs(self, mnist1d, epochs):
        with pytest.raises(ValueError, match="max_epochs must be a positive integer"):
            train(DropoutMLP(), mnist1d, epochs)

    def test_model_uses_dropkit_dropout(self):
        from dropkit import Dropout

        model = DropoutMLP(dropout_1=0.1, dropout_2=0.4)
        rates = [m.p for m in model.net if isinstance(m, Dropout)]
        assert rates == [0.1, 0.4]
