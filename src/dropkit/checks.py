"""Checks for the book's coding exercises.

Each ``check_*`` function runs a learner's code on inputs chosen to expose the usual mistakes and
either prints ``all checks passed`` or raises :class:`CheckFailed` saying, in plain words, what is
wrong and how to fix it. Statistical checks use fixed seeds and bounds six standard deviations wide,
so a correct solution never fails by bad luck.
"""

import math

import numpy as np
import torch

__all__ = ["CheckFailed", "check_dropout_layer", "check_scratch_backward", "check_saved_bytes"]


class CheckFailed(AssertionError):
    """A learner's solution does not do what the exercise asks; the message says what differs."""


def _require(condition, message):
    if not condition:
        raise CheckFailed(message)


def _passed():
    print("all checks passed")


def _keep_rate_ok(kept, total, p):
    """True when `kept` of `total` is within 6 standard deviations of the expected (1 - p) * total."""
    mean, sd = (1 - p) * total, math.sqrt(total * p * (1 - p))
    return abs(kept - mean) <= 6 * sd


def _check_identity_at_zero(fn, x, name):
    """At p=0 every dropout must return a tensor equal to its input."""
    out = fn(x, 0.0)
    _require(isinstance(out, torch.Tensor), f"{name} must return a tensor, but returned {type(out).__name__}")
    _require(out.shape == x.shape, f"{name} changed the shape: {tuple(x.shape)} in, {tuple(out.shape)} out")
    _require(torch.equal(out, x), f"at p=0 {name} must return its input unchanged, but the values differ")


def _check_mask_follows_input(fn, name):
    """The output must keep the input's dtype and device: the mask is made from the input."""
    for dtype in (torch.float16, torch.float64):
        out = fn(torch.ones(4, 4, dtype=dtype), 0.5)
        _require(
            out.dtype == dtype,
            f"for a {dtype} input your output is {out.dtype}: the mask must have the input's dtype, so "
            "make the mask from the input (X.new_empty(X.shape) or torch.rand_like(X)), not with "
            "torch.rand(X.shape).float()",
        )
    x = torch.ones(4, 4, device="meta")  # a device that is not the CPU, available on every machine
    try:
        out = fn(x, 0.5)
    except RuntimeError as err:
        raise CheckFailed(
            f"for an input on device 'meta' {name} failed ({err}). Make the mask on the input's device "
            "(X.new_empty(X.shape) or torch.rand_like(X)); torch.rand(X.shape) always makes it on the CPU."
        ) from None
    _require(out.device == x.device, f"for an input on {x.device} your output is on {out.device}")


def _check_inverted_dropout(fn, name):
    """The behaviour every correct dropout(X, p) shares; used by the checks below."""
    torch.manual_seed(0)
    x = torch.randn(2, 8)
    _check_identity_at_zero(fn, x, name)

    out = fn(x, 1.0)
    _require(
        not torch.isnan(out).any(),
        f"at p=1 your output has NaN: dividing by 1 - p = 0 gives 0/0. Return zeros when p == 1.",
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
            f"at p={p} the entries of {name}(ones, p) must be 0 or 1/(1-p) = {scale:.4g}, but found "
            f"{sorted(values)[:4]}. Did you forget to rescale the kept entries (inverted dropout)?",
        )
        kept = int((out != 0).sum())
        _require(
            _keep_rate_ok(kept, x.numel(), p),
            f"at p={p} you kept {kept} of {x.numel()} entries, far from the expected {(1 - p) * x.numel():.0f}. "
            "Is p the probability to drop (PyTorch's convention), not to keep?",
        )

    _check_mask_follows_input(fn, name)


def check_dropout_layer(dropout_layer):
    """Check a from-scratch ``dropout_layer(X, p)`` (chapter 1, d2l's convention: p drops).

    It must return X unchanged at p=0, zeros (never NaN) at p=1, entries 0 or X/(1-p) otherwise,
    drop about a fraction p, and keep X's dtype and device.
    """
    _check_inverted_dropout(dropout_layer, "dropout_layer")
    _passed()


