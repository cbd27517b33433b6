"""Chapter 8's checks of attention: dropout on the attention probabilities, and
R-Drop's loss (re-exported by :mod:`dropkit.checks.sequence_dropout`)."""

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
    _describe,
    _rate_ok,
    _require,
    _shared_axis,
)

__all__ = ["check_attention_dropout", "check_r_drop_loss"]


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
