"""Chapter 2's exercise checks pass right answers and catch the typical wrong ones."""

import numpy as np
import pytest
import torch
from torch import nn

from dropkit import checks, dropout, mc_predict


def original(x, p, training):
    return x * torch.empty_like(x).bernoulli_(1 - p) if training else x * (1 - p)


def original_where(x, p, training):  # unusual: torch.where, and x - p x at test time
    if not training:
        return x - p * x
    return torch.where(torch.rand_like(x) < 1 - p, x, torch.zeros_like(x))


def original_per_sample(x, p, training):
    if not training:
        return x * (1 - p)
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return x * x.new_empty(shape).bernoulli_(1 - p)


def original_in_place(x, p, training):
    if not training:
        return x.mul_(1 - p)
    return x.mul_(torch.empty_like(x).bernoulli_(1 - p))


def original_always(x, p, training):  # ignores the training flag
    return x * torch.empty_like(x).bernoulli_(1 - p)


def original_reseeds(x, p, training):
    torch.manual_seed(0)
    return original(x, p, training)


class TestCheckOriginalDropout:
    @pytest.mark.parametrize("fn", [original, original_where], ids=["plain", "where"])
    def test_passes(self, fn, capsys):
        checks.check_original_dropout(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda x, p, t: dropout(x, p, t), "does not rescale in training"),
            (
                lambda x, p, t: x * torch.empty_like(x).bernoulli_(1 - p) if t else x,
                "scales at test time",
            ),
            (
                lambda x, p, t: x * torch.empty_like(x).bernoulli_(p) if t else x * p,
                "probability to drop",
            ),
            (
                lambda x, p, t: (
                    x * torch.empty_like(x).bernoulli_(1 - p) if t else x * p
                ),
                "probability to drop",
            ),
            (original_per_sample, "gave every position along axis 1"),
            (original_in_place, "changed its argument x in place"),
            (original_always, "At test time nothing is dropped"),
            (original_reseeds, "resets torch's global random number generator"),
        ],
        ids=[
            "inverted",
            "identity-at-test",
            "keep-convention",
            "test-times-p",
            "per-sample",
            "in-place",
            "ignores-training",
            "reseeds",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_original_dropout(fn)


def _restoring(fn):
    def wrapped(model, x, k):
        modes = [(m, m.training) for m in model.modules()]
        try:
            return fn(model, x, k)
        finally:
            for m, t in modes:
                m.training = t

    return wrapped


def _switch_on_dropout(model):
    from dropkit.drop import _DropoutBase

    model.eval()
    for m in model.modules():
        if isinstance(m, (nn.modules.dropout._DropoutNd, _DropoutBase)):
            m.train()


@_restoring
def batched(model, x, k):  # unusual: the k passes as one batch of k copies of x
    _switch_on_dropout(model)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, but got {k!r}")
    with torch.no_grad():
        out = model(x.repeat(k, 1)).softmax(-1)
    return out.reshape(k, len(x), -1).mean(0)


@_restoring
def running_mean(model, x, k):  # unusual: a running mean, float64, numpy-int k fine
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(k)
    _switch_on_dropout(model)
    total = 0
    with torch.no_grad():
        for _ in range(int(k)):
            total = total + model(x).double().softmax(-1)
    return total / k


class TestCheckMcPredict:
    @pytest.mark.parametrize(
        "fn", [mc_predict, batched, running_mean], ids=["library", "batched", "running"]
    )
    def test_passes(self, fn, capsys):
        checks.check_mc_predict(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_catches_softmax_of_mean_logits(self):
        @_restoring
        def mean_logits(model, x, k):
            if k < 1 or int(k) != k or isinstance(k, bool):
                raise ValueError(k)
            _switch_on_dropout(model)
            with torch.no_grad():
                return torch.stack([model(x) for _ in range(k)]).mean(0).softmax(-1)

        with pytest.raises(checks.CheckFailed, match="softmax of the mean logits"):
            checks.check_mc_predict(mean_logits)

    def test_catches_reseeding_every_pass(self):
        @_restoring
        def reseeded(model, x, k):
            _switch_on_dropout(model)
            outs = []
            with torch.no_grad():
                for _ in range(k):
                    torch.manual_seed(0)
                    outs.append(model(x).softmax(-1))
            return torch.stack(outs).mean(0)

        with pytest.raises(checks.CheckFailed, match="identical outputs"):
            checks.check_mc_predict(reseeded)

    def test_catches_model_never_run(self):
        def uniform(model, x, k):
            if isinstance(k, bool) or not isinstance(k, int) or k < 1:
                raise ValueError(k)
            return torch.full((len(x), 3), 1 / 3)

        with pytest.raises(checks.CheckFailed, match="did not run the model"):
            checks.check_mc_predict(uniform)

    def test_catches_changed_x(self):
        @_restoring
        def normalises_x(model, x, k):
            x.sub_(x.mean(0))
            return mc_predict(model, x, k)

        with pytest.raises(checks.CheckFailed, match="changed x in place"):
            checks.check_mc_predict(normalises_x)

    def test_catches_model_train(self):
        def shortcut(model, x, k):
            model.train()
            with torch.no_grad():
                return torch.stack([model(x).softmax(-1) for _ in range(k)]).mean(0)

        with pytest.raises(checks.CheckFailed, match="running statistics"):
            checks.check_mc_predict(shortcut)

    def test_catches_modes_not_restored(self):
        def leaves_eval(model, x, k):
            model.eval()
            for m in model.modules():
                if isinstance(m, nn.Dropout):
                    m.train()
            with torch.no_grad():
                return torch.stack([model(x).softmax(-1) for _ in range(k)]).mean(0)

        with pytest.raises(checks.CheckFailed, match="modes differ"):
            checks.check_mc_predict(leaves_eval)

    def test_catches_averaged_logits(self):
        @_restoring
        def logits(model, x, k):
            _switch_on_dropout(model)
            with torch.no_grad():
                return torch.stack([model(x) for _ in range(k)]).mean(0)

        with pytest.raises(checks.CheckFailed, match="sum to 1"):
            checks.check_mc_predict(logits)

    def test_catches_dropout_left_off(self):
        @_restoring
        def deterministic(model, x, k):
            model.eval()
            with torch.no_grad():
                return model(x).softmax(-1)

        with pytest.raises(checks.CheckFailed, match="deterministic"):
            checks.check_mc_predict(deterministic)

    def test_catches_wrong_number_of_passes(self):
        @_restoring
        def one_extra(model, x, k):
            _switch_on_dropout(model)
            with torch.no_grad():
                return torch.stack([model(x).softmax(-1) for _ in range(k + 1)]).mean(0)

        with pytest.raises(checks.CheckFailed, match="not k = 20"):
            checks.check_mc_predict(one_extra)

    def test_catches_only_nn_dropout_switched_on(self):
        @_restoring
        def only_nn_dropout(model, x, k):
            model.eval()
            for m in model.modules():
                if isinstance(m, nn.Dropout):
                    m.train()
            with torch.no_grad():
                return torch.stack([model(x).softmax(-1) for _ in range(k)]).mean(0)

        with pytest.raises(
            checks.CheckFailed,
            match=r"eval mode: model\[5\] \(dropkit Dropout\), "
            r"model\[6\] \(torch AlphaDropout\)",
        ):
            checks.check_mc_predict(only_nn_dropout)

    @pytest.mark.parametrize("family", ["torch", "dropkit"])
    def test_catches_one_family_left_off(self, family):
        from dropkit.drop import _DropoutBase

        base = nn.modules.dropout._DropoutNd if family == "torch" else _DropoutBase

        @_restoring
        def one_family(model, x, k):
            model.eval()
            for m in model.modules():
                if isinstance(m, base):
                    m.train()
            with torch.no_grad():
                return torch.stack([model(x).softmax(-1) for _ in range(k)]).mean(0)

        with pytest.raises(checks.CheckFailed, match="stayed in eval mode"):
            checks.check_mc_predict(one_family)

    def test_catches_batchnorm_in_train_mode_without_updates(self):
        # BatchNorm in training mode with momentum 0 leaves the running statistics alone
        # but still normalises with the batch's: the check must look at the mode during
        # the passes.
        @_restoring
        def batch_stats(model, x, k):
            model.train()
            momentum, model[1].momentum = model[1].momentum, 0.0
            tracked = model[1].num_batches_tracked.clone()
            try:
                with torch.no_grad():
                    return torch.stack([model(x).softmax(-1) for _ in range(k)]).mean(0)
            finally:
                model[1].momentum = momentum
                model[1].num_batches_tracked.copy_(tracked)

        with pytest.raises(checks.CheckFailed, match="running statistics"):
            checks.check_mc_predict(batch_stats)

    def test_catches_unvalidated_k(self):
        def no_validation(model, x, k):
            return mc_predict(model, x, max(1, int(k)))

        with pytest.raises(checks.CheckFailed, match="positive integer"):
            checks.check_mc_predict(no_validation)


def ridge(X, y, p, strength=None, matrix="diag"):
    gram = X.T @ X
    lam = p / (1 - p) if strength is None else strength(p)
    penalty = np.diag(np.diag(gram)) if matrix == "diag" else np.eye(X.shape[1])
    return np.linalg.solve(gram + lam * penalty, X.T @ y)


def ridge_augmented(X, y, p):  # unusual: least squares on data augmented by the penalty
    d = X.shape[1]
    root = np.sqrt(p / (1 - p) * (X**2).sum(0))
    A = np.vstack([X, np.diag(root)])
    b = np.concatenate([y, np.zeros(d)])
    return list(np.linalg.lstsq(A, b, rcond=None)[0])


def ridge_torch(X, y, p):  # unusual: torch, float32
    X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    gram = X.T @ X
    return torch.linalg.solve(
        gram + p / (1 - p) * torch.diag(torch.diag(gram)), X.T @ y
    )


class TestCheckDropoutRidge:
    @pytest.mark.parametrize("fn", [ridge, ridge_augmented, ridge_torch])
    def test_passes(self, fn, capsys):
        checks.check_dropout_ridge(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_catches_changed_input(self):
        def standardises(X, y, p):
            X /= np.linalg.norm(X, axis=0)
            return ridge(X, y, p)

        with pytest.raises(checks.CheckFailed, match="changed its argument X in place"):
            checks.check_dropout_ridge(standardises)

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda X, y, p: ridge(X, y, p, matrix="eye"), "identity"),
            (lambda X, y, p: ridge(X, y, p, strength=lambda p: p), "not p"),
            (
                lambda X, y, p: ridge(
                    X, y, p, strength=lambda p: (1 - p) / p if p else 0.0
                ),
                r"\(1-p\)/p",
            ),
            (
                lambda X, y, p: np.linalg.lstsq(X, y, rcond=None)[0],
                "differ from the minimiser",
            ),
            (
                lambda X, y, p: np.linalg.solve(X.T @ X * (1 + p / (1 - p)), X.T @ y),
                "keeps only the diagonal",
            ),
            (
                lambda X, y, p: ridge(X, y, p, strength=lambda p: p / (1 - p) * 4),
                "differ from the minimiser",
            ),
        ],
        ids=[
            "identity-penalty",
            "strength-p",
            "keep-convention",
            "least-squares",
            "whole-gram",
            "four-times",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_dropout_ridge(fn)


def third(p):
    return p * (2 * p - 1) / (1 - p) ** 2


class TestCheckThirdMoment:
    def test_passes_right_answer(self, capsys):
        checks.check_third_moment(third)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_passes_numpy_and_tensor_returns(self, capsys):
        checks.check_third_moment(lambda p: np.float64(third(p)))
        checks.check_third_moment(lambda p: torch.tensor(third(p), dtype=torch.float64))
        checks.check_third_moment(lambda p: np.float32(third(p)))
        checks.check_third_moment(lambda p: torch.tensor(third(p)))  # float32
        assert capsys.readouterr().out == "all checks passed\n" * 4

    def test_passes_two_point_expectation(self, capsys):
        def two_points(p):  # r - 1 is -1 w.p. p and p/(1-p) w.p. 1-p
            p = torch.tensor(p)
            return (1 - p) * (p / (1 - p)) ** 3 + p * (-1) ** 3

        checks.check_third_moment(two_points)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda p: 0.0, "Gaussian multiplier"),
            (lambda p: 1 / (1 - p) ** 2, "raw third moment"),
            (
                lambda p: (1 - p) * (1 - 2 * p) / p**2 if p else 0.0,
                "probability to drop",
            ),
            (lambda p: (1 - p) * (1 - 2 * p) / p**2, "raised ZeroDivisionError"),
            (lambda p: -third(p), "sign is wrong"),
            (lambda p: p / (1 - p), "differs from"),
            (lambda p: p * (2 * p - 1) / (1 - p) ** 3, "differs from"),
            (lambda p: "0.1", "differs from|number"),
            (lambda p: None, "must return a number"),
            (lambda p: float("nan"), "not finite"),
        ],
        ids=[
            "gaussian",
            "raw",
            "keep",
            "keep-zero-division",
            "sign",
            "variance",
            "power",
            "str",
            "none",
            "nan",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_third_moment(fn)
