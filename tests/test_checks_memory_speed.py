"""Chapter 6's exercise checks: a right answer passes, the usual wrong ones fail."""

import math

import numpy as np
import pytest
import torch

from dropkit.checks import CheckFailed, check_keep_words, check_mask_bytes
from dropkit.lowmem import _words, philox4x32


def right_mask_bytes(batch, tokens, width, heads, mlp_ratio, bits):
    return batch * (heads * tokens**2 + tokens * width * (2 + mlp_ratio)) * bits // 8


def exact_bytes(batch, tokens, width, heads, mlp_ratio, bits):  # a float, not rounded
    per_sample = heads * tokens**2 + tokens * width * (2 + mlp_ratio)
    return batch * per_sample * bits / 8


def per_site_ceil(batch, tokens, width, heads, mlp_ratio, bits):  # packed per sample
    sites = [
        heads * tokens**2,
        tokens * width,
        tokens * width * mlp_ratio,
        tokens * width,
    ]
    return np.int64(batch * sum(math.ceil(s * bits / 8) for s in sites))


class TestCheckMaskBytes:
    @pytest.mark.parametrize(
        "fn",
        [
            right_mask_bytes,
            exact_bytes,
            lambda *a: math.ceil(exact_bytes(*a)),
            lambda *a: torch.tensor(exact_bytes(*a), dtype=torch.float64),
        ],
        ids=["floor", "exact", "ceil", "tensor"],
    )
    def test_right_answer_passes(self, fn, capsys):
        check_mask_bytes(fn)
        assert "all checks passed" in capsys.readouterr().out

    def test_rounding_per_mask_is_off_by_more_than_a_byte(self):
        # Rounding each mask up to whole bytes is a different count (by up to a byte
        # per mask): the exercise asks for the total bits / 8.
        with pytest.raises(CheckFailed, match="returned"):
            check_mask_bytes(per_site_ceil)

    def test_attention_mask_without_heads_gets_a_hint(self):
        def no_heads(batch, tokens, width, heads, mlp_ratio, bits):
            per_sample = tokens**2 + tokens * width * (2 + mlp_ratio)
            return batch * per_sample * bits // 8

        with pytest.raises(CheckFailed, match="one tokens x tokens mask per head"):
            check_mask_bytes(no_heads)

    def test_learner_exception_is_a_check_failure(self):
        def crashes(batch, tokens, width, heads, mlp_ratio, bits):
            args = batch, tokens, width, heads, mlp_ratio, bits
            return right_mask_bytes(*args) * bits // bits  # fails at bits = 0

        with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
            check_mask_bytes(crashes)

    @pytest.mark.parametrize(
        "wrong,hint",
        [
            (
                lambda b, t, w, h, r, bits: right_mask_bytes(b, t, w, h, r, bits) * 8,
                "bits, not bytes",
            ),
            (lambda b, t, w, h, r, bits: b * t * w * (2 + r) * bits // 8, "attn_drop"),
            (
                lambda b, t, w, h, r, bits: b * (h * t * t + 2 * t * w) * bits // 8,
                "first dropout",
            ),
            (
                lambda b, t, w, h, r, bits: (
                    b * (h * t * t + t * w * (1 + r)) * bits // 8
                ),
                "two dropouts",
            ),
            (lambda b, t, w, h, r, bits: b * 2 * t * w * bits // 8, "Two sites"),
            (
                lambda b, t, w, h, r, bits: b * (h * t + t * w * (2 + r)) * bits // 8,
                "returned",
            ),
        ],
        ids=[
            "bits",
            "no attn_drop",
            "no mlp drop1",
            "no mlp drop2",
            "old miscount",
            "heads x T",
        ],
    )
    def test_wrong_answers_fail_with_hint(self, wrong, hint):
        with pytest.raises(CheckFailed, match=hint):
            check_mask_bytes(wrong)

    def test_not_a_number(self):
        with pytest.raises(CheckFailed, match="must return a number"):
            check_mask_bytes(lambda *a: "many")


def lowbias32(h):
    h = h ^ (h >> 16)
    h = (h * 0x7FEB352D) & 0xFFFFFFFF
    h = h ^ (h >> 15)
    h = (h * 0x846CA68B) & 0xFFFFFFFF
    return h ^ (h >> 16)


def philox_key_in_counter(key, i):  # unusual: the key in the counter, a zero key
    zero = torch.zeros((), dtype=torch.int64)
    counter = (i & 0xFFFFFFFF, i >> 32, torch.full_like(i, key), zero)
    return philox4x32(counter, (zero, zero))[0]


class TestCheckKeepWords:
    @pytest.mark.parametrize(
        "fn",
        [
            lambda key, i: _words(i, (torch.tensor(key), torch.tensor(0)))[0],
            philox_key_in_counter,
        ],
        ids=["chapter", "key-in-counter"],
    )
    def test_philox_passes(self, fn, capsys):
        check_keep_words(fn)
        assert "all checks passed" in capsys.readouterr().out

    @pytest.mark.parametrize(
        "wrong,message",
        [
            (
                lambda key, i: torch.randint(0, 2**32, i.shape),
                "two calls of keep_words with the same key",
            ),
            (
                lambda key, i: _words(
                    torch.arange(i.numel()).reshape(i.shape),
                    (torch.tensor(key), torch.tensor(0)),
                )[0],
                "not on its position in the tensor",
            ),
            (
                lambda key, i: _words(
                    i & 0xFFFFFFFF, (torch.tensor(key), torch.tensor(0))
                )[0],
                "indices 2\\*\\*32 apart",
            ),
            (
                lambda key, i: _words(i & 0xFFFF, (torch.tensor(key), torch.tensor(0)))[
                    0
                ],
                "indices 2\\*\\*32 apart",
            ),
        ],
        ids=["stateful", "positions", "low-32-bits", "low-16-bits"],
    )
    def test_catches(self, wrong, message):
        with pytest.raises(CheckFailed, match=message):
            check_keep_words(wrong)

    def test_in_place(self):
        def shifts(key, i):
            i += 0
            return _words(i, (torch.tensor(key), torch.tensor(0)))[0]

        with pytest.raises(CheckFailed, match="changed its argument index in place"):
            check_keep_words(shifts)

    @pytest.mark.parametrize(
        "wrong,message",
        [
            (lambda key, i: i, "keep"),
            (lambda key, i: i ^ key, "keep"),
            (
                lambda key, i: lowbias32(lowbias32(i) ^ lowbias32(torch.tensor(key))),
                "exchanging",
            ),
            (lambda key, i: lowbias32(i), "keys 7 and 8"),
            (
                lambda key, i: (i * 0x9E3779B9 + key) & 0xFFFFFFFF,
                "apart correlate|not uniform",
            ),
            (lambda key, i: lowbias32(i + key), "exchanging|of the same words"),
            (
                lambda key, i: lowbias32((i + key * 2**16) & 0xFFFFFFFF),
                "of the same words",
            ),
        ],
        ids=[
            "identity",
            "xor",
            "old symmetric hash",
            "ignores key",
            "weyl",
            "hash of sum",
            "key times N plus index",
        ],
    )
    def test_wrong_generators_fail(self, wrong, message):
        with pytest.raises(CheckFailed, match=message):
            check_keep_words(wrong)

    def test_bad_return(self):
        with pytest.raises(CheckFailed, match="32-bit words"):
            check_keep_words(lambda key, i: i - 5)
        with pytest.raises(CheckFailed, match="shaped like index"):
            check_keep_words(lambda key, i: i[:10])
