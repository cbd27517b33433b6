"""Each chapter's Colab set-up cell, run as Colab would, in an environment that lacks
what it installs.

The environment is a fresh virtual environment that sees the shared environment's
packages (torch, numpy, ... through a .pth file) except `dropkit`, `d2l` and `mnist1d`.
The cell runs in a real IPython shell of that environment with a fake `google.colab`
module, so its `%pip` lines really run pip there; `git+<repository url>@<branch>` is
pointed at this checkout's HEAD (git+file://), so what gets installed is what Colab
would clone, committed files only. Then the chapter's import statements must succeed,
taking the three packages from the fresh environment.

Outside Colab the cell must do nothing: tests/test_chapters.py checks that.
"""

from __future__ import annotations

import ast
import json
import os
import site
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest
from conftest import ROOT, chapters, config

sys.path.insert(0, str(ROOT / "tools"))
import sync  # noqa: E402

MISSING = ("dropkit", "d2l", "mnist1d")
CHAPTERS = chapters()


def first_code_cell(doc: str) -> str:
    cells = json.loads((ROOT / f"{doc}.ipynb").read_text())["cells"]
    return next(sync.source(c) for c in cells if c["cell_type"] == "code")


def imports_of(doc: str) -> str:
    """The chapter's top-level import statements, in order, deduplicated."""
    cells = json.loads((ROOT / f"{doc}.ipynb").read_text())["cells"]
    lines: list[str] = []
    for cell in cells[1:]:
        if cell["cell_type"] != "code":
            continue
        src = sync.source(cell)
        try:
            tree = ast.parse(src)
        except SyntaxError:  # IPython magics
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                statement = ast.get_source_segment(src, node)
                if statement not in lines:
                    lines.append(statement)
    return "\n".join(lines)


def clean_env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def make_environment(where: Path) -> Path:
    """A virtual environment that sees the shared site-packages minus MISSING; returns
    its python."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where / "venv")
    python = where / "venv" / "bin" / "python"
    purelib = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    shared = where / "shared"
    shared.mkdir()
    skip = {m.lower() for m in MISSING}
    for directory in dict.fromkeys(site.getsitepackages()):
        for entry in Path(directory).iterdir():
            name = entry.name.lower()
            top = name.split("-")[0].split(".")[0]
            if (
                top in skip
                or "dropkit" in name
                or name.endswith(".pth")
                or (shared / entry.name).exists()
            ):
                continue
            (shared / entry.name).symlink_to(entry)
    # pip itself comes from the shared environment too; site.addsitedir runs no .pth of
    # `shared`
    (purelib / "_shared_environment.pth").write_text(f"{shared}\n")
    return python


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """Per distinct set-up cell: the fresh environment it was run in, and what running
    it printed."""
    runs = {}

    def run(cell: str):
        if cell in runs:
            return runs[cell]
        where = tmp_path_factory.mktemp("colab")
        python = make_environment(where)
        absent = subprocess.run(
            [
                python,
                "-c",
                "import importlib.util as u;"
                f" print([m for m in {MISSING!r} if u.find_spec(m)])",
            ],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=where,
        )
        assert absent.stdout.strip() == "[]", (
            f"the fresh environment already has {absent.stdout} {absent.stderr}"
        )
        repo = config()["repository"]
        remote = f"git+{repo['url'].rstrip('/')}@{repo.get('branch', 'main')}"
        assert remote in cell, f"the set-up cell does not install from {remote}"
        head = subprocess.check_output(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, text=True
        ).strip()
        local = cell.replace(remote, f"git+file://{ROOT}@{head}")
        script = textwrap.dedent(
            f"""
            import sys, types
            sys.modules["google.colab"] = types.ModuleType("google.colab")
            from IPython.core.interactiveshell import InteractiveShell
            result = InteractiveShell.instance().run_cell({local!r})
            sys.exit(0 if result.success else 1)
            """
        )
        done = subprocess.run(
            [python, "-c", script],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=where,
            timeout=400,
        )
        runs[cell] = (python, where, done)
        return runs[cell]

    return run


@pytest.mark.parametrize("doc", [c for c in CHAPTERS], ids=lambda d: Path(d).name)
def test_colab_cell_installs_what_the_chapter_imports(colab, doc):
    python, where, done = colab(first_code_cell(doc))
    assert done.returncode == 0, (
        "the set-up cell failed in Colab mode:\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    check = imports_of(doc) + textwrap.dedent(
        f"""
        import importlib, sys
        for name in {MISSING!r}:
            module = importlib.import_module(name)
            where = module.__file__
            assert where.startswith(sys.prefix), f"{{name}} came from {{where}}"
        print("imports ok")
        """
    )
    imported = subprocess.run(
        [python, "-c", check],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=where,
        timeout=300,
    )
    assert imported.returncode == 0 and "imports ok" in imported.stdout, (
        f"after the set-up cell, {doc}'s imports fail:\n{imported.stderr[-3000:]}"
    )
