"""Claim checks: what the book's prose says about a measured result, asserted with the
data's own noise.

A number that comes out of floating-point work (a training run, a least-squares fit, a
timing) changes in its last digits from one CPU to another, and after a few hundred
optimisation steps in far more than its last digits. The book stores and shows such
numbers but does not compare them digit by digit. Instead, each is followed by a *claim
check*: a cell that asserts what the prose concludes from it, with a tolerance taken
from the data (the spread over seeds, a Welch test, a binomial bound), and prints a
verdict that is the same on every machine::

    claim holds: p=0.3 beats p=0 on accuracy (Welch test, 5 seeds, p < 0.01)

The verdict is compared exactly by the tests; the numbers behind it are quoted in the
prose through myst-nb's ``glue`` (:func:`glue`) from the stored outputs, so the text
always matches the output beside it. When a claim does not hold, :class:`ClaimFailed`
says what was measured.

Four kinds of claim cover the book:

- :func:`claim` -- a condition that must hold (with the numbers to show when it does
  not);
- :func:`claim_greater` / :func:`claim_within_noise` -- two settings compared over seeds
  with Welch's t-test (unequal variances), the only honest way to compare a handful of
  seeds;
- :func:`claim_faster` -- two timings measured in the same interleaved rounds, compared
  round by round with a sign test, which one slow round (another process, a page-fault
  storm) cannot sway the way it sways a mean;
- :func:`claim_close` -- a measured value within a stated tolerance of a prediction.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ClaimFailed",
    "SignTest",
    "Welch",
    "claim",
    "claim_close",
    "claim_faster",
    "claim_greater",
    "claim_within_noise",
    "glue",
    "mean_sd",
    "sign_test",
    "welch",
]


class ClaimFailed(AssertionError):
    """What the prose says about a measured result is not what this run measured."""


def _values(name: str, values: Sequence[float]) -> list[float]:
    try:
        out = [float(v) for v in values]
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of numbers, one per seed, but got {values!r}"
        ) from None
    if len(out) < 2:
        raise ValueError(
            f"{name} needs at least 2 values (one per seed) to estimate noise, but "
            f"got {len(out)}"
        )
    bad = [v for v in out if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} must be finite, but contains {bad[0]}")
    return out


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator) of one value per
    seed."""
    xs = _values("values", values)
    mean = sum(xs) / len(xs)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


WIDTH = 88  # the book's page width for code and outputs


@dataclass(frozen=True)
class Welch:
    """Welch's t-test of mean(a) - mean(b): the difference, its standard error, t, df,
    two-sided p."""

    diff: float
    se: float
    t: float
    df: float
    pvalue: float
    n_a: int
    n_b: int

    def __str__(self) -> str:
        t, p = f"{self.t:.2f}", f"{self.pvalue:.2g}"
        return f"{self.diff:+.4f} ± {self.se:.4f} (Welch t = {t}, p = {p})"


