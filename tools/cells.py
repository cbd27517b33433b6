"""The two kinds of chapter output, counted: compared exactly, or shown with a claim
check after it.

Every code cell's output is one of two kinds (README, "What is reproduced exactly"):

- **compared**: the same on every machine (seeded masks, exact equalities, shapes,
  messages, counts); nbval compares it with the stored output, character for character;
- **float**: digits that depend on the CPU (training metrics, fitted coefficients,
  timings). The cell carries nbval's tag ``nbval-ignore-output`` *and* says why in its
  metadata, ``"float_output": "<reason>"``. Its output is stored and rendered but not
  compared; the cell still has to run without error. A cell tagged ``claim-check`` must
  follow it before the next heading: the claim check asserts, with a tolerance from the
  data, what the prose concludes, and prints ``claim holds: ...`` lines, which are
  compared.

A claim-check cell prints verdicts made by ``dropkit.claims`` and nothing is stored as
its value (an ``execute_result`` would be a float compared digit by digit). A verdict
that names a test (``[beyond noise: paired t, 10 seeds, p = 2.1e-05]``) must be outside
the fragile band: p < ALPHA / 10 for "beyond noise" and "equivalent", p >= ALPHA * 10
for "inconclusive". Its *margin* is how many times farther from ALPHA than that it is;
the second table lists every verdict with its margin, read from the stored outputs.

    python tools/cells.py        # the counts, per chapter and in all; every verdict
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync  # noqa: E402

IGNORE = "nbval-ignore-output"
CLAIM = "claim-check"
REASON = "float_output"
VERDICT = "claim holds: "
ALPHA, FRAGILITY = 0.01, 10.0  # dropkit.claims.ALPHA and FRAGILITY (tested equal)
# What dropkit.claims prints after a statement that a test decided.
TESTED = re.compile(
    r"\[(?P<kind>beyond noise|equivalent within ±[^:]+|inconclusive): "
    r"(?P<test>[^\]]*?), p = (?P<p>\d\.\de[-+]\d{2})(?P<rest>[^\]]*)\]$"
)


@dataclass
class Verdict:
    cell: int
    statement: str
    kind: str  # "beyond noise", "equivalent within ±d", "inconclusive", "exact"
    test: str
    p: float | None

    @property
    def margin(self) -> float | None:
        """How many times farther from ALPHA than the fragile band's edge the p-value
        is (>= 1 outside the band); None for a statement no test decided."""
        if self.p is None:
            return None
        if self.kind == "inconclusive":
            return self.p / (ALPHA * FRAGILITY)
        return (ALPHA / FRAGILITY) / max(self.p, 1e-99)


@dataclass
class Kinds:
    compared: list[int] = field(default_factory=list)
    float: list[int] = field(default_factory=list)
    claims: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def stdout(cell: dict) -> str:
    return "".join(
        "".join(o.get("text", ""))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def verdict_lines(text: str) -> list[str]:
    """The verdicts in a cell's printed output, each joined from its wrapped lines
    (continuation lines are indented by two)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith(VERDICT):
            out.append(line)
        elif out and line.startswith("  ") and out[-1] is not None:
            out[-1] += " " + line.strip()
        else:
            out.append(None)
    return [v for v in out if v is not None]


def parse(cell: int, line: str) -> Verdict:
    body = line[len(VERDICT) :]
    m = TESTED.search(body)
    if not m:
        return Verdict(cell, body, "exact", "", None)
    kind = m["kind"]
    return Verdict(cell, body[: m.start()].strip(), kind, m["test"], float(m["p"]))


