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

The tests (paired t, Welch t, one-sample t, z, sign test): :mod:`dropkit.stats`.

Every verdict line names its test, its sample sizes and its p-value, for example::

    claim holds: dropout lowers the validation loss [beyond noise: paired t,
      10 seeds, p = 2.1e-05]

The p-value is printed in a fixed width; ``tests/nbval_sanitize.cfg`` masks it, so the
verdict, not its digits, is compared on every machine. The difference and its standard
error go into the prose through :func:`glue`. :func:`claim` and :func:`claim_close` are
for statements that are not about noise: an identity, a count, a bound that holds for
every draw, a rounding tolerance.

Replication (:mod:`dropkit.seeds`): ``make replicate`` shifts :func:`seeds` to fresh
sets and has the claim functions record each verdict instead of raising.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap

from dropkit.glue import glue
from dropkit.seeds import RECORD, SEED_BASE, seeds
from dropkit.stats import (
    Comparison,
    Estimate,
    SignTest,
    _check_delta,
    compare,
    mean_sd,
    sign_test,
)

__all__ = [
    "ALPHA",
    "RECORD",
    "SEED_BASE",
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


class ClaimFailed(AssertionError):
    """What the prose says about a measured result is not what this run measured."""


class FragileVerdict(ClaimFailed):
    """The p-value lies within a factor of 10 of ALPHA: a fresh set of seeds could flip
    the verdict, so the book states none."""


def _fmt_p(p: float) -> str:
    """A p-value in a fixed width (7 characters), so that a verdict wraps at the same
    place on every machine; tests/nbval_sanitize.cfg masks the digits."""
    return f"{min(max(p, 1e-99), 1.0):.1e}"


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


def _beyond_outcome(p: float, sign_ok: bool = True) -> tuple[str, str]:
    """What a claim of an effect beyond noise observed, and why it failed if it did."""
    if _fragile(p):
        return "fragile", f"p = {p:.2g}: {_FRAGILE_ADVICE}"
    if p >= ALPHA / FRAGILITY:
        return "inconclusive", f"not beyond noise (p >= {ALPHA:g})"
    if not sign_ok:
        return "contradicted", "the difference has the other sign"
    return "beyond", ""


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
    observed, why = _beyond_outcome(c.pvalue, sign_ok)
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
    The prose says so with the numbers ("0.15 ± 0.14 lower, p = 0.31: inconclusive"),
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
    observed, why = _beyond_outcome(test.pvalue)
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
