"""noise_shape and spatial dropout beyond tests/test_drop.py: every broadcast pattern of
2-D to 4-D inputs, the zero counts of a shared mask, noise_shape validation, and torch's
Dropout1d/2d/3d modules."""

import itertools
import math
import warnings

import pytest
import torch
from scipy.stats import binomtest
from torch import nn

from dropkit import SpatialDropout, dropout

ALPHA = 1e-9


def patterns(shape):
    """Every noise shape for `shape`: each axis shared (1) or drawn (None)."""
    return [
        tuple(1 if share else None for share in choice)
        for choice in itertools.product((True, False), repeat=len(shape))
    ]


SHAPES = [(6, 5), (4, 3, 5), (3, 4, 2, 5)]


@pytest.mark.parametrize(
    "shape,noise_shape", [(s, n) for s in SHAPES for n in patterns(s)], ids=str
)
class TestBroadcastPatterns:
    def test_output_is_the_broadcast_mask(self, shape, noise_shape):
        torch.manual_seed(0)
        x = torch.randn(shape)
        y = dropout(x, 0.5, noise_shape=noise_shape)
        mask = y / x  # 0 or 2 everywhere, since x has no zeros
        first = mask
        for axis, n in enumerate(noise_shape):
            if n == 1:
                first = first.narrow(axis, 0, 1)
        assert set(first.unique().tolist()) <= {0.0, 2.0}
        assert torch.equal(mask, first.expand(shape)), (
            f"mask not shared along the axes of 1 in {noise_shape}"
        )

    def test_keep_rate_of_mask_entries(self, shape, noise_shape):
        torch.manual_seed(1)
        x = torch.ones(shape)
        draws = math.prod(s if n is None else 1 for s, n in zip(shape, noise_shape))
        kept = 0
        for _ in range(400):
            kept += (
                int((dropout(x, 0.3, noise_shape=noise_shape) != 0).sum())
                * draws
                // x.numel()
            )
        assert binomtest(kept, 400 * draws, 0.7).pvalue > ALPHA, (
            f"kept {kept} of {400 * draws} mask entries"
        )

    def test_size_entries_equal_none(self, shape, noise_shape):
        x = torch.randn(shape)
        explicit = tuple(s if n is None else 1 for s, n in zip(shape, noise_shape))
        torch.manual_seed(2)
        a = dropout(x, 0.4, noise_shape=noise_shape)
        torch.manual_seed(2)
        assert torch.equal(a, dropout(x, 0.4, noise_shape=explicit))


class TestZeroCounts:
    def test_shared_axis_gives_even_counts(self):
        torch.manual_seed(3)
        x = torch.ones(2, 2, 2)
        counts = torch.stack(
            [(dropout(x, 0.5, noise_shape=(1, 2, 2)) == 0).sum() for _ in range(4000)]
        )
        assert set(counts.unique().tolist()) <= {0, 2, 4, 6, 8}, counts.unique()
        # Each dropped mask entry zeros two elements: 4000 * 4 Bernoulli(0.5) draws in
        # all.
        dropped = int(counts.sum()) // 2
        assert binomtest(dropped, 16_000, 0.5).pvalue > ALPHA
        assert (counts == 8).any() and (counts == 0).any()


class TestNoiseShapeValidation:
    @pytest.mark.parametrize(
        "noise_shape,error,match",
        [
            (
                (None, 3),
                ValueError,
                r"one entry per dimension of x \(3\), but got 2 entries",
            ),
            (
                (None, 1, None, 1),
                ValueError,
                r"one entry per dimension of x \(3\), but got 4 entries",
            ),
            ((None, -1, None), ValueError, r"noise_shape\[1\] .* but got -1"),
            ((None, "1", None), ValueError, r"noise_shape\[1\] .* but got '1'"),
            ((None, 1.5, None), ValueError, r"noise_shape\[1\] .* but got 1.5"),
            (5, TypeError, r"sequence of ints and None, but got 5"),
        ],
    )
    def test_bad_noise_shape_names_value(self, noise_shape, error, match):
        with pytest.raises(error, match=match):
            dropout(torch.ones(2, 3, 4), 0.5, noise_shape=noise_shape)

    @pytest.mark.parametrize(
        "noise_shape",
        [torch.Size([2, 1, 4]), [None, 1, 4], (torch.tensor(2).item(), 1, None)],
        ids=str,
    )
    def test_accepted_forms(self, noise_shape):
        y = dropout(torch.ones(2, 3, 4), 0.5, noise_shape=noise_shape)
        assert torch.equal(y, y[:, :1].expand(2, 3, 4))

    def test_numpy_integers_accepted(self):
        np = pytest.importorskip("numpy")
        y = dropout(
            torch.ones(2, 3, 4), 0.5, noise_shape=(np.int64(2), np.int64(1), None)
        )
        assert torch.equal(y, y[:, :1].expand(2, 3, 4))


@pytest.mark.parametrize(
    "n,torch_cls", [(1, nn.Dropout1d), (2, nn.Dropout2d), (3, nn.Dropout3d)]
)
class TestTorchModules:
    def test_channels_first_equals_torch_module(self, n, torch_cls):
        x = torch.randn((4, 6) + (5,) * n)
        torch.manual_seed(4)
        ours = SpatialDropout(0.3)(x)
        torch.manual_seed(4)
        assert torch.equal(ours, torch_cls(0.3)(x))

    def test_channels_last_equals_torch_module_on_moved_axes(self, n, torch_cls):
        x = torch.randn((4,) + (5,) * n + (6,))
        torch.manual_seed(5)
        ours = SpatialDropout(0.3, channel_dim=-1)(x)
        torch.manual_seed(5)
        assert torch.equal(ours, torch_cls(0.3)(x.movedim(-1, 1)).movedim(1, -1))

    def test_eval_is_identity_for_both(self, n, torch_cls):
        x = torch.randn((4, 6) + (5,) * n)
        assert torch.equal(SpatialDropout(0.3).eval()(x), torch_cls(0.3).eval()(x))


def test_dropout2d_on_3d_input_warns_and_equals_spatial_dropout():
    x = torch.randn(4, 6, 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(6)
        theirs = nn.Dropout2d(0.5)(x)
    assert any("Received a 3D input to dropout2d" in str(w.message) for w in caught), [
        str(w.message) for w in caught
    ]
    torch.manual_seed(6)
    assert torch.equal(SpatialDropout(0.5)(x), theirs)