def check_scratch_backward(dropout_backward):
    """Check a numpy ``dropout_backward(dout, cache)`` against ``dropkit.scratch.dropout_forward``."""
    from dropkit.scratch import dropout_forward

    rng = np.random.default_rng(0)
    x, dout = rng.standard_normal((4, 10)), rng.standard_normal((4, 10))
    for p in (0.0, 0.3, 0.5, 1.0):
        out, cache = dropout_forward(x, p, "train", seed=1)
        dx = dropout_backward(dout, cache)
        _require(isinstance(dx, np.ndarray), f"dropout_backward must return an array, but returned {type(dx).__name__}")
        _require(dx.shape == x.shape, f"dx must have the shape of x {x.shape}, but has {dx.shape}")
        _require(not np.isnan(dx).any(), f"at p={p} your dx has NaN: at p=1 the gradient is all zeros, no division")
        # The output is linear in x, out = x * m; so dx = dout * m, with m read off the forward pass.
        m = np.divide(out, x)
        _require(
            np.allclose(dx, dout * m),
            f"in train mode at p={p}, dx must be dout times the forward pass's mask scaled by 1/(1-p); "
            f"yours differs by up to {np.abs(dx - dout * m).max():.3g}",
        )
    out, cache = dropout_forward(x, 0.5, "test")
    dx = dropout_backward(dout, cache)
    _require(np.array_equal(dx, dout), "in test mode dropout is the identity, so dx must equal dout")
    _passed()


