"""Claim checks: what the book's prose says about a measured result, decided by one
statistical rule and printed as a verdict that is the same on every machine.

A number that comes out of floating-point work (a training run, a fit, a timing)
changes in its digits from one CPU to another, and a trained network's accuracy changes
far more from one seed to the next. The book stores and shows such numbers but does not
compare them digit by digit. Each is followed by a *claim check* that decides what the
prose may conclude, by one rule for the whole book (the page "How this book checks its
claims"):

- **beyond noise**: the test's two-sided p-value is below :data:`ALPHA` (0.01) and the
  difference has the stated sign;
- **equivalent within ±delta**: two one-sided tests (TOST) reject a difference of delta
  or more, each at :data:`ALPHA`; delta is stated in the prose, fixed before looking;
- **inconclusive**: neither; said as such, with the numbers.

A verdict whose p-value lies within a factor of :data:`FRAGILITY` (10) of ALPHA on
either side, ``ALPHA / 10 <= p < ALPHA * 10``, is *fragile*: a fresh set of seeds (or
another machine) could flip it. The claim functions refuse it (:class:`FragileVerdict`)
and tell the author to add seeds or to strengthen the experiment. So a printed verdict
has ``p < 0.001`` (beyond noise, equivalent) or ``p >= 0.1`` (inconclusive).

Which test:

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

Every verdict line names its test, its sample sizes and its p-value, for example::

    claim holds: dropout lowers the validation loss [beyond noise: paired t,
      10 seeds, p = 2.1e-05]

The p-value is printed in a fixed width; ``tests/nbval_sanitize.cfg`` masks it, so the
verdict, not its digits, is compared on every machine. The difference and its standard
error go into the prose through :func:`glue`. :func:`claim` and :func:`claim_close` are
for statements that are not about noise: an identity, a count, a bound that holds for
every draw, a rounding tolerance.

Replication: the model seeds of every experiment come from :func:`seeds`, which
``make replicate`` (``tools/replicate.py``) shifts to fresh sets. With the environment
variable ``DROPKIT_CLAIMS_RECORD`` set to a file, the claim functions record each
verdict there as a JSON line and print a failing one instead of raising.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ALPHA",
    "FRAGILITY",
    "ClaimFailed",
    "Comparison",
    "Estimate",
    "FragileVerdict",
    "SignTest",
    "claim",
    "claim_beyond",
    "claim_close",
    "claim_equivalent",
    "claim_faster",
    "claim_inconclusive",
    "compare",
    "glue",
    "mean_sd",
    "seeds",
    "sign_test",
]

ALPHA = 0.01  # the book's one significance level
FRAGILITY = 10.0  # a p-value within this factor of ALPHA is no verdict
WIDTH = 88  # the book's page width for code and outputs
SEED_BASE = "DROPKIT_SEED_BASE"  # make replicate: where seeds() starts
RECORD = "DROPKIT_CLAIMS_RECORD"  # make replicate: record verdicts instead of raising


class ClaimFailed(AssertionError):
    """What the prose says about a measured result is not what this run measured."""


class FragileVerdict(ClaimFailed):
    """The p-value lies within a factor of 10 of ALPHA: a fresh set of seeds could flip
    the verdict, so the book states none."""


# -- the data ---------------------------------------------------------------------


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


def _fmt_p(p: float) -> str:
    """A p-value in a fixed width (7 characters), so that a verdict wraps at the same
    place on every machine; tests/nbval_sanitize.cfg masks the digits."""
    return f"{min(max(p, 1e-99), 1.0):.1e}"


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

    def ci(self, level: float = 1 - ALPHA) -> tuple[float, float]:
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


# -- the verdicts ---------------------------------------------------------------


def _wrap(line: str) -> str:
    """``line`` wrapped at spaces to the page width, continuation lines indented by two,
    never inside a comparison such as ``p = 2.1e-05`` or ``p < 0.001``."""
    glued = re.sub(r" (<=|>=|<|>|=) ", "\0\\1\0", line)
    wrapped = textwrap.fill(
        glued,
        WIDTH,
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped.replace("\0", " ")


def _check_statement(statement) -> str:
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"a claim needs a statement, but got {statement!r}")
    return statement.strip()


def _record(**entry) -> bool:
    """Append ``entry`` to the replication record, if one is being kept; True if so."""
    path = os.environ.get(RECORD)
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return True


def _verdict(statement, claimed, observed, holds, detail, measured, p=None, test=""):
    """Print the verdict if it holds; else raise (or, while recording, print and go
    on). ``observed`` is what the data say: beyond, equivalent, inconclusive, fragile,
    contradicted (beyond noise the other way) or fails."""
    recording = _record(
        statement=statement,
        claimed=claimed,
        observed=observed,
        holds=holds,
        p=p,
        test=test,
    )
    if holds:
        print(_wrap(f"claim holds: {statement}{detail}"))
        return
    message = f"claim fails: {statement}; {measured}"
    if recording:
        print(_wrap(message))
        return
    raise (FragileVerdict if observed == "fragile" else ClaimFailed)(message)


def _spec(c: Comparison, suffix: str = "") -> str:
    """The test and the sample sizes, as a verdict names them: "paired t, 10 seeds"."""
    test = f"{c.test} {suffix}" if suffix else c.test
    return f"{test}, {c.sizes}" if c.sizes else test


def _fragile(p: float) -> bool:
    return ALPHA / FRAGILITY <= p < ALPHA * FRAGILITY


_FRAGILE_ADVICE = (
    f"it lies within a factor of {FRAGILITY:g} of alpha = {ALPHA:g} "
    f"({ALPHA / FRAGILITY:g} <= p < {ALPHA * FRAGILITY:g}), where a fresh set of seeds "
    "could flip the verdict: add seeds, or strengthen the experiment (a regime where "
    "the effect is larger)"
)


def _outcome(c: Comparison, delta: float | None) -> tuple[str, float]:
    """What the data say, by the rule, with the p-value that decides it."""
    if c.pvalue < ALPHA / FRAGILITY:
        return "beyond", c.pvalue
    if delta is not None:
        pt = c.tost(delta)
        if pt < ALPHA / FRAGILITY:
            return "equivalent", pt
        if _fragile(pt):
            return "fragile", pt
    if _fragile(c.pvalue):
        return "fragile", c.pvalue
    return "inconclusive", c.pvalue


def claim_beyond(
    a,
    b,
    statement: str,
    *,
    paired: bool | None = None,
    direction: str = "greater",
    unit: str = "seeds",
) -> Comparison:
    """Claim that ``mean(a)`` is greater (``direction="greater"``) or less than
    ``mean(b)`` beyond noise: the test of :func:`compare` rejects at :data:`ALPHA`,
    outside the fragile band, with the stated sign. Returns the
    :class:`Comparison`, whose numbers belong in the prose (glue them)."""
    statement = _check_statement(statement)
    if direction not in ("greater", "less"):
        raise ValueError(
            f"direction must be 'greater' or 'less', but got {direction!r}"
        )
    c = compare(a, b, paired=paired, unit=unit)
    sign_ok = c.diff > 0 if direction == "greater" else c.diff < 0
    if _fragile(c.pvalue):
        observed, why = "fragile", f"p = {c.pvalue:.2g}: {_FRAGILE_ADVICE}"
    elif c.pvalue < ALPHA / FRAGILITY and not sign_ok:
        observed, why = "contradicted", "the difference has the other sign"
    elif c.pvalue < ALPHA / FRAGILITY:
        observed, why = "beyond", ""
    else:
        observed, why = "inconclusive", f"not beyond noise (p >= {ALPHA:g})"
    detail = f" [beyond noise: {_spec(c)}, p = {_fmt_p(c.pvalue)}]"
    _verdict(
        statement,
        "beyond",
        observed,
        observed == "beyond",
        detail,
        f"measured {c}; {why}",
        c.pvalue,
        c.test,
    )
    return c


def claim_equivalent(
    a,
    b,
    delta: float,
    statement: str,
    *,
    paired: bool | None = None,
    unit: str = "seeds",
) -> Comparison:
    """Claim that ``mean(a)`` and ``mean(b)`` are equivalent within ``±delta``: two
    one-sided tests (:meth:`Comparison.tost`) reject a difference of ``delta`` or more
    at :data:`ALPHA`, outside the fragile band. ``delta`` is the margin the prose
    states, chosen before looking at the data."""
    statement = _check_statement(statement)
    delta = _check_delta(delta)
    c = compare(a, b, paired=paired, unit=unit)
    pt = c.tost(delta)
    if _fragile(pt):
        observed, why = "fragile", f"TOST p = {pt:.2g}: {_FRAGILE_ADVICE}"
    elif pt < ALPHA / FRAGILITY:
        observed, why = "equivalent", ""
    else:
        observed = "beyond" if c.pvalue < ALPHA / FRAGILITY else "inconclusive"
        lo, hi = c.ci(1 - 2 * ALPHA)
        why = (
            f"the {1 - 2 * ALPHA:.0%} interval [{lo:+.3g}, {hi:+.3g}] is not inside "
            f"±{delta:g}"
        )
    detail = f" [equivalent within ±{delta:g}: {_spec(c, 'TOST')}, p = {_fmt_p(pt)}]"
    _verdict(
        statement,
        "equivalent",
        observed,
        observed == "equivalent",
        detail,
        f"measured {c}, TOST p = {pt:.2g}; {why}",
        pt,
        c.test,
    )
    return c


def claim_inconclusive(
    a,
    b,
    statement: str,
    *,
    paired: bool | None = None,
    delta: float | None = None,
    unit: str = "seeds",
) -> Comparison:
    """Claim that the data decide nothing: the difference is not beyond noise (p >=
    ALPHA * 10) and, if ``delta`` is given, not shown equivalent within ±delta either.
    The prose says so with the numbers ("0.15 ± 0.06 lower, p = 0.31: inconclusive"),
    and says what would decide it (more seeds, a larger effect)."""
    statement = _check_statement(statement)
    if delta is not None:
        delta = _check_delta(delta)
    c = compare(a, b, paired=paired, unit=unit)
    observed, p = _outcome(c, delta)
    why = {
        "beyond": "the difference is beyond noise: state the effect",
        "equivalent": f"the data show equivalence within ±{delta}: state it",
        "fragile": f"p = {p:.2g}: {_FRAGILE_ADVICE}",
        "inconclusive": "",
    }[observed]
    detail = f" [inconclusive: {_spec(c)}, p = {_fmt_p(c.pvalue)}"
    if delta is not None:
        detail += f"; TOST ±{delta:g}, p = {_fmt_p(c.tost(delta))}"
    _verdict(
        statement,
        "inconclusive",
        observed,
        observed == "inconclusive",
        detail + "]",
        f"measured {c}; {why}",
        p,
        c.test,
    )
    return c


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


def claim_faster(slow, fast, statement: str) -> SignTest:
    """Claim that ``fast`` takes less time than ``slow``, beyond noise, from paired
    interleaved rounds: a one-sided :func:`sign_test` with p below ALPHA, outside the
    fragile band. Needs at least 10 rounds (0.5**10 < 0.001); with 11, every round must
    agree, with 15, 14 of them. Returns the :class:`SignTest`."""
    statement = _check_statement(statement)
    test = sign_test(slow, fast)
    if 0.5**test.n >= ALPHA / FRAGILITY:
        raise ValueError(
            f"{test.n} rounds cannot reach p < {ALPHA / FRAGILITY:g} even if every "
            f"round agrees; time at least "
            f"{math.floor(math.log2(FRAGILITY / ALPHA)) + 1} rounds"
        )
    if _fragile(test.pvalue):
        observed, why = "fragile", f"p = {test.pvalue:.2g}: {_FRAGILE_ADVICE}"
    elif test.pvalue < ALPHA / FRAGILITY:
        observed, why = "beyond", ""
    else:
        observed, why = "inconclusive", f"not beyond noise (p >= {ALPHA:g})"
    detail = f" [beyond noise: sign test, {test.n} rounds, p = {_fmt_p(test.pvalue)}]"
    _verdict(
        statement,
        "beyond",
        observed,
        observed == "beyond",
        detail,
        f"{test}; {why}",
        test.pvalue,
        "sign test",
    )
    return test


def claim(statement: str, holds: bool, measured: str = "") -> None:
    """Print ``claim holds: statement`` if ``holds``, else raise :class:`ClaimFailed`
    with ``measured``.

    For statements that are not about noise: an identity, a count, an exact bound, a
    property of every draw. A comparison of noisy values goes through
    :func:`claim_beyond`, :func:`claim_equivalent` or :func:`claim_inconclusive`.
    ``statement`` must not contain run-dependent numbers: it is the line the tests
    compare. A verdict longer than the book's 88 columns is wrapped at spaces,
    continuation lines indented by two.
    """
    statement = _check_statement(statement)
    if not isinstance(holds, bool) and not (
        hasattr(holds, "item") and getattr(holds, "numel", lambda: 1)() == 1
    ):
        raise TypeError(f"holds must be a bool, but got {holds!r}")
    ok = bool(holds)
    _verdict(
        statement,
        "holds",
        "holds" if ok else "fails",
        ok,
        "",
        f"measured {measured}" if measured else "measured otherwise",
    )


def claim_close(value, target, tol, statement: str) -> float:
    """Claim that ``|value - target| <= tol`` where ``tol`` is a *numerical* tolerance
    (rounding in float32, a finite-difference step), not noise: a noisy estimate is an
    :class:`Estimate` tested with :func:`claim_equivalent`. Returns the deviation."""
    statement = _check_statement(statement)
    value, target, tol = float(value), float(target), float(tol)
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol has to be a finite number >= 0, but got {tol}")
    if not math.isfinite(target):
        raise ValueError(f"target has to be finite, but got {target}")
    dev = value - target if math.isfinite(value) else math.inf
    measured = (
        f"measured {value:.6g}, {dev:+.3g} from {target:.6g}, tolerance {tol:.3g}"
        if math.isfinite(value)
        else f"measured a non-finite value {value}"
    )
    _verdict(
        statement,
        "holds",
        "holds" if abs(dev) <= tol else "fails",
        abs(dev) <= tol,
        "",
        measured,
    )
    return dev


# -- seeds and glue ---------------------------------------------------------------


def seeds(n: int, start: int = 0) -> list[int]:
    """The model seeds of an experiment: ``start, ..., start + n - 1``, shifted by the
    environment variable ``DROPKIT_SEED_BASE`` (``make replicate`` runs the book with
    100 and 200). A seed varies what the model draws (initial weights, batch order,
    dropout masks); the data set stays the one the chapter generated. ``start`` keeps
    two experiments of a chapter on disjoint seeds; ``start + n`` is at most 100, so
    shifted sets never overlap."""
    for name, v, low in (("n", n, 1), ("start", start, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, but got {v!r}")
    if start + n > 100:
        raise ValueError(
            f"start + n must be at most 100 (seed sets are 100 apart), but got "
            f"start={start}, n={n}"
        )
    raw = os.environ.get(SEED_BASE, "0")
    try:
        base = int(raw)
    except ValueError:
        raise ValueError(f"{SEED_BASE} must be an integer, but got {raw!r}") from None
    return list(range(base + start, base + start + n))


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue``: store ``value`` under ``name`` for ``{glue:text}`name``` in
    the prose.

    It is myst-nb's own function where myst-nb is installed; elsewhere (Colab) it stores
    the value in the same output format, so a chapter runs the same everywhere. Glue in
    the cell that computed the value: a float's digits depend on the CPU, and that
    cell's output is not compared.
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        # numpy and torch scalars: their repr ("np.float64(0.5)", "tensor(0.5)") is not
        # a number that {glue:text}`name:.3f` can format; the Python number's is.
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        from IPython.core.formatters import format_display_data
        from IPython.display import display as ipy_display

        bundle, metadata = format_display_data(value)
        prefix = "" if display else "application/papermill.record/"
        metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
        ipy_display(
            {prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata
        )
        return
    myst_glue(name, value, display=display)
