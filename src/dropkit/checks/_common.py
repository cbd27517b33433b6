"""What the exercise checks of every chapter share: the failure type, the pass message
and
the tests that every dropout must pass."""

import math

import torch


class CheckFailed(AssertionError):
    """A learner's solution does not do what the exercise asks; the message says what
    differs."""


def _require(condition, message):
    if not condition:
        raise CheckFailed(message)


def _passed():
    print("all checks passed")


def _keep_rate_ok(kept, total, p):
    """True when `kept` of `total` is within 6 standard deviations of the expected (1 -
    p) * total."""
    mean, sd = (1 - p) * total, math.sqrt(total * p * (1 - p))
    return abs(kept - mean) <= 6 * sd


def _check_identity_at_zero(fn, x, name):
    """At p=0 every dropout must return a tensor equal to its input."""
    out = fn(x, 0.0)
    _require(
        isinstance(out, torch.Tensor),
        f"{name} must return a tensor, but returned {type(out).__name__}",
    )
    _require(
        out.shape == x.shape,
        f"{name} changed the shape: {tuple(x.shape)} in, {tuple(out.shape)} out",
    )
    _require(
        torch.equal(out, x),
        f"at p=0 {name} must return its input unchanged, but the values differ",
    )


def _check_mask_follows_input(fn, name):
    """The output must keep the input's dtype and device: the mask is made from the
    input."""
    for dtype in (torch.float16, torch.float64):
        out = fn(torch.ones(4, 4, dtype=dtype), 0.5)
        _require(
            out.dtype == dtype,
            f"for a {dtype} input your output is {out.dtype}: the mask must have the "
            "input's dtype, so "
            "make the mask from the input (X.new_empty(X.shape) or "
            "torch.rand_like(X)). "
            "torch.rand(X.shape) uses torch's default dtype, and .float() forces "
            "float32",
        )
    x = torch.ones(
        4, 4, device="meta"
    )  # a device that is not the CPU, available on every machine
    try:
        out = fn(x, 0.5)
    except RuntimeError as err:
        raise CheckFailed(
            f"for an input on device 'meta' {name} failed ({err}). Make the mask on "
            "the input's device "
            "(X.new_empty(X.shape) or torch.rand_like(X)); torch.rand(X.shape) makes "
            "it on torch's default "
            "device, the CPU unless you changed it."
        ) from None
    _require(
        out.device == x.device,
        f"for an input on {x.device} your output is on {out.device}",
    )


def _check_inverted_dropout(fn, name):
    """The behaviour every correct dropout(X, p) shares; used by the checks below."""
    torch.manual_seed(0)
    x = torch.randn(2, 8)
    _check_identity_at_zero(fn, x, name)

    out = fn(x, 1.0)
    _require(
        not torch.isnan(out).any(),
        "at p=1 your output has NaN: dividing by 1 - p = 0 gives 0/0. Return zeros "
        "when p == 1.",
    )
    _require(
        torch.equal(out, torch.zeros_like(x)),
        f"at p=1 every entry must be dropped, but {name} kept some. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )

    x = torch.ones(100_000)
    for p in (0.2, 0.5, 0.8):
        out = fn(x, p)
        values = set(torch.unique(out).tolist())
        scale = torch.tensor(1 / (1 - p)).item()
        _require(
            values <= {0.0, scale},
            f"at p={p} the entries of {name}(ones, p) must be 0 or 1/(1-p) = "
            f"{scale:.4g}, but found "
            f"{sorted(values)[:4]}. Did you forget to rescale the kept entries "
            "(inverted dropout)?",
        )
        kept = int((out != 0).sum())
        _require(
            _keep_rate_ok(kept, x.numel(), p),
            f"at p={p} you kept {kept} of {x.numel()} entries, far from the expected "
            f"{(1 - p) * x.numel():.0f}. "
            "Is p the probability to drop (PyTorch's convention), not to keep?",
        )

    _check_mask_follows_input(fn, name)
