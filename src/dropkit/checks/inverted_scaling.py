"""Exercise checks for Chapter 2: inverted scaling, and dropout at test time."""

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
    _check_mask_dropout,
    _close,
    _numbers_close,
    _require,
    _signed,
)
from dropkit.checks._mc_passes import (
    _bn_dropout_model,
    _dropout_types,
    _family,
    _mean_of_passes,
    _Passes,
)
from dropkit.checks.dropout_from_scratch import _SHAPES

__all__ = [
    "check_original_dropout",
    "check_mc_predict",
    "check_dropout_ridge",
    "check_third_moment",
]


@_check
def check_original_dropout(original_dropout):
    """Check ``original_dropout(x, p, training)``, the scheme of Hinton et al. (2012):
    in training keep each entry with probability 1 - p *without* rescaling; at test time
    multiply by 1 - p.

    On inputs of shapes (48, 64) and (32, 6, 5, 7), at p = 0.2, 0.5 and 0.8: in
    training each entry is 0 or x, with one independent draw per entry and a fresh mask
    on every call (no reseeding between calls), about a fraction p dropped, x at p = 0
    and zeros (no NaN) at p = 1; at test time x * (1 - p); the input left unchanged,
    and the output with x's shape, dtype and device.
    """
    f = _Answer(original_dropout, "original_dropout", ("x", "p", "training"))
    _check_mask_dropout(
        f,
        _SHAPES,
        extra=(True,),
        kept_scale=lambda p: 1.0,
        kept_text="x itself",
    )
    for shape in _SHAPES:
        x = _signed(shape, seed=6)
        for p in (0.0, 0.2, 0.5, 0.8, 1.0):
            call = f.show(x, p, False)
            test = _as_tensor(f(x, p, False), call, shape=shape, dtype=x.dtype)
            if _close(test, x * (1 - p)):
                continue
            ratio = (test / x).double()
            lo, hi = ratio.min().item(), ratio.max().item()
            hint = ""
            if math.isclose(lo, 1.0) and math.isclose(hi, 1.0):
                hint = " The original scheme scales at test time."
            elif math.isclose(lo, p) and math.isclose(hi, p):
                hint = " Is p the probability to drop, not to keep?"
            elif hi > lo + 1e-6:
                hint = " At test time nothing is dropped: every entry is scaled."
            raise CheckFailed(
                f"at test time (training=False) with p={p} the output must be x * "
                f"(1 - p) = x * {1 - p:g}, but got x times {lo:.4g}"
                + (f" to {hi:.4g}" if hi > lo + 1e-6 else "")
                + "."
                + hint
            )


