"""Chapter 5's exercise checks pass right answers and catch the usual wrong ones."""

import numpy as np
import pytest
import torch

from dropkit import checks, drop_path, drop_path_rates


def batch_mode(x, p):
    if p == 0:
        return x
    noise = x.new_empty((1,) * x.dim()).bernoulli_(1 - p)
    return x * (noise / (1 - p) if p < 1 else noise)


def batch_mode_unscaled(x, p):
    return x * x.new_empty((1,) * x.dim()).bernoulli_(1 - p) if p > 0 else x


def batch_mode_keep_convention(x, p):
    if p == 0:
        return x
    noise = x.new_empty((1,) * x.dim()).bernoulli_(p)
    return x * noise / p if p > 0 else x * noise


def batch_mode_nan(x, p):
    if p == 0:
        return x
    return x.div(1 - p) * x.new_empty((1,) * x.dim()).bernoulli_(1 - p)


def batch_mode_cpu_float(x, p):
    if p == 0:
        return x
    noise = torch.rand(1).floor_().add_(torch.rand(1) < 1 - p)
    return x * (noise / (1 - p) if p < 1 else noise)


def batch_mode_where(x, p):  # unusual: one uniform, torch.where
    if p == 1:
        return torch.zeros_like(x)
    u = torch.rand((), device=x.device)
    return torch.where(u >= p, x / (1 - p), torch.zeros_like(x))


def batch_mode_where_no_guard(x, p):  # zeros at p = 1, but a NaN gradient
    u = torch.rand((), device=x.device)
    return torch.where(u >= p, x / (1 - p), torch.zeros_like(x))


def batch_mode_reseeds(x, p):
    torch.manual_seed(0)
    return batch_mode(x, p)


def batch_mode_in_place(x, p):
    if p == 0:
        return x
    keep = float(torch.rand(()) >= p)
    return x.mul_(keep / (1 - p) if p < 1 else 0.0)


