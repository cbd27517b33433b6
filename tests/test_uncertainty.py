"""dropkit.uncertainty: MC samples, uncertainty measures, calibration, temperature "
"scaling."""

import math

import numpy as np
import pytest
import torch
from sklearn.calibration import calibration_curve
from torch import nn

from dropkit import (
    Dropout,
    calibration_bins,
    expected_calibration_error,
    expected_entropy,
    fit_temperature,
    mc_predict,
    mc_samples,
    mutual_information,
    predictive_entropy,
    variation_ratio,
)


def random_samples(k=6, n=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(k, n, c, generator=g)).softmax(-1)


class TestMeasures:
    def test_uniform_and_one_hot(self):
        uniform = torch.full((3, 2, 4), 0.25)
        assert torch.allclose(
            predictive_entropy(uniform), torch.full((2,), math.log(4))
        )
        assert torch.allclose(mutual_information(uniform), torch.zeros(2))
        onehot = torch.eye(4)[:2].expand(3, 2, 4)
        assert torch.equal(
            predictive_entropy(onehot), torch.zeros(2)
        )  # 0 log 0 = 0, no NaN
        assert torch.equal(mutual_information(onehot), torch.zeros(2))
        assert torch.equal(variation_ratio(onehot), torch.zeros(2))

    def test_disagreeing_one_hot_passes(self):
        split = torch.eye(2).repeat(2, 1).reshape(4, 1, 2)  # votes 0, 1, 0, 1
        assert torch.allclose(mutual_information(split), torch.tensor([math.log(2)]))
        assert torch.equal(expected_entropy(split), torch.zeros(1))
        assert torch.equal(variation_ratio(split), torch.tensor([0.5]))

    def test_decomposition(self):
        s = random_samples()
        total, aleatoric = predictive_entropy(s), expected_entropy(s)
        assert torch.allclose(mutual_information(s), total - aleatoric, atol=1e-6)
        assert (mutual_information(s) >= 0).all()
        assert (total <= math.log(4) + 1e-6).all()

    def test_variation_ratio_counts_votes(self):
        s = random_samples(k=9, n=7, c=3, seed=1)
        votes = s.argmax(-1)
        want = torch.tensor(
            [1 - torch.bincount(v, minlength=3).max().item() / 9 for v in votes.T]
        )
        assert torch.allclose(variation_ratio(s), want)

    def test_follows_dtype(self):
        s = random_samples().double()
        assert (
            predictive_entropy(s).dtype == mutual_information(s).dtype == torch.float64
        )
        assert variation_ratio(s).dtype == torch.float64

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
    def test_low_precision_softmax_is_accepted(self, dtype):
        # bfloat16 rounds each probability to 2**-8 of itself: rows of its softmax sum
        # to 1 only within 2**-8, beyond the 1e-3 allowed in float32 (issue 30)
        torch.manual_seed(0)
        s = (4 * torch.randn(8, 500, 10)).softmax(-1).to(dtype)
        far = (s.double().sum(-1) - 1).abs().max().item()
        if dtype == torch.bfloat16:
            assert far > 1e-3, "this test needs rows that float32's tolerance rejects"
        for fn in (predictive_entropy, mutual_information, variation_ratio):
            assert fn(s).dtype == dtype
        with pytest.raises(ValueError, match=f"within .* in {dtype}.*not logits"):
            predictive_entropy(torch.randn(4, 3, 5).to(dtype))
        with pytest.raises(ValueError, match="not logits"):
            predictive_entropy((s * 1.05).to(dtype))

    @pytest.mark.parametrize(
        "fn",
        [predictive_entropy, expected_entropy, mutual_information, variation_ratio],
    )
    def test_errors(self, fn):
        with pytest.raises(TypeError, match="torch.Tensor"):
            fn(np.ones((2, 2, 2)) / 2)
        with pytest.raises(
            ValueError, match=r"shape \(k passes, N inputs, C classes\).*\(5, 3\)"
        ):
            fn(torch.ones(5, 3) / 3)
        with pytest.raises(ValueError, match="not logits"):
            fn(torch.randn(4, 3, 5))
        with pytest.raises(TypeError, match="floating point"):
            fn(torch.ones(2, 2, 2, dtype=torch.int64))
        with pytest.raises(ValueError, match="two classes"):
            fn(torch.ones(2, 3, 1))


def small_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), Dropout(0.5), nn.Linear(16, 3)
    )
    net(torch.randn(32, 5))  # BatchNorm statistics
    return net.eval()


class TestMcSamples:
    def test_shape_and_mean_is_mc_predict(self):
        net, x = small_net(), torch.randn(4, 5)
        torch.manual_seed(1)
        s = mc_samples(net, x, 10)
        torch.manual_seed(1)
        mean = mc_predict(net, x, 10)
        assert s.shape == (10, 4, 3)
        assert torch.allclose(s.mean(0), mean, atol=1e-6)
        assert torch.allclose(s.sum(-1), torch.ones(10, 4), atol=1e-6)
        assert not torch.equal(s[0], s[1]), "the passes must differ: dropout was not on"

    def test_modes_and_batchnorm_untouched(self):
        net = small_net()
        net[3].train()
        modes = [m.training for m in net.modules()]
        stats = net[1].running_mean.clone(), net[1].running_var.clone()
        mc_samples(
            net, torch.randn(1, 5), 3
        )  # a batch of one works: BatchNorm in eval mode
        assert [m.training for m in net.modules()] == modes
        assert torch.equal(net[1].running_mean, stats[0]) and torch.equal(
            net[1].running_var, stats[1]
        )

    def test_raw_outputs(self):
        net, x = small_net(), torch.randn(4, 5)
        torch.manual_seed(2)
        raw = mc_samples(net, x, 3, softmax=False)
        torch.manual_seed(2)
        assert torch.allclose(raw.softmax(-1), mc_samples(net, x, 3))

    @pytest.mark.parametrize("k", [0, -2, 1.5, True, "3"])
    def test_bad_k(self, k):
        with pytest.raises(ValueError, match="positive integer"):
            mc_samples(small_net(), torch.randn(2, 5), k)

    def test_needs_dropout(self):
        with pytest.raises(ValueError, match="no dropout module"):
            mc_samples(nn.Linear(3, 2), torch.randn(2, 3), 2)