@_check
def check_mc_predict(mc_predict):
    """Check ``mc_predict(model, x, k)``: the mean softmax probabilities of k passes
    with every dropout module on (torch's ``nn.Dropout*``, ``nn.AlphaDropout`` and every
    dropkit module), BatchNorm frozen (running statistics used and left unchanged), and
    every module's mode restored; ``x`` left unchanged; a ValueError (or TypeError)
    for a k that is not a positive integer.

    The passes may run one after the other or as one batch (x repeated): the check
    records every pass through the model and compares the answer with the mean softmax
    of the passes it saw, so any order of drawing the masks is accepted.
    """
    f = _Answer(mc_predict, "mc_predict", ("model", "x", "k"))
    model = _bn_dropout_model()
    model[1].eval()  # an unusual mix of modes, which must come back as it was
    model[6].eval()
    before = [m.training for m in model.modules()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(64, 6)
    x0 = x.clone()
    k = 20
    call = f.show(model, x, k)
    with _Passes(model) as passes:
        out, err = f.attempt(model, x, k, check_inputs=False)
    if err is not None:
        raise CheckFailed(f.raised(err, model, x, k))
    _require(torch.equal(x, x0), f"{call} changed x in place: leave the input as it is")
    _as_tensor(out, call)
    _require(
        out.shape == (64, 3),
        "mc_predict must return one row of class probabilities per input, shape (64, "
        f"3), but got {tuple(out.shape)}",
    )
    bn = model[1]
    _require(
        torch.equal(bn.running_mean, state["1.running_mean"])
        and torch.equal(bn.running_var, state["1.running_var"])
        and int(bn.num_batches_tracked) == int(state["1.num_batches_tracked"])
        and passes.modes["1"] <= {False},
        "mc_predict changed BatchNorm's running statistics: it put the whole model in "
        "training mode. "
        "Call model.eval() first, then switch only the dropout modules back to "
        "train().",
    )
    now = model.state_dict()
    _require(
        all(torch.equal(now[k], v) for k, v in state.items()),
        f"{call} changed the model's weights: Monte-Carlo dropout only runs it",
    )
    _require(
        [m.training for m in model.modules()] == before,
        "after mc_predict the modules' train/eval modes differ from before the call: "
        "remember each module's "
        "`training` flag and restore it (in a `finally` block, so an error restores "
        "them too).",
    )
    out = out.detach().double()
    _require(
        torch.allclose(out.sum(dim=1), torch.ones(64, dtype=torch.float64), atol=1e-5)
        and bool((out >= 0).all()),
        "each row of mc_predict's output must be class probabilities that sum to 1: "
        "the mean over the passes of each pass's softmax (not of the logits, and not "
        "a median or a maximum, which do not sum to 1).",
    )
    _require(
        passes.inputs and len(passes.inputs) == len(passes.outputs),
        f"{call} did not run the model: run it on x, k times, with the dropout "
        "modules in training mode",
    )
    dropouts = [
        name for name, m in model.named_modules() if isinstance(m, _dropout_types())
    ]
    off = [name for name in dropouts if True not in passes.modes[name]]
    _require(
        len(off) < len(dropouts),
        "mc_predict returned the deterministic prediction: the dropout modules must "
        "be in train mode during the passes.",
    )
    _require(
        not off,
        "during the passes these dropout modules stayed in eval mode: "
        + ", ".join(
            f"model[{name}] ({_family(model.get_submodule(name))})" for name in off
        )
        + ". Switch on every dropout module, not only nn.Dropout: test isinstance(m, "
        "(torch.nn.modules.dropout._DropoutNd, dropkit.drop._DropoutBase)), which "
        "covers torch's "
        "Dropout, Dropout1d/2d/3d, AlphaDropout and FeatureAlphaDropout and all of "
        "dropkit's.",
    )
    want, of_logits = _mean_of_passes(passes, x, k, call)
    if not torch.allclose(out, want, atol=1e-5):
        _require(
            not torch.allclose(out, of_logits, atol=1e-5),
            "mc_predict returned the softmax of the mean logits: average the softmax "
            "probabilities of the passes (the arithmetic mean of the thinned "
            "networks' predictions), not their logits.",
        )
        raise CheckFailed(
            f"{call} differs from the mean of the softmax outputs of the {k} passes it "
            f"ran (by up to {(out - want).abs().max().item():.3g}). Run exactly k "
            "passes and average their softmax probabilities."
        )
    for bad in (0, -1, 2.5, True):
        out, err = f.attempt(_bn_dropout_model(), x, bad)
        if isinstance(err, (ValueError, TypeError)):
            continue
        raise CheckFailed(
            f"mc_predict(model, x, k={bad!r}) must raise ValueError: k must be a "
            "positive integer"
            + (f", but it raised {type(err).__name__}" if err is not None else "")
        )


def _dropout_ridge_reference(X, y, p):
    gram = X.T @ X
    return np.linalg.solve(gram + p / (1 - p) * np.diag(np.diag(gram)), X.T @ y)


def _ridge_solve(X, y, penalty):
    return np.linalg.solve(X.T @ X + penalty, X.T @ y)


def _same_weights(w, v):
    return np.linalg.norm(w - v) <= 1e-4 * np.linalg.norm(v)


@_check
def check_dropout_ridge(dropout_ridge):
    """Check ``dropout_ridge(X, y, p)`` for X an (n, d) array and y an (n,) array: the
    d weights minimising the expected loss of linear regression with inverted dropout
    (rate p) on the inputs, ``(X^T X + p/(1-p) diag(X^T X))^{-1} X^T y``, as any
    sequence of d numbers (a numpy array, a list, a tensor); X and y left unchanged.
    Tested at p = 0, 0.2, 0.5 and 0.9 on two data sets, to a relative tolerance of
    1e-4."""
    f = _Answer(dropout_ridge, "dropout_ridge", ("X", "y", "p"))
    rng = np.random.default_rng(0)
    data = []
    for n, scales in ((50, [0.5, 1.0, 2.0, 4.0]), (30, [3.0, 0.2, 1.0, 1.5, 0.7, 2.5])):
        d = len(scales)
        X = rng.standard_normal((n, d)) * np.array(scales)
        y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
        data.append((X, y))
    for X, y in data:
        d = X.shape[1]
        gram = X.T @ X
        for p in (0.0, 0.2, 0.5, 0.9):
            call = f.show(X, y, p)
            out, err = f.attempt(X, y, p)
            if err is not None:
                hint = (
                    "At p = 0 nothing is dropped and the penalty is 0; did you divide "
                    "by p? The strength is p/(1-p), p the probability to drop"
                    if isinstance(err, ZeroDivisionError) and p == 0
                    else ""
                )
                raise CheckFailed(f.raised(err, X, y, p, hint=hint))
            w = _as_vector(out, call, "the weights")
            _require(
                w.shape == (d,),
                f"{call} must return one weight per feature, {d} numbers, but "
                f"returned {w.size}",
            )
            ref = _ridge_solve(X, y, p / (1 - p) * np.diag(np.diag(gram)))
            if _same_weights(w, ref):
                continue
            mistakes = [
                (
                    p / (1 - p) * np.trace(gram) / d * np.eye(d),
                    "your penalty is the same for every weight; dropout's is "
                    "adaptive: weight j is penalised by the squared norm of feature j, "
                    "so use diag(X^T X), not a multiple of the identity",
                ),
                (
                    p / (1 - p) * np.eye(d),
                    "you used the identity where dropout's penalty has diag(X^T X): "
                    "each weight is penalised by the squared norm of its own feature",
                ),
                (
                    p * np.diag(np.diag(gram)),
                    "the penalty strength must be p/(1-p), the variance of a mask "
                    "entry scaled by 1/(1-p), not p",
                ),
                (
                    (1 - p) / p * np.diag(np.diag(gram)) if p > 0 else None,
                    "you used (1-p)/p: p is the probability to drop, so the strength "
                    "is p/(1-p)",
                ),
                (
                    p / (1 - p) * gram,
                    "the penalty keeps only the diagonal of X^T X: "
                    "np.diag(np.diag(X.T @ X)), not the whole matrix",
                ),
            ]
            for penalty, hint in mistakes:
                if p > 0 and penalty is not None:
                    if _same_weights(w, _ridge_solve(X, y, penalty)):
                        raise CheckFailed(f"at p={p} {hint}")
            raise CheckFailed(
                f"at p={p} your weights {np.round(w, 4)} differ from the minimiser of "
                f"the expected dropout loss {np.round(ref, 4)}"
            )


def _third_moment(p):
    return p * (2 * p - 1) / (1 - p) ** 2


@_check
def check_third_moment(third_moment):
    """Check ``third_moment(p)``: the third central moment E[(r - 1)^3] of inverted
    dropout's multiplier r = m / (1 - p), m ~ Bernoulli(1 - p), which is
    p (2p - 1) / (1 - p)^2. Gaussian dropout's multiplier N(1, p / (1 - p)) has the same
    mean and variance and a third central moment of 0. Tested at p = 0, 0.1, 0.2, 0.3,
    0.5, 0.7 and 0.9; any number (Python, numpy, a one-element tensor, float32
    included) within a relative tolerance of 1e-5 passes."""
    f = _Answer(third_moment, "third_moment", ("p",))
    ps = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
    got = []
    for p in ps:
        value, err = f.attempt(p)
        if isinstance(err, ZeroDivisionError):
            raise CheckFailed(
                f.raised(
                    err,
                    p,
                    hint="At p = 0 nothing is dropped, r = 1 always and the moment is "
                    "0; did you divide by p? p is the probability to drop, not to keep",
                )
            )
        if err is not None:
            raise CheckFailed(f.raised(err, p))
        value = _as_number(value, f"third_moment({p})")
        _require(
            math.isfinite(value),
            f"third_moment({p}) returned {value}, which is not finite",
        )
        got.append(value)

    def same(fn):
        return all(
            _numbers_close(g, fn(p), rel=1e-5, abs_=1e-7) for g, p in zip(got, ps)
        )

    if same(_third_moment):
        return
    if same(lambda p: 0.0):
        raise CheckFailed(
            "third_moment returned 0 for every p: that is the Gaussian multiplier's. "
            "The Bernoulli "
            "multiplier takes two values, 0 and 1/(1-p), with probabilities p and "
            "1-p: it is skewed."
        )
    if same(lambda p: 1 / (1 - p) ** 2):
        raise CheckFailed(
            "you returned E[r^3] = 1/(1-p)^2, the raw third moment: the central one "
            "subtracts the "
            "mean first, E[(r - 1)^3]."
        )
    if same(lambda p: _third_moment(1 - p) if p > 0 else 0.0):
        raise CheckFailed(
            "p is the probability to drop (r = 0 with probability p), not to keep."
        )
    if same(lambda p: -_third_moment(p)):
        raise CheckFailed(
            "the sign is wrong: at p = 0.2 most of the mass sits at 1.25, just above "
            "the mean, "
            "and the rare value 0 lies far below it, so the third central moment is "
            "negative."
        )
    raise CheckFailed(
        "third_moment differs from E[(r - 1)^3] at p = "
        + ", ".join(
            f"{p}: expected {_third_moment(p):.4g}, got {g:.4g}"
            for p, g in zip(ps, got)
            if not _numbers_close(g, _third_moment(p), rel=1e-5, abs_=1e-7)
        )
    )