def kinds(path: Path) -> Kinds:
    """Sort a chapter's code cells (by index among all cells) and list what breaks the
    rules."""
    cells = json.loads(path.read_text())["cells"]
    k = Kinds()
    pending: list[int] = []  # float cells still waiting for their claim check
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            if "".join(cell["source"]).lstrip().startswith("#") and pending:
                k.problems.append(
                    f"float cells {pending} have no claim-check cell before the "
                    f"heading of cell {i}"
                )
                pending = []
            continue
        if cell["cell_type"] != "code":
            continue
        t, src = tags(cell), sync.source(cell)
        if "NBVAL_IGNORE_OUTPUT" in src or "NBVAL_SKIP" in src or "nbval-skip" in t:
            k.problems.append(
                f"cell {i} uses an nbval comment or nbval-skip: mark float output "
                "with the tag only"
            )
        if IGNORE in t:
            k.float.append(i)
            reason = cell.get("metadata", {}).get(REASON, "")
            if len(str(reason).strip()) < 10:
                k.problems.append(
                    f"cell {i} is tagged {IGNORE} without saying why in metadata "
                    f"{REASON!r}"
                )
            if CLAIM in t:
                k.problems.append(
                    f"cell {i} is a claim check whose output is ignored: its verdict "
                    "must be compared"
                )
            pending.append(i)
            continue
        k.compared.append(i)
        lines = verdict_lines(stdout(cell))
        if lines and CLAIM not in t:
            k.problems.append(f"cell {i} prints a verdict but is not tagged {CLAIM!r}")
        if CLAIM in t:
            k.claims.append(i)
            if not lines:
                k.problems.append(f"claim-check cell {i} prints no '{VERDICT}...' line")
            if any(o.get("output_type") == "execute_result" for o in cell["outputs"]):
                k.problems.append(
                    f"claim-check cell {i} stores a value (an execute_result): end it "
                    "with the claim, not with an expression"
                )
            if VERDICT.strip() in src:
                k.problems.append(
                    f"claim-check cell {i} writes '{VERDICT.strip()}' itself: verdicts "
                    "come from dropkit.claims' functions only"
                )
            pending = []
        for line in lines:
            v = parse(i, line)
            k.verdicts.append(v)
            if v.margin is not None and v.margin < 1:
                k.problems.append(
                    f"cell {i}: a fragile verdict (p = {v.p:.1e}, {v.kind}): "
                    f"{v.statement[:60]}"
                )
    if pending:
        k.problems.append(f"float cells {pending} have no claim-check cell after them")
    return k


def main() -> int:
    rows, total = [], Kinds()
    for path in sync.chapters():
        k = kinds(path)
        rows.append((path.stem, len(k.compared), len(k.float), len(k.claims)))
        for name in ("compared", "float", "claims", "problems"):
            getattr(total, name).extend(getattr(k, name))
        for problem in k.problems:
            print(f"{path.name}: {problem}", file=sys.stderr)
    width = max(len(r[0]) for r in rows)
    print(f"{'chapter':<{width}}  compared  float  claim checks")
    for name, c, f, v in rows + [
        ("all", len(total.compared), len(total.float), len(total.claims))
    ]:
        print(f"{name:<{width}}  {c:>8}  {f:>5}  {v:>12}")
    print_verdicts()
    return 1 if total.problems else 0


def print_verdicts() -> None:
    """Every verdict of the stored outputs, with its test, p-value and margin."""
    print(
        f"\nverdicts (alpha = {ALPHA:g}; margin: times beyond the fragile band "
        f"{ALPHA / FRAGILITY:g} <= p < {ALPHA * FRAGILITY:g})"
    )
    counts: dict[str, int] = {}
    for path in sync.chapters():
        for v in kinds(path).verdicts:
            kind = v.kind.split(" within")[0]
            counts[kind] = counts.get(kind, 0) + 1
            p = "" if v.p is None else f"{v.p:.1e}"
            m = "" if v.margin is None else f"{v.margin:.3g}x"
            print(
                f"{path.stem[:22]:<22} {v.cell:>3}  {kind[:12]:<12} {p:>7} {m:>9}  "
                f"{v.statement[:40]}"
            )
    print("in all: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


if __name__ == "__main__":
    sys.exit(main())
