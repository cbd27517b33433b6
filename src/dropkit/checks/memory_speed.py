"""Exercise checks for Chapter 6: dropout at memory speed."""

import functools
import math

import numpy as np
import torch

from dropkit.checks._common import (
    CheckFailed,
    _Answer,
    _as_number,
    _check,
    _describe,
    _require,
)

__all__ = ["check_keep_words", "check_mask_bytes"]


def _reference_mask_bytes(batch, tokens, width, heads, mlp_ratio, bits):
    sites = {
        "attn_drop": heads * tokens * tokens,
        "proj_drop": tokens * width,
        "mlp drop1": tokens * round(width * mlp_ratio),
        "mlp drop2": tokens * width,
    }
    return batch * sum(sites.values()) * bits / 8, sites


def _counts(got, bits, entries):
    """Whether ``got`` bytes are ``entries`` mask entries of ``bits`` bits."""
    return bits and abs(got * 8 - entries * bits) < 8


@_check
def check_mask_bytes(mask_bytes):
    """Check ``mask_bytes(batch, tokens, width, heads, mlp_ratio, bits)``: the bytes of
    dropout masks one ViT block keeps for backward, with ``bits`` bits per mask entry
    (chapter 6).

    A timm ViT block has four dropout sites: ``attn_drop`` on the attention
    probabilities (batch x heads x tokens x tokens), ``proj_drop`` (batch x tokens x
    width) and the MLP's two, after the activation (batch x tokens x mlp_ratio * width)
    and after ``fc2`` (batch x tokens x width). The answer is the total number of bits
    divided by 8; any number within one byte of it passes (rounded down, rounded up or
    not rounded; a Python, numpy or torch number).
    """
    f = _Answer(
        mask_bytes,
        "mask_bytes",
        ("batch", "tokens", "width", "heads", "mlp_ratio", "bits"),
    )
    cases = [
        (256, 197, 768, 12, 4, 32),
        (2, 5, 8, 2, 4, 8),
        (3, 7, 16, 4, 2, 1),
        (1, 3, 4, 1, 4, 0),
        (8, 65, 192, 3, 4, 8),
        (5, 9, 12, 3, 3, 1),
    ]
    for batch, tokens, width, heads, ratio, bits in cases:
        args = (batch, tokens, width, heads, ratio, bits)
        want, sites = _reference_mask_bytes(*args)
        got = _as_number(f(*args), f"mask_bytes{args}")
        _require(
            math.isfinite(got), f"mask_bytes{args} returned {got}, which is not finite"
        )
        if abs(got - want) < 1:  # want = bits / 8, exact: floor, ceil and it pass
            continue
        per_bit = batch * sum(sites.values())
        counts = functools.partial(_counts, got, bits)
        hint = ""
        if bits and abs(got - per_bit * bits) < 1:
            hint = " You counted bits, not bytes: divide by 8."
        elif counts(per_bit - sites["attn_drop"] * batch):
            hint = (
                " You left out attn_drop, the mask on the attention probabilities: "
                "heads x tokens x tokens entries per sample."
            )
        elif counts(per_bit - sites["mlp drop1"] * batch):
            hint = (
                " You left out the MLP's first dropout, on its hidden activation "
                "(tokens x mlp_ratio * width per sample)."
            )
        elif counts(per_bit - sites["mlp drop2"] * batch):
            hint = " A timm block has two dropouts of width `width`: proj_drop, fc2's."
        elif counts(batch * 2 * tokens * width):
            hint = (
                " Two sites of batch x tokens x width are not all: add attn_drop "
                "(heads x tokens x tokens) and the MLP's hidden dropout."
            )
        elif counts(per_bit - batch * heads * tokens * (tokens - 1)):
            hint = " attn_drop has heads x tokens x tokens entries per sample."
        elif heads > 1 and counts(per_bit - batch * (heads - 1) * tokens * tokens):
            hint = (
                " attn_drop keeps one tokens x tokens mask per head: multiply by heads."
            )
        raise CheckFailed(
            f"mask_bytes{args} returned {got:g}, but the block keeps {want:g} bytes."
            f"{hint}"
        )


def _words_of(f, key, index):
    w = f(key, index)
    call = f"keep_words({key}, index) with index {_describe(index)}"
    _require(
        isinstance(w, torch.Tensor) and tuple(w.shape) == tuple(index.shape),
        f"keep_words must return a tensor shaped like index {tuple(index.shape)}, but "
        f"{call} returned {_describe(w)}",
    )
    _require(
        not w.dtype.is_floating_point and w.dtype != torch.bool,
        f"keep_words must return integer words, but {call} returned {w.dtype}",
    )
    w = w.to(torch.int64)
    _require(
        bool(((w >= 0) & (w < 2**32)).all()),
        "keep_words must return 32-bit words as int64 values in [0, 2**32)",
    )
    return w


def _z(r, n):
    """Correlation r of n pairs in standard errors."""
    return abs(r) * math.sqrt(n)


