"""Chapter 1's exercise checks pass correct answers, usual and unusual, and reject a
class of learners' wrong answers, each with a message that names the mistake."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dropkit import checks, dropout
from dropkit.scratch import dropout_backward


def robust(X, p):  # the chapter's solution: mask made from X, guard at p=1
    if p == 1:
        return torch.zeros_like(X)
    return (torch.rand_like(X) > p).to(X.dtype) * X / (1.0 - p)


def where_guarded(X, p):  # unusual: torch.where, zeros at p = 1 without dividing
    if p == 1:
        return torch.zeros_like(X)
    return torch.where(torch.rand_like(X) >= p, X / (1 - p), torch.zeros_like(X))


def where_no_guard(X, p):  # zeros at p = 1, but x / 0 = inf: its gradient is NaN
    return torch.where(torch.rand_like(X) >= p, X / (1 - p), torch.zeros_like(X))


def nan_to_num(X, p):  # hides the NaN of p = 1, and every NaN of X with it
    if p == 1:
        return torch.zeros_like(X)
    return torch.nan_to_num((torch.rand_like(X) >= p).to(X.dtype) * X / (1 - p))


def bernoulli_mask(X, p):  # unusual: the mask drawn in place on a tensor made from X
    keep = X.new_empty(X.shape).bernoulli_(1 - p)
    return X * keep.div_(1 - p) if p < 1 else X * keep


_PRIVATE = torch.Generator().manual_seed(2024)


def private_generator(X, p):  # unusual: a generator seeded once, outside the function
    if p == 1:
        return X * 0
    u = torch.rand(X.shape, generator=_PRIVATE).to(X.device, X.dtype)
    return torch.where(u >= p, X / (1 - p), torch.zeros_like(X))


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


def cpu_mask(X, p):  # right dtype, wrong device
    if p == 1:
        return torch.zeros_like(X)
    return (torch.rand(X.shape, dtype=X.dtype) > p).to(X.dtype) * X / (1 - p)


def shared_over_batch(X, p):  # one mask row, broadcast to every sample
    if p == 1:
        return torch.zeros_like(X)
    row = torch.rand(X.shape[-1], dtype=X.dtype, device=X.device)
    return (row > p).to(X.dtype) * X / (1.0 - p)


def per_sample(X, p):  # one draw per sample, broadcast along its entries
    if p == 1:
        return torch.zeros_like(X)
    shape = (X.shape[0],) + (1,) * (X.dim() - 1)
    u = torch.rand(shape, dtype=X.dtype, device=X.device)
    return (u > p).to(X.dtype) * X / (1.0 - p)


def reseeds_global(X, p):  # torch.manual_seed inside: the same mask on every call
    torch.manual_seed(0)
    return robust(X, p)


def reseeds_initial_seed(X, p):  # back to the last seed: the same mask on every call
    torch.manual_seed(torch.initial_seed())
    return robust(X, p)


def fork_rng_inside(X, p):  # the draw never advances the global generator
    with torch.random.fork_rng():
        return robust(X, p)


def fixed_generator(X, p):  # a generator seeded on every call: the same mask again
    g = torch.Generator().manual_seed(0)
    if p == 1:
        return torch.zeros_like(X)
    u = torch.rand(X.shape, generator=g).to(X)  # drawn on the CPU, moved to X
    return (u > p).to(X.dtype) * X / (1.0 - p)


def in_place(X, p):
    if p == 1:
        return X.zero_()
    return X.mul_((torch.rand_like(X) > p).to(X.dtype)).div_(1 - p)


def ignores_x(X, p):  # the scaled mask, not X times it
    if p == 0:
        return X
    if p == 1:
        return torch.zeros_like(X)
    return (torch.rand_like(X) > p).to(X.dtype) / (1 - p)


class TestCheckDropoutLayer:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda X, p: dropout(X, p),
            lambda X, p: F.dropout(X, p),
            robust,
            where_guarded,
            bernoulli_mask,
            private_generator,
        ],
        ids=["library", "F.dropout", "chapter", "where", "bernoulli", "generator"],
    )
    def test_passes(self, fn, capsys):
        checks.check_dropout_layer(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (d2l_dropout_layer, r"\.float\(\) forces float32"),
            (no_guard, "at p=1 your output has NaN"),
            (not_scaled, "forget to rescale"),
            (keep_convention, "probability to drop"),
            (cpu_mask, "device 'meta'"),
            (shared_over_batch, "every sample of the batch the same mask"),
            (per_sample, "every position along axis 1 .* the same draw"),
            (reseeds_global, "resets torch's global random number generator"),
            (reseeds_initial_seed, r"initial_seed\(\)"),
            (fork_rng_inside, "fork_rng"),
            (fixed_generator, "drew the same mask"),
            (in_place, "changed its argument X in place"),
            (ignores_x, "Multiply the input itself by the mask"),
            (where_no_guard, "its gradient is NaN"),
            (nan_to_num, "turned every NaN of its input into a number"),
        ],
        ids=[
            "d2l-float-mask",
            "nan-at-p1",
            "not-scaled",
            "keep-convention",
            "cpu-mask",
            "one-row",
            "per-sample",
            "manual-seed",
            "initial-seed",
            "fork-rng",
            "seeded-generator",
            "in-place",
            "ignores-x",
            "where-no-guard",
            "nan-to-num",
        ],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_dropout_layer(fn)

    def test_d2l_message_is_the_chapters(self):
        # The chapter prints this message; it must stay what the prose says.
        with pytest.raises(checks.CheckFailed) as info:
            checks.check_dropout_layer(d2l_dropout_layer)
        assert str(info.value) == (
            "for a torch.float16 input your output is torch.float32: the mask must "
            "have the input's dtype, so make the mask from the input "
            "(X.new_empty(X.shape) or torch.rand_like(X)). torch.rand(X.shape) uses "
            "torch's default dtype, and .float() forces float32"
        )

    def test_passes_after_any_seed(self):
        for seed in range(3):
            torch.manual_seed(seed)
            checks.check_dropout_layer(robust)


def scaled_where(dout, cache):  # unusual: np.where, no guard needed for the values
    p, mode, mask = cache
    if mask is None:
        return dout
    with np.errstate(divide="ignore"):
        return np.where(mask, dout / (1 - p), 0.0)


def backward_unscaled(dout, cache):
    p, mode, mask = cache
    return dout if mask is None else dout * mask


def backward_nan(dout, cache):
    p, mode, mask = cache
    with np.errstate(all="ignore"):
        return dout if mask is None else dout * mask / (1 - p)


def backward_by_p(dout, cache):
    p, mode, mask = cache
    if mask is None:
        return dout
    return dout * mask / p if p > 0 else np.zeros_like(dout)


def backward_inverted_mask(dout, cache):
    p, mode, mask = cache
    if mask is None:
        return dout
    return dout * ~mask / (1 - p) if p < 1 else np.zeros_like(dout)


def backward_in_place(dout, cache):
    p, mode, mask = cache
    if mask is None:
        return dout
    dout *= mask * (1 / (1 - p) if p < 1 else 0.0)
    return dout


def backward_ignores_none(dout, cache):  # forgets that the mask is None at p = 0
    p, mode, mask = cache
    if mode == "test":
        return dout
    return dout * mask / (1 - p) if p < 1 else np.zeros_like(dout)


class TestCheckScratchBackward:
    @pytest.mark.parametrize("fn", [dropout_backward, scaled_where])
    def test_passes(self, fn, capsys):
        checks.check_scratch_backward(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (backward_unscaled, "forgot the scale 1/\\(1-p\\)"),
            (backward_nan, "NaN"),
            (backward_by_p, "not by p"),
            (backward_inverted_mask, "True = kept"),
            (backward_in_place, "changed its argument dout in place"),
            (backward_ignores_none, "mask is None when dropout was the identity"),
        ],
        ids=["unscaled", "nan", "by-p", "inverted-mask", "in-place", "none-mask"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_scratch_backward(fn)


class OneByteDropout(torch.autograd.Function):  # the chapter's solution
    @staticmethod
    def forward(ctx, x, p):
        mask = torch.empty_like(x).bernoulli_(1 - p).bool()
        ctx.save_for_backward(mask)
        ctx.p = p
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask / (1 - ctx.p), None


def one_byte(x, p):
    return x * 0 if p == 1 else OneByteDropout.apply(x, p)


class BoolOnCtx(torch.autograd.Function):  # unusual: a bool mask kept on ctx
    @staticmethod
    def forward(ctx, x, p):
        ctx.mask, ctx.p = torch.rand_like(x) >= p, p
        return torch.where(ctx.mask, x / (1 - p), 0.0)

    @staticmethod
    def backward(ctx, grad):
        return torch.where(ctx.mask, grad / (1 - ctx.p), 0.0), None


class FloatSaved(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        noise = torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)
        ctx.save_for_backward(noise)
        return x * noise

    @staticmethod
    def backward(ctx, grad):
        (noise,) = ctx.saved_tensors
        return grad * noise, None


class FloatOnCtx(torch.autograd.Function):  # hidden from saved-tensor hooks
    @staticmethod
    def forward(ctx, x, p):
        ctx.noise = torch.empty_like(x).bernoulli_(1 - p).div_(1 - p)
        return x * ctx.noise

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.noise, None


class SavesOutput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        out = x * (torch.rand_like(x) >= p) / (1 - p)
        ctx.save_for_backward(out, x)
        ctx.p = p
        return out

    @staticmethod
    def backward(ctx, grad):
        out, x = ctx.saved_tensors
        return grad * (out != 0) / (1 - ctx.p), None


class UnscaledBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p):
        mask = torch.rand_like(x) >= p
        ctx.save_for_backward(mask)
        return x * mask / (1 - p)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def guarded(function):
    return lambda x, p: x * 0 if p == 1 else function.apply(x, p)


class TestCheckSavedBytes:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda x, p: dropout(x, p),
            one_byte,
            guarded(BoolOnCtx),
            lambda x, p: (
                torch.where(torch.rand_like(x) >= p, x / (1 - p), 0.0)
                if p < 1
                else x * 0
            ),
        ],
        ids=["library", "chapter", "bool-on-ctx", "plain-where"],
    )
    def test_passes(self, fn, capsys):
        checks.check_saved_bytes(fn)
        assert capsys.readouterr().out == "all checks passed\n"

    @pytest.mark.parametrize(
        "fn,message",
        [
            (guarded(FloatSaved), "saves 4 bytes per element"),
            (guarded(FloatOnCtx), r"saves 4 bytes per element.*ctx\.noise"),
            (
                lambda x, p: (
                    x * (torch.rand_like(x) >= p).to(x.dtype) / (1 - p)
                    if p < 1
                    else x * 0
                ),
                "saves 4 bytes per element",
            ),
            (guarded(SavesOutput), "saves 4 bytes per element"),
            (guarded(UnscaledBackward), "the gradient must be 1/\\(1-p\\)"),
        ],
        ids=["float-saved", "float-on-ctx", "autograd-float", "output", "grad"],
    )
    def test_catches(self, fn, message):
        with pytest.raises(checks.CheckFailed, match=message):
            checks.check_saved_bytes(fn)
