"""Exercise checks for Chapter 8: dropout in sequence models and attention."""

import functools
import math

import torch
from torch.nn import functional as F

from dropkit.checks._attention import check_attention_dropout, check_r_drop_loss
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
