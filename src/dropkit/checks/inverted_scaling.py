"""Exercise checks for Chapter 2: inverted scaling, and dropout at test time."""

import math

import numpy as np
import torch

from dropkit.checks._common import CheckFailed, _keep_rate_ok, _passed, _require

__all__ = [
    "check_original_dropout",
    "check_mc_predict",
    "check_dropout_ridge",
    "check_third_moment",
]


def check_original_dropout(original_dropout):
    """Check ``original_dropout(x, p, training)``, the scheme of Hinton et al. (2012):
    in training keep each entry with probability 1 - p *without* rescaling; at test time
    multiply by 1 - p."""
    x = torch.ones(100_000)
    for p in (0.2, 0.5, 0.8):
        torch.manual_seed(0)
        out = original_dropout(x, p, True)
        _require(
            isinstance(out, torch.Tensor),
            f"original_dropout must return a tensor, but returned {type(out).__name__}",
        )
        _require(
            out.shape == x.shape,
            f"original_dropout changed the shape: {tuple(x.shape)} in, "
            f"{tuple(out.shape)} out",
        )
        values = set(torch.unique(out).tolist())
        _require(
            values <= {0.0, 1.0},
            f"in training at p={p} the entries of original_dropout(ones, p, True) "
            "must be 0 or 1, but found "
            f"{sorted(values)[:4]}. The original scheme does not rescale in training; "
            "the 1/(1-p) belongs to "
            "inverted dropout.",
        )
        kept = int(out.sum())
        _require(
            _keep_rate_ok(kept, x.numel(), p),
            f"in training at p={p} you kept {kept} of {x.numel()} entries, far from "
            "the expected "
            f"{(1 - p) * x.numel():.0f}. Is p the probability to drop, not to keep?",
        )
        test = original_dropout(x, p, False)
        _require(
            torch.allclose(test, x * (1 - p)),
            f"at test time (training=False) with p={p} the output must be x * (1 - p) "
            f"= {1 - p:g} for an input of "
            f"ones, but got values like {test.flatten()[0].item():g}. The original "
            "scheme scales at test time.",
        )
    out = original_dropout(x, 1.0, True)
    _require(
        not torch.isnan(out).any() and not out.any(),
        "at p=1 every entry must be dropped, with no NaN",
    )
    _passed()


def _dropout_types():
    from dropkit.drop import _DropoutBase

    return (torch.nn.modules.dropout._DropoutNd, _DropoutBase)


def _bn_dropout_model():
    """BatchNorm, then one dropout module of every family: torch's and dropkit's."""
    from torch import nn

    import dropkit

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(0.5),  # 3: torch
        nn.Linear(16, 16),
        dropkit.Dropout(0.2),  # 5: dropkit
        nn.AlphaDropout(0.2),  # 6: torch, not an nn.Dropout
        dropkit.GaussianDropout(0.2),  # 7: dropkit
        dropkit.DropPath(0.2),  # 8: dropkit
        nn.Linear(16, 3),
    )
    model.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        model(torch.randn(32, 6))
    return model


def _only_dropout_on(model):
    model.eval()
    for m in model.modules():
        if isinstance(m, _dropout_types()):
            m.train()


def _family(module):
    owner = "dropkit" if type(module).__module__.startswith("dropkit") else "torch"
    return f"{owner} {type(module).__name__}"


def _modes_during(model, call):
    """Run ``call()`` and return, per dropout and BatchNorm module, the set of
    ``training`` flags it had when its forward ran."""
    seen = {
        name: set()
        for name, m in model.named_modules()
        if isinstance(m, (*_dropout_types(), torch.nn.modules.batchnorm._BatchNorm))
    }
    hooks = [
        m.register_forward_pre_hook(
            lambda mod, inp, name=name: seen[name].add(mod.training)
        )
        for name, m in model.named_modules()
        if name in seen
    ]
    try:
        out = call()
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def check_mc_predict(mc_predict):
    """Check ``mc_predict(model, x, k)``: the mean softmax probabilities of k passes
    with every dropout module on (torch's ``nn.Dropout*``, ``nn.AlphaDropout`` and every
    dropkit module), BatchNorm frozen (running statistics used and left unchanged), and
    every module's mode restored."""

    model = _bn_dropout_model()
    model[1].eval()  # an unusual mix of modes, which must come back as it was
    model[6].eval()
    before = [m.training for m in model.modules()]
    stats = (
        model[1].running_mean.clone(),
        model[1].running_var.clone(),
        int(model[1].num_batches_tracked),
    )
    x = torch.randn(64, 6)
    torch.manual_seed(1)
    out, seen = _modes_during(model, lambda: mc_predict(model, x, 20))
    _require(
        isinstance(out, torch.Tensor),
        f"mc_predict must return a tensor, but returned {type(out).__name__}",
    )
    _require(
        out.shape == (64, 3),
        "mc_predict must return one row of class probabilities per input, shape (64, "
        f"3), but got {tuple(out.shape)}",
    )
    _require(
        torch.equal(model[1].running_mean, stats[0])
        and torch.equal(model[1].running_var, stats[1])
        and int(model[1].num_batches_tracked) == stats[2]
        and seen["1"] <= {False},
        "mc_predict changed BatchNorm's running statistics: it put the whole model in "
        "training mode. "
        "Call model.eval() first, then switch only the dropout modules back to "
        "train().",
    )
    _require(
        [m.training for m in model.modules()] == before,
        "after mc_predict the modules' train/eval modes differ from before the call: "
        "remember each module's "
        "`training` flag and restore it (in a `finally` block, so an error restores "
        "them too).",
    )
    _require(
        torch.allclose(out.sum(dim=1), torch.ones(64), atol=1e-5) and (out >= 0).all(),
        "each row of mc_predict's output must be class probabilities that sum to 1: "
        "average the softmax of "
        "each pass, not the logits.",
    )
    dropouts = [
        name for name, m in model.named_modules() if isinstance(m, _dropout_types())
    ]
    off = [name for name in dropouts if True not in seen[name]]
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
    # The mean of k passes must match a reference computed from the same random numbers.
    ref_model, model = _bn_dropout_model(), _bn_dropout_model()
    _only_dropout_on(ref_model)
    torch.manual_seed(2)
    with torch.no_grad():
        ref = torch.stack([ref_model(x).softmax(dim=1) for _ in range(7)]).mean(0)
    torch.manual_seed(2)
    got = mc_predict(model, x, 7)
    _require(
        torch.allclose(got, ref, atol=1e-5),
        "mc_predict(model, x, 7) differs from the mean of 7 softmax outputs with only "
        "the dropout "
        "modules in train mode. Run exactly k passes and average them.",
    )
    for bad in (0, -1, 2.5, True):
        try:
            mc_predict(model, x, bad)
        except (ValueError, TypeError):
            continue
        raise CheckFailed(
            f"mc_predict(model, x, k={bad!r}) must raise ValueError: k must be a "
            "positive integer"
        )
    _passed()


