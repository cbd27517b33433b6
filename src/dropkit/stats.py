"""The statistical tests behind :mod:`dropkit.claims`, one per kind of data, every
p-value from ``scipy.stats``. :func:`compare` picks the test; its :class:`Comparison`
gives the confidence interval and the TOST p-value of equivalence.

- two settings trained with the *same* seeds (so the same initial weights and batch
  order), or two quantities of the same run, are **paired**: the test is a t-test on the
  per-seed differences (``scipy.stats.ttest_rel``), which removes what the seed shares;
- independent settings (other seeds, other data) use **Welch's** unequal-variance t-test
  (``scipy.stats.ttest_ind(equal_var=False)``);
- one setting against a fixed number uses the one-sample t-test
  (``scipy.stats.ttest_1samp``);
- a single estimate with a standard error known from many samples (a mean over 10^5
  Monte-Carlo passes, a keep rate over 10^6 entries) is an :class:`Estimate`, tested
  with the normal distribution (``scipy.stats.norm``);
- timings measured in interleaved rounds use a one-sided sign test over the rounds
  (``scipy.stats.binomtest``): one slow round (another process, a page-fault storm)
  counts as one round, where it would inflate a mean and its standard error.

The decision rule, the verdicts and the fragile band are :mod:`dropkit.claims`'.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Comparison", "Estimate", "SignTest", "compare", "mean_sd", "sign_test"]


def _values(name: str, values) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(
            f"{name} must be a sequence of numbers (one per seed or round), a number "
            f"or an Estimate, but got {values!r}"
        )
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a sequence of numbers (one per seed or round), but got "
            f"{values!r}"
        ) from None
    if len(out) < 2:
        raise ValueError(
            f"{name} needs at least 2 values (one per seed or round) to estimate "
            f"noise, but got {len(out)}"
        )
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} must be finite, but contains {bad[0]}")
    return out


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator) of one value per
    seed: the spread of *runs*. The standard error of their mean is ``sd / sqrt(n)``."""
    xs = _values("values", values)
    mean = sum(xs) / len(xs)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


@dataclass(frozen=True)
class Estimate:
    """One estimate with a standard error known from many samples (a mean over 10^5
    Monte-Carlo passes, a rate over 10^6 mask entries): tested with the normal
    distribution. Pass it as ``a`` or ``b`` of :func:`compare` and the claims."""

    value: float
    se: float

    def __post_init__(self):
        if not math.isfinite(float(self.value)):
            raise ValueError(f"Estimate value must be finite, but got {self.value}")
        if not (math.isfinite(float(self.se)) and float(self.se) > 0):
            raise ValueError(
                f"Estimate se must be a finite number > 0, but got {self.se}"
            )


def _is_number(x) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, numbers.Real):
        return True
    return getattr(x, "ndim", None) == 0 and hasattr(x, "item")


@dataclass(frozen=True)
class Comparison:
    """``mean(a) - mean(b)`` with its standard error, the test that produced it, and the
    test's two-sided p-value. :meth:`ci` and :meth:`tost` use the same test."""

    test: str  # "paired t", "Welch t", "one-sample t" or "z"
    diff: float
    se: float
    df: float  # degrees of freedom; inf for the normal distribution
    pvalue: float  # two-sided, of diff == 0
    sizes: str  # "10 seeds", "5 + 5 seeds", ""

    def _dist(self):
        from scipy import stats

        return stats.norm if math.isinf(self.df) else stats.t(self.df)

    def ci(self, level: float = 0.99) -> tuple[float, float]:
        """The two-sided confidence interval of the difference at ``level``."""
        if not 0 < level < 1:
            raise ValueError(f"level has to be between 0 and 1, but got {level}")
        if self.se == 0:
            return self.diff, self.diff
        half = self._dist().ppf(0.5 + level / 2) * self.se
        return self.diff - half, self.diff + half

    def tost(self, delta: float) -> float:
        """p-value of two one-sided tests of ``|diff| >= delta`` (Schuirmann 1987):
        below ALPHA, the difference is within ±delta. Equals the larger one-sided p."""
        delta = _check_delta(delta)
        if self.se == 0:
            return 0.0 if abs(self.diff) < delta else 1.0
        d = self._dist()
        lower = d.sf((self.diff + delta) / self.se)  # H0: diff <= -delta
        upper = d.cdf((self.diff - delta) / self.se)  # H0: diff >= +delta
        return float(max(lower, upper))

    def __str__(self) -> str:
        what = f"{self.test}, {self.sizes}" if self.sizes else self.test
        return f"{self.diff:+.4g} ± {self.se:.2g} ({what}, p = {self.pvalue:.2g})"


def _check_delta(delta) -> float:
    if not _is_number(delta) or not (math.isfinite(float(delta)) and delta > 0):
        raise ValueError(
            f"delta (the equivalence margin) must be a number > 0, but got {delta!r}"
        )
    return float(delta)


def _exact(diff: float) -> float:
    """Every value equal in every group: the difference is exact, no test needed."""
    return 0.0 if diff else 1.0


