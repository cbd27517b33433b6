"""The chapters as files: the Colab cell, stored outputs, #@save discipline and the sync
tool."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import cells as cells_tool  # noqa: E402
import sync  # noqa: E402

CHAPTERS = sync.chapters()
WIDTH = 88  # pyproject.toml: [tool.ruff] line-length, for code; the same for outputs


def cells(path):
    return json.loads(path.read_text())["cells"]


def code_sources(path):
    return [sync.source(c) for c in cells(path) if c["cell_type"] == "code"]


def test_toc_lists_chapters():
    assert CHAPTERS, "no chapter found through _toc.yml"
    on_disk = sorted((ROOT / "chapters").glob("*.ipynb"))
    assert sorted(CHAPTERS) == on_disk, (
        "every notebook in chapters/ must be in _toc.yml, and only those"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
class TestChapter:
    def test_first_code_cell_is_colab_setup(self, chapter):
        first = code_sources(chapter)[0]
        assert first == sync.colab_cell(), (
            "the first code cell must be the Colab set-up cell; run `make sync`"
        )
        url = sync.yaml.safe_load((ROOT / "_config.yml").read_text())["repository"][
            "url"
        ]
        assert f"git+{url}@" in first

    def test_colab_cell_does_nothing_outside_colab(self, chapter):
        from IPython.core.inputtransformer2 import TransformerManager

        code = TransformerManager().transform_cell(code_sources(chapter)[0])
        calls = []
        namespace = {
            "get_ipython": lambda: type(
                "IP", (), {"run_line_magic": lambda *a: calls.append(a)}
            )()
        }
        exec(compile(code, "colab-cell", "exec"), namespace)
        assert calls == [], "outside Colab the set-up cell must not install anything"

    def test_colab_cell_installs_in_colab(self, chapter, monkeypatch):
        from IPython.core.inputtransformer2 import TransformerManager

        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
        code = TransformerManager().transform_cell(code_sources(chapter)[0])
        calls = []
        namespace = {
            "get_ipython": lambda: type(
                "IP", (), {"run_line_magic": lambda self, *a: calls.append(a)}
            )()
        }
        exec(compile(code, "colab-cell", "exec"), namespace)
        installed = " ".join(args for _, args in calls)
        for package in ("d2l==1.0.3", "mnist1d==", "timm==", "dropkit @ git+"):
            assert package in installed, f"the Colab cell does not install {package}"

    def test_every_code_cell_has_stored_execution(self, chapter):
        unrun = [
            i
            for i, c in enumerate(cells(chapter))
            if c["cell_type"] == "code" and c["execution_count"] is None
        ]
        assert not unrun, (
            f"cells {unrun} were never executed; strict nbval would compare nothing "
            "there"
        )

    def test_no_errors_stored(self, chapter):
        for i, c in enumerate(cells(chapter)):
            for out in c.get("outputs", []):
                assert out["output_type"] != "error", (
                    f"cell {i} stored an error: {out.get('ename')}"
                )
                if out["output_type"] == "stream":
                    assert out["name"] != "stderr" or not out["text"].strip(), (
                        f"cell {i} wrote to stderr: {out['text'][:200]}"
                    )

    def test_outputs_fit_the_page(self, chapter):
        # The page shows about 75 characters; outputs may use 88, as code does.
        for i, c in enumerate(cells(chapter)):
            for out in c.get("outputs", []):
                texts = [out.get("text", "")]
                texts.append(out.get("data", {}).get("text/plain", ""))
                for text in texts:
                    text = text if isinstance(text, str) else "".join(text)
                    wide = [line for line in text.splitlines() if len(line) > WIDTH]
                    assert not wide, (
                        f"cell {i}: {len(wide[0])} > {WIDTH} characters,"
                        f" so it scrolls sideways: {wide[0][:80]!r}"
                    )

    def test_output_kinds(self, chapter):
        # Each output is compared exactly, or is float output with its reason and a
        # claim check after it.
        problems = cells_tool.kinds(chapter).problems
        assert not problems, "\n".join(problems)

    def test_timing_chapters_run_alone(self, chapter):
        # A chapter that times code makes claims about the timings; `make chapters`
        # runs the others two at a time, so such a chapter must be in the Makefile's
        # TIMED, which run alone.
        timers = (
            "time.perf_counter",
            "time.process_time",
            "time.time(",
            "timeit",
            "interleaved_ms",
            "median_ms",
            "dropout_timings",
            "dropout_table",
            "drop_path_timings",
        )
        times = any(t in src for src in code_sources(chapter) for t in timers)
        makefile = (ROOT / "Makefile").read_text().splitlines()
        timed = [
            line.split(":=")[1].split()
            for line in makefile
            if line.startswith("TIMED :=")
        ]
        assert len(timed) == 1, "the Makefile must define TIMED once"
        rel = chapter.relative_to(ROOT).as_posix()
        assert times == (rel in timed[0]), (
            f"{rel} {'times' if times else 'does not time'} code, so it must "
            f"{'' if times else 'not '}be in the Makefile's TIMED"
        )

    def test_saved_names_are_not_redefined(self, chapter):
        saved = {}
        for path in CHAPTERS:
            for src in code_sources(path):
                if sync.SAVE_MARK.match(src.split("\n", 1)[0].strip()):
                    for node in ast.parse(src).body:
                        if isinstance(
                            node, (ast.FunctionDef, ast.ClassDef)
                        ) and not node.name.startswith("_"):
                            saved[node.name] = path
        for src in code_sources(chapter):
            if sync.SAVE_MARK.match(src.split("\n", 1)[0].strip()):
                continue
            try:
                tree = ast.parse(src)
            except SyntaxError:  # IPython magics
                continue
            for node in tree.body:
                if (
                    isinstance(node, (ast.FunctionDef, ast.ClassDef))
                    and node.name in saved
                ):
                    pytest.fail(
                        f"{chapter.name} redefines {node.name}, which "
                        f"{saved[node.name].name} saves; import it from dropkit"
                    )


class TestSync:
    def test_src_matches_chapters(self):
        problems = sync.sync(check=True)
        assert not problems, "\n".join(problems) + "\n" + sync.FIX

    def test_render_is_stable(self):
        for module, pieces in sync.saved_cells().items():
            text = sync.render(module, pieces)
            assert text == sync.render(module, pieces)
            ast.parse(text)
            assert text.startswith("# Generated")

    def test_check_names_the_changed_definition(self):
        module, pieces = next(iter(sync.saved_cells().items()))
        text = sync.render(module, pieces)
        tree = ast.parse(text)
        name = next(n.name for n in tree.body if isinstance(n, ast.FunctionDef))
        edited = text.replace(f"def {name}(", f"def {name}(_extra, ", 1)
        message = sync.describe(sync.PACKAGE / f"{module}.py", text, edited)
        assert f"{name} (changed)" in message

    def test_cli_check_passes(self):
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "sync.py"), "--check"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr

    def test_cli_check_fails_on_drift(self, tmp_path):
        # Work on a copy of the repository's sources so the real tree is never touched.
        import shutil

        copy = tmp_path / "repo"
        copy.mkdir()
        for name in ("_toc.yml", "_config.yml", "requirements.txt"):
            shutil.copy(ROOT / name, copy / name)
        shutil.copytree(ROOT / "chapters", copy / "chapters")
        shutil.copytree(ROOT / "src", copy / "src")
        shutil.copytree(ROOT / "tools", copy / "tools")
        drop = copy / "src" / "dropkit" / "drop.py"
        drop.write_text(
            drop.read_text().replace("def dropout(x, p=0.5", "def dropout(x, p=0.4")
        )
        result = subprocess.run(
            [sys.executable, str(copy / "tools" / "sync.py"), "--check"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1
        assert "dropout (changed)" in result.stderr and "make sync" in result.stderr
        subprocess.run(
            [sys.executable, str(copy / "tools" / "sync.py")],
            check=True,
            capture_output=True,
        )
        assert "def dropout(x, p=0.5" in drop.read_text(), (
            "make sync must restore src from the chapters"
        )
        again = subprocess.run(
            [sys.executable, str(copy / "tools" / "sync.py")],
            capture_output=True,
            text=True,
        )
        assert "already in step" in again.stdout, "a second run must change nothing"


def _notebook(tmp_path, *cells):
    """A chapter file made of (cell_type, source, tags, metadata, stdout) tuples."""
    out = []
    for kind, src, tags, meta, text in cells:
        cell = {"cell_type": kind, "source": src, "metadata": {"tags": tags, **meta}}
        if kind == "code":
            cell["outputs"] = (
                [{"output_type": "stream", "name": "stdout", "text": text}]
                if text
                else []
            )
            cell["execution_count"] = 1
        out.append(cell)
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps({"cells": out}))
    return path


class TestOutputKinds:
    FLOAT = (
        "code",
        "acc = train()",
        ["nbval-ignore-output"],
        {"float_output": "training metrics, CPU-dependent"},
        "0.8312",
    )
    CLAIM = (
        "code",
        "claim(...)",
        ["claim-check"],
        {},
        "claim holds: p=0.3 beats p=0\n",
    )

    def test_rules_followed(self, tmp_path):
        k = cells_tool.kinds(
            _notebook(tmp_path, ("code", "x = 1", [], {}, "1"), self.FLOAT, self.CLAIM)
        )
        assert (k.compared, k.float, k.claims, k.problems) == ([0, 2], [1], [2], [])

    def test_float_cell_without_claim_check(self, tmp_path):
        k = cells_tool.kinds(
            _notebook(tmp_path, self.FLOAT, ("markdown", "## Next", [], {}, ""))
        )
        assert any("no claim-check cell before the heading" in p for p in k.problems), (
            k.problems
        )
        k = cells_tool.kinds(_notebook(tmp_path, self.FLOAT))
        assert any("no claim-check cell after them" in p for p in k.problems), (
            k.problems
        )

    def test_float_cell_without_reason(self, tmp_path):
        unexplained = ("code", "acc = train()", ["nbval-ignore-output"], {}, "0.8")
        k = cells_tool.kinds(_notebook(tmp_path, unexplained, self.CLAIM))
        assert any("without saying why" in p for p in k.problems), k.problems

    def test_claim_check_must_print_a_verdict(self, tmp_path):
        silent = ("code", "assert acc > 0.5", ["claim-check"], {}, "")
        k = cells_tool.kinds(_notebook(tmp_path, self.FLOAT, silent))
        assert any("prints no 'claim holds: ...' line" in p for p in k.problems), (
            k.problems
        )

    def test_ignored_claim_check_and_comment_markers_refused(self, tmp_path):
        hidden = (
            "code",
            "claim(...)",
            ["claim-check", "nbval-ignore-output"],
            {"float_output": "x" * 12},
            "claim holds: x",
        )
        comment = ("code", "# NBVAL_IGNORE_OUTPUT\nprint(1)", [], {}, "1")
        k = cells_tool.kinds(_notebook(tmp_path, hidden, comment, self.CLAIM))
        assert any("claim check whose output is ignored" in p for p in k.problems), (
            k.problems
        )
        assert any("nbval comment" in p for p in k.problems), k.problems

    def test_claim_check_stores_no_value(self, tmp_path):
        path = _notebook(tmp_path, self.FLOAT, self.CLAIM)
        nb = json.loads(path.read_text())
        nb["cells"][1]["outputs"].append(
            {
                "output_type": "execute_result",
                "data": {"text/plain": "0.0123"},
                "execution_count": 1,
                "metadata": {},
            }
        )
        path.write_text(json.dumps(nb))
        k = cells_tool.kinds(path)
        assert any("stores a value" in p for p in k.problems), k.problems

    def test_verdicts_come_from_the_claim_functions(self, tmp_path):
        forged = (
            "code",
            'print("claim holds: dropout helps")',
            ["claim-check"],
            {},
            "claim holds: dropout helps\n",
        )
        k = cells_tool.kinds(_notebook(tmp_path, self.FLOAT, forged))
        assert any("verdicts come from dropkit.claims" in p for p in k.problems), (
            k.problems
        )
        untagged = ("code", "claim(...)", [], {}, "claim holds: x\n")
        k = cells_tool.kinds(_notebook(tmp_path, untagged))
        assert any("not tagged 'claim-check'" in p for p in k.problems), k.problems

    @pytest.mark.parametrize(
        "line, fragile",
        [
            ("x [beyond noise: paired t, 10 seeds, p = 2.0e-05]", False),
            ("x [beyond noise: paired t, 10 seeds, p = 2.0e-03]", True),
            ("x [inconclusive: Welch t, 5 seeds each, p = 4.0e-01]", False),
            ("x [inconclusive: Welch t, 5 seeds each, p = 4.0e-02]", True),
            ("x [equivalent within ±0.01: paired t TOST, 8 seeds, p = 5.0e-03]", True),
            ("x [equivalent within ±0.01: z TOST, p = 5.0e-07]", False),
        ],
    )
    def test_fragile_verdicts_are_problems(self, tmp_path, line, fragile):
        verdict = ("code", "claim(...)", ["claim-check"], {}, cells_tool.VERDICT + line)
        k = cells_tool.kinds(_notebook(tmp_path, self.FLOAT, verdict))
        assert any("fragile" in p for p in k.problems) == fragile, k.problems
        (v,) = k.verdicts
        assert v.statement == "x" and v.p is not None

    def test_wrapped_verdicts_are_joined(self):
        text = (
            "claim holds: a long statement [beyond noise: paired t, 10 seeds,\n"
            "  p = 2.1e-05]\nsomething else\n  indented\n"
        )
        (line,) = cells_tool.verdict_lines(text)
        assert line.endswith("10 seeds, p = 2.1e-05]")
        v = cells_tool.parse(3, line)
        assert (v.kind, v.test, v.p) == ("beyond noise", "paired t, 10 seeds", 2.1e-05)
        assert v.margin == pytest.approx(1e-3 / 2.1e-05)

    def test_alpha_is_the_librarys(self):
        from dropkit import claims

        assert (cells_tool.ALPHA, cells_tool.FRAGILITY) == (
            claims.ALPHA,
            claims.FRAGILITY,
        )

    def test_report_runs(self):
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "cells.py")],
            capture_output=True,
            text=True,
        )
        assert "compared" in result.stdout and "all" in result.stdout, (
            result.stdout + result.stderr
        )
