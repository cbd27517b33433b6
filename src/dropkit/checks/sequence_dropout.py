"""Exercise checks for Chapter 8: dropout in sequence models and attention."""

import math

import torch
from torch.nn import functional as F

from dropkit.checks._common import (
    CheckFailed,
    _keep_rate_ok,
    _passed,
    _require,
)
from dropkit.checks.spatial_dropout import _check_shared_mask

__all__ = [
    "check_locked_dropout",
    "check_word_dropout",
    "check_drop_connect_linear",
    "check_attention_dropout",
    "check_r_drop_loss",
]


def check_locked_dropout(locked_dropout):
    """Check ``locked_dropout(x, p)`` for x of shape (N, T, C): one mask per sequence
    and feature, shared by all T time steps (noise shape (N, 1, C))."""
    _check_shared_mask(
        locked_dropout,
        (64, 50, 16),
        shared=(1,),
        name="locked_dropout",
        hint="Locked dropout draws one mask per sequence and feature and reuses it at "
        "every time step: noise_shape=(None, 1, None).",
    )


def check_word_dropout(word_dropout):
    """Check ``word_dropout(tokens, weight, p)``: look the tokens up in the (V, D)
    matrix ``weight`` after dropping whole words (rows), one draw per word per call."""
    torch.manual_seed(0)
    vocab, dim = 50, 8
    weight = torch.randn(vocab, dim)
    tokens = torch.randint(0, vocab, (16, 30))
    out = word_dropout(tokens, weight, 0.0)
    _require(
        isinstance(out, torch.Tensor) and out.shape == (16, 30, dim),
        "word_dropout must return the embeddings, shape tokens.shape + (D,) = (16, "
        f"30, {dim})",
    )
    _require(
        torch.equal(out, F.embedding(tokens, weight)),
        "at p=0 word_dropout must equal F.embedding(tokens, weight)",
    )
    out = word_dropout(tokens, weight, 1.0)
    _require(not torch.isnan(out).any(), "at p=1 word_dropout gave NaN: return zeros")
    _require(
        torch.equal(out, torch.zeros_like(out)), "at p=1 every word must be dropped"
    )
    # Every word appears 40 times: a dropped word must be dropped at all its positions.
    tokens = torch.arange(vocab).repeat(40).reshape(40, vocab)[:, torch.randperm(vocab)]
    ones = torch.ones(vocab, dim)
    y = word_dropout(tokens, ones, 0.5)
    values = set(torch.unique(y).tolist())
    _require(
        values <= {0.0, 2.0},
        "at p=0.5 the embeddings of a matrix of ones must be 0 or 1/(1-p) = 2, but "
        f"found {sorted(values)[:4]}. Did you forget to rescale the kept words?",
    )
    whole = (y == y[..., :1]).all(-1)
    _require(
        bool(whole.all()),
        "word_dropout dropped single entries of a word's vector: a word is dropped "
        "whole (one draw per row of the matrix, noise shape (V, 1))",
    )
    kept = y[..., 0] != 0
    for w in range(vocab):
        where = kept[tokens == w]
        _require(
            bool((where == where[0]).all()),
            f"word {w} was kept at some of its positions and dropped at others: that "
            "is token dropout (noise shape (N, T, 1)). Word dropout draws once per "
            "word of the vocabulary, so all occurrences of a word in the call share "
            "it.",
        )
    calls = torch.stack(
        [word_dropout(tokens, ones, 0.5)[0, :, 0] != 0 for _ in range(4)]
    )
    _require(
        not bool((calls == calls[0]).all()),
        "word_dropout dropped the same words in four calls: draw a new mask on each "
        "call (don't reseed inside the function)",
    )
    many = torch.arange(20_000).reshape(1, -1)
    y = word_dropout(many, torch.ones(20_000, 2), 0.3)
    kept = int((y[..., 0] != 0).sum())
    _require(
        _keep_rate_ok(kept, 20_000, 0.3),
        f"at p=0.3 you kept {kept} of 20000 words, far from 14000. Is p the drop "
        "probability?",
    )
    _passed()