def check_saved_bytes(dropout, max_bytes_per_element=1):
    """Check that ``dropout(x, p)`` saves at most ``max_bytes_per_element`` for backward and that
    its gradient is the mask scaled by 1/(1-p)."""
    _check_inverted_dropout(dropout, "dropout")
    saved = []

    def pack(t):
        saved.append(t)
        return t

    n = 4096
    x = torch.randn(n, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = dropout(x, 0.5)
    y.backward(torch.ones(n))
    kept = y.detach() != 0
    _require(
        torch.equal(x.grad, kept.float() * 2),
        "the gradient must be 1/(1-p) = 2 where an entry was kept and 0 where it was dropped",
    )
    # Tensors the graph already holds (x itself) cost nothing extra.
    extra = sum(t.numel() * t.element_size() for t in saved if t is not x and t.data_ptr() != x.data_ptr())
    _require(
        extra <= max_bytes_per_element * n,
        f"your dropout saves {extra / n:g} bytes per element for backward, more than "
        f"{max_bytes_per_element}: a float32 mask costs 4. Save a torch.bool mask and rebuild the scale in backward.",
    )
    _passed()


# Chapter 2: inverted scaling, and what dropout does at test time.


def check_original_dropout(original_dropout):
    """Check ``original_dropout(x, p, training)``, the scheme of Hinton et al. (2012): in training
    keep each entry with probability 1 - p *without* rescaling; at test time multiply by 1 - p."""
    x = torch.ones(100_000)
    for p in (0.2, 0.5, 0.8):
        torch.manual_seed(0)
        out = original_dropout(x, p, True)
        _require(isinstance(out, torch.Tensor), f"original_dropout must return a tensor, but returned {type(out).__name__}")
        _require(out.shape == x.shape, f"original_dropout changed the shape: {tuple(x.shape)} in, {tuple(out.shape)} out")
        values = set(torch.unique(out).tolist())
        _require(
            values <= {0.0, 1.0},
            f"in training at p={p} the entries of original_dropout(ones, p, True) must be 0 or 1, but found "
            f"{sorted(values)[:4]}. The original scheme does not rescale in training; the 1/(1-p) belongs to "
            "inverted dropout.",
        )
        kept = int(out.sum())
        _require(
            _keep_rate_ok(kept, x.numel(), p),
            f"in training at p={p} you kept {kept} of {x.numel()} entries, far from the expected "
            f"{(1 - p) * x.numel():.0f}. Is p the probability to drop, not to keep?",
        )
        test = original_dropout(x, p, False)
        _require(
            torch.allclose(test, x * (1 - p)),
            f"at test time (training=False) with p={p} the output must be x * (1 - p) = {1 - p:g} for an input of "
            f"ones, but got values like {test.flatten()[0].item():g}. The original scheme scales at test time.",
        )
    out = original_dropout(x, 1.0, True)
    _require(not torch.isnan(out).any() and not out.any(), "at p=1 every entry must be dropped, with no NaN")
    _passed()


def _bn_dropout_model():
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    model.train()
    for _ in range(3):  # give BatchNorm non-trivial running statistics
        model(torch.randn(32, 6))
    return model


def check_mc_predict(mc_predict):
    """Check ``mc_predict(model, x, k)``: the mean softmax probabilities of k passes with dropout on,
    BatchNorm frozen (running statistics used and left unchanged), and every module's mode restored."""

    model = _bn_dropout_model()
    model[1].eval()  # an unusual mix of modes, which must come back as it was
    before = [m.training for m in model.modules()]
    stats = model[1].running_mean.clone(), model[1].running_var.clone(), int(model[1].num_batches_tracked)
    x = torch.randn(64, 6)
    torch.manual_seed(1)
    out = mc_predict(model, x, 20)
    _require(isinstance(out, torch.Tensor), f"mc_predict must return a tensor, but returned {type(out).__name__}")
    _require(out.shape == (64, 3), f"mc_predict must return one row of class probabilities per input, shape (64, 3), but got {tuple(out.shape)}")
    _require(
        torch.equal(model[1].running_mean, stats[0]) and torch.equal(model[1].running_var, stats[1])
        and int(model[1].num_batches_tracked) == stats[2],
        "mc_predict changed BatchNorm's running statistics: it put the whole model in training mode. "
        "Call model.eval() first, then switch only the dropout modules back to train().",
    )
    _require(
        [m.training for m in model.modules()] == before,
        "after mc_predict the modules' train/eval modes differ from before the call: remember each module's "
        "`training` flag and restore it (in a `finally` block, so an error restores them too).",
    )
    _require(
        torch.allclose(out.sum(dim=1), torch.ones(64), atol=1e-5) and (out >= 0).all(),
        "each row of mc_predict's output must be class probabilities that sum to 1: average the softmax of "
        "each pass, not the logits.",
    )
    model.eval()
    with torch.no_grad():
        single = model(x).softmax(dim=1)
    _require(
        not torch.allclose(out, single, atol=1e-4),
        "mc_predict returned the deterministic prediction: the dropout modules must be in train mode during the passes.",
    )
    # The mean of k passes must match a reference computed from the same random numbers.
    ref_model, model = _bn_dropout_model(), _bn_dropout_model()
    ref_model.eval()
    ref_model[3].train()
    torch.manual_seed(2)
    with torch.no_grad():
        ref = torch.stack([ref_model(x).softmax(dim=1) for _ in range(7)]).mean(0)
    torch.manual_seed(2)
    got = mc_predict(model, x, 7)
    _require(
        torch.allclose(got, ref, atol=1e-5),
        "mc_predict(model, x, 7) differs from the mean of 7 softmax outputs with only dropout in train mode. "
        "Run exactly k passes and average them.",
    )
    for bad in (0, -1, 2.5, True):
        try:
            mc_predict(model, x, bad)
        except (ValueError, TypeError):
            continue
        raise CheckFailed(f"mc_predict(model, x, k={bad!r}) must raise ValueError: k must be a positive integer")
    _passed()


def _dropout_ridge_reference(X, y, p):
    gram = X.T @ X
    return np.linalg.solve(gram + p / (1 - p) * np.diag(np.diag(gram)), X.T @ y)


def check_dropout_ridge(dropout_ridge):
    """Check ``dropout_ridge(X, y, p)``: the weights minimising the expected loss of linear regression
    with inverted dropout (rate p) on the inputs, ``(X^T X + p/(1-p) diag(X^T X))^{-1} X^T y``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)) * np.array([0.5, 1.0, 2.0, 4.0])
    y = X @ np.array([1.0, -2.0, 0.5, 0.25]) + 0.1 * rng.standard_normal(50)
    gram = X.T @ X
    for p in (0.0, 0.2, 0.5):
        w = np.asarray(dropout_ridge(X, y, p), dtype=float)
        _require(w.shape == (4,), f"dropout_ridge must return one weight per feature, shape (4,), but got {w.shape}")
        ref = _dropout_ridge_reference(X, y, p)
        if np.allclose(w, ref, rtol=1e-6, atol=1e-9):
            continue
        if p > 0 and np.allclose(w, np.linalg.solve(gram + p / (1 - p) * np.trace(gram) / 4 * np.eye(4), X.T @ y), rtol=1e-6):
            raise CheckFailed("your penalty is the same for every weight; dropout's is adaptive: weight j is penalised by "
                              "the squared norm of feature j, so use diag(X^T X), not a multiple of the identity")
        if p > 0 and np.allclose(w, np.linalg.solve(gram + p / (1 - p) * np.eye(4), X.T @ y), rtol=1e-6):
            raise CheckFailed("you used the identity where dropout's penalty has diag(X^T X): each weight is penalised "
                              "by the squared norm of its own feature")
        if p > 0 and np.allclose(w, np.linalg.solve(gram + p * np.diag(np.diag(gram)), X.T @ y), rtol=1e-6):
            raise CheckFailed("the penalty strength must be p/(1-p), the variance of a mask entry scaled by 1/(1-p), not p")
        if p > 0 and np.allclose(w, np.linalg.solve(gram + (1 - p) / p * np.diag(np.diag(gram)), X.T @ y), rtol=1e-6):
            raise CheckFailed("you used (1-p)/p: p is the probability to drop, so the strength is p/(1-p)")
        raise CheckFailed(f"at p={p} your weights {np.round(w, 4)} differ from the minimiser of the expected dropout loss "
                          f"{np.round(ref, 4)}")
    _passed()


__all__ += ["check_original_dropout", "check_mc_predict", "check_dropout_ridge"]


# Chapter 3: training with dropout.


def check_epochs_to_reach(epochs_to_reach):
    """Check ``epochs_to_reach(val_acc, target)``: the first epoch, counting from 1, whose validation
    accuracy is at least ``target``, or ``None`` if no epoch reaches it."""
    cases = [
        ([0.2, 0.4, 0.5, 0.45, 0.6], 0.45, 3, "the first epoch at or above the target, counting from 1"),
        ([0.2, 0.4, 0.5, 0.45, 0.6], 0.5, 3, "an accuracy equal to the target reaches it (>=, not >)"),
        ([0.5, 0.1], 0.3, 1, "the first epoch counts as 1"),
        ([0.2, 0.4, 0.5, 0.45, 0.6], 0.55, 5, "the last epoch counts too"),
        ([0.2, 0.3], 0.9, None, "None when the target is never reached"),
    ]
    for val_acc, target, expected, rule in cases:
        got = epochs_to_reach(list(val_acc), target)
        if isinstance(got, (np.integer,)):
            got = int(got)
        if got == expected and (expected is not None or got is None):
            continue
        hint = ""
        if expected is not None and got == expected - 1:
            hint = " You count epochs from 0; the first epoch is epoch 1."
        elif expected is None:
            hint = " Return None, not a number, when no epoch reaches the target (np.argmax of all False is 0)."
        elif expected == 3 and target == 0.5 and got == 5:
            hint = " Use >= target: an epoch that exactly reaches it counts."
        raise CheckFailed(
            f"epochs_to_reach({val_acc}, {target}) returned {got!r}, but should return {expected!r}: {rule}.{hint}"
        )
    _passed()


def check_l2_penalty(l2_penalty):
    """Check ``l2_penalty(model)``: half the sum of squared weight matrices of the model's linear
    layers, biases excluded, as a scalar tensor that gradients flow through."""
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3))
    with torch.no_grad():
        for m in (model[1], model[4]):
            m.bias.fill_(3.0)  # large biases make "biases included" easy to see
    weights = (model[1].weight, model[4].weight)
    expected = sum((w.detach() ** 2).sum() for w in weights) / 2
    got = l2_penalty(model)
    _require(isinstance(got, torch.Tensor), f"l2_penalty must return a tensor, but returned {type(got).__name__}")
    _require(got.numel() == 1, f"l2_penalty must return a scalar, but returned shape {tuple(got.shape)}")
    _require(got.requires_grad, "the penalty must be differentiable: compute it from the parameters, without .detach() or .item()")
    with_biases = expected + sum((m.bias.detach() ** 2).sum() for m in (model[1], model[4])) / 2
    if torch.isclose(got.detach(), with_biases):
        raise CheckFailed("your penalty includes the biases: weight decay (d2l's l2_penalty) acts on the weights only")
    if torch.isclose(got.detach(), 2 * expected):
        raise CheckFailed("your penalty is twice the expected value: d2l's l2_penalty is sum(w ** 2) / 2")
    abs_sum = sum(w.detach().abs().sum() for w in weights)
    if torch.isclose(got.detach(), abs_sum) or torch.isclose(got.detach(), abs_sum / 2):
        raise CheckFailed("your penalty sums absolute values (L1); weight decay squares the weights (L2)")
    _require(
        torch.isclose(got.detach(), expected),
        f"l2_penalty returned {got.item():.4f}, but half the sum of the squared weights of the two linear layers "
        f"is {expected.item():.4f}",
    )
    got.backward()
    _require(
        torch.allclose(model[4].weight.grad, model[4].weight.detach()),
        "the gradient of the penalty with respect to a weight matrix W must be W itself",
    )
    _passed()


__all__ += ["check_epochs_to_reach", "check_l2_penalty"]


# Chapter 4: noise_shape and spatial dropout.


def _check_shared_mask(fn, shape, shared, name, hint):
    """fn(x, p) must drop with one draw per index of the axes not in `shared`, shared along `shared`."""
    torch.manual_seed(0)
    x = torch.randn(shape)
    _check_identity_at_zero(fn, x, name)
    out = fn(x, 1.0)
    _require(not torch.isnan(out).any(), f"at p=1 {name} gave NaN: dividing by 1 - p = 0 gives 0/0. Return zeros.")
    _require(torch.equal(out, torch.zeros_like(x)), f"at p=1 {name} must drop everything, but it kept some entries")
    out = fn(torch.ones(shape, dtype=torch.float16), 0.5)
    _require(out.dtype == torch.float16, f"for a float16 input {name} returned {out.dtype}: make the mask from the input")

    p = 0.5
    y = fn(torch.ones(shape), p)
    values = set(torch.unique(y).tolist())
    _require(values <= {0.0, 2.0}, f"at p={p} the entries of {name}(ones, p) must be 0 or 1/(1-p) = 2, but found "
             f"{sorted(values)[:4]}. Did you forget to rescale the kept entries?")
    first = y
    for axis in shared:
        first = first.narrow(axis, 0, 1)
    _require(torch.equal(y, first.expand_as(y)), f"{name} dropped parts of what must be dropped whole. {hint}")
    for axis in range(len(shape)):
        if axis not in shared:
            same = torch.equal(first, first.narrow(axis, 0, 1).expand_as(first))
            what = "sample" if axis == 0 else f"index along axis {axis}"
            _require(not same, f"{name} drew one mask for every {what}: the mask must be drawn separately along "
                     f"axis {axis}, so its noise shape has the axis size there, not 1. {hint}")
    kept, total = int((first != 0).sum()), first.numel()
    _require(_keep_rate_ok(kept, total, p), f"at p={p} {name} kept {kept} of {total} mask entries, far from "
             f"{(1 - p) * total:.0f}. Is p the probability to drop?")
    _passed()


def check_token_dropout(token_dropout):
    """Check ``token_dropout(x, p)`` for embeddings x of shape (N, T, C): each token's whole vector is
    dropped or kept (noise shape (N, T, 1)), independently per sample and position."""
    _check_shared_mask(
        token_dropout, (64, 50, 16), shared=(2,), name="token_dropout",
        hint="Token dropout keeps or drops a token's whole C-vector: noise_shape=(None, None, 1).",
    )


def check_spatial_dropout_nhwc(spatial_dropout_nhwc):
    """Check ``spatial_dropout_nhwc(x, p)`` for channels-last images (N, H, W, C) (Keras'
    SpatialDropout2D): each channel's whole H x W map is dropped or kept, per sample."""
    _check_shared_mask(
        spatial_dropout_nhwc, (64, 6, 5, 16), shared=(1, 2), name="spatial_dropout_nhwc",
        hint="For (N, H, W, C) the channels are the last axis: noise_shape=(None, 1, 1, None), or "
        "spatial_dropout(x, p, channel_dim=-1). channel_dim=1 would drop rows of the image.",
    )


def check_zero_count_pmf(zero_count_pmf):
    """Check ``zero_count_pmf(shape, noise_shape, p)``: the probabilities that dropout of a tensor of
    ``shape`` (no zeros in it) with ``noise_shape`` leaves exactly 0, 1, ..., numel zeros."""
    cases = [((2, 2, 2), (1, 2, 2), 0.5), ((2, 3), (None, 1), 0.3), ((5,), (None,), 0.2), ((2, 2, 2), (1, 1, 1), 0.7), ((3, 4), (1, 4), 0.25)]
    for shape, noise_shape, p in cases:
        numel = math.prod(shape)
        draws = math.prod(s if n is None else n for s, n in zip(shape, noise_shape))
        size = numel // draws
        expected = np.zeros(numel + 1)
        naive = np.zeros(numel + 1)
        for j in range(draws + 1):
            expected[j * size] = math.comb(draws, j) * p**j * (1 - p) ** (draws - j)
        for j in range(numel + 1):
            naive[j] = math.comb(numel, j) * p**j * (1 - p) ** (numel - j)
        flipped = expected[::-1]  # p read as the keep probability
        got = np.asarray(zero_count_pmf(shape, noise_shape, p), dtype=np.float64).ravel()
        case = f"shape={shape}, noise_shape={noise_shape}, p={p}"
        _require(got.shape == (numel + 1,), f"for {case} return {numel + 1} probabilities (0 to {numel} zeros), but got {got.shape[0]}")
        _require(abs(got.sum() - 1) < 1e-9, f"for {case} your probabilities sum to {got.sum():.6g}, not 1")
        if np.allclose(got, expected, atol=1e-9):
            continue
        _require(not np.allclose(got, naive, atol=1e-9), f"for {case} you treated every element as its own draw. "
                 f"The mask has only {draws} entries; each dropped one zeros {size} elements at once.")
        _require(not np.allclose(got, flipped, atol=1e-9), f"for {case} you swapped drop and keep: p is the probability to drop")
        raise CheckFailed(f"for {case} expected {np.round(expected, 4).tolist()}, but got {np.round(got, 4).tolist()}")
    _passed()


def check_drop_block_1d(drop_block_1d):
    """Check ``drop_block_1d(x, p, block_size)`` for x of shape (N, C, L): zero runs of ``block_size``
    positions that lie inside the sequence, about a fraction p of all entries, and scale the rest
    by numel / number kept."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32)
    out = drop_block_1d(x, 0.0, 5)
    _require(isinstance(out, torch.Tensor) and out.shape == x.shape, "drop_block_1d must return a tensor of the input's shape")
    _require(torch.equal(out, x), "at p=0 drop_block_1d must return its input unchanged")
    for p, b in [(0.3, 5), (0.2, 1), (0.3, 7)]:
        y = drop_block_1d(torch.ones(64, 16, 64), p, b)
        dropped = y == 0
        kept = int((~dropped).sum())
        _require(kept > 0, f"at p={p}, block_size={b} drop_block_1d dropped everything")
        # Every run of zeros along L must be at least block_size long.
        d = torch.nn.functional.pad(dropped.float(), (1, 1))
        starts = ((d[..., 1:] - d[..., :-1]) == 1).nonzero()
        ends = ((d[..., 1:] - d[..., :-1]) == -1).nonzero()
        shortest = int((ends[:, 2] - starts[:, 2]).min()) if len(starts) else b
        _require(shortest >= b, f"at block_size={b} a run of only {shortest} zero(s) appeared: drop whole blocks of "
                 f"block_size positions lying inside the sequence, not single elements")
        scale = y.numel() / kept
        _require(torch.allclose(y[~dropped], torch.full((kept,), scale), rtol=1e-4),
                 f"at p={p}, block_size={b} kept entries must be scaled by numel / number kept = {scale:.4f}, but found "
                 f"values from {y[~dropped].min().item():.4f} to {y[~dropped].max().item():.4f}")
        frac = dropped.float().mean().item()
        _require(abs(frac - p) < 0.05, f"at p={p}, block_size={b} you dropped a fraction {frac:.3f} of the entries, "
                 f"far from p. Did you divide the block-start rate by block_size (gamma in the paper)?")
    y = drop_block_1d(torch.ones(256, 8, 16), 0.5, 16)
    rows = (y == 0).float().mean(-1)
    _require(bool(((rows == 0) | (rows == 1)).all()), "with block_size = L a channel must be dropped whole, as in spatial dropout")
    _passed()


__all__ += ["check_token_dropout", "check_spatial_dropout_nhwc", "check_zero_count_pmf", "check_drop_block_1d"]


# Chapter 5: DropPath / stochastic depth.


def _check_zero_one_ends(fn, name):
    """p = 0 returns the input, p = 1 gives zeros without NaN; shared by the path-dropping checks."""
    torch.manual_seed(0)
    x = torch.randn(6, 3, 4)
    _check_identity_at_zero(fn, x, name)
    out = fn(x, 1.0)
    _require(
        not torch.isnan(out).any(),
        f"at p=1 your output has NaN: dividing by the keep rate 1 - p = 0 gives inf, and inf * 0 = NaN. "
        "Divide the mask (not the input), and only when 1 - p > 0.",
    )
    _require(
        torch.equal(out, torch.zeros_like(x)),
        f"at p=1 the branch must always be dropped, but {name} kept some of it. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )


def check_batch_stochastic_depth(batch_stochastic_depth):
    """Check ``batch_stochastic_depth(x, p)``: one keep/drop draw for the whole batch (chapter 5).

    Every call must give either zeros everywhere or ``x / (1 - p)`` everywhere, keep the batch with
    probability about 1 - p, return x at p=0 and zeros (no NaN) at p=1, keep dtype and device.
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
                f"at p={p} one call kept part of the batch and dropped the rest (values {sorted(values)[:3]}). "
                "Batch mode draws ONE number for the whole batch (mask shape (1, 1, ..., 1)); a mask of "
                "shape (N, 1, ..., 1) is per-sample DropPath (torchvision's mode='row').",
            )
            _require(
                p == 0.5 or torch.tensor(1 / p).item() not in values,
                f"at p={p} the kept batch is scaled by 1/p = {1 / p:.4g}, not 1/(1-p) = {scale:.4g}. "
                "Is p the probability to drop (PyTorch's convention), not to keep?",
            )
            _require(
                values <= {0.0, scale},
                f"at p={p} the entries must be 0 or 1/(1-p) = {scale:.4g}, but found {sorted(values)}. "
                "Did you forget to scale the kept batch by 1/(1-p)?",
            )
            kept += values == {scale}
        _require(
            _keep_rate_ok(kept, calls, p),
            f"at p={p} the batch was kept in {kept} of {calls} calls, far from the expected "
            f"{(1 - p) * calls:.0f}. Is p the probability to drop, not to keep?",
        )
    _check_mask_follows_input(fn, name)
    _passed()


