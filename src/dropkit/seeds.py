"""The model seeds of the book's experiments, and how ``make replicate`` shifts them.

A seed varies what a model draws (initial weights, batch order, dropout masks); the data
set stays the one the chapter generated. ``tools/replicate.py`` re-runs the chapters
with ``DROPKIT_SEED_BASE`` set to 100 and 200, and with ``DROPKIT_CLAIMS_RECORD`` naming
a file in which :mod:`dropkit.claims` records each verdict instead of raising.
"""

from __future__ import annotations

import numbers
import os

__all__ = ["RECORD", "SEED_BASE", "seeds"]

SEED_BASE = "DROPKIT_SEED_BASE"  # make replicate: where seeds() starts
RECORD = "DROPKIT_CLAIMS_RECORD"  # make replicate: record verdicts instead of raising


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
