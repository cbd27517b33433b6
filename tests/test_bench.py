"""dropkit.bench measures; these tests check that it measures what it says, not how fast."""

import torch

from dropkit.bench import dropout_timings, drop_path_timings, main, median_ms


def test_median_ms_runs_warmup_and_repeats():
    calls = []
    t = median_ms(lambda: calls.append(1), repeat=5, warmup=2)
    assert len(calls) == 7 and t >= 0


def test_dropout_timings_has_every_column():
    row = dropout_timings(1024, repeat=1)
    expected = {"elements", "clone"} | {f"{n}{s}" for n in ("F.dropout", "dropkit.dropout", "lowmem_dropout") for s in ("", " fwd+bwd")}
    assert set(row) == expected and all(v >= 0 for v in row.values())


def test_drop_path_timings_builds_both_variants_with_same_weights():
    built = []

    def make(p, skip):
        block = torch.nn.Linear(4, 4)
        built.append((p, skip, block.weight.detach().clone()))
        return block

    row = drop_path_timings(make, torch.randn(8, 4), 0.5, repeat=1)
    assert [(p, s) for p, s, _ in built] == [(0.5, False), (0.5, True)]
    assert torch.equal(built[0][2], built[1][2])
    assert row["ideal"] == 2.0 and row["speed-up"] > 0


def test_main_prints_table(capsys):
    assert main(["--min-exp", "10", "--max-exp", "10", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "2^10" in out and "ViT block" in out and "0.50" in out
