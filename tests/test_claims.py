"""dropkit.claims: the book's one rule. Each test equals scipy's, each claim function
fails on data that contradict it, fragile verdicts are refused, and replication records
instead of raising."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from dropkit import claims

A = [0.81, 0.83, 0.82, 0.84, 0.80]
B = [0.78, 0.79, 0.80, 0.77, 0.78]
RNG = np.random.default_rng(0)
BASE = RNG.normal(0.8, 0.02, 10)
SHIFTED = BASE - 0.05 + RNG.normal(0, 0.004, 10)  # 0.05 lower, paired with BASE


def with_p(p, n=10):
    """Paired data (a, b) whose paired t-test gives two-sided p exactly."""
    t = stats.t(n - 1).isf(p / 2)
    d = np.array([1.0, -1.0] * (n // 2))
    d = d / d.std(ddof=1) + 0.0  # mean 0, sd 1
    d = d + t / math.sqrt(n)  # mean t / sqrt(n): t statistic t
    b = np.linspace(0.5, 0.6, n)
    return list(b + d), list(b)


class TestCompare:
    def test_paired_is_ttest_rel(self):
        c = claims.compare(BASE, SHIFTED, paired=True)
        ref = stats.ttest_rel(BASE, SHIFTED)
        assert c.test == "paired t" and c.sizes == "10 seeds" and c.df == 9
        assert math.isclose(c.pvalue, ref.pvalue, rel_tol=1e-12)
        assert math.isclose(c.diff / c.se, ref.statistic, rel_tol=1e-12)
        lo, hi = ref.confidence_interval(0.99)
        assert c.ci(0.99) == pytest.approx((lo, hi), rel=1e-10)

    def test_welch_is_ttest_ind(self):
        c = claims.compare(A, B[:4], paired=False)
        ref = stats.ttest_ind(A, B[:4], equal_var=False)
        assert c.test == "Welch t" and c.sizes == "5 and 4 seeds"
        assert math.isclose(c.pvalue, ref.pvalue, rel_tol=1e-12)
        assert math.isclose(c.df, ref.df, rel_tol=1e-12)
        assert math.isclose(c.diff / c.se, ref.statistic, rel_tol=1e-12)
        assert c.ci(0.95) == pytest.approx(ref.confidence_interval(0.95), rel=1e-10)

    def test_one_sample_is_ttest_1samp(self):
        c = claims.compare(A, 0.8)
        ref = stats.ttest_1samp(A, 0.8)
        assert c.test == "one-sample t" and math.isclose(c.pvalue, ref.pvalue)

    def test_estimates_are_z_tests(self):
        c = claims.compare(claims.Estimate(0.52, 0.01), claims.Estimate(0.5, 0.01))
        z = 0.02 / math.hypot(0.01, 0.01)
        assert c.test == "z" and c.pvalue == pytest.approx(2 * stats.norm.sf(z))
        assert claims.compare(claims.Estimate(0.52, 0.01), 0.5).se == 0.01

    def test_tost_is_two_one_sided_tests(self):
        delta = 0.06
        c = claims.compare(BASE, SHIFTED, paired=True)
        a, b = np.asarray(BASE), np.asarray(SHIFTED)
        low = stats.ttest_rel(a + delta, b, alternative="greater").pvalue
        high = stats.ttest_rel(a - delta, b, alternative="less").pvalue
        assert c.tost(delta) == pytest.approx(max(low, high), rel=1e-9)
        w = claims.compare(A, B, paired=False)
        low = stats.ttest_ind(
            np.add(A, 0.05), B, equal_var=False, alternative="greater"
        )
        high = stats.ttest_ind(np.add(A, -0.05), B, equal_var=False, alternative="less")
        assert w.tost(0.05) == pytest.approx(max(low.pvalue, high.pvalue), rel=1e-9)

    def test_pairing_removes_what_the_seed_shares(self):
        # A 0.01 difference: lost in the seeds' spread (0.02) unpaired, clear paired.
        lower = BASE - 0.01 + np.random.default_rng(1).normal(0, 0.002, 10)
        assert claims.compare(BASE, lower, paired=False).pvalue > 0.1
        assert claims.compare(BASE, lower, paired=True).pvalue < 1e-6

    def test_identical_values(self):
        assert claims.compare([1, 1, 1], [1, 1], paired=False).pvalue == 1.0
        c = claims.compare([2, 2, 2], [1, 1], paired=False)
        assert c.pvalue == 0.0 and c.diff == 1.0 and c.tost(2) == 0.0

    def test_paired_must_be_said(self):
        with pytest.raises(ValueError, match="paired=True for the same seeds"):
            claims.compare(A, B)
        with pytest.raises(ValueError, match="one value of a and one of b per seed"):
            claims.compare(A, B[:4], paired=True)

    @pytest.mark.parametrize(
        "bad", [[1.0], [], [1.0, float("nan")], [1.0, float("inf")]]
    )
    def test_bad_values_are_named(self, bad):
        with pytest.raises(ValueError, match="a "):
            claims.compare(bad, B, paired=False)

    @pytest.mark.parametrize("bad", [3.0, "abc", None, [1, "x"]])
    def test_not_a_sequence(self, bad):
        with pytest.raises(TypeError, match="a must be a sequence"):
            claims.compare(bad, B, paired=False)

    @pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "0.1"])
    def test_bad_delta(self, bad):
        with pytest.raises(ValueError, match="delta"):
            claims.compare(A, B, paired=False).tost(bad)

    @pytest.mark.parametrize("value, se", [(float("nan"), 1), (0.5, 0), (0.5, -1)])
    def test_bad_estimate(self, value, se):
        with pytest.raises(ValueError, match="Estimate"):
            claims.Estimate(value, se)

    def test_estimate_with_a_sequence(self):
        with pytest.raises(TypeError, match="not with a sequence"):
            claims.compare(claims.Estimate(0.5, 0.1), A)


class TestBeyond:
    def test_holds_with_its_test_and_p(self, capsys):
        c = claims.claim_beyond(BASE, SHIFTED, "dropout helps", paired=True)
        out = capsys.readouterr().out
        assert out == (
            f"claim holds: dropout helps [beyond noise: paired t, 10 seeds, "
            f"p = {c.pvalue:.1e}]\n"
        )
        claims.claim_beyond(SHIFTED, BASE, "it hurts", paired=True, direction="less")

    @pytest.mark.parametrize(
        "a, b, match",
        [
            (SHIFTED, BASE, "the other sign"),  # contradicted
            (BASE, BASE + RNG.normal(0, 0.02, 10), "not beyond noise"),  # null
        ],
    )
    def test_fails_on_data_that_contradict_it(self, a, b, match):
        with pytest.raises(claims.ClaimFailed, match=match):
            claims.claim_beyond(a, b, "a beats b", paired=True)

    @pytest.mark.parametrize("p", [0.0011, 0.005, 0.0099, 0.011, 0.05, 0.099])
    def test_fragile_band_is_refused(self, p):
        a, b = with_p(p)
        assert claims.compare(a, b, paired=True).pvalue == pytest.approx(p)
        with pytest.raises(claims.FragileVerdict, match="add seeds"):
            claims.claim_beyond(a, b, "x", paired=True)

    def test_edges_of_the_band(self, capsys):
        claims.claim_beyond(*with_p(0.00099), "x", paired=True)
        assert "p = 9.9e-04" in capsys.readouterr().out
        with pytest.raises(claims.FragileVerdict):
            claims.claim_beyond(*with_p(0.00101), "x", paired=True)

    def test_bad_direction(self):
        with pytest.raises(ValueError, match="direction"):
            claims.claim_beyond(A, B, "x", paired=False, direction="up")


class TestEquivalent:
    def test_holds(self, capsys):
        a = list(BASE)
        b = list(BASE + RNG.normal(0, 0.001, 10))
        claims.claim_equivalent(a, b, 0.01, "the same", paired=True)
        out = capsys.readouterr().out
        assert out.startswith(
            "claim holds: the same [equivalent within ±0.01: paired t TOST, 10 seeds, "
        )

    def test_fails_when_the_difference_exceeds_delta(self):
        with pytest.raises(claims.ClaimFailed, match="not inside ±0.01"):
            claims.claim_equivalent(BASE, SHIFTED, 0.01, "the same", paired=True)

    def test_fails_when_noise_is_too_large_to_tell(self):
        noisy = list(BASE + RNG.normal(0, 0.05, 10))
        with pytest.raises(claims.ClaimFailed):
            claims.claim_equivalent(BASE, noisy, 0.01, "the same", paired=True)

    def test_fragile(self):
        # the paired differences have mean 0 and s.e. 0.004: TOST p for delta = 0.0125
        d = np.array([1.0, -1.0] * 5)
        d = d / d.std(ddof=1) * 0.004 * math.sqrt(10)
        pt = claims.compare(list(0.5 + d), [0.5] * 10, paired=True).tost(0.0125)
        assert 0.001 <= pt < 0.1
        with pytest.raises(claims.FragileVerdict):
            claims.claim_equivalent(list(0.5 + d), [0.5] * 10, 0.0125, "x", paired=True)


class TestInconclusive:
    def test_holds_and_prints_both_tests(self, capsys):
        noisy = list(BASE + RNG.normal(0, 0.05, 10))
        c = claims.claim_inconclusive(
            BASE, noisy, "no verdict", paired=True, delta=0.001
        )
        out = capsys.readouterr().out
        assert "[inconclusive: paired t, 10 seeds, p = " in out
        assert f"TOST ±0.001, p = {c.tost(0.001):.1e}]" in out.replace("\n  ", " ")

    def test_fails_on_an_effect(self):
        with pytest.raises(claims.ClaimFailed, match="beyond noise: state the effect"):
            claims.claim_inconclusive(BASE, SHIFTED, "x", paired=True)

    def test_fails_on_equivalence(self):
        b = list(BASE + RNG.normal(0, 0.001, 10))
        with pytest.raises(claims.ClaimFailed, match="equivalence within"):
            claims.claim_inconclusive(BASE, b, "x", paired=True, delta=0.01)

    @pytest.mark.parametrize("p", [0.002, 0.02, 0.09])
    def test_fragile(self, p):
        with pytest.raises(claims.FragileVerdict):
            claims.claim_inconclusive(*with_p(p), "x", paired=True)


class TestFaster:
    def test_is_a_sign_test(self, capsys):
        slow = [17.0, 16.5, 95.0, 17.2, 16.9, 17.1, 16.8, 17.3, 17.0, 17.0, 16.0]
        fast = [2.2, 2.1, 2.3, 2.2, 2.2, 2.2, 2.1, 2.2, 2.3, 2.2, 2.4]
        assert claims.claim_faster(slow, fast, "reuse is faster").k == 11
        assert capsys.readouterr().out == (
            "claim holds: reuse is faster [beyond noise: sign test, 11 rounds, "
            "p = 4.9e-04]\n"
        )
        # Welch's test on the same raw times is not beyond noise: one slow round.
        assert claims.compare(slow, fast, paired=False).pvalue > 0.001

    def test_p_value_is_the_binomial_tail(self):
        test = claims.sign_test([2.0] * 11, [1.0] * 10 + [3.0])
        assert (test.k, test.n) == (10, 11)
        assert test.pvalue == pytest.approx(12 / 2048)
        assert str(test) == "faster in 10 of 11 rounds (p = 0.0059)"
        assert claims.sign_test([1.0, 2.0], [1.0, 3.0]).pvalue == 1.0  # tie, slower

    def test_fragile_and_failing(self):
        with pytest.raises(claims.FragileVerdict, match="10 of 11"):
            claims.claim_faster([2.0] * 11, [1.0] * 10 + [3.0], "x")
        with pytest.raises(claims.ClaimFailed, match="faster in 0 of 12"):
            claims.claim_faster([1.0] * 12, [1.0] * 12, "x")  # ties count against
        with pytest.raises(claims.ClaimFailed, match="faster in 2 of 12"):
            claims.claim_faster([1.0] * 12, [2.0] * 10 + [0.5] * 2, "x")

    def test_bad_input(self):
        with pytest.raises(ValueError, match="same rounds, but got 12 and 11"):
            claims.claim_faster([2.0] * 12, [1.0] * 11, "x")
        with pytest.raises(ValueError, match="9 rounds cannot reach p < 0.001.*10"):
            claims.claim_faster([2.0] * 9, [1.0] * 9, "x")
        with pytest.raises(ValueError, match="finite"):
            claims.claim_faster([2.0] * 11 + [float("nan")], [1.0] * 12, "x")


class TestExact:
    def test_holds_prints_the_statement_only(self, capsys):
        claims.claim("masks equal", True, "0 differences")
        claims.claim("numpy bool", np.bool_(True))
        assert capsys.readouterr().out == (
            "claim holds: masks equal\nclaim holds: numpy bool\n"
        )

    def test_fails_with_the_measurement(self):
        with pytest.raises(claims.ClaimFailed, match="claim fails: x; measured 0.5"):
            claims.claim("x", False, "0.5")

    @pytest.mark.parametrize("statement", ["  ", "", None, 3])
    def test_empty_statement(self, statement):
        with pytest.raises(ValueError, match="statement"):
            claims.claim(statement, True)

    def test_holds_must_be_a_truth_value(self):
        with pytest.raises(TypeError, match="holds must be a bool"):
            claims.claim("x", [1, 2])

    def test_long_verdicts_wrap_at_the_page_width(self, capsys):
        statement = "lowmem_dropout beats each of the other three at every size " * 3
        claims.claim(statement.strip(), True)
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 3 and all(len(line) <= claims.WIDTH for line in lines)
        assert all(line.startswith("  ") for line in lines[1:])
        claims.claim("x" * 61 + " (sign test, p < 0.01)", True)
        assert capsys.readouterr().out.splitlines()[1] == "  p < 0.01)"

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


class TestReplication:
    def test_seeds_shift_with_the_base(self, monkeypatch):
        assert claims.seeds(5) == [0, 1, 2, 3, 4]
        assert claims.seeds(3, start=10) == [10, 11, 12]
        monkeypatch.setenv(claims.SEED_BASE, "200")
        assert claims.seeds(5) == [200, 201, 202, 203, 204]

    @pytest.mark.parametrize(
        "n, start, match",
        [(0, 0, "n must"), (2.0, 0, "n must"), (5, -1, "start must"), (60, 50, "100")],
    )
    def test_bad_seeds(self, n, start, match):
        with pytest.raises(ValueError, match=match):
            claims.seeds(n, start=start)

    def test_bad_base(self, monkeypatch):
        monkeypatch.setenv(claims.SEED_BASE, "abc")
        with pytest.raises(ValueError, match="DROPKIT_SEED_BASE"):
            claims.seeds(2)

    def test_recording_goes_on_after_a_failure(self, tmp_path, monkeypatch, capsys):
        record = tmp_path / "verdicts.jsonl"
        monkeypatch.setenv(claims.RECORD, str(record))
        claims.claim_beyond(SHIFTED, BASE, "a beats b", paired=True)  # contradicted
        claims.claim_beyond(*with_p(0.005), "fragile", paired=True)
        claims.claim_beyond(BASE, SHIFTED, "holds", paired=True)
        claims.claim("exact", True)
        out = capsys.readouterr().out
        assert "claim fails: a beats b" in out and "claim holds: holds" in out
        rows = [json.loads(line) for line in record.read_text().splitlines()]
        assert [(r["observed"], r["holds"]) for r in rows] == [
            ("contradicted", False),
            ("fragile", False),
            ("beyond", True),
            ("holds", True),
        ]


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
