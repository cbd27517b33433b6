"""Chapter 2's exercise checks pass right answers and catch the typical wrong ones."""

import numpy as np
import pytest
import torch
from torch import nn

from dropkit import checks, dropout, mc_predict


def original(x, p, training):
    return x * torch.empty_like(x).bernoulli_(1 - p) if training else x * (1 - p)


class TestCheckOriginalDropout:
    def test_passes_right_answer(self, capsys):
        checks.check_original_dropout(original)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_catches_inverted_scaling(self):
        with pytest.raises(checks.CheckFailed, match="does not rescale in training"):
            checks.check_original_dropout(
                lambda x, p, training: dropout(x, p, training)
            )

    def test_catches_identity_at_test_time(self):
        def no_test_scaling(x, p, training):
            return x * torch.empty_like(x).bernoulli_(1 - p) if training else x

        with pytest.raises(checks.CheckFailed, match="scales at test time"):
            checks.check_original_dropout(no_test_scaling)

    def test_catches_keep_convention(self):
        def keep(x, p, training):
            return x * torch.empty_like(x).bernoulli_(p) if training else x * p

        with pytest.raises(checks.CheckFailed, match="probability to drop"):
            checks.check_original_dropout(keep)


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


class TestCheckMcPredict:
    def test_passes_library(self, capsys):
        checks.check_mc_predict(mc_predict)
        assert capsys.readouterr().out == "all checks passed\n"

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

        with pytest.raises(checks.CheckFailed, match="exactly k passes"):
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


class TestCheckDropoutRidge:
    def test_passes_right_answer(self, capsys):
        checks.check_dropout_ridge(ridge)
        assert capsys.readouterr().out == "all checks passed\n"

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
        ],
        ids=["identity-penalty", "strength-p", "keep-convention", "least-squares"],
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
        assert capsys.readouterr().out == "all checks passed\nall checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda p: 0.0, "Gaussian multiplier"),
            (lambda p: 1 / (1 - p) ** 2, "raw third moment"),
            (
                lambda p: (1 - p) * (1 - 2 * p) / p**2 if p else 0.0,
                "probability to drop",
            ),
            (lambda p: (1 - p) * (1 - 2 * p) / p**2, "divided by zero"),
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
