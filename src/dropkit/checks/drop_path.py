"""Exercise checks for Chapter 5: DropPath / stochastic depth"""

import math

import numpy as np
import torch

from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_number,
    _as_tensor,
    _as_vector,
    _check,
    _check_dtypes_and_device,
    _check_fresh,
    _check_gradient_at_one,
    _check_mask_dropout,
    _close,
    _numbers_close,
    _rate_ok,
    _require,
    _signed,
)

__all__ = [
    "check_batch_stochastic_depth",
    "check_expected_depth",
    "check_huang_survival",
    "check_drop_path",
    "check_stage_rates",
]


_NAN_TEXT = (
    "dividing by the keep rate 1 - p = 0 gives inf, and inf * 0 = NaN. Divide the "
    "mask (not the input), and only when 1 - p > 0."
)


def _multipliers(out, x):
    """The distinct values of out / x, rounded: [0.0, 1.25] for 0s and 1.25s."""
    ratio = (out / x).double().flatten()
    return sorted({round(v, 4) + 0.0 for v in ratio.unique().tolist()})[:4]


@_check
def check_batch_stochastic_depth(batch_stochastic_depth):
    """Check ``batch_stochastic_depth(x, p)``: one draw for the whole batch (chapter 5),
    torchvision's ``stochastic_depth(..., mode="batch")``.

    On (8, 3, 4) and (5, 7) inputs at p = 0.2 and 0.5 over 2000 calls each: every call
    gives either zeros everywhere or ``x / (1 - p)`` everywhere, the batch is kept in
    about a fraction 1 - p of the calls, and 64 calls in a row (no reseeding between
    them) do not all agree; x (or an equal tensor) at p=0 and zeros (no NaN) at p=1;
    the input left unchanged; the output with x's shape, dtype and device.
    """
    f = _Answer(batch_stochastic_depth, "batch_stochastic_depth", ("x", "p"))
    name = "batch_stochastic_depth"
    x = _signed((6, 3, 4), seed=1)
    out = _as_tensor(f(x, 0.0), f.show(x, 0.0), shape=x.shape)
    _require(
        _close(out, x),
        f"at p=0 {name} must return its input unchanged, but the values differ",
    )
    out = _as_tensor(f(x, 1.0), f.show(x, 1.0), shape=x.shape)
    _require(not torch.isnan(out).any(), f"at p=1 your output has NaN: {_NAN_TEXT}")
    _require(
        not out.any(),
        f"at p=1 the branch must always be dropped, but {name} kept some of it. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )
    _check_gradient_at_one(lambda t: f(t, 1.0), x, f.show(x, 1.0))
    x = _signed((8, 3, 4), seed=2)
    _check_fresh(lambda: f(x, 0.5) != 0, name, "keep decision", calls=64)
    for p in (0.2, 0.5):
        torch.manual_seed(1)
        scale = 1 / (1 - p)
        for shape in ((8, 3, 4), (5, 7)):
            x = _signed(shape, seed=3)
            kept, calls = 0, 2000
            for _ in range(calls):
                out = _as_tensor(f(x, p), f.show(x, p), shape=shape, dtype=x.dtype)
                keep = out != 0
                _require(
                    bool(keep.all()) or not keep.any(),
                    f"at p={p} one call kept part of the batch and dropped the rest "
                    f"(values {_multipliers(out, x)}). "
                    "Batch mode draws ONE number for the whole batch (mask shape (1, "
                    "1, ..., 1)); a mask of shape (N, 1, ..., 1) is per-sample "
                    "DropPath (torchvision's mode='row').",
                )
                if not keep.any():
                    continue
                kept += 1
                ratio = (out / x).double()
                if torch.allclose(ratio, torch.full_like(ratio, scale), rtol=1e-5):
                    continue
                lo = ratio.min().item()
                hint = "Multiply x itself by the draw and the scale."
                if math.isclose(lo, 1 / p, rel_tol=1e-4):
                    hint = (
                        "Is p the probability to drop (PyTorch's convention), not to "
                        "keep?"
                    )
                elif math.isclose(lo, 1.0, rel_tol=1e-4):
                    hint = "Did you forget to scale the kept batch by 1/(1-p)?"
                raise CheckFailed(
                    f"at p={p} the kept batch must be x / (1 - p) = x * {scale:.4g}, "
                    f"but it is x times {lo:.4g}"
                    + (f" to {ratio.max().item():.4g}" if ratio.max() > lo else "")
                    + f". {hint}"
                )
            _require(
                _rate_ok(kept, calls, 1 - p),
                f"at p={p} the batch was kept in {kept} of {calls} calls, far from the "
                f"expected {(1 - p) * calls:.0f}. Is p the probability to drop, not to "
                "keep?",
            )

    def run(t, attempt=False):
        if attempt:
            return f.attempt(t, 0.5)
        return _as_tensor(f(t, 0.5), f.show(t, 0.5), shape=t.shape)

    _check_dtypes_and_device(
        run, lambda dtype, device: torch.ones(8, 3, 4, dtype=dtype, device=device), name
    )


@_check
def check_expected_depth(expected_depth):
    """Check ``expected_depth(rates)``: the expected number of active branches, the sum
    of 1 - p_l, as one number (Python, numpy or a one-element tensor, float32
    included), for a list of rates; the list must be left unchanged."""
    from dropkit.vit import drop_path_rates

    f = _Answer(expected_depth, "expected_depth", ("rates",))
    cases = [
        [0.0] * 5,
        [1.0] * 5,
        drop_path_rates(0.5, 12),
        [0.1, 0.7, 0.3],
        [0.25],
    ]
    got = []
    for rates in cases:
        shown = [round(r, 3) for r in rates]
        got.append(_as_number(f(list(rates)), f"expected_depth({shown})"))

    def same(rule):
        return all(
            _numbers_close(g, rule(rates), abs_=1e-6) for g, rates in zip(got, cases)
        )

    if same(lambda rates: sum(1 - r for r in rates)):
        return
    mistakes = [
        (
            lambda rates: sum(rates),
            "you added up the drop rates: that is the expected number of DROPPED "
            "branches",
        ),
        (
            lambda rates: math.prod(1 - r for r in rates),
            "you multiplied the survival probabilities: that is the probability "
            "that ALL branches survive",
        ),
        (
            lambda rates: sum(1 - r for r in rates) / len(rates),
            "you averaged the survival probabilities: that is the expected FRACTION "
            "of active branches; the expected number is their sum",
        ),
    ]
    hint = "each branch l is active with probability 1 - p_l; add these up"
    for rule, why in mistakes:
        if same(rule):
            hint = why
            break
    for g, rates in zip(got, cases):
        want = sum(1 - r for r in rates)
        if not _numbers_close(g, want, abs_=1e-6):
            shown = [round(r, 3) for r in rates]
            raise CheckFailed(
                f"for rates {shown} the expected depth is {want:g}, but you returned "
                f"{g:g}: {hint}"
            )


@_check
def check_huang_survival(huang_survival):
    """Check ``huang_survival(depth, final_survival)``: 1 - l/L (1 - p_L), l = 1..L, as
    L numbers (a list, array or tensor, float32 included)."""
    f = _Answer(huang_survival, "huang_survival", ("depth", "final_survival"))
    for depth, final in [(4, 0.5), (54, 0.5), (3, 0.8), (1, 0.7)]:
        call = f"huang_survival({depth}, {final})"
        got = _as_vector(f(depth, final), call, "survival probabilities")
        want = np.array([1 - l / depth * (1 - final) for l in range(1, depth + 1)])
        _require(
            len(got) == depth,
            f"{call} must return one probability per block ({depth}), but returned "
            f"{len(got)}",
        )
        if np.allclose(got, want, rtol=1e-5, atol=1e-6):
            continue
        if np.allclose(got, 1 - want, atol=1e-6):
            hint = (
                "you returned drop rates; "
                "the exercise asks for survival probabilities (1 - drop rate)"
            )
        elif np.allclose(
            got, [1 - l / depth * final for l in range(1, depth + 1)], atol=1e-6
        ):
            hint = (
                "final_survival is the last block's SURVIVAL probability (Huang et "
                "al.'s p_L), not its drop rate: block l survives with "
                "1 - l/L (1 - final_survival)"
            )
        elif depth > 1 and np.allclose(got, np.linspace(1.0, final, depth), atol=1e-6):
            hint = (
                "that is timm's linspace, whose first block always survives; Huang's "
                "block l = 1..L survives with 1 - l/L (1 - final_survival), so the "
                "first block is below 1"
            )
        else:
            hint = (
                "block l = 1..L survives with probability 1 - l/L (1 - final_survival)"
            )
        raise CheckFailed(
            f"{call} should be {[round(float(w), 4) for w in want][:5]}..., but is "
            f"{[round(float(g), 4) for g in got][:5]}...: {hint}"
        )


@_check
def check_drop_path(drop_path):
    """Check a from-scratch ``drop_path(x, drop_prob, training)`` (timm's signature,
    called with positional arguments).

    Per sample the branch is dropped (zeros) or kept and scaled by 1/(1-p), one draw per
    sample, afresh on every call (no reseeding between calls); x itself when not
    training, x (or an equal tensor) at p = 0; zeros, never NaN, at p=1; the input left
    unchanged; the input's shape, dtype and device. Tested on (4096, 3, 4) and (2000,
    5) inputs at p = 0.2, 0.5 and 0.8.
    """
    f = _Answer(drop_path, "drop_path", ("x", "drop_prob", "training"))
    x = _signed((6, 3, 4))
    out = f(x, 0.5, False)
    _require(
        out is x,
        "when not training, drop_path must return its input itself"
        + (
            ""
            if isinstance(out, torch.Tensor) and torch.equal(out, x)
            else " (yours changed it: is the training flag ignored?)"
        ),
    )
    _check_mask_dropout(
        f,
        [(4096, 3, 4), (2000, 5)],
        shared=lambda ndim: range(1, ndim),
        extra=(True,),
        hint="DropPath draws one number per sample, a mask of shape (N, 1, ..., 1), "
        "not one per entry (that is ordinary dropout)",
        nan_text=_NAN_TEXT,
    )
    x = _signed((6, 3, 4)).requires_grad_()
    out = f(x, 1.0, True)
    _require(
        isinstance(out, torch.Tensor) and out.requires_grad,
        "at p=1 your output is cut from the autograd graph, so x and the branch's "
        "parameters get no gradient (None) instead of zeros: multiply x by an all-zero "
        "mask rather than returning torch.zeros_like(x)",
    )
    out.sum().backward()
    _require(
        x.grad is not None and torch.equal(x.grad, torch.zeros_like(x)),
        "at p=1 the gradient of x must be zeros",
    )


def _stage_means(max_rate, depths):
    from dropkit.vit import drop_path_rates

    stages = drop_path_rates(max_rate, depths, stagewise=True)
    return [sum(s) / len(s) for s in stages for _ in s]


@_check
def check_stage_rates(stage_rates):
    """Check ``stage_rates(max_rate, depths)``: one DropPath rate per stage (chapter 5).

    Stage s of S gets the rate ``s / (S - 1) * max_rate`` for every one of its
    ``depths[s]`` blocks (0 for a single stage), returned as one sequence of rates per
    stage (lists, tuples, arrays or tensors), the layout of
    ``drop_path_rates(max_rate, depths, stagewise=True)``; ``depths`` must be left
    unchanged.
    """
    from dropkit.vit import drop_path_rates

    f = _Answer(stage_rates, "stage_rates", ("max_rate", "depths"))
    for max_rate, depths in [
        (0.3, [2, 2, 6, 2]),
        (0.4, [1, 1, 3, 1]),
        (0.2, [3]),
        (0.1, [2, 5]),
    ]:
        want = [[r] * d for r, d in zip(drop_path_rates(max_rate, len(depths)), depths)]
        call = f"stage_rates({max_rate}, {depths})"
        got = f(max_rate, list(depths))
        stages = None
        if isinstance(got, (list, tuple)) and all(
            isinstance(s, (list, tuple, np.ndarray, torch.Tensor)) for s in got
        ):
            stages = [_as_vector(s, call, "rates") for s in got]
        _require(
            stages is not None,
            f"{call} must return one list of rates per stage (a list of lists, like "
            "drop_path_rates(..., stagewise=True)), but returned "
            f"{type(got).__name__} {str(got)[:60]}",
        )
        lengths = [len(s) for s in stages]
        _require(
            lengths == list(depths),
            f"{call} must give stage s one rate per block, depths[s] of them; "
            f"the stage lengths are {lengths}, not {list(depths)}",
        )
        flat = np.concatenate(stages)
        if np.allclose(flat, [r for s in want for r in s], atol=1e-6):
            continue
        shown = [[round(float(r), 3) for r in s] for s in stages]
        if np.allclose(flat, drop_path_rates(max_rate, sum(depths)), atol=1e-6):
            hint = (
                "these are timm's per-block rates grouped by stage; here every block "
                "of a "
                "stage shares one rate"
            )
        elif any(np.ptp(s) > 1e-9 for s in stages):
            hint = "every block of a stage must have the same rate"
        elif np.allclose(flat, _stage_means(max_rate, depths), atol=1e-6):
            hint = (
                "you averaged the per-block rates over each stage; the rate rises with "
                "the stage index instead, whatever the stages' depths"
            )
        elif abs(flat[0]) > 1e-6:
            hint = (
                "the first stage is never dropped: its rate is 0 (timm's first block)"
            )
        elif abs(flat[-1] - max_rate) > 1e-6 and len(depths) > 1:
            hint = f"the last stage's rate must be max_rate = {max_rate}"
        else:
            hint = (
                "the rates must rise linearly with the stage index s = 0..S-1, "
                "s / (S - 1) * max_rate, whatever the stages' depths"
            )
        want_shown = [[round(r, 3) for r in s] for s in want]
        raise CheckFailed(f"{call} should be {want_shown}, but is {shown}: {hint}")
