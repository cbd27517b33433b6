"""Chapter 7's exercise checks pass right answers and catch the typical wrong ones."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from dropkit import (
    checks,
    expected_calibration_error,
    mutual_information,
    variation_ratio,
)


def entropy(p):
    return -torch.special.xlogy(p, p).sum(-1)


def mi_as_mean_kl(s):  # unusual: the mean KL divergence of each pass from the mean
    mean = s.mean(0, keepdim=True)
    log = s.clamp_min(1e-30).log() - mean.clamp_min(1e-30).log()
    return (s * log).sum(-1).mean(0)


def mi_clamps_in_place(s):
    s.clamp_(min=1e-12)
    return entropy(s.mean(0)) - entropy(s).mean(0)


class TestCheckMutualInformation:
    @pytest.mark.parametrize(
        "fn", [mutual_information, mi_as_mean_kl], ids=["library", "mean-kl"]
    )
    def test_passes(self, fn, capsys):
        checks.check_mutual_information(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_catches_in_place_clamp(self):
        with pytest.raises(checks.CheckFailed, match="changed its argument samples"):
            checks.check_mutual_information(mi_clamps_in_place)

    def test_catches_float32_computation(self):
        # computed in float32 on float64 samples: right to float32 precision only
        with pytest.raises(checks.CheckFailed, match="keep the samples' dtype"):
            checks.check_mutual_information(
                lambda s: entropy(s.float().mean(0)) - entropy(s.float()).mean(0)
            )

    def test_catches_keepdim(self):
        with pytest.raises(checks.CheckFailed, match=r"shape \(1,\)"):
            checks.check_mutual_information(
                lambda s: (entropy(s.mean(0)) - entropy(s).mean(0))[:, None]
            )

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda s: entropy(s.mean(0)), "predictive entropy"),
            (lambda s: entropy(s).mean(0), "expected entropy"),
            (lambda s: entropy(s).mean(0) - entropy(s.mean(0)), "negative"),
            (lambda s: (entropy(s.mean(0)) - entropy(s).mean(0)) / math.log(2), "log2"),
            (
                lambda s: (
                    -(s.mean(0) * s.mean(0).log()).sum(-1)
                    + (s * s.log()).sum(-1).mean(0)
                ),
                "NaN",
            ),
            (lambda s: entropy(s.mean(1)) - entropy(s).mean(1), "shape"),
            (
                lambda s: (
                    entropy(s.clamp_min(1e-12).log().mean(0).softmax(-1))
                    - entropy(s).mean(0)
                ),
                "differ",
            ),
        ],
        ids=[
            "entropy",
            "expected-entropy",
            "sign",
            "log2",
            "nan",
            "wrong-dim",
            "log-mean",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_mutual_information(fn)

    def test_catches_non_tensor(self):
        with pytest.raises(checks.CheckFailed, match="must return a tensor"):
            checks.check_mutual_information(lambda s: mutual_information(s).tolist())

    def test_passes_numpy(self, capsys):
        checks.check_mutual_information(lambda s: mutual_information(s).numpy())
        assert capsys.readouterr().out == "all checks passed\n"


def votes_ratio(s):
    votes = torch.nn.functional.one_hot(s.argmax(-1), s.shape[-1]).sum(0)
    return votes.max(-1).values.double() / s.shape[0]


def vr_mode(s):  # unusual: torch.mode of the votes, float32 result
    votes = s.argmax(-1)  # (k, N)
    mode = votes.mode(0).values
    return 1 - (votes == mode).float().mean(0)


class TestCheckVariationRatio:
    @pytest.mark.parametrize("fn", [variation_ratio, vr_mode], ids=["library", "mode"])
    def test_passes(self, fn, capsys):
        checks.check_variation_ratio(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_catches_passes_and_inputs_swapped(self):
        # counts over the inputs instead of the passes: wrong for k != N
        def swapped(s):
            votes = s.argmax(-1).T
            return 1 - votes.mode(0).values.new_tensor(
                [(v == v.mode().values).double().mean() for v in votes.T]
            )

        with pytest.raises(checks.CheckFailed):
            checks.check_variation_ratio(swapped)

    @pytest.mark.parametrize(
        "fn,message",
        [
            (votes_ratio, "fraction of passes that agree"),
            (lambda s: 1 - s.mean(0).max(-1).values, "counts votes"),
            (lambda s: 1 - votes_ratio(s.transpose(0, 1)).new_ones(s.shape[1]), "0.25"),
            (
                lambda s: 1 - (s.argmax(-1) == s.mean(0).argmax(-1)).double().mean(0),
                "0.25",
            ),
        ],
        ids=["agreement", "mean-confidence", "zeros", "vote-of-mean"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_variation_ratio(fn)


def ece_variant(
    probs,
    labels,
    n_bins,
    weighted=True,
    reduce="sum",
    true_class=False,
    floor=False,
    nan=False,
):
    probs = probs.double()
    conf, pred = probs.max(1)
    if true_class:
        conf = probs[torch.arange(len(labels)), labels]
    correct = (pred == labels).double()
    if floor:
        index = (
            (conf * n_bins).floor().long()
        )  # 1.0 lands in bin n_bins, 0.5 one bin too high
    else:
        edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
        index = torch.bucketize(conf, edges[1:-1])
    gaps, weights = [], []
    for m in range(n_bins):
        inside = index == m
        if nan or inside.any():
            gaps.append(float((correct[inside].mean() - conf[inside].mean()).abs()))
            weights.append(float(inside.sum()) / len(conf))
    if floor and (index == n_bins).any():
        raise IndexError("index out of range")
    if reduce == "max":
        return max(gaps)
    if not weighted:
        return sum(gaps) / len(gaps)
    return sum(w * g for w, g in zip(weights, gaps))


def ece_numpy(probs, labels, n_bins):  # unusual: numpy digitize, float32 answer
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    conf, pred = probs.max(1), probs.argmax(1)
    bins = np.digitize(conf, np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
    ece = 0.0
    for m in np.unique(bins):
        inside = bins == m
        ece += inside.mean() * abs(
            (pred[inside] == labels[inside]).mean() - conf[inside].mean()
        )
    return np.float32(ece)


class TestCheckExpectedCalibrationError:
    @pytest.mark.parametrize(
        "fn", [expected_calibration_error, ece_numpy], ids=["library", "numpy"]
    )
    def test_passes(self, fn, capsys):
        checks.check_expected_calibration_error(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_catches_one_bin_short(self):
        with pytest.raises(checks.CheckFailed, match="n_bins \\+ 1 edges"):
            checks.check_expected_calibration_error(
                lambda p, y, n: ece_variant(p, y, n - 1)
            )

    def test_passes_reference_variant(self, capsys):
        checks.check_expected_calibration_error(ece_variant)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "kwargs,message",
        [
            ({"weighted": False}, "equally"),
            ({"reduce": "max"}, "largest gap"),
            ({"true_class": True}, "predicted"),
            ({"floor": True}, "1.0"),
            ({"nan": True}, "NaN"),
        ],
        ids=["unweighted", "max", "true-class", "floor-bins", "empty-bins-nan"],
    )
    def test_catches(self, kwargs, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_expected_calibration_error(
                lambda p, y, n: ece_variant(p, y, n, **kwargs)
            )

    def test_catches_left_closed_bins(self):
        def left_closed(probs, labels, n_bins):
            conf, pred = probs.double().max(1)
            index = (conf * n_bins).floor().long().clamp_max(n_bins - 1)  # 0.5 goes up
            correct = (pred == labels).double()
            return sum(
                float((index == m).sum())
                / len(conf)
                * float((correct[index == m].mean() - conf[index == m].mean()).abs())
                for m in range(n_bins)
                if (index == m).any()
            )

        with pytest.raises(checks.CheckFailed, match="right-closed"):
            checks.check_expected_calibration_error(left_closed)

    def test_catches_non_number(self):
        with pytest.raises(checks.CheckFailed, match="must return a number"):
            checks.check_expected_calibration_error(lambda p, y, n: "0.1")


def sklearn_auroc(a, b):
    return roc_auc_score(
        np.r_[np.zeros(len(a)), np.ones(len(b))], torch.cat([a, b]).numpy()
    )


def ranks_auroc(a, b):  # unusual: Mann-Whitney U from average ranks (numpy float)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a.numpy(), b.numpy()]))
    u = ranks[len(a) :].sum() - len(b) * (len(b) + 1) / 2
    return u / (len(a) * len(b))


class TestCheckAuroc:
    @pytest.mark.parametrize("fn", [sklearn_auroc, ranks_auroc])
    def test_passes(self, fn, capsys):
        checks.check_auroc(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (lambda a, b: sklearn_auroc(b, a), "reversed"),
            (lambda a, b: float((b[:, None] > a[None]).double().mean()), "one half"),
            (lambda a, b: float((b[:, None] >= a[None]).double().mean()), "one half"),
            (lambda a, b: float((b > a.mean()).double().mean()), "AUROC is"),
            (
                lambda a, b: (
                    float(
                        (b.float()[:, None] > a.float()[None]).float().mean()
                        + 0.5 * (b[:, None] == a[None]).float().mean()
                    )
                    if len(a) < 100
                    else float((b[:, None] > a[None]).double().mean())
                ),
                "random",
            ),
        ],
        ids=["reversed", "ties-lost", "ties-won", "threshold-accuracy", "big-ties"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_auroc(fn)

    def test_catches_non_number(self):
        with pytest.raises(checks.CheckFailed, match="must return a number"):
            checks.check_auroc(lambda a, b: [0.5])