def check_expected_depth(expected_depth):
    """Check ``expected_depth(rates)``: the expected number of active branches, sum of (1 - p_l)."""
    from dropkit.vit import drop_path_rates

    cases = [
        ([0.0] * 5, 5.0),
        ([1.0] * 5, 0.0),
        (drop_path_rates(0.5, 12), 9.0),
        ([0.1, 0.7, 0.3], 1.9),
    ]
    for rates, want in cases:
        got = expected_depth(list(rates))
        _require(isinstance(got, (int, float)), f"expected_depth must return a number, but returned {type(got).__name__}")
        if math.isclose(got, want, abs_tol=1e-9):
            continue
        shown = [round(r, 3) for r in rates]
        if math.isclose(got, sum(rates), abs_tol=1e-9):
            hint = "you added up the drop rates: that is the expected number of DROPPED branches"
        elif math.isclose(got, math.prod(1 - r for r in rates), abs_tol=1e-9):
            hint = "you multiplied the survival probabilities: that is the probability that ALL branches survive"
        else:
            hint = "each branch l is active with probability 1 - p_l; add these up"
        _require(False, f"for rates {shown} the expected depth is {want:g}, but you returned {got:g}: {hint}")
    _passed()


def check_huang_survival(huang_survival):
    """Check ``huang_survival(depth, final_survival)``: 1 - l/L (1 - p_L) for l = 1..L (Huang et al.)."""
    for depth, final in [(4, 0.5), (54, 0.5), (3, 0.8)]:
        got = huang_survival(depth, final)
        want = [1 - l / depth * (1 - final) for l in range(1, depth + 1)]
        _require(
            len(got) == depth,
            f"huang_survival({depth}, {final}) must return one probability per block ({depth}), but returned {len(got)}",
        )
        if np.allclose(got, want):
            continue
        if np.allclose(got, [1 - s for s in want]):
            hint = "you returned drop rates; the exercise asks for survival probabilities (1 - drop rate)"
        elif np.allclose(got, np.linspace(1.0, final, depth)):
            hint = ("that is timm's linspace, whose first block always survives; Huang's block l = 1..L "
                    "survives with 1 - l/L (1 - p_L), so the first block is below 1")
        else:
            hint = "block l = 1..L survives with probability 1 - l/L * (1 - final_survival)"
        _require(
            False,
            f"huang_survival({depth}, {final}) should be {[round(w, 4) for w in want][:5]}..., but is "
            f"{[round(float(g), 4) for g in got][:5]}...: {hint}",
        )
    _passed()


