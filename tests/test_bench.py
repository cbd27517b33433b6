"""dropkit.bench: these tests check that it measures what it says, not how fast."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dropkit.bench import (
    cache_sizes,
    drop_path_timings,
    dropout_table,
    dropout_timings,
    interleaved_ms,
    lowmem_timings,
    median_ms,
    print_dropout_table,
    ratio,
)

ROOT = Path(__file__).resolve().parents[1]


def test_median_ms_runs_warmup_and_repeats():
    calls = []
    t = median_ms(lambda: calls.append(1), repeat=5, warmup=2)
    assert len(calls) == 7 and t >= 0


def test_interleaved_rounds_alternate():
    order = []
    interleaved_ms(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 3, 0
    )
    assert order == ["a", "b"] * 3


def test_best_of_keeps_the_fastest_call_of_each_round():
    calls = []
    times = interleaved_ms(
        {"f": lambda: calls.append(1)}, repeat=3, warmup=1, best_of=4
    )
    assert len(calls) == 1 + 3 * 4 and len(times["f"]) == 3
    with pytest.raises(ValueError, match="best_of must be a positive integer"):
        interleaved_ms({"f": lambda: None}, best_of=0)


def test_ratio_is_median_of_per_round_ratios():
    times = {"clone": [1.0, 2.0, 4.0, 1.0], "x": [2.0, 2.0, 16.0, 3.0]}
    median, iqr = ratio(times, "x")
    assert median == 2.5  # ratios 2, 1, 4, 3
    assert iqr > 0


def test_dropout_timings_has_every_column():
    times = dropout_timings(1024, repeat=2)
    names = ("F.dropout", "compiled F.dropout", "dropkit.dropout", "lowmem_dropout")
    expected = {"clone"} | {n + s for n in names for s in ("", " fwd+bwd")}
    assert set(times) == expected
    assert all(len(v) == 2 and min(v) >= 0 for v in times.values())


def test_lowmem_timings_has_its_three_columns():
    times = lowmem_timings(1000, repeat=3)
    assert set(times) == {"clone", "lowmem_dropout", "lowmem_dropout fwd+bwd"}
    assert all(len(v) == 3 and min(v) >= 0 for v in times.values())


def test_cache_sizes_reads_sysfs():
    sizes = cache_sizes()
    assert all(isinstance(v, int) and v > 0 for v in sizes.values()), sizes
    assert not any(k.startswith("L1i") for k in sizes), sizes
    if sys.platform.startswith("linux") and sizes:
        assert "L1d" in sizes or "L2" in sizes, sizes


def test_dropout_table_prints_each_size(capsys):
    rows = dropout_table([256, 1024], repeat=2)
    print_dropout_table(rows)
    out = capsys.readouterr().out
    assert "2^8" in out and "2^10" in out
    assert max(len(line) for line in out.splitlines()) <= 88


def test_drop_path_timings_builds_both_variants_with_same_weights():
    built = []

    def make(p, skip):
        block = torch.nn.Linear(4, 4)
        built.append((p, skip, block.weight.detach().clone()))
        return block

    row = drop_path_timings(make, torch.randn(8, 4), 0.5, repeat=2)
    assert [(p, s) for p, s, _ in built] == [(0.5, False), (0.5, True)]
    assert torch.equal(built[0][2], built[1][2])
    assert row["ideal"] == 2.0 and row["speed-up"] > 0


def test_warm_memory_in_a_fresh_process():
    code = "from dropkit.bench import warm_memory; print(warm_memory())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    expected = "True" if sys.platform.startswith("linux") else "False"
    assert out.stdout.strip() == expected, out.stderr


def test_benchmark_script_prints_every_table():
    script = ROOT / "benchmarks" / "bench_dropout.py"
    args = ["--min-exp", "10", "--max-exp", "10", "--repeat", "2"]
    out = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    for needle in (
        "cold memory",
        "warm_memory(): True",
        "2^10",
        "fwd+bwd",
        "ViT block",
        "0.50",
    ):
        assert needle in out.stdout, f"{needle!r} missing from:\n{out.stdout}"
