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

    python tools/cells.py        # a table of the counts, per chapter and in all
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync  # noqa: E402

IGNORE = "nbval-ignore-output"
CLAIM = "claim-check"
REASON = "float_output"
VERDICT = "claim holds: "


@dataclass
class Kinds:
    compared: list[int] = field(default_factory=list)
    float: list[int] = field(default_factory=list)
    claims: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def stdout(cell: dict) -> str:
    return "".join(
        "".join(o.get("text", ""))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream"
    )


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
        if CLAIM in t:
            k.claims.append(i)
            verdicts = [
                line for line in stdout(cell).splitlines() if line.startswith(VERDICT)
            ]
            if not verdicts:
                k.problems.append(f"claim-check cell {i} prints no '{VERDICT}...' line")
            pending = []
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
    return 1 if total.problems else 0


if __name__ == "__main__":
    sys.exit(main())
