"""Chapter 6's exercise checks: a right answer passes, the usual wrong ones fail."""

import pytest
import torch

from dropkit.checks import CheckFailed, check_keep_words, check_mask_bytes
from dropkit.lowmem import _words


def right_mask_bytes(batch, tokens, width, heads, mlp_ratio, bits):
    return batch * (heads * tokens**2 + tokens * width * (2 + mlp_ratio)) * bits // 8


class TestCheckMaskBytes:
    def test_right_answer_passes(self, capsys):
        check_mask_bytes(right_mask_bytes)
        assert "all checks passed" in capsys.readouterr().out

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


class TestCheckKeepWords:
    def test_philox_passes(self, capsys):
        check_keep_words(
            lambda key, i: _words(i, (torch.tensor(key), torch.tensor(0)))[0]
        )
        assert "all checks passed" in capsys.readouterr().out

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
            (lambda key, i: lowbias32(i + key), "exchanging"),
        ],
        ids=[
            "identity",
            "xor",
            "old symmetric hash",
            "ignores key",
            "weyl",
            "hash of sum",
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
