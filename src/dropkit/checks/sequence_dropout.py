"""Exercise checks for Chapter 8: dropout in sequence models and attention."""

import functools
import math

import torch
from torch.nn import functional as F

from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_tensor,
    _check,
    _check_dtypes_and_device,
    _check_fresh,
    _check_gradient_at_one,
    _check_mask_dropout,
    _close,
    _describe,
    _rate_ok,
    _require,
    _shared_axis,
    _signed,
)

__all__ = [
    "check_locked_dropout",
    "check_word_dropout",
    "check_drop_connect_linear",
    "check_attention_dropout",
    "check_r_drop_loss",
]


@_check
def check_locked_dropout(locked_dropout):
    """Check ``locked_dropout(x, p)`` for x of shape (N, T, C): one mask per sequence
    and feature, shared by all T time steps (noise shape (N, 1, C)), kept entries
    scaled by 1/(1-p), afresh on every call.

    On inputs of shapes (64, 50, 16) and (40, 33, 24), at p = 0.2, 0.5 and 0.8: x at
    p = 0, zeros (no NaN) at p = 1, independent draws along N and C, the keep rate, the
    input left unchanged, two calls in a row (no reseeding between them) drawing
    different masks, and x's shape, dtype and device.
    """
    _check_mask_dropout(
        _Answer(locked_dropout, "locked_dropout", ("x", "p")),
        [(64, 50, 16), (40, 33, 24)],
        shared=(1,),
        axes=("sequence", "time step", "feature"),
        hint="Locked dropout draws one mask per sequence and feature and reuses it at "
        "every time step: noise_shape=(None, 1, None).",
    )


def _word_mask(y, tokens, weight, p, call):
    """The keep decision of every word of the vocabulary that occurs in ``tokens``,
    after checking that each looked-up vector is 0 or weight[token] / (1 - p) and that
    all occurrences of a word share one decision."""
    want = F.embedding(tokens, weight)
    whole = (y == 0).all(-1) | (y != 0).all(-1)
    _require(
        bool(whole.all()),
        "word_dropout dropped single entries of a word's vector: a word is dropped "
        "whole (one draw per row of the matrix, noise shape (V, 1))",
    )
    kept = y[..., 0] != 0
    ratio = (y[kept] / want[kept]).double()
    scale = 1 / (1 - p)
    if ratio.numel() and not torch.allclose(
        ratio, torch.full_like(ratio, scale), rtol=1e-5
    ):
        lo, hi = ratio.min().item(), ratio.max().item()
        hint = "Multiply the embedding matrix itself by the mask."
        if math.isclose(lo, hi, rel_tol=1e-5) and math.isclose(lo, 1.0, rel_tol=1e-4):
            hint = "Did you forget to rescale the kept words?"
        elif math.isclose(lo, hi, rel_tol=1e-5) and math.isclose(lo, 1 / p):
            hint = "Is p the probability to drop, not to keep?"
        raise CheckFailed(
            f"at p={p} the kept words' vectors must be the embeddings times 1/(1-p) = "
            f"{scale:.4g}, but they are times {lo:.4g}"
            + (f" to {hi:.4g}" if hi > lo * (1 + 1e-5) else "")
            + f" ({call}). {hint}"
        )
    flat_t, flat_k = tokens.reshape(-1), kept.reshape(-1).long()
    vocab = weight.shape[0]
    times = torch.bincount(flat_t, minlength=vocab)
    kept_times = torch.bincount(flat_t, weights=flat_k.double(), minlength=vocab)
    mixed = ((kept_times > 0) & (kept_times < times)).nonzero()
    _require(
        len(mixed) == 0,
        f"word {int(mixed[0]) if len(mixed) else 0} was kept at some of its positions "
        "and dropped at others: that is token dropout (noise shape (N, T, 1)). Word "
        "dropout draws once per word of the vocabulary, so all occurrences of a word "
        "in the call share it.",
    )
    decisions = torch.full((vocab,), -1, dtype=torch.int64)
    decisions[flat_t] = flat_k
    return decisions[decisions >= 0].bool()


