"""The exercise checks must pass correct solutions and catch each classic mistake by
name."""

import numpy as np
import pytest
import torch

from dropkit import checks, dropout
from dropkit.scratch import dropout_backward


def d2l_dropout_layer(X, p):  # d2l's version: right values, but float32 CPU mask
    if p == 1:
        return torch.zeros_like(X)
    mask = (torch.rand(X.shape) > p).float()
    return mask * X / (1.0 - p)


def no_guard(X, p):
    return (torch.rand_like(X) > p).to(X.dtype) * X / (1.0 - p)


def not_scaled(X, p):
    return (torch.rand_like(X) > p).to(X.dtype) * X if p < 1 else torch.zeros_like(X)


def keep_convention(X, p):  # p read as the keep probability
    if p == 0:
        return X
    return (
        (torch.rand_like(X) < p).to(X.dtype) * X / p if p > 0 else torch.zeros_like(X)
    )


class TestCheckDropoutLayer:
    def test_passes_library_dropout(self, capsys):
        checks.check_dropout_layer(lambda X, p: dropout(X, p))
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (d2l_dropout_layer, "the mask must have the input's dtype"),
            (no_guard, "at p=1 your output has NaN"),
            (not_scaled, "forget to rescale"),
            (keep_convention, "probability to drop"),
        ],
        ids=["cpu-float-mask", "nan-at-p1", "not-scaled", "keep-convention"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_dropout_layer(fn)

    def test_catches_wrong_device(self):
        def cpu_mask(X, p):  # right dtype, wrong device
            if p == 1:
                return torch.zeros_like(X)
            return (torch.rand(X.shape, dtype=X.dtype) > p).to(X.dtype) * X / (1 - p)

        with pytest.raises(checks.CheckFailed, match="device 'meta'"):
            checks.check_dropout_layer(cpu_mask)


def robust(X, p):  # the chapter's solution: mask made from X, guard at p=1
    if p == 1:
        return torch.zeros_like(X)
    return (torch.rand_like(X) > p).to(X.dtype) * X / (1.0 - p)


def shared_over_batch(X, p):  # one mask row, broadcast to every sample
    if p == 1:
        return torch.zeros_like(X)
    row = torch.rand(X.shape[-1], dtype=X.dtype, device=X.device)
    return (row > p).to(X.dtype) * X / (1.0 - p)


def reseeds_global(X, p):  # torch.manual_seed inside: the same mask on every call
    torch.manual_seed(0)
    return robust(X, p)


def fixed_generator(X, p):  # a generator seeded on every call: the same mask again
    g = torch.Generator().manual_seed(0)
    if p == 1:
        return torch.zeros_like(X)
    u = torch.rand(X.shape, generator=g).to(X)  # drawn on the CPU, moved to X
    return (u > p).to(X.dtype) * X / (1.0 - p)


class TestCheckDropoutLayerFreshMasks:
    """Issue 12 §7: masks must be fresh per sample and per call."""

    def test_passes_chapter_solution(self, capsys):
        checks.check_dropout_layer(robust)
        assert capsys.readouterr().out == "all checks passed\n"

    def test_passing_leaves_results_seedable(self):
        # The check seeds torch itself; a correct solution still passes after any seed.
        for seed in range(3):
            torch.manual_seed(seed)
            checks.check_dropout_layer(robust)

    def test_catches_mask_shared_over_batch(self):
        with pytest.raises(
            checks.CheckFailed, match="every sample of the batch the same mask"
        ):
            checks.check_dropout_layer(shared_over_batch)

    def test_catches_reseeding_global_rng(self):
        with pytest.raises(
            checks.CheckFailed, match=r"resets torch's global random number generator"
        ):
            checks.check_dropout_layer(reseeds_global)

    def test_catches_seeded_generator_inside(self):
        with pytest.raises(checks.CheckFailed, match="drew the same mask"):
            checks.check_dropout_layer(fixed_generator)

    def test_wrong_answers_pass_the_value_checks(self):
        # Each wrong answer above gets past the shared value checks (dtype, device, p=0,
        # p=1, keep rate, scale): the fresh-mask checks are what catch it.
        from dropkit.checks._common import _check_inverted_dropout

        for fn in (shared_over_batch, reseeds_global, fixed_generator):
            _check_inverted_dropout(fn, fn.__name__)

    def test_d2l_message_names_the_cause(self):
        with pytest.raises(checks.CheckFailed, match=r"\.float\(\) forces float32"):
            checks.check_dropout_layer(d2l_dropout_layer)


class TestCheckScratchBackward:
    def test_passes_library(self, capsys):
        checks.check_scratch_backward(dropout_backward)
        assert "all checks passed" in capsys.readouterr().out

    def test_catches_missing_scale(self):
        def unscaled(dout, cache):
            p, mode, mask = cache
            return dout if mask is None else dout * mask

        with pytest.raises(checks.CheckFailed, match="scaled by 1/\\(1-p\\)"):
            checks.check_scratch_backward(unscaled)

    def test_catches_nan_at_p1(self):
        def nan_at_one(dout, cache):
            p, mode, mask = cache
            with np.errstate(all="ignore"):
                return dout if mask is None else dout * mask / (1 - p)

        with pytest.raises(checks.CheckFailed, match="NaN"):
            checks.check_scratch_backward(nan_at_one)


class TestCheckSavedBytes:
    def test_passes_library(self, capsys):
        checks.check_saved_bytes(lambda x, p: dropout(x, p))
        assert "all checks passed" in capsys.readouterr().out

    def test_catches_float_mask(self):
        def float_mask(x, p):
            if p == 1:
                return x * 0
            return x * torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)

        with pytest.raises(checks.CheckFailed, match="saves 4 bytes per element"):
            checks.check_saved_bytes(float_mask)