def check_drop_connect_linear(drop_connect_linear):
    """Check ``drop_connect_linear(x, weight, bias, p)``: DropConnect on a linear layer,
    one mask over the entries of ``weight`` (out, in) for the whole call, kept weights
    scaled by 1/(1-p), the bias left alone."""
    torch.manual_seed(0)
    weight, bias = torch.randn(6, 5), torch.randn(6)
    x = torch.randn(4, 5)
    out = drop_connect_linear(x, weight, bias, 0.0)
    _require(
        isinstance(out, torch.Tensor) and out.shape == (4, 6),
        "drop_connect_linear(x, weight, bias, p) must return a (N, out) tensor, like "
        "F.linear",
    )
    _require(
        torch.allclose(out, F.linear(x, weight, bias)),
        "at p=0 drop_connect_linear must equal F.linear(x, weight, bias)",
    )
    out = drop_connect_linear(x, weight, bias, 1.0)
    _require(not torch.isnan(out).any(), "at p=1 drop_connect_linear gave NaN")
    _require(
        torch.allclose(out, bias.expand(4, 6)),
        "at p=1 every weight is dropped, so the output must be the bias alone "
        "(DropConnect drops weights, not the bias)",
    )
    # Feed the identity: row i of the output is column i of the (dropped) weight.
    n_in, n_out = 200, 100
    eye = torch.eye(n_in).repeat(
        2, 1
    )  # the identity twice: both copies must see one mask
    y = drop_connect_linear(eye, torch.ones(n_out, n_in), torch.zeros(n_out), 0.5)
    values = set(torch.unique(y).tolist())
    _require(
        values <= {0.0, 2.0},
        "at p=0.5 the dropped weights of a matrix of ones must be 0 or 2, but the "
        f"output has {sorted(values)[:4]}. Scale the kept weights by 1/(1-p).",
    )
    first, second = y[:n_in], y[n_in:]
    _require(
        torch.equal(first, second),
        "two identical inputs in one batch got different outputs: the weight mask "
        "must be drawn once per call and shared by the whole batch. Per-example masks "
        "are dropout on the inputs or outputs, not on the weights.",
    )
    mask = first.T != 0  # (out, in), the mask itself
    _require(
        not bool((mask == mask[:, :1]).all()),
        "whole rows of the weight matrix were kept or dropped together: that is "
        "dropout on the layer's outputs. DropConnect draws one bit per weight.",
    )
    _require(
        not bool((mask == mask[:1, :]).all()),
        "whole columns of the weight matrix were kept or dropped together: that is "
        "dropout on the layer's inputs. DropConnect draws one bit per weight.",
    )
    kept = int(mask.sum())
    _require(
        _keep_rate_ok(kept, mask.numel(), 0.5),
        f"you kept {kept} of {mask.numel()} weights at p=0.5: is p the drop "
        "probability?",
    )
    again = drop_connect_linear(
        eye[:n_in], torch.ones(n_out, n_in), torch.zeros(n_out), 0.5
    )
    _require(
        not torch.equal(again, first),
        "two calls dropped the same weights: draw a new mask on each call",
    )
    _passed()