@_check
def check_word_dropout(word_dropout):
    """Check ``word_dropout(tokens, weight, p)``: look the tokens (an int64 tensor of
    any shape) up in the (V, D) matrix ``weight`` after dropping whole words (rows):
    one draw per word of the vocabulary per call, shared by every occurrence of the
    word, kept rows scaled by 1/(1-p) (AWD-LSTM's embedding dropout); output of shape
    tokens.shape + (D,) with weight's dtype and device; ``F.embedding(tokens, weight)``
    at p = 0, zeros (no NaN) at p = 1; tokens and weight left unchanged; a fresh mask on
    every call (no reseeding between calls). Tested at p = 0.2, 0.5 and 0.8 on 2-D and
    3-D token tensors."""
    f = _Answer(word_dropout, "word_dropout", ("tokens", "weight", "p"))
    torch.manual_seed(0)
    vocab, dim = 50, 8
    weight = _signed((vocab, dim), seed=1)
    g = torch.Generator().manual_seed(2)
    # Every word appears 40 times: a dropped word must be dropped at all its positions.
    order = torch.stack([torch.randperm(vocab, generator=g) for _ in range(40)])
    for shape, tokens in (((16, 30), order), ((4, 5, 6), order.reshape(8, 5, vocab))):
        some = torch.randint(0, vocab, shape, generator=g)
        call = f.show(some, weight, 0.0)
        out = _as_tensor(f(some, weight, 0.0), call)
        _require(
            out.shape == shape + (dim,),
            f"word_dropout must return the embeddings, shape tokens.shape + (D,) = "
            f"{shape + (dim,)}, but {call} returned {tuple(out.shape)}",
        )
        _require(
            _close(out, F.embedding(some, weight)),
            "at p=0 word_dropout must equal F.embedding(tokens, weight)",
        )
        out = _as_tensor(f(some, weight, 1.0), f.show(some, weight, 1.0))
        _require(
            not torch.isnan(out).any(), "at p=1 word_dropout gave NaN: return zeros"
        )
        _require(not out.any(), "at p=1 every word must be dropped")
        for p in (0.2, 0.5, 0.8):
            call = f.show(tokens, weight, p)
            y = _as_tensor(
                f(tokens, weight, p),
                call,
                shape=tokens.shape + (dim,),
                dtype=weight.dtype,
            )
            _word_mask(y, tokens, weight, p, call)
    big = 20_000
    many = torch.arange(big).reshape(2, -1)
    ones = torch.ones(big, 2)
    for p in (0.3, 0.7):
        y = _as_tensor(f(many, ones, p), f.show(many, ones, p), shape=(2, big // 2, 2))
        kept = int((y[..., 0] != 0).sum())
        _require(
            _rate_ok(kept, big, 1 - p),
            f"at p={p} you kept {kept} of {big} words, far from {(1 - p) * big:.0f}. "
            "Is p the drop probability?",
        )
    _check_fresh(
        lambda: _word_mask(f(order, weight, 0.5), order, weight, 0.5, ""),
        "word_dropout",
    )

    def run(w, attempt=False):
        tokens = torch.randint(0, vocab, (6, 7)).to(w.device)
        if attempt:
            return f.attempt(tokens, w, 0.5)
        return _as_tensor(f(tokens, w, 0.5), f.show(tokens, w, 0.5))

    _check_dtypes_and_device(
        run,
        lambda dtype, device: torch.ones(vocab, dim, dtype=dtype, device=device),
        "word_dropout",
    )


def _with_weight(f, x, bias, weight):
    return f(x, weight, bias, 1.0)


_AWD = (
    "AWD-LSTM's form of DropConnect (its WeightDrop), which the exercise asks for, "
    "draws one mask over the weight's entries per call, shared by the whole batch, "
    "scales the kept weights by 1/(1-p) and leaves the bias alone"
)


@_check
def check_drop_connect_linear(drop_connect_linear):
    """Check ``drop_connect_linear(x, weight, bias, p)``: DropConnect on a linear layer
    in AWD-LSTM's form (``WeightDrop``): one mask over the entries of ``weight`` (out,
    in) per call, shared by every example of the batch, kept weights scaled by
    1/(1-p), the bias never masked (Wan et al. instead draw a mask per example and
    mask the bias too).

    x of shape (..., in) (2-D and 3-D tested) gives (..., out) like ``F.linear``;
    ``F.linear(x, weight, bias)`` at p = 0 and the bias alone at p = 1 (no NaN); at
    p = 0.2, 0.5 and 0.8 one independent draw per weight (no whole rows or columns), the
    keep rate, a fresh mask on every call (no reseeding between calls), x, weight and
    bias left unchanged, and the output with x's dtype and device.
    """
    f = _Answer(
        drop_connect_linear, "drop_connect_linear", ("x", "weight", "bias", "p")
    )
    torch.manual_seed(0)
    weight, bias = torch.randn(6, 5), torch.randn(6)
    for x in (torch.randn(4, 5), torch.randn(3, 4, 5)):
        call = f.show(x, weight, bias, 0.0)
        out = _as_tensor(f(x, weight, bias, 0.0), call)
        want = F.linear(x, weight, bias)
        _require(
            out.shape == want.shape,
            f"drop_connect_linear(x, weight, bias, p) must return a tensor of shape "
            f"x.shape[:-1] + (out,) = {tuple(want.shape)}, like F.linear, but {call} "
            f"returned {tuple(out.shape)}",
        )
        _require(
            _close(out, want),
            "at p=0 drop_connect_linear must equal F.linear(x, weight, bias)",
        )
        out = _as_tensor(f(x, weight, bias, 1.0), f.show(x, weight, bias, 1.0))
        _require(not torch.isnan(out).any(), "at p=1 drop_connect_linear gave NaN")
        _require(
            _close(out, bias.expand_as(want)),
            "at p=1 every weight is dropped, so the output must be the bias alone: "
            f"{_AWD} (Wan et al. mask the bias too; the exercise follows AWD-LSTM).",
        )
        _check_gradient_at_one(
            functools.partial(_with_weight, f, x, bias),
            weight,
            f.show(x, weight, bias, 1.0),
        )
    # Feed the identity: row i of the output is column i of the dropped weight. Two
    # copies of it in one batch (a 3-D x) must see one mask.
    n_in, n_out = 200, 100
    eye = torch.eye(n_in).expand(2, n_in, n_in)
    w = _signed((n_out, n_in), seed=3)
    zero = torch.zeros(n_out)
    for p in (0.2, 0.5, 0.8):
        call = f.show(eye, w, zero, p)
        y = _as_tensor(f(eye, w, zero, p), call, shape=(2, n_in, n_out))
        first, second = y[0], y[1]
        _require(
            torch.equal(first, second),
            "two identical inputs in one batch got different outputs: the weight mask "
            f"must be drawn once per call and shared by the whole batch. {_AWD}. "
            "(Dropout on the layer's inputs or outputs draws per example, and so does "
            "Wan et al.'s DropConnect; the exercise follows AWD-LSTM.)",
        )
        dropped = first.T  # (out, in): the dropped, scaled weight itself
        mask = dropped != 0
        ratio = (dropped[mask] / w[mask]).double()
        if ratio.numel() and not torch.allclose(
            ratio, torch.full_like(ratio, 1 / (1 - p)), rtol=1e-5
        ):
            raise CheckFailed(
                f"at p={p} the kept weights must be scaled by 1/(1-p) = "
                f"{1 / (1 - p):.4g}, but they are scaled by {ratio.min().item():.4g}"
                + (
                    f" to {ratio.max().item():.4g}"
                    if ratio.max() > ratio.min() * (1 + 1e-5)
                    else ""
                )
                + ". Scale the kept weights by 1/(1-p); p is the probability to drop."
            )
        axis = _shared_axis(mask, (0, 1), p)
        if axis is not None:
            what, layer = ("rows", "outputs") if axis == 1 else ("columns", "inputs")
            raise CheckFailed(
                f"whole {what} of the weight matrix were kept or dropped together: "
                f"that is dropout on the layer's {layer}. DropConnect draws one bit "
                "per weight."
            )
        kept = int(mask.sum())
        _require(
            _rate_ok(kept, mask.numel(), 1 - p),
            f"you kept {kept} of {mask.numel()} weights at p={p}, far from "
            f"{(1 - p) * mask.numel():.0f}: is p the drop probability?",
        )
    x = torch.eye(n_in)
    _check_fresh(lambda: f(x, w, zero, 0.5) != 0, "drop_connect_linear", "weight mask")

    def run(x, attempt=False):
        w, b = torch.ones(3, 4, dtype=x.dtype, device=x.device), x.new_zeros(3)
        if attempt:
            return f.attempt(x, w, b, 0.5)
        return _as_tensor(f(x, w, b, 0.5), f.show(x, w, b, 0.5), shape=(2, 3))

    _check_dtypes_and_device(
        run,
        lambda dtype, device: torch.ones(2, 4, dtype=dtype, device=device),
        "drop_connect_linear",
    )


def _attention_probs(q, k):
    return (q.double() @ k.double().transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(
        -1
    )


@_check
def check_attention_dropout(attention):
    """Check ``attention(q, k, v, p, training)``: scaled dot-product attention
    (softmax(q k^T / sqrt(d_k)) v, d_k the last size of q) with dropout ``p`` on the
    attention probabilities, after the softmax (what ``dropout_p`` of
    ``scaled_dot_product_attention`` and timm's ``attn_drop`` do), in training only.

    q of shape (B, H, T_q, d_k), k (B, H, T_k, d_k) and v (B, H, T_k, d_v) with
    T_q != T_k and d_v != d_k. In evaluation the output is attention without dropout,
    at every call. In training at p = 0.2 and 0.5, read off with v = [I | 1]: each
    probability is 0 or a / (1-p), with one independent draw per batch, head, query and
    key (not the scores before the softmax, not the values, not the output), at the keep
    rate; a fresh mask on every call (no reseeding between calls); q, k, v left
    unchanged; the output with q's dtype and device.
    """
    f = _Answer(attention, "attention", ("q", "k", "v", "p", "training"))
    torch.manual_seed(0)
    q, k, v = (
        torch.randn(2, 3, 8, 4),
        torch.randn(2, 3, 10, 4),
        torch.randn(2, 3, 10, 6),
    )
    plain = F.scaled_dot_product_attention(q, k, v)
    out = _as_tensor(f(q, k, v, 0.0, True), f.show(q, k, v, 0.0, True))
    _require(
        out.shape == plain.shape,
        f"attention must return a tensor of shape {tuple(plain.shape)} (B, H, T_q, "
        f"d_v), but returned {tuple(out.shape)}",
    )
    _require(
        torch.allclose(out, plain, atol=1e-5),
        "at p=0 attention must equal F.scaled_dot_product_attention(q, k, v): "
        "softmax(q k^T / sqrt(d_k)) v, with d_k = q.shape[-1]",
    )
    evals = [
        _as_tensor(f(q, k, v, 0.5, False), f.show(q, k, v, 0.5, False))
        for _ in range(3)
    ]
    _require(
        all(torch.allclose(e, plain, atol=1e-5) for e in evals),
        "in evaluation (training=False) the output changed from call to call or "
        "differs from attention without dropout: pass dropout_p=p only in training, "
        "dropout_p=(p if training else 0.0). scaled_dot_product_attention is a "
        "function, it does not know about model.eval() (pytorch#124464).",
    )
    train = _as_tensor(f(q, k, v, 0.5, True), f.show(q, k, v, 0.5, True))
    _require(
        not torch.allclose(train, plain, atol=1e-5),
        "in training with p=0.5 the output equals attention without dropout: drop the "
        "attention probabilities (dropout_p=p) when training",
    )
    # v = [I | 1]: the first T_k output columns are the dropped probabilities
    # themselves, the last their row sums.
    b, h, tq, tk, d = 4, 3, 24, 32, 8
    q, k = torch.randn(b, h, tq, d), torch.randn(b, h, tk, d)
    v = torch.cat([torch.eye(tk), torch.ones(tk, 1)], 1).expand(b, h, tk, tk + 1)
    a = _attention_probs(q, k)
    for p in (0.2, 0.5):
        call = f.show(q, k, v, p, True)
        out = _as_tensor(f(q, k, v, p, True), call, shape=(b, h, tq, tk + 1)).double()
        probs, sums = out[..., :tk], out[..., tk]
        kept = probs != 0
        ratio = probs[kept] / a[kept]
        scale = 1 / (1 - p)
        if not torch.allclose(ratio, torch.full_like(ratio, scale), rtol=1e-4):
            lo, hi = ratio.min().item(), ratio.max().item()
            if torch.allclose(probs.sum(-1), torch.ones_like(sums), atol=1e-4):
                hint = (
                    "each row of your dropped probabilities still sums to 1: you "
                    "dropped the scores before the softmax (or renormalised). Dropout "
                    "acts on the probabilities after the softmax, softmax(q k^T / "
                    "sqrt(d_k)), and leaves the kept ones scaled by 1/(1-p)"
                )
            elif math.isclose(lo, hi, rel_tol=1e-4) and math.isclose(
                lo, 1, rel_tol=1e-4
            ):
                hint = "each kept attention probability must be scaled by 1/(1-p)"
            else:
                hint = (
                    "the kept attention probabilities must be the softmax's, times "
                    "1/(1-p)"
                )
            raise CheckFailed(
                f"at p={p} the kept attention probabilities are a times {lo:.4g}"
                + (f" to {hi:.4g}" if hi > lo * (1 + 1e-4) else "")
                + f", not a * 1/(1-p) = a * {scale:.4g}: {hint}."
            )
        _require(
            torch.allclose(sums, probs.sum(-1), atol=1e-4),
            f"at p={p} the output is not the dropped probabilities times v: dropout "
            "was applied to the attention's output (or to v's entries), not to the "
            "attention probabilities",
        )
        axis = _shared_axis(kept, range(4), p)
        if axis is not None:
            hint = {
                2: " The same keys were dropped for every query: you dropped the "
                "values (or keys), not the attention probabilities.",
                3: " Whole rows of probabilities were dropped: you dropped the "
                "queries or the output, not the attention probabilities.",
            }.get(axis, "")
            names = ("batch", "head", "query", "key")
            raise CheckFailed(
                f"at p={p} every {names[axis]} got the same dropout mask (axis "
                f"{axis}): draw one bit per attention probability, for every "
                f"batch, head, query and key.{hint}"
            )
        n_kept, n = int(kept.sum()), kept.numel()
        _require(
            _rate_ok(n_kept, n, 1 - p),
            f"kept {n_kept} of {n} attention probabilities at p={p}; expected about "
            f"{(1 - p) * n:.0f}. Is p the probability to drop?",
        )
    _check_fresh(lambda: f(q, k, v, 0.5, True) != 0, "attention", "dropout mask")

    def run(x, attempt=False):
        kk, vv = x.flip(-2), x.flip(-1)
        if attempt:
            return f.attempt(x, kk, vv, 0.5, True)
        return _as_tensor(f(x, kk, vv, 0.5, True), f.show(x, kk, vv, 0.5, True))

    _check_dtypes_and_device(
        run,
        lambda dtype, device: torch.ones(2, 2, 5, 4, dtype=dtype, device=device),
        "attention",
        mask_hint=False,
    )


def _r_drop_reference(a, b, y, alpha):
    a, b = a.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    la, lb = a.log_softmax(-1), b.log_softmax(-1)
    ce = (F.nll_loss(la, y) + F.nll_loss(lb, y)) / 2
    kl_ab = (la.exp() * (la - lb)).sum(-1).mean()  # KL(P1 || P2)
    kl_ba = (lb.exp() * (lb - la)).sum(-1).mean()
    loss = ce + alpha * (kl_ab + kl_ba) / 2
    ga, gb = torch.autograd.grad(loss, (a, b))
    parts = {
        "ce": ce.item(),
        "ce1": F.nll_loss(la, y).item(),
        "kl_ab": kl_ab.item(),
        "kl_ba": kl_ba.item(),
    }
    return loss.item(), ga, gb, parts


@_check
def check_r_drop_loss(r_drop_loss):
    """Check ``r_drop_loss(logits1, logits2, targets, alpha)``: R-Drop's loss for two
    forward passes of one batch, in the exercise's form: the mean of the two
    cross-entropies plus ``alpha`` times the symmetric KL divergence
    (KL(P1 || P2) + KL(P2 || P1)) / 2, each averaged over the batch. (Liang et al.
    sum the two cross-entropies: their loss with 2 * alpha is twice this one.)

    A one-element tensor that gradients flow through to both logits (no detach on
    either pass), its value and both gradients equal to the reference (relative
    tolerance 1e-4) for alpha = 0, 1 and 1.5 on float32 and float64 logits of several
    batch sizes and class counts; a finite value, equal to the reference, for logits
    of size 100, whose probabilities underflow to 0 (use log_softmax, not
    log(softmax)); the inputs left unchanged.
    """
    f = _Answer(r_drop_loss, "r_drop_loss", ("logits1", "logits2", "targets", "alpha"))
    g = torch.Generator().manual_seed(0)
    cases = [
        (16, 5, 1.5, torch.float32, 1.0),
        (7, 3, 1.0, torch.float64, 2.0),
        (16, 5, 0.0, torch.float32, 1.0),
        (5, 4, 1.0, torch.float32, 100.0),
    ]
    for n, c, alpha, dtype, size in cases:
        a = (size * torch.randn(n, c, generator=g, dtype=torch.float64)).to(dtype)
        b = (size * torch.randn(n, c, generator=g, dtype=torch.float64)).to(dtype)
        y = torch.randint(0, c, (n,), generator=g)
        a.requires_grad_()
        b.requires_grad_()
        call = f.show(a, b, y, alpha)
        got = f(a, b, y, alpha)
        _require(
            isinstance(got, torch.Tensor) and got.numel() == 1,
            "r_drop_loss must return a scalar tensor (a loss to call backward on), but "
            f"{call} returned {_describe(got)}",
        )
        value = float(got.detach().reshape(()))
        _require(
            math.isfinite(value),
            f"{call} returned {value} for logits of size {size:g}: use log_softmax, "
            "not log(softmax), which underflows to log 0",
        )
        want, ga, gb, parts = _r_drop_reference(a, b, y, alpha)
        if not math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-6):
            ce, kl_ab, kl_ba = parts["ce"], parts["kl_ab"], parts["kl_ba"]
            wrong = {
                "only KL(P1 || P2)": ce + alpha * kl_ab,
                "only KL(P2 || P1)": ce + alpha * kl_ba,
                "KL(P1 || P2) + KL(P2 || P1) without the 1/2": ce
                + alpha * (kl_ab + kl_ba),
                "the sum of the two cross-entropies": 2 * ce
                + alpha * (kl_ab + kl_ba) / 2,
                "one cross-entropy only": parts["ce1"] + alpha * (kl_ab + kl_ba) / 2,
                "no KL term": ce,
                "the KL divergences averaged over the classes as well as the batch "
                "(kl_div's reduction='mean'; use 'batchmean')": ce
                + alpha * (kl_ab + kl_ba) / 2 / c,
            }
            for what, bad in wrong.items():
                if alpha and math.isclose(value, bad, rel_tol=1e-4, abs_tol=1e-6):
                    raise CheckFailed(
                        f"your loss equals {what}; the exercise's R-Drop loss is the "
                        "mean of the two cross-entropies plus alpha * (KL(P1||P2) + "
                        "KL(P2||P1)) / 2"
                    )
            raise CheckFailed(
                f"{call}: expected {want:.5f}, but got {value:.5f}. KL(P||Q) is "
                "sum(P * (log P - log Q)) over classes, from log_softmax of the "
                "logits, averaged over the batch."
            )
        _require(
            got.requires_grad,
            "the loss must be differentiable: compute it from the logits, without "
            ".detach(), .item() or torch.tensor(...)",
        )
        try:
            got.reshape(()).backward()
        except Exception as err:
            raise CheckFailed(
                f"backward through {call} raised {type(err).__name__}: {err}"
            ) from None
        if size > 10:
            continue  # probabilities that underflow to 0: the value only
        for which, logits, want_grad in (("logits1", a, ga), ("logits2", b, gb)):
            grad = logits.grad
            _require(
                grad is not None and not (grad == 0).all(),
                f"no gradient reaches {which}: both passes are trained, so neither may "
                "be detached (R-Drop's KL term has no stop-gradient)",
            )
            _require(
                torch.allclose(grad.double(), want_grad, rtol=1e-4, atol=1e-6),
                f"the gradient of {call} with respect to {which} differs from "
                "R-Drop's: is one pass detached in the KL term (a stop-gradient "
                "R-Drop does not use), or a term computed outside autograd?",
            )