def _dropout_ridge_reference(X, y, p):
    gram = X.T @ X
    return np.linalg.solve(gram + p / (1 - p) * np.diag(np.diag(gram)), X.T @ y)


def check_dropout_ridge(dropout_ridge):
    """Check ``dropout_ridge(X, y, p)``: the weights minimising the expected loss of
    linear regression with inverted dropout (rate p) on the inputs,
    ``(X^T X + p/(1-p) diag(X^T X))^{-1} X^T y``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)) * np.array([0.5, 1.0, 2.0, 4.0])
    y = X @ np.array([1.0, -2.0, 0.5, 0.25]) + 0.1 * rng.standard_normal(50)
    gram = X.T @ X
    for p in (0.0, 0.2, 0.5):
        w = np.asarray(dropout_ridge(X, y, p), dtype=float)
        _require(
            w.shape == (4,),
            "dropout_ridge must return one weight per feature, shape (4,), but got "
            f"{w.shape}",
        )
        ref = _dropout_ridge_reference(X, y, p)
        if np.allclose(w, ref, rtol=1e-6, atol=1e-9):
            continue
        if p > 0 and np.allclose(
            w,
            np.linalg.solve(
                gram + p / (1 - p) * np.trace(gram) / 4 * np.eye(4), X.T @ y
            ),
            rtol=1e-6,
        ):
            raise CheckFailed(
                "your penalty is the same for every weight; dropout's is adaptive: "
                "weight j is penalised by "
                "the squared norm of feature j, so use diag(X^T X), not a multiple of "
                "the identity"
            )
        if p > 0 and np.allclose(
            w, np.linalg.solve(gram + p / (1 - p) * np.eye(4), X.T @ y), rtol=1e-6
        ):
            raise CheckFailed(
                "you used the identity where dropout's penalty has diag(X^T X): each "
                "weight is penalised "
                "by the squared norm of its own feature"
            )
        if p > 0 and np.allclose(
            w, np.linalg.solve(gram + p * np.diag(np.diag(gram)), X.T @ y), rtol=1e-6
        ):
            raise CheckFailed(
                "the penalty strength must be p/(1-p), the variance of a mask entry "
                "scaled by 1/(1-p), not p"
            )
        if p > 0 and np.allclose(
            w,
            np.linalg.solve(gram + (1 - p) / p * np.diag(np.diag(gram)), X.T @ y),
            rtol=1e-6,
        ):
            raise CheckFailed(
                "you used (1-p)/p: p is the probability to drop, so the strength is "
                "p/(1-p)"
            )
        raise CheckFailed(
            f"at p={p} your weights {np.round(w, 4)} differ from the minimiser of the "
            "expected dropout loss "
            f"{np.round(ref, 4)}"
        )
    _passed()


def _third_moment(p):
    return p * (2 * p - 1) / (1 - p) ** 2


def check_third_moment(third_moment):
    """Check ``third_moment(p)``: the third central moment E[(r - 1)^3] of inverted
    dropout's multiplier r = m / (1 - p), m ~ Bernoulli(1 - p), which is
    p (2p - 1) / (1 - p)^2. Gaussian dropout's multiplier N(1, p / (1 - p)) has the same
    mean and variance and a third central moment of 0."""
    ps = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
    got = []
    for p in ps:
        try:
            value = third_moment(p)
        except ZeroDivisionError:
            raise CheckFailed(
                f"third_moment({p}) divided by zero. At p = 0 nothing is dropped, r = "
                "1 always and "
                "the moment is 0; did you divide by p? p is the probability to drop, "
                "not to keep."
            ) from None
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"third_moment({p}) must return a number, but returned {value!r}"
            ) from None
        _require(
            math.isfinite(value),
            f"third_moment({p}) returned {value}, which is not finite",
        )
        got.append(value)

    def same(fn):
        return all(
            math.isclose(g, fn(p), rel_tol=1e-9, abs_tol=1e-12) for g, p in zip(got, ps)
        )

    if same(_third_moment):
        _passed()
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
            if not math.isclose(g, _third_moment(p), rel_tol=1e-9, abs_tol=1e-12)
        )
    )
