"""Replicate the book's verdicts on fresh seeds.

A verdict about trained networks is a statement about the seeds the book did not try as
much as about the ones it did: another CPU moves a training number in its third digit,
another seed in its second. This script re-executes every chapter whose experiments take
their model seeds from ``dropkit.claims.seeds`` on fresh seed sets (by default 100-...
and 200-...; the data stay the chapter's), with ``DROPKIT_CLAIMS_RECORD`` set so that a
verdict that does not hold is recorded instead of stopping the chapter, and reports,
verdict by verdict, whether it held on each set.

    python tools/replicate.py                 # every chapter that uses claims.seeds
    python tools/replicate.py chapters/X.ipynb --sets 100 200 -j 2
    make replicate                            # the same, writing _build/replicate.*

The stored chapters are not changed. Chapters that time code (the Makefile's TIMED) run
alone after the others, as in ``make chapters``. A verdict is "held" on a set when the
claim function printed it; "fragile", "inconclusive", "contradicted" and so on say what
the fresh seeds showed instead. Only tested verdicts (beyond noise, equivalent,
inconclusive) are counted in the summary; exact claims are listed when they fail,
timing claims (sign tests) are not about seeds and are left out, and a tested verdict
whose numbers are the same on every set (a test on data the chapter fixes, not on its
seeds) is counted apart as "not seed-based".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import sync  # noqa: E402

TESTED = ("beyond", "equivalent", "inconclusive")


def uses_seeds(path: Path) -> bool:
    return any("seeds(" in sync.source(c) for c in sync.nbformat.read(path, 4).cells)


def timed() -> set[str]:
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("TIMED :="):
            return set(line.split(":=")[1].split())
    return set()


def run_one(path: Path, base: int, record: Path) -> dict:
    """Execute ``path`` with seeds shifted by ``base`` in a fresh kernel; the verdicts
    go to ``record``. Returns {"seconds", "error"}."""
    env = dict(
        os.environ, DROPKIT_SEED_BASE=str(base), DROPKIT_CLAIMS_RECORD=str(record)
    )
    code = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=1800, kernel_name='python3',\n"
        "    resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(path.parent)],
        env=env,
        capture_output=True,
        text=True,
    )
    error = ""
    if result.returncode:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        error = " / ".join(lines[-3:])[:500]
    return {"seconds": time.perf_counter() - start, "error": error}


def verdicts(record: Path) -> list[dict]:
    if not record.exists():
        return []
    rows = [json.loads(line) for line in record.read_text().splitlines() if line]
    seen: Counter = Counter()
    for row in rows:  # the same statement twice in a chapter: number them
        seen[row["statement"]] += 1
        row["key"] = f"{row['statement']} #{seen[row['statement']]}"
    return rows


def replicate(chapters: list[Path], sets: list[int], jobs: int) -> dict:
    alone = {ROOT / t for t in timed()}
    jobs_list = [(c, b) for c in chapters if c not in alone for b in sets]
    jobs_alone = [(c, b) for c in chapters if c in alone for b in sets]
    out: dict = {"sets": sets, "chapters": {}}
    with tempfile.TemporaryDirectory() as tmp:

        def work(job):
            chapter, base = job
            record = Path(tmp) / f"{chapter.stem}-{base}.jsonl"
            print(f"running {chapter.name} on seeds {base}...", flush=True)
            info = run_one(chapter, base, record)
            print(
                f"  {chapter.name} seeds {base}: {info['seconds']:.0f} s"
                + (f", ERROR {info['error']}" if info["error"] else ""),
                flush=True,
            )
            return chapter, base, info, verdicts(record)

        results = []
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results += list(pool.map(work, jobs_list))
        results += [work(job) for job in jobs_alone]
    for chapter, base, info, rows in results:
        entry = out["chapters"].setdefault(chapter.stem, {"runs": {}, "verdicts": {}})
        entry["runs"][str(base)] = info
        for row in rows:
            v = entry["verdicts"].setdefault(
                row["key"],
                {
                    "statement": row["statement"],
                    "claimed": row["claimed"],
                    "test": row.get("test", ""),
                    "on": {},
                },
            )
            v["on"][str(base)] = {
                "observed": row["observed"],
                "holds": row["holds"],
                "p": row["p"],
            }
    return out


def seed_free(on: dict, sets: list[str]) -> bool:
    """Whether a verdict saw the same numbers on every fresh set (its data do not come
    from claims.seeds): such a verdict says nothing about replication and is counted
    apart, not as held."""
    if len(sets) < 2 or not all(s in on for s in sets):
        return False
    return len({(on[s]["observed"], on[s]["p"]) for s in sets}) == 1


def summary(out: dict) -> str:
    sets = [str(s) for s in out["sets"]]
    lines = [
        "| chapter | tested verdicts | held on "
        + " / ".join(f"{len(sets) - i}" for i in range(len(sets) + 1))
        + " fresh sets | not held | not seed-based |",
        "| --- | --- | --- | --- | --- |",
    ]
    total: Counter = Counter()
    fixed_total = 0
    failures = []
    for name, entry in out["chapters"].items():
        counts: Counter = Counter()
        n = fixed = 0
        for v in entry["verdicts"].values():
            on = v["on"]
            if v["test"] == "sign test":
                continue
            held = sum(1 for s in sets if on.get(s, {}).get("holds"))
            if v["claimed"] in TESTED and seed_free(on, sets):
                fixed += 1  # the same numbers on every set: data the chapter fixes
            elif v["claimed"] in TESTED:
                n += 1
                counts[held] += 1
            if held < len(sets):
                seen = ", ".join(
                    f"{s}: {on[s]['observed']}"
                    + (f" (p = {on[s]['p']:.2g})" if on[s].get("p") is not None else "")
                    if s in on
                    else f"{s}: not reached"
                    for s in sets
                )
                failures.append(f"- {name}: {v['statement']} — {seen}")
        errors = [f"{b}: {r['error']}" for b, r in entry["runs"].items() if r["error"]]
        failures += [f"- {name}: the chapter stopped ({e})" for e in errors]
        total += counts
        fixed_total += fixed
        held = " / ".join(str(counts[len(sets) - i]) for i in range(len(sets) + 1))
        lines.append(f"| {name} | {n} | {held} | {n - counts[len(sets)]} | {fixed} |")
    n = sum(total.values())
    held = " / ".join(str(total[len(sets) - i]) for i in range(len(sets) + 1))
    lines.append(f"| all | {n} | {held} | {n - total[len(sets)]} | {fixed_total} |")
    text = "\n".join(lines)
    if failures:
        text += "\n\nNot held on every fresh set:\n" + "\n".join(failures)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path)
    parser.add_argument("--sets", nargs="+", type=int, default=[100, 200])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "replicate")
    args = parser.parse_args(argv)
    for s in args.sets:
        if s <= 0 or s % 100:
            parser.error(f"a seed set is a positive multiple of 100, but got {s}")
    chapters = [c.resolve() for c in args.chapters] or [
        c for c in sync.chapters() if uses_seeds(c)
    ]
    if not chapters:
        print("no chapter takes its seeds from claims.seeds")
        return 1
    out = replicate(chapters, args.sets, args.jobs)
    text = summary(out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    bad = any(r["error"] for e in out["chapters"].values() for r in e["runs"].values())
    return 1 if bad or "Not held" in text else 0


if __name__ == "__main__":
    sys.exit(main())
