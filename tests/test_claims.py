"""dropkit.claims: Welch as scipy computes it, verdicts that hold or fail, and glue."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dropkit import claims

A = [0.81, 0.83, 0.82, 0.84, 0.80]
B = [0.78, 0.79, 0.80, 0.77, 0.78]


class TestWelch:
    def test_equals_scipy(self):
        w = claims.welch(A, B[:4])
        ref = stats.ttest_ind(A, B[:4], equal_var=False)
        assert math.isclose(w.t, ref.statistic, rel_tol=1e-12)
        assert math.isclose(w.pvalue, ref.pvalue, rel_tol=1e-9)
        assert math.isclose(w.df, ref.df, rel_tol=1e-12)
        assert math.isclose(w.diff, np.mean(A) - np.mean(B[:4]), rel_tol=1e-12)

    def test_identical_values(self):
        assert claims.welch([1, 1, 1], [1, 1]).pvalue == 1.0
        w = claims.welch([2, 2, 2], [1, 1])
        assert w.pvalue == 0.0 and w.t == math.inf and w.diff == 1.0

    def test_str_gives_the_numbers(self):
        assert str(claims.welch(A, B)).startswith("+0.0360 ± 0.0087 (Welch t = 4.13")

    @pytest.mark.parametrize(
        "bad", [[1.0], [], [1.0, float("nan")], [1.0, float("inf")]]
    )
    def test_bad_values_are_named(self, bad):
        with pytest.raises(ValueError, match="a "):
            claims.welch(bad, B)

    def test_not_a_sequence(self):
        with pytest.raises(TypeError, match="one per seed"):
            claims.welch(3.0, B)


class TestClaims:
    def test_holds_prints_the_statement_only(self, capsys):
        claims.claim("p=0.3 beats p=0", True, "0.83 vs 0.79")
        assert capsys.readouterr().out == "claim holds: p=0.3 beats p=0\n"

    def test_long_verdicts_wrap_at_the_page_width(self, capsys):
        statement = "lowmem_dropout beats each of the other three at every size " * 3
        claims.claim(statement.strip(), True)
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 3 and all(len(line) <= claims.WIDTH for line in lines)
        assert lines[0].startswith("claim holds: lowmem_dropout beats")
        assert all(line.startswith("  ") for line in lines[1:])
        assert " ".join(line.strip() for line in lines) == "claim holds: " + " ".join(
            statement.split()
        )
        # never inside a comparison: "p" and "< 0.01" would both fit on the first line
        claims.claim("x" * 61 + " (sign test, p < 0.01)", True)
        assert capsys.readouterr().out.splitlines()[1] == "  p < 0.01)"

    def test_fails_with_the_measurement(self):
        with pytest.raises(claims.ClaimFailed, match="claim fails: x; measured 0.5"):
            claims.claim("x", False, "0.5")

    def test_empty_statement(self):
        with pytest.raises(ValueError, match="statement"):
            claims.claim("  ", True)

    def test_greater(self, capsys):
        w = claims.claim_greater(A, B, "A beats B")
        assert capsys.readouterr().out == (
            "claim holds: A beats B (Welch test, 5 seeds, p < 0.01)\n"
        )
        assert w.diff > 0
        with pytest.raises(claims.ClaimFailed, match="B beats A"):
            claims.claim_greater(B, A, "B beats A")

    def test_greater_needs_significance(self):
        noisy = [0.80, 0.86, 0.78, 0.84, 0.83]
        with pytest.raises(claims.ClaimFailed, match="Welch t"):
            claims.claim_greater(noisy, [0.81, 0.82, 0.80, 0.83, 0.79], "noisy beats")

    def test_within_noise(self, capsys):
        claims.claim_within_noise([0.80, 0.86, 0.78], [0.81, 0.82, 0.80], "same")
        assert "p >= 0.01" in capsys.readouterr().out
        with pytest.raises(claims.ClaimFailed):
            claims.claim_within_noise(A, B, "A and B within noise")

    def test_faster_is_a_sign_test(self, capsys):
        slow = [17.0, 16.5, 95.0, 17.2, 16.9, 17.1, 16.8, 17.3, 17.0]  # one slow round
        fast = [2.2, 2.1, 2.3, 2.2, 2.2, 2.2, 2.1, 2.2, 2.3]
        assert claims.claim_faster(slow, fast, "reuse is faster") == 9
        assert capsys.readouterr().out == (
            "claim holds: reuse is faster (sign test, 9 interleaved rounds, p < 0.01)\n"
        )
        # Welch's test on the same raw times does not reach p < 0.01.
        assert claims.welch(slow, fast).pvalue > 0.01

    def test_faster_p_value_is_the_binomial_tail(self):
        # 8 of 9 rounds: P(Bin(9, 1/2) >= 8) = 10/512 = 0.0195 > 0.01; 10 of 11: 0.0059.
        slow, fast = [2.0] * 9, [1.0] * 8 + [3.0]
        with pytest.raises(
            claims.ClaimFailed, match="faster in 8 of 9 rounds .p = 0.02"
        ):
            claims.claim_faster(slow, fast, "x")
        assert claims.claim_faster(slow, fast, "x", alpha=0.05) == 8
        assert claims.claim_faster([2.0] * 11, [1.0] * 10 + [3.0], "x") == 10

    def test_sign_test_alone(self):
        test = claims.sign_test([2.0] * 11, [1.0] * 10 + [3.0])
        assert (test.k, test.n) == (10, 11)
        assert test.pvalue == pytest.approx(12 / 2048)
        assert str(test) == "faster in 10 of 11 rounds (p = 0.0059)"
        assert claims.sign_test([1.0, 2.0], [1.0, 3.0]).k == 0  # tie, then slower
        assert claims.sign_test([1.0, 2.0], [1.0, 3.0]).pvalue == 1.0
        with pytest.raises(ValueError, match="same rounds, but got 3 and 2"):
            claims.sign_test([2.0] * 3, [1.0] * 2)
        with pytest.raises(ValueError, match="fast must be finite"):
            claims.sign_test([2.0] * 3, [1.0, float("inf"), 1.0])

    def test_faster_ties_count_against(self):
        with pytest.raises(claims.ClaimFailed, match="faster in 0 of 8"):
            claims.claim_faster([1.0] * 8, [1.0] * 8, "x")

    def test_faster_bad_input(self):
        with pytest.raises(ValueError, match="same rounds, but got 8 and 7"):
            claims.claim_faster([2.0] * 8, [1.0] * 7, "x")
        with pytest.raises(
            ValueError, match="6 rounds cannot reach p < 0.01.*at least 7"
        ):
            claims.claim_faster([2.0] * 6, [1.0] * 6, "x")
        with pytest.raises(ValueError, match="alpha"):
            claims.claim_faster([2.0] * 8, [1.0] * 8, "x", alpha=1)
        with pytest.raises(ValueError, match="finite"):
            claims.claim_faster([2.0] * 7 + [float("nan")], [1.0] * 8, "x")

    @pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5])
    def test_bad_alpha(self, alpha):
        with pytest.raises(ValueError, match="alpha"):
            claims.claim_greater(A, B, "x", alpha=alpha)

    def test_close(self, capsys):
        assert claims.claim_close(1.251, 1.25, 0.01, "near 1.25") == pytest.approx(
            0.001
        )
        assert capsys.readouterr().out == "claim holds: near 1.25\n"
        with pytest.raises(claims.ClaimFailed, match="tolerance 0.001"):
            claims.claim_close(1.3, 1.25, 0.001, "near 1.25")
        with pytest.raises(claims.ClaimFailed, match="non-finite"):
            claims.claim_close(float("nan"), 1.25, 0.1, "near 1.25")
        with pytest.raises(ValueError, match="tol"):
            claims.claim_close(1.0, 1.0, -1, "x")


class TestGlue:
    @pytest.mark.parametrize(
        "value", [np.float64(0.5), np.float32(0.5), torch.tensor(0.5), 0.5]
    )
    def test_scalars_are_stored_as_plain_numbers(self, value, monkeypatch):
        stored = {}
        import myst_nb

        monkeypatch.setattr(
            myst_nb, "glue", lambda name, v, display: stored.update({name: v})
        )
        claims.glue("x", value)
        assert type(stored["x"]) is float and stored["x"] == 0.5
