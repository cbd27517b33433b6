"""Exercise checks for Chapter 5: DropPath / stochastic depth"""

import math

import numpy as np
import torch

from dropkit.checks._common import (
    _check_identity_at_zero,
    _check_mask_follows_input,
    _keep_rate_ok,
    _passed,
    _require,
)

__all__ = [
    "check_batch_stochastic_depth",
    "check_expected_depth",
    "check_huang_survival",
    "check_drop_path",
    "check_stage_rates",
]


def _check_zero_one_ends(fn, name):
    """p = 0 returns the input, p = 1 zeros without NaN; shared by the path checks."""
    torch.manual_seed(0)
    x = torch.randn(6, 3, 4)
    _check_identity_at_zero(fn, x, name)
    out = fn(x, 1.0)
    _require(
        not torch.isnan(out).any(),
        "at p=1 your output has NaN: dividing by the keep rate 1 - p = 0 gives inf, "
        "and inf * 0 = NaN. "
        "Divide the mask (not the input), and only when 1 - p > 0.",
    )
    _require(
        torch.equal(out, torch.zeros_like(x)),
        f"at p=1 the branch must always be dropped, but {name} kept some of it. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )


def check_batch_stochastic_depth(batch_stochastic_depth):
    """Check ``batch_stochastic_depth(x, p)``: one draw for the whole batch (chapter 5).

    Every call must give either zeros everywhere or ``x / (1 - p)`` everywhere, keep the
    batch with probability about 1 - p, return x at p=0 and zeros (no NaN) at p=1, and
    keep dtype and device.
    """
    fn, name = batch_stochastic_depth, "batch_stochastic_depth"
    _check_zero_one_ends(fn, name)
    x = torch.ones(8, 3, 4)
    for p in (0.2, 0.5):
        torch.manual_seed(1)
        kept, calls, scale = 0, 2000, torch.tensor(1 / (1 - p)).item()
        for _ in range(calls):
            out = fn(x, p)
            values = set(torch.unique(out).tolist())
            _require(
                len(values) == 1,
                f"at p={p} one call kept part of the batch and dropped the rest "
                f"(values {sorted(values)[:3]}). "
                "Batch mode draws ONE number for the whole batch (mask shape (1, 1, "
                "..., 1)); a mask of "
                "shape (N, 1, ..., 1) is per-sample DropPath (torchvision's "
                "mode='row').",
            )
            _require(
                p == 0.5 or torch.tensor(1 / p).item() not in values,
                f"at p={p} the kept batch is scaled by 1/p = {1 / p:.4g}, not 1/(1-p) "
                f"= {scale:.4g}. "
                "Is p the probability to drop (PyTorch's convention), not to keep?",
            )
            _require(
                values <= {0.0, scale},
                f"at p={p} the entries must be 0 or 1/(1-p) = {scale:.4g}, but found "
                f"{sorted(values)}. "
                "Did you forget to scale the kept batch by 1/(1-p)?",
            )
            kept += values == {scale}
        _require(
            _keep_rate_ok(kept, calls, p),
            f"at p={p} the batch was kept in {kept} of {calls} calls, far from the "
            "expected "
            f"{(1 - p) * calls:.0f}. Is p the probability to drop, not to keep?",
        )
    _check_mask_follows_input(fn, name)
    _passed()


def check_expected_depth(expected_depth):
    """Check ``expected_depth(rates)``: the expected number of active branches."""
    from dropkit.vit import drop_path_rates

    cases = [
        ([0.0] * 5, 5.0),
        ([1.0] * 5, 0.0),
        (drop_path_rates(0.5, 12), 9.0),
        ([0.1, 0.7, 0.3], 1.9),
    ]
    for rates, want in cases:
        got = expected_depth(list(rates))
        _require(
            isinstance(got, (int, float)),
            f"expected_depth must return a number, but returned {type(got).__name__}",
        )
        if math.isclose(got, want, abs_tol=1e-9):
            continue
        shown = [round(r, 3) for r in rates]
        if math.isclose(got, sum(rates), abs_tol=1e-9):
            hint = (
                "you added up the drop rates: "
                "that is the expected number of DROPPED branches"
            )
        elif math.isclose(got, math.prod(1 - r for r in rates), abs_tol=1e-9):
            hint = (
                "you multiplied the survival probabilities: "
                "that is the probability that ALL branches survive"
            )
        else:
            hint = "each branch l is active with probability 1 - p_l; add these up"
        _require(
            False,
            f"for rates {shown} the expected depth is {want:g}, but you returned "
            f"{got:g}: {hint}",
        )
    _passed()


def check_huang_survival(huang_survival):
    """Check ``huang_survival(depth, final_survival)``: 1 - l/L (1 - p_L), l = 1..L."""
    for depth, final in [(4, 0.5), (54, 0.5), (3, 0.8)]:
        got = huang_survival(depth, final)
        want = [1 - l / depth * (1 - final) for l in range(1, depth + 1)]
        _require(
            len(got) == depth,
            f"huang_survival({depth}, {final}) must return one probability per block "
            f"({depth}), but returned {len(got)}",
        )
        if np.allclose(got, want):
            continue
        if np.allclose(got, [1 - s for s in want]):
            hint = (
                "you returned drop rates; "
                "the exercise asks for survival probabilities (1 - drop rate)"
            )
        elif np.allclose(got, np.linspace(1.0, final, depth)):
            hint = (
                "that is timm's linspace, whose first block always survives; Huang's "
                "block l = 1..L "
                "survives with 1 - l/L (1 - p_L), so the first block is below 1"
            )
        else:
            hint = (
                "block l = 1..L survives with probability 1 - l/L (1 - final_survival)"
            )
        _require(
            False,
            f"huang_survival({depth}, {final}) should be "
            f"{[round(w, 4) for w in want][:5]}..., but is "
            f"{[round(float(g), 4) for g in got][:5]}...: {hint}",
        )
    _passed()


def check_drop_path(drop_path):
    """Check a from-scratch ``drop_path(x, drop_prob, training)`` (timm's signature).

    Per sample the branch is dropped (zeros) or kept and scaled by 1/(1-p); x itself
    when not training or p=0; zeros, never NaN, at p=1; the input's dtype and device.
    """
    name = "drop_path"
    x = torch.randn(6, 3, 4)
    _require(
        drop_path(x, 0.5, training=False) is x,
        "when not training, drop_path must return its input itself",
    )
    fn = lambda x, p: drop_path(x, p, training=True)  # noqa: E731
    _check_zero_one_ends(fn, name)
    torch.manual_seed(2)
    n, p = 20_000, 0.3
    out = fn(torch.ones(n, 3, 4), p)
    scale = torch.tensor(1 / (1 - p)).item()
    values = set(torch.unique(out).tolist())
    _require(
        torch.tensor(1 / p).item() not in values,
        f"at p={p} kept samples are scaled by 1/p = {1 / p:.4g}, not 1/(1-p) = "
        f"{scale:.4g}. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )
    _require(
        values <= {0.0, scale},
        f"at p={p} entries must be 0 or 1/(1-p) = {scale:.4g}, but found "
        f"{sorted(values)[:4]}. "
        "Did you forget to scale the kept samples?",
    )
    per_sample = out.reshape(n, -1)
    _require(
        bool((per_sample == per_sample[:, :1]).all()),
        "some sample was partly kept and partly dropped: DropPath draws one number per "
        "sample, a mask "
        "of shape (N, 1, ..., 1), not one per entry (that is ordinary dropout)",
    )
    kept = int((per_sample[:, 0] != 0).sum())
    _require(
        _keep_rate_ok(kept, n, p),
        f"at p={p} you kept {kept} of {n} samples, far from the expected "
        f"{(1 - p) * n:.0f}. "
        "Is p the probability to drop, not to keep?",
    )
    _check_mask_follows_input(fn, name)
    _passed()


def _stage_means(max_rate, depths):
    from dropkit.vit import drop_path_rates

    stages = drop_path_rates(max_rate, depths, stagewise=True)
    return [sum(s) / len(s) for s in stages for _ in s]


def check_stage_rates(stage_rates):
    """Check ``stage_rates(max_rate, depths)``: one DropPath rate per stage (chapter 5).

    Stage s of S gets the rate ``s / (S - 1) * max_rate`` for every one of its
    ``depths[s]`` blocks (0 for a single stage), returned as one list per stage, the
    layout of ``drop_path_rates(max_rate, depths, stagewise=True)``.
    """
    from dropkit.vit import drop_path_rates

    for max_rate, depths in [(0.3, [2, 2, 6, 2]), (0.4, [1, 1, 3, 1]), (0.2, [3])]:
        want = [[r] * d for r, d in zip(drop_path_rates(max_rate, len(depths)), depths)]
        call = f"stage_rates({max_rate}, {depths})"
        got = stage_rates(max_rate, list(depths))
        nested = isinstance(got, (list, tuple)) and all(
            isinstance(s, (list, tuple)) for s in got
        )
        _require(
            nested,
            f"{call} must return one list of rates per stage (a list of lists, like "
            "drop_path_rates(..., stagewise=True)), but returned "
            f"{type(got).__name__} {str(got)[:60]}",
        )
        lengths = [len(s) for s in got]
        _require(
            lengths == list(depths),
            f"{call} must give stage s one rate per block, depths[s] of them; "
            f"the stage lengths are {lengths}, not {list(depths)}",
        )
        flat = [float(r) for s in got for r in s]
        if np.allclose(flat, [r for s in want for r in s], atol=1e-9):
            continue
        shown = [[round(r, 3) for r in map(float, s)] for s in got]
        if np.allclose(flat, drop_path_rates(max_rate, depths), atol=1e-6):
            hint = (
                "these are timm's per-block rates grouped by stage; here every block "
                "of a "
                "stage shares one rate"
            )
        elif any(len(set(map(float, s))) > 1 for s in got):
            hint = "every block of a stage must have the same rate"
        elif np.allclose(flat, _stage_means(max_rate, depths), atol=1e-6):
            hint = (
                "you averaged the per-block rates over each stage; the rate rises with "
                "the stage index instead, whatever the stages' depths"
            )
        elif abs(flat[0]) > 1e-9:
            hint = (
                "the first stage is never dropped: its rate is 0 (timm's first block)"
            )
        elif abs(flat[-1] - max_rate) > 1e-9:
            hint = f"the last stage's rate must be max_rate = {max_rate}"
        else:
            hint = (
                "the rates must rise linearly with the stage index s = 0..S-1, "
                "s / (S - 1) * max_rate, whatever the stages' depths"
            )
        want_shown = [[round(r, 3) for r in s] for s in want]
        _require(False, f"{call} should be {want_shown}, but is {shown}: {hint}")
    _passed()