def check_attention_dropout(attention):
    """Check ``attention(q, k, v, p, training)``: scaled dot-product attention with
    dropout ``p`` on the attention probabilities in training, and none in evaluation."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 8, 4) for _ in range(3))
    plain = F.scaled_dot_product_attention(q, k, v)
    out = attention(q, k, v, 0.0, True)
    _require(
        isinstance(out, torch.Tensor) and out.shape == plain.shape,
        f"attention must return a tensor of shape {tuple(plain.shape)}",
    )
    _require(
        torch.allclose(out, plain, atol=1e-5),
        "at p=0 attention must equal F.scaled_dot_product_attention(q, k, v)",
    )
    evals = [attention(q, k, v, 0.5, False) for _ in range(3)]
    _require(
        all(torch.allclose(e, plain, atol=1e-5) for e in evals),
        "in evaluation (training=False) the output changed from call to call or "
        "differs from attention without dropout: pass dropout_p=p only in training, "
        "dropout_p=(p if training else 0.0). scaled_dot_product_attention is a "
        "function, it does not know about model.eval() (pytorch#124464).",
    )
    train = attention(q, k, v, 0.5, True)
    _require(
        not torch.allclose(train, plain, atol=1e-5),
        "in training with p=0.5 the output equals attention without dropout: drop the "
        "attention probabilities (dropout_p=p) when training",
    )
    # Uniform attention (q = 0) on values of ones: each output is (kept keys) * 2 / T.
    q0, ones = torch.zeros(1, 1, 64, 4), torch.ones(1, 1, 64, 4)
    y = attention(q0, torch.randn(1, 1, 64, 4), ones, 0.5, True)[..., 0]
    counts = y * 64 / 2
    _require(
        torch.allclose(counts, counts.round(), atol=1e-4),
        "with p=0.5 each kept attention probability must be scaled by 1/(1-p) = 2",
    )
    kept = int(counts.round().sum())
    _require(
        _keep_rate_ok(kept, 64 * 64, 0.5),
        f"kept {kept} of {64 * 64} attention probabilities at p=0.5; expected about "
        "half",
    )
    _passed()


def check_r_drop_loss(r_drop_loss):
    """Check ``r_drop_loss(logits1, logits2, targets, alpha)``: R-Drop's loss for two
    forward passes of one batch: the mean of the two cross-entropies plus ``alpha``
    times the symmetric KL divergence (KL(P1 || P2) + KL(P2 || P1)) / 2, averaged over
    the batch."""
    torch.manual_seed(0)
    a, b = torch.randn(16, 5), torch.randn(16, 5)
    y = torch.randint(0, 5, (16,))
    la, lb = a.log_softmax(-1), b.log_softmax(-1)
    ce = (F.cross_entropy(a, y) + F.cross_entropy(b, y)) / 2
    kl_ab = (la.exp() * (la - lb)).sum(-1).mean()  # KL(P1 || P2)
    kl_ba = (lb.exp() * (lb - la)).sum(-1).mean()
    want = ce + 1.5 * (kl_ab + kl_ba) / 2
    got = r_drop_loss(a, b, y, 1.5)
    _require(
        isinstance(got, torch.Tensor) and got.dim() == 0,
        "r_drop_loss must return a scalar tensor (a loss to call backward on)",
    )
    same = r_drop_loss(a, a, y, 1.5)
    _require(
        torch.allclose(same, F.cross_entropy(a, y), atol=1e-5),
        "for two identical passes the KL term is 0 and the loss must be the "
        "cross-entropy",
    )
    if torch.allclose(got, want, atol=1e-5):
        _passed()
        return
    wrong = {
        "only KL(P1 || P2)": ce + 1.5 * kl_ab,
        "KL(P1 || P2) + KL(P2 || P1) without the 1/2": ce + 1.5 * (kl_ab + kl_ba),
        "the sum of the two cross-entropies": 2 * ce + 1.5 * (kl_ab + kl_ba) / 2,
        "one cross-entropy only": F.cross_entropy(a, y) + 1.5 * (kl_ab + kl_ba) / 2,
        "no KL term": ce,
    }
    for what, value in wrong.items():
        if torch.allclose(got, value, atol=1e-5):
            raise CheckFailed(
                f"your loss equals {what}; R-Drop uses the mean of the two "
                "cross-entropies and alpha * (KL(P1||P2) + KL(P2||P1)) / 2"
            )
    _require(
        not math.isnan(float(got)),
        "r_drop_loss returned NaN: use log_softmax, not log(softmax)",
    )
    raise CheckFailed(
        f"expected {float(want):.5f}, but got {float(got):.5f}. KL(P||Q) is "
        "sum(P * (log P - log Q)) over classes, from log_softmax of the logits."
    )