@_check
def check_keep_words(keep_words):
    """Check ``keep_words(key, index)``, a counter-based generator: 32-bit words (int64
    values in [0, 2**32)) for an int64 ``index`` tensor of any shape and any values in
    [0, 2**40), under an integer ``key``, used as keep decisions ``word >= p * 2**32``
    (chapter 6).

    With bounds of 6 standard errors on 2**16 indices: keep rates at p = 0.1, 0.5 and
    0.9 on consecutive indices from 0, on random indices below 2**40 and on consecutive
    indices from 2**35; uniformity of the top 4 bits; correlation of keep decisions 1,
    2 and 64 apart, of consecutive keys and of indices 2**32 apart; the words two
    consecutive keys share over 5 * 2**16 indices (about 25 for unrelated streams, not
    a shifted copy); exchanging key and index changes the word. The word depends on
    (key, index) alone: a repeated call gives the same words, and so do the same
    indices shuffled into a 2-D tensor. index must be left unchanged.
    """
    f = _Answer(keep_words, "keep_words", ("key", "index"))
    n = 1 << 16
    index = torch.arange(n, dtype=torch.int64)
    w = _words_of(f, 7, index)
    _check_rates(w, "consecutive indices from 0")
    counts = torch.bincount(w >> 28, minlength=16).double()
    chi2 = float(((counts - n / 16) ** 2 / (n / 16)).sum())
    _require(
        chi2 < 15 + 6 * math.sqrt(30),
        f"the top 4 bits of the words are not uniform (chi-square {chi2:.0f} on 15 "
        "degrees of freedom)",
    )
    _check_lags(w)
    bits = (w >= 2**31).double()
    other = (_words_of(f, 8, index) >= 2**31).double()
    r = float(torch.corrcoef(torch.stack([bits, other]))[0, 1])
    _require(_z(r, n) < 6, f"keys 7 and 8 give correlated masks (r = {r:.3f})")
    # Overlapping streams: key 8 repeating key 7's words at shifted indices (a hash of
    # index + key * N). Over these 5 * 2**16 indices two unrelated keys share about
    # 25 words (n^2 / 2^32); shifted streams share tens of thousands.
    spread = torch.cat(
        [torch.arange(2 * n, dtype=torch.int64)]
        + [start + index for start in (1 << 32, 1 << 35, (1 << 35) + (1 << 32))]
    )
    shared = np.intersect1d(
        _words_of(f, 7, spread).numpy(), _words_of(f, 8, spread).numpy()
    ).size
    _require(
        shared < 100,
        f"keys 7 and 8 give {shared} of the same words over {spread.numel()} indices "
        "(unrelated streams share about 25): the stream of key 8 is key 7's shifted. "
        "Hashing index + key * N overlaps the streams once a tensor has more than N "
        "elements; let the key enter the generator as a key, not as an offset",
    )
    keys = torch.arange(1, 65, dtype=torch.int64)
    table = torch.stack([_words_of(f, a, keys) for a in keys.tolist()])
    off = ~torch.eye(len(keys), dtype=torch.bool)
    same, swapped = int((table == table.t())[off].sum()), int(off.sum())
    _require(
        same < 8,
        f"exchanging key and index gives the same word in {same} of {swapped} pairs: "
        "the key and the counter must enter the generator differently (Philox keys its "
        "rounds, it "
        "does not hash key ^ index)",
    )
    _require(
        torch.equal(_words_of(f, 7, index), w),
        "two calls of keep_words with the same key and indices gave different words: "
        "a counter-based generator is a function of (key, index), with no state",
    )
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(n, generator=g)
    part = index[perm][: n // 4].reshape(64, -1)
    _require(
        torch.equal(_words_of(f, 7, part).reshape(-1), w[perm][: n // 4]),
        "keep_words gave an index a different word when it came in another tensor "
        "(shuffled, reshaped to 2-D, a quarter of the indices): the word must depend "
        "on the index's value and the key only, not on its position in the tensor",
    )
    scattered = torch.randint(0, 1 << 40, (n,), generator=g, dtype=torch.int64)
    _check_rates(_words_of(f, 7, scattered), "random indices below 2**40")
    high = (1 << 35) + index
    w_high = _words_of(f, 7, high)
    _check_rates(w_high, "consecutive indices from 2**35")
    _check_lags(w_high)
    bits = (w_high >= 2**31).double()
    above = (_words_of(f, 7, high + (1 << 32)) >= 2**31).double()
    r = float(torch.corrcoef(torch.stack([bits, above]))[0, 1])
    _require(
        _z(r, n) < 6,
        f"indices 2**32 apart give correlated keep decisions (r = {r:.3f}): all the "
        "bits of the index must enter the generator (Philox takes a 64-bit counter as "
        "two 32-bit words), not only the low 32",
    )


def _check_rates(w, where):
    n = w.numel()
    for p in (0.1, 0.5, 0.9):
        kept = int((w >= round(p * 2**32)).sum())
        sd = math.sqrt(n * p * (1 - p))
        _require(
            abs(kept - (1 - p) * n) <= 6 * sd,
            f"at p={p} the words keep {kept} of {n} indices, expected about "
            f"{(1 - p) * n:.0f} (± {6 * sd:.0f})"
            + (
                ". Consecutive indices must give words spread over the whole 32-bit "
                "range: an index, or index ^ key, is small for small indices."
                if where == "consecutive indices from 0"
                else f", for {where}"
            ),
        )


def _check_lags(w):
    n = w.numel()
    bits = (w >= 2**31).double()
    for lag in (1, 2, 64):
        r = float(torch.corrcoef(torch.stack([bits[:-lag], bits[lag:]]))[0, 1])
        _require(
            _z(r, n) < 6,
            f"keep decisions {lag} apart correlate (r = {r:.3f}): neighbours must look "
            "independent",
        )