def compare(a, b=0.0, *, paired: bool | None = None, unit: str = "seeds") -> Comparison:
    """Test ``mean(a) - mean(b)`` by the book's rule for the kind of data.

    - ``a`` and ``b`` sequences, ``paired=True``: t-test on the differences ``a[i] -
      b[i]`` (the same seeds, or two quantities of the same run;
      ``scipy.stats.ttest_rel``);
    - ``a`` and ``b`` sequences, ``paired=False``: Welch's t-test (independent settings;
      ``scipy.stats.ttest_ind(equal_var=False)``);
    - ``a`` a sequence and ``b`` a number: one-sample t-test against ``b``;
    - an :class:`Estimate` on either side: a z-test (the other side an Estimate,
      independent, or a number).

    ``paired`` must be said for two sequences: whether the data are paired is a fact of
    the experiment, not a default. ``unit`` names what one value is ("seeds", "rounds").
    """
    from scipy import stats

    if isinstance(a, Estimate) or isinstance(b, Estimate):
        if not all(isinstance(v, Estimate) or _is_number(v) for v in (a, b)):
            raise TypeError(
                "an Estimate is compared with another Estimate or a number, not with "
                f"a sequence: got {a!r} and {b!r}"
            )
        va, sa = (a.value, a.se) if isinstance(a, Estimate) else (float(a), 0.0)
        vb, sb = (b.value, b.se) if isinstance(b, Estimate) else (float(b), 0.0)
        diff, se = float(va) - float(vb), math.hypot(sa, sb)
        p = float(2 * stats.norm.sf(abs(diff) / se))
        return Comparison("z", diff, se, math.inf, p, "")
    xa = _values("a", a)
    if _is_number(b):
        b = float(b)
        if not math.isfinite(b):
            raise ValueError(f"b must be finite, but got {b}")
        n = len(xa)
        mean, sd = mean_sd(xa)
        se, diff = sd / math.sqrt(n), mean - b
        p = _exact(diff) if se == 0 else float(stats.ttest_1samp(xa, b).pvalue)
        return Comparison("one-sample t", diff, se, n - 1, p, f"{n} {unit}")
    xb = _values("b", b)
    if paired is None:
        raise ValueError(
            "say whether a and b are paired: paired=True for the same seeds (the same "
            "initial weights and batch order) or two quantities of the same run, "
            "paired=False for independent settings"
        )
    if paired:
        if len(xa) != len(xb):
            raise ValueError(
                "paired data need one value of a and one of b per seed, but got "
                f"{len(xa)} and {len(xb)} values"
            )
        d = [x - y for x, y in zip(xa, xb)]
        n = len(d)
        mean, sd = mean_sd(d)
        se = sd / math.sqrt(n)
        p = _exact(mean) if se == 0 else float(stats.ttest_rel(xa, xb).pvalue)
        return Comparison("paired t", mean, se, n - 1, p, f"{n} {unit}")
    (ma, sa), (mb, sb) = mean_sd(xa), mean_sd(xb)
    va, vb = sa**2 / len(xa), sb**2 / len(xb)
    se, diff = math.sqrt(va + vb), ma - mb
    sizes = (
        f"{len(xa)} {unit} each"
        if len(xa) == len(xb)
        else f"{len(xa)} and {len(xb)} {unit}"
    )
    if se == 0:
        return Comparison("Welch t", diff, 0.0, math.inf, _exact(diff), sizes)
    result = stats.ttest_ind(xa, xb, equal_var=False)
    return Comparison(
        "Welch t", diff, se, float(result.df), float(result.pvalue), sizes
    )


@dataclass(frozen=True)
class SignTest:
    """One-sided sign test that ``fast`` takes less time than ``slow``: it did in ``k``
    of ``n`` paired rounds, and ``pvalue`` is the probability of at least ``k`` under
    the null hypothesis (each round a coin toss)."""

    k: int
    n: int
    pvalue: float

    def __str__(self) -> str:
        return f"faster in {self.k} of {self.n} rounds (p = {self.pvalue:.2g})"


def sign_test(slow, fast) -> SignTest:
    """Sign test of paired rounds: ``slow[i]`` and ``fast[i]`` timed in the same round
    (as :func:`dropkit.bench.interleaved_ms` times them). A round counts for ``fast``
    only if it took strictly less time (ties count against); the p-value is
    ``scipy.stats.binomtest(k, n, 1/2, alternative="greater")``'s.

    :func:`claim_faster` is the claim built on it; this returns the test itself, for a
    claim that combines several (a claim that *every* comparison holds holds at level
    alpha if each test has p < alpha: an intersection-union test needs no correction).
    """
    from scipy import stats

    xs, xf = _values("slow", slow), _values("fast", fast)
    if len(xs) != len(xf):
        raise ValueError(
            "slow and fast must be timed in the same rounds, but got "
            f"{len(xs)} and {len(xf)} values"
        )
    k = sum(f < s for s, f in zip(xs, xf))
    p = float(stats.binomtest(k, len(xs), 0.5, alternative="greater").pvalue)
    return SignTest(k, len(xs), p)