class TestCalibration:
    def test_matches_sklearn(self):
        torch.manual_seed(0)
        probs = (3 * torch.randn(3000, 10)).softmax(1)
        labels = torch.randint(0, 10, (3000,))
        bins = calibration_bins(probs, labels, n_bins=15)
        conf, pred = probs.double().max(1)
        acc_sk, conf_sk = calibration_curve(
            (pred == labels).numpy(), conf.numpy(), n_bins=15
        )
        full = (bins.count > 0).numpy()
        np.testing.assert_allclose(bins.accuracy.numpy()[full], acc_sk, atol=1e-12)
        np.testing.assert_allclose(bins.confidence.numpy()[full], conf_sk, atol=1e-12)
        assert int(bins.count.sum()) == 3000
        assert torch.isnan(bins.accuracy[~torch.from_numpy(full)]).all()

    def test_edges_are_right_closed(self):
        probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        bins = calibration_bins(probs, torch.tensor([0, 0, 1]), n_bins=10)
        assert (
            bins.count[4] == 1 and bins.count[9] == 2
        )  # 0.5 in (0.4, 0.5], 1.0 in (0.9, 1]

    def test_ece_values(self):
        conf = torch.tensor(
            [0.95, 0.92, 0.85, 0.70, 0.65, 0.55, 0.45, 0.30], dtype=torch.float64
        )
        right = torch.tensor([1, 1, 0, 1, 0, 1, 0, 0])
        probs = torch.cat([conf[:, None], ((1 - conf) / 9)[:, None].expand(8, 9)], 1)
        labels = torch.where(right == 1, 0, 1)
        # bins of 0.2: (0.2,0.4] 0.3 wrong; (0.4,0.6] 0.45 wrong, 0.55 right;
        # (0.6,0.8] 0.65, 0.70;
        # (0.8,1] 0.85 wrong, 0.92 and 0.95 right
        want = (
            0.3 + 2 * 0.0 + 2 * abs(0.5 - 0.675) + 3 * abs(2 / 3 - 0.9066666666666666)
        ) / 8
        assert expected_calibration_error(probs, labels, n_bins=5) == pytest.approx(
            want
        )
        perfect = torch.tensor([[1.0, 0.0]] * 4)
        assert (
            expected_calibration_error(perfect, torch.zeros(4, dtype=torch.int64))
            == 0.0
        )

    def test_errors(self):
        probs = torch.full((4, 3), 1 / 3)
        with pytest.raises(ValueError, match=r"labels must be an \(N,\) tensor, N = 4"):
            expected_calibration_error(probs, torch.zeros(3, dtype=torch.int64))
        with pytest.raises(TypeError, match="integer class indices"):
            expected_calibration_error(probs, torch.zeros(4))
        with pytest.raises(ValueError, match=r"in \[0, 2\]"):
            expected_calibration_error(probs, torch.tensor([0, 1, 2, 3]))
        with pytest.raises(
            ValueError, match="n_bins must be a positive integer, but got 0"
        ):
            expected_calibration_error(
                probs, torch.zeros(4, dtype=torch.int64), n_bins=0
            )
        with pytest.raises(ValueError, match="C >= 2"):
            expected_calibration_error(torch.ones(4), torch.zeros(4, dtype=torch.int64))


class TestFitTemperature:
    def test_recovers_known_temperature(self):
        torch.manual_seed(0)
        z = torch.randn(20000, 10)
        drawn = (z - (-torch.rand(20000, 10).log()).log()).argmax(1)
        assert fit_temperature(3 * z, drawn) == pytest.approx(3, abs=0.2)
        assert fit_temperature(z / 2, drawn) == pytest.approx(0.5, abs=0.05)

    def test_minimises_nll(self):
        torch.manual_seed(1)
        logits = 4 * torch.randn(500, 5)
        labels = (logits / 2 - (-torch.rand(500, 5).log()).log()).argmax(1)
        t = fit_temperature(logits, labels)
        assert 1 < t < 4

        def nll(t):
            return float(nn.functional.cross_entropy(logits.double() / t, labels))

        assert nll(t) <= min(nll(t * 1.01), nll(t / 1.01))

    def test_errors(self):
        with pytest.raises(ValueError, match="bounds must be"):
            fit_temperature(
                torch.randn(4, 3), torch.zeros(4, dtype=torch.int64), bounds=(0, 5)
            )
        with pytest.raises(ValueError, match="labels must be"):
            fit_temperature(torch.randn(4, 3), torch.zeros(5, dtype=torch.int64))