def check_drop_path(drop_path):
    """Check a from-scratch ``drop_path(x, drop_prob, training)`` (chapter 5, timm's signature).

    Per sample the branch is dropped (zeros) or kept and scaled by 1/(1-p); x itself when not
    training or p=0; zeros, never NaN, at p=1; the input's dtype and device.
    """
    name = "drop_path"
    x = torch.randn(6, 3, 4)
    _require(drop_path(x, 0.5, training=False) is x, "when not training, drop_path must return its input itself")
    fn = lambda x, p: drop_path(x, p, training=True)  # noqa: E731
    _check_zero_one_ends(fn, name)
    torch.manual_seed(2)
    n, p = 20_000, 0.3
    out = fn(torch.ones(n, 3, 4), p)
    scale = torch.tensor(1 / (1 - p)).item()
    values = set(torch.unique(out).tolist())
    _require(
        torch.tensor(1 / p).item() not in values,
        f"at p={p} kept samples are scaled by 1/p = {1 / p:.4g}, not 1/(1-p) = {scale:.4g}. "
        "Is p the probability to drop (PyTorch's convention), not to keep?",
    )
    _require(
        values <= {0.0, scale},
        f"at p={p} entries must be 0 or 1/(1-p) = {scale:.4g}, but found {sorted(values)[:4]}. "
        "Did you forget to scale the kept samples?",
    )
    per_sample = out.reshape(n, -1)
    _require(
        bool((per_sample == per_sample[:, :1]).all()),
        "some sample was partly kept and partly dropped: DropPath draws one number per sample, a mask "
        "of shape (N, 1, ..., 1), not one per entry (that is ordinary dropout)",
    )
    kept = int((per_sample[:, 0] != 0).sum())
    _require(
        _keep_rate_ok(kept, n, p),
        f"at p={p} you kept {kept} of {n} samples, far from the expected {(1 - p) * n:.0f}. "
        "Is p the probability to drop, not to keep?",
    )
    _check_mask_follows_input(fn, name)
    _passed()


__all__ += ["check_batch_stochastic_depth", "check_expected_depth", "check_huang_survival", "check_drop_path"]