class TestCheckBatchStochasticDepth:
    @pytest.mark.parametrize("fn", [batch_mode, batch_mode_where])
    def test_passes(self, fn, capsys):
        checks.check_batch_stochastic_depth(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_passes_torchvision(self):
        from torchvision.ops import stochastic_depth

        checks.check_batch_stochastic_depth(
            lambda x, p: stochastic_depth(x, p, "batch")
        )

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda x, p: drop_path(x, p), "ONE number for the whole batch"),
            (batch_mode_unscaled, "forget to scale"),
            (batch_mode_keep_convention, "probability to drop"),
            (batch_mode_nan, "NaN"),
            (batch_mode_cpu_float, "make the mask from the input"),
            (batch_mode_reseeds, "resets torch's global random number generator"),
            (batch_mode_in_place, "changed its argument x in place"),
            (batch_mode_where_no_guard, "gradient is NaN"),
        ],
        ids=[
            "per-sample",
            "unscaled",
            "keep-convention",
            "nan-at-p1",
            "float32-cpu-mask",
            "reseeds",
            "in-place",
            "where-no-guard",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_batch_stochastic_depth(fn)


class TestCheckExpectedDepth:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda rates: sum(1 - r for r in rates),
            lambda rates: len(rates) - np.sum(rates, dtype=np.float32),
            lambda rates: (1 - torch.tensor(rates)).sum(),
        ],
        ids=["sum", "numpy-float32", "tensor"],
    )
    def test_passes(self, fn, capsys):
        checks.check_expected_depth(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda rates: sum(rates), "expected number of DROPPED branches"),
            (
                lambda rates: float(torch.tensor([1 - r for r in rates]).prod()),
                "ALL branches survive",
            ),
            (
                lambda rates: len(rates) * (1 - max(rates)),
                "active with probability 1 - p_l",
            ),
            (lambda rates: [1 - r for r in rates], "must return a number"),
            (
                lambda rates: rates.reverse() or sum(1 - r for r in rates),
                "changed its argument rates in place",
            ),
        ],
        ids=["sum-of-rates", "product", "max-rate", "list", "reverses"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_expected_depth(fn)


class TestCheckHuangSurvival:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda L, pL: [1 - l / L * (1 - pL) for l in range(1, L + 1)],
            lambda L, pL: torch.linspace(1 - (1 - pL) / L, pL, L),  # float32
            lambda L, pL: 1 - np.arange(1, L + 1) / L * (1 - pL),
        ],
        ids=["list", "torch-linspace", "numpy"],
    )
    def test_passes(self, fn, capsys):
        checks.check_huang_survival(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda L, pL: [l / L * (1 - pL) for l in range(1, L + 1)], "drop rates"),
            (
                lambda L, pL: [1 - r for r in drop_path_rates(1 - pL, L)],
                "timm's linspace",
            ),
            (lambda L, pL: [1 - l / L * (1 - pL) for l in range(L)], "1 - l/L"),
            (
                lambda L, pL: [1 - l / L * (1 - pL) for l in range(1, L)],
                "one probability per block",
            ),
        ],
        ids=["drop-rates", "linspace", "off-by-one", "too-short"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_huang_survival(fn)


def circulating(x, drop_prob=0.0, training=False):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()
    return x.div(keep_prob) * random_tensor


def drop_path_reseeds(x, p=0.0, training=False):
    torch.manual_seed(0)
    return drop_path(x, p, training)


def drop_path_in_place(x, p=0.0, training=False):
    if not training or p == 0:
        return x
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    keep = x.new_empty(shape).bernoulli_(1 - p)
    return x.mul_(keep.div_(1 - p) if p < 1 else keep)


def drop_path_in_eval(x, p=0.0, training=False):  # ignores the training flag
    return drop_path(x, p, True)


class TestCheckDropPath:
    def test_passes_library_and_timm(self, capsys):
        import timm
        from torchvision.ops import stochastic_depth

        checks.check_drop_path(drop_path)
        checks.check_drop_path(timm.layers.drop_path)
        checks.check_drop_path(lambda x, p, t: stochastic_depth(x, p, "row", t))
        assert capsys.readouterr().out == "all checks passed\n" * 3

    def test_catches_nan_to_num(self):
        def hides_nan(x, p=0.0, training=False):  # the circulating bug, NaN hidden
            return torch.nan_to_num(circulating(x, p, training)) if training else x

        with pytest.raises(checks.CheckFailed, match="NaN"):
            checks.check_drop_path(hides_nan)

    def test_passes_other_parameter_names(self, capsys):
        def fixed(inp, rate=0.0, train=False):  # unusual names, called positionally
            if not train or rate == 0:
                return inp
            if rate == 1:  # zeros that keep the graph: x gets a zero gradient
                return inp.masked_fill(torch.ones((), dtype=torch.bool), 0.0)
            u = torch.rand((inp.shape[0],) + (1,) * (inp.dim() - 1), device=inp.device)
            return torch.where(u >= rate, inp / (1 - rate), torch.zeros_like(inp))

        checks.check_drop_path(fixed)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (circulating, "NaN"),
            (
                lambda x, p=0.0, training=False: torch.nn.functional.dropout(
                    x, p, training
                ),
                "one number per sample",
            ),
            (
                lambda x, p=0.0, training=False: drop_path(
                    x, p, training, scale_by_keep=False
                ),
                "forget to rescale",
            ),
            (
                lambda x, p=0.0, training=False: (
                    drop_path(x, 1 - p, training)
                    if 0 < p < 1
                    else drop_path(x, p, training)
                ),
                "probability to drop",
            ),
            (
                lambda x, p=0.0, training=False: drop_path(x.clone(), p, training),
                "its input itself",
            ),
            (
                lambda x, p=0.0, training=False: (
                    x if not training else batch_mode(x, p)
                ),
                "every sample of the batch the same mask",
            ),
            (drop_path_reseeds, "resets torch's global random number generator"),
            (drop_path_in_place, "changed its argument x in place"),
            (drop_path_in_eval, "is the training flag ignored"),
            (
                lambda x, p=0.0, training=False: (
                    torch.zeros_like(x)
                    if training and p == 1
                    else drop_path(x, p, training)
                ),
                "cut from the autograd graph",
            ),
        ],
        ids=[
            "circulating-nan",
            "per-entry",
            "unscaled",
            "keep-convention",
            "copies-in-eval",
            "per-batch",
            "reseeds",
            "in-place",
            "drops-in-eval",
            "zeros-like-at-1",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_drop_path(fn)


def stage_rates(max_rate, depths):
    per_stage = drop_path_rates(max_rate, len(depths))
    return [[rate] * depth for rate, depth in zip(per_stage, depths)]


def stage_rates_by_mean(max_rate, depths):
    stages = drop_path_rates(max_rate, depths, stagewise=True)
    return [[sum(s) / len(s)] * len(s) for s in stages]


def stage_rates_numpy(max_rate, depths):  # unusual: numpy arrays per stage
    S = len(depths)
    return [np.full(d, max_rate * s / max(S - 1, 1)) for s, d in enumerate(depths)]


class TestCheckStageRates:
    @pytest.mark.parametrize("fn", [stage_rates, stage_rates_numpy])
    def test_passes(self, fn, capsys):
        checks.check_stage_rates(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_single_stage_division_names_the_input(self):
        def divides(max_rate, depths):
            S = len(depths)
            return [[max_rate * s / (S - 1)] * d for s, d in enumerate(depths)]

        with pytest.raises(
            checks.CheckFailed,
            match=r"stage_rates\(0.2, \[3\]\) raised ZeroDivisionError",
        ):
            checks.check_stage_rates(divides)

    @pytest.mark.parametrize(
        "fn,message",
        [
            (
                lambda r, d: drop_path_rates(r, d, stagewise=True),
                "per-block rates grouped",
            ),
            (lambda r, d: drop_path_rates(r, d), "one list of rates per stage"),
            (
                lambda r, d: [[(s + 1) / len(d) * r] * n for s, n in enumerate(d)],
                "first stage is never dropped",
            ),
            (
                lambda r, d: [[s / len(d) * r] * n for s, n in enumerate(d)],
                "last stage's rate must be max_rate",
            ),
            (stage_rates_by_mean, "averaged the per-block rates"),
            (
                lambda r, d: [[x] * 2 for x in drop_path_rates(r, len(d))],
                "stage lengths",
            ),
            (
                lambda r, d: [
                    [x] * n for x, n in zip(drop_path_rates(r, len(d))[::-1], d)
                ],
                "first stage is never dropped",
            ),
        ],
        ids=[
            "timm-grouped",
            "flat",
            "starts-above-zero",
            "ends-below-max",
            "stage-mean",
            "wrong-lengths",
            "reversed",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_stage_rates(fn)
