"""tools/replicate.py: chapters re-run on fresh seed sets, verdicts recorded, not
raised, and summarised by how many sets they held on."""

import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import replicate  # noqa: E402


def chapter(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from dropkit import claims\n"
            "s = claims.seeds(10)\n"
            "a = [1.0 + 0.01 * (x % 3) for x in s]\n"
            "claims.claim_beyond(a, 0.0, 'a is positive')\n"
            "claims.claim('the first seed is 0', s[0] == 0)\n"
            "b = [0.01 * (x % 2) - 0.004 + 0.3 * (s[0] == 100) for x in s]\n"
            "claims.claim_inconclusive(b, 0.0, 'b is noise')\n"
            "fixed = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99, 1.0]\n"
            "claims.claim_beyond(fixed, 0.0, 'fixed data is positive')\n"
        ),
        nbformat.v4.new_code_cell("print('the chapter went on')"),
    ]
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    return path


def test_replicates_and_summarises(tmp_path):
    path = chapter(tmp_path)
    assert replicate.uses_seeds(path)
    out = replicate.replicate([path], [100, 200], jobs=2)
    entry = out["chapters"]["toy"]
    assert all(not r["error"] for r in entry["runs"].values()), entry["runs"]
    v = {k.split(" #")[0]: x["on"] for k, x in entry["verdicts"].items()}
    assert v["a is positive"]["100"]["holds"] and v["a is positive"]["200"]["holds"]
    assert v["the first seed is 0"]["100"]["observed"] == "fails"
    assert v["b is noise"]["100"]["observed"] == "beyond"  # the shifted set differs
    assert v["b is noise"]["200"]["holds"]
    text = replicate.summary(out)
    # the verdict on fixed data saw the same p on both sets: counted apart, not as held
    assert "| toy | 2 | 1 / 1 / 0 | 1 | 1 |" in text, text
    assert "fixed data" not in text.split("Not held")[1]
    assert "b is noise — 100: beyond" in text
    assert "the first seed is 0 — 100: fails" in text
    json.dumps(out)


def test_a_chapter_that_stops_is_reported(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from dropkit import claims\nclaims.seeds(2)\n1/0")
    ]
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    out = replicate.replicate([path], [100], jobs=1)
    assert "ZeroDivisionError" in out["chapters"]["broken"]["runs"]["100"]["error"]
    assert "the chapter stopped" in replicate.summary(out)
