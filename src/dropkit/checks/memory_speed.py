"""Exercise checks for Chapter 6: dropout at memory speed."""

import math

import torch

from dropkit.checks._common import _passed, _require

__all__ = ["check_keep_words", "check_mask_bytes"]


def _reference_mask_bytes(batch, tokens, width, heads, mlp_ratio, bits):
    sites = {
        "attn_drop": heads * tokens * tokens,
        "proj_drop": tokens * width,
        "mlp drop1": tokens * round(width * mlp_ratio),
        "mlp drop2": tokens * width,
    }
    return batch * sum(sites.values()) * bits // 8, sites


def check_mask_bytes(mask_bytes):
    """Check ``mask_bytes(batch, tokens, width, heads, mlp_ratio, bits)``: the bytes of
    dropout masks one ViT block keeps for backward, with ``bits`` bits per mask entry
    (chapter 6).

    A timm ViT block has four dropout sites: ``attn_drop`` on the attention
    probabilities (batch x heads x tokens x tokens), ``proj_drop`` (batch x tokens x
    width) and the MLP's two, after the activation (batch x tokens x mlp_ratio * width)
    and after ``fc2`` (batch x tokens x width).
    """
    cases = [
        (256, 197, 768, 12, 4, 32),
        (2, 5, 8, 2, 4, 8),
        (3, 7, 16, 4, 2, 1),
        (1, 3, 4, 1, 4, 0),
        (8, 65, 192, 3, 4, 8),
    ]
    for batch, tokens, width, heads, ratio, bits in cases:
        args = (batch, tokens, width, heads, ratio, bits)
        want, sites = _reference_mask_bytes(*args)
        try:
            got = mask_bytes(*args)
        except Exception as err:
            raise AssertionError(
                f"mask_bytes{args} raised {type(err).__name__}: {err}"
            ) from err
        _require(
            isinstance(got, (int, float))
            and not isinstance(got, bool)
            and math.isfinite(got),
            f"mask_bytes{args} must return a number of bytes, but returned {got!r}",
        )
        if got == want:
            continue
        hint = ""
        per_bit = batch * sum(sites.values())
        if bits and got == per_bit * bits:
            hint = " You counted bits, not bytes: divide by 8."
        elif bits and got * 8 == (per_bit - sites["attn_drop"] * batch) * bits:
            hint = (
                " You left out attn_drop, the mask on the attention probabilities: "
                "heads x tokens x tokens entries per sample, the largest of the four."
            )
        elif bits and got * 8 == (per_bit - sites["mlp drop1"] * batch) * bits:
            hint = (
                " You left out the MLP's first dropout, on its hidden activation "
                "(tokens x mlp_ratio * width per sample)."
            )
        elif bits and got * 8 == (per_bit - sites["mlp drop2"] * batch) * bits:
            hint = " A timm block has two dropouts of width `width`: proj_drop, fc2's."
        elif bits and got * 8 == batch * 2 * tokens * width * bits:
            hint = (
                " Two sites of batch x tokens x width are not all: add attn_drop "
                "(heads x tokens x tokens) and the MLP's hidden dropout."
            )
        _require(
            False,
            f"mask_bytes{args} returned {got}, but the block keeps {want} bytes.{hint}",
        )
    _passed()


def _words_of(keep_words, key, index):
    try:
        w = keep_words(key, index)
    except Exception as err:
        raise AssertionError(
            f"keep_words({key}, ...) raised {type(err).__name__}: {err}"
        ) from err
    _require(
        isinstance(w, torch.Tensor) and w.shape == index.shape,
        f"keep_words must return a tensor shaped like index {tuple(index.shape)}, but "
        "returned "
        f"{type(w).__name__} {tuple(getattr(w, 'shape', ()))}",
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


def check_keep_words(keep_words):
    """Check ``keep_words(key, index)``, a counter-based generator: 32-bit words for
    int64 ``index`` under an integer ``key``, used as keep decisions ``word >= p *
    2**32`` (chapter 6).

    Tested with bounds of 6 standard errors on 2**16 indices: keep rates at p = 0.1, 0.5
    and 0.9, correlation of neighbours and of indices 1, 2 and 64 apart, correlation
    between consecutive keys, uniformity of the top 4 bits, and that exchanging key and
    index changes the word.
    """
    n = 1 << 16
    index = torch.arange(n, dtype=torch.int64)
    w = _words_of(keep_words, 7, index)
    for p in (0.1, 0.5, 0.9):
        kept = int((w >= round(p * 2**32)).sum())
        sd = math.sqrt(n * p * (1 - p))
        _require(
            abs(kept - (1 - p) * n) <= 6 * sd,
            f"at p={p} the words keep {kept} of {n} indices, expected about "
            f"{(1 - p) * n:.0f} (± {6 * sd:.0f}). Consecutive indices must give words "
            "spread over the whole "
            "32-bit range: an index, or index ^ key, is small for small indices.",
        )
    counts = torch.bincount(w >> 28, minlength=16).double()
    chi2 = float(((counts - n / 16) ** 2 / (n / 16)).sum())
    _require(
        chi2 < 15 + 6 * math.sqrt(30),
        f"the top 4 bits of the words are not uniform (chi-square {chi2:.0f} on 15 "
        "degrees of freedom)",
    )
    bits = (w >= 2**31).double()
    for lag in (1, 2, 64):
        r = float(torch.corrcoef(torch.stack([bits[:-lag], bits[lag:]]))[0, 1])
        _require(
            _z(r, n) < 6,
            f"keep decisions {lag} apart correlate (r = {r:.3f}): neighbours must look "
            "independent",
        )
    other = (_words_of(keep_words, 8, index) >= 2**31).double()
    r = float(torch.corrcoef(torch.stack([bits, other]))[0, 1])
    _require(_z(r, n) < 6, f"keys 7 and 8 give correlated masks (r = {r:.3f})")
    keys = torch.arange(1, 65, dtype=torch.int64)
    table = torch.stack([_words_of(keep_words, a, keys) for a in keys.tolist()])
    off = ~torch.eye(len(keys), dtype=torch.bool)
    same, swapped = int((table == table.t())[off].sum()), int(off.sum())
    _require(
        same < 8,
        f"exchanging key and index gives the same word in {same} of {swapped} pairs: "
        "the key and the counter must enter the generator differently (Philox keys its "
        "rounds, it "
        "does not hash key ^ index)",
    )
    _passed()