def welch(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's unequal-variance t-test of ``mean(a) - mean(b)``, one value per seed in
    each.

    Two settings trained with the same seeds are *not* paired here: seeds are
    exchangeable labels, and the conservative unpaired test is the one that does not
    depend on which seed went where.
    """
    from scipy import stats

    xa, xb = _values("a", a), _values("b", b)
    (ma, sa), (mb, sb) = mean_sd(xa), mean_sd(xb)
    va, vb = sa**2 / len(xa), sb**2 / len(xb)
    se = math.sqrt(va + vb)
    diff = ma - mb
    if (
        se == 0
    ):  # every seed gave the same value in both groups: the difference is exact
        t = math.copysign(math.inf, diff) if diff else 0.0
        return Welch(diff, 0.0, t, math.inf, 0.0 if diff else 1.0, len(xa), len(xb))
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    t = diff / se
    return Welch(diff, se, t, df, float(2 * stats.t.sf(abs(t), df)), len(xa), len(xb))


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


def sign_test(slow: Sequence[float], fast: Sequence[float]) -> SignTest:
    """Sign test of paired rounds: ``slow[i]`` and ``fast[i]`` timed in the same round
    (as :func:`dropkit.bench.interleaved_ms` times them). A round counts for ``fast``
    only if it took strictly less time (ties count against);
    ``pvalue = P(Binomial(n, 1/2) >= k)``.

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
    return SignTest(k, len(xs), float(stats.binom.sf(k - 1, len(xs), 0.5)))


def _wrap(line: str) -> str:
    """``line`` wrapped at spaces to the page width, continuation lines indented by two,
    never inside a comparison such as ``p < 0.01``."""
    glued = re.sub(r" (<=|>=|<|>|=) ", "\0\\1\0", line)
    wrapped = textwrap.fill(
        glued,
        WIDTH,
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped.replace("\0", " ")


def claim(statement: str, holds: bool, measured: str = "") -> None:
    """Print ``claim holds: statement`` if ``holds``, else raise :class:`ClaimFailed`
    with ``measured``.

    ``statement`` must not contain run-dependent numbers: it is the line the tests
    compare. A verdict longer than the book's 88 columns is wrapped at spaces (not
    inside a comparison such as ``p < 0.01``), its continuation lines indented by two.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"a claim needs a statement, but got {statement!r}")
    if not holds:
        raise ClaimFailed(
            f"claim fails: {statement}" + (f"; measured {measured}" if measured else "")
        )
    print(_wrap(f"claim holds: {statement}"))


def claim_greater(
    a: Sequence[float], b: Sequence[float], statement: str, alpha: float = 0.01
) -> Welch:
    """Claim that mean(a) > mean(b) beyond noise: Welch's two-sided p < ``alpha`` and
    the sign right.

    The verdict names the test, the seed count and ``alpha``, never the measured
    numbers; the returned :class:`Welch` has them for the prose (glue them in the cell
    that measured them).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha has to be between 0 and 1, but got {alpha}")
    w = welch(a, b)
    claim(
        f"{statement} (Welch test, {_seeds(w)}, p < {alpha:g})",
        w.diff > 0 and w.pvalue < alpha,
        str(w),
    )
    return w


def claim_faster(
    slow: Sequence[float], fast: Sequence[float], statement: str, alpha: float = 0.01
) -> int:
    """Claim that ``fast`` takes less time than ``slow``, from paired rounds:
    ``slow[i]`` and ``fast[i]`` timed in the same round (as
    :func:`dropkit.bench.interleaved_ms` times them).

    One-sided sign test: under the null hypothesis each round is a coin toss, so ``k``
    of ``n`` rounds with ``fast < slow`` (ties count against) has probability
    ``P(Binomial(n, 1/2) >= k)``; the claim holds if that is below ``alpha``. Timings
    have heavy right tails, and one slow round inflates a mean and its standard error
    (Welch's test on raw times then fails on a 7x gap); the sign test counts that round
    as one round. Needs at least ``log2(1 / alpha)`` rounds (7 at ``alpha = 0.01``).
    Returns the number of rounds in which ``fast`` was faster.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha has to be between 0 and 1, but got {alpha}")
    test = sign_test(slow, fast)
    if 0.5**test.n >= alpha:
        raise ValueError(
            f"{test.n} rounds cannot reach p < {alpha:g} even if every round agrees; "
            f"time at least {math.floor(math.log2(1 / alpha)) + 1} rounds"
        )
    claim(
        f"{statement} (sign test, {test.n} interleaved rounds, p < {alpha:g})",
        test.pvalue < alpha,
        str(test),
    )
    return test.k


def claim_within_noise(
    a: Sequence[float], b: Sequence[float], statement: str, alpha: float = 0.01
) -> Welch:
    """Claim that mean(a) and mean(b) cannot be told apart: Welch's two-sided p >=
    ``alpha``.

    This is the honest reading of a difference smaller than its own noise. It says
    nothing about equality; the prose should give the difference with its standard error
    (``str(w)``).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha has to be between 0 and 1, but got {alpha}")
    w = welch(a, b)
    claim(
        f"{statement} (Welch test, {_seeds(w)}, p >= {alpha:g})",
        w.pvalue >= alpha,
        str(w),
    )
    return w


def claim_close(value: float, target: float, tol: float, statement: str) -> float:
    """Claim that ``|value - target| <= tol``; ``tol`` should come from the data (a
    standard error,
    a binomial bound), not from the value seen on one machine. Returns the deviation."""
    value, target, tol = float(value), float(target), float(tol)
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol has to be a finite number >= 0, but got {tol}")
    if not math.isfinite(value):
        raise ClaimFailed(
            f"claim fails: {statement}; measured a non-finite value {value}"
        )
    dev = value - target
    claim(
        statement,
        abs(dev) <= tol,
        f"{value:.6g}, {dev:+.3g} from {target:.6g}, tolerance {tol:.3g}",
    )
    return dev


def _seeds(w: Welch) -> str:
    return f"{w.n_a} seeds" if w.n_a == w.n_b else f"{w.n_a} and {w.n_b} seeds"


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
