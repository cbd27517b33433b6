"""`make lint` can fail: each linter it runs rejects a known-bad input."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

GOOD = """\
name: t
on: [push]
permissions: {}
jobs:
  a:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with:
          persist-credentials: false
      - run: make test
"""


def run(*args, cwd=ROOT):
    tool = BIN / args[0]
    if not tool.exists():
        tool = shutil.which(args[0])
        if tool is None:
            pytest.skip(f"{args[0]} is not installed (make lint installs it)")
    return subprocess.run(
        [str(tool), *args[1:]], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture
def workflow(tmp_path):
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    return folder / "t.yml"


def test_zizmor_passes_a_pinned_least_privilege_workflow(workflow):
    workflow.write_text(GOOD)
    result = run("zizmor", "--offline", "--no-progress", str(workflow.parent))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_rejects_unpinned_actions_and_broad_permissions(workflow):
    bad = GOOD.replace("permissions: {}", "permissions: write-all")
    bad = bad.replace("@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2", "@main")
    workflow.write_text(bad)
    result = run("zizmor", "--offline", "--no-progress", str(workflow.parent))
    assert result.returncode != 0, (
        "zizmor accepted write-all and an action pinned to a branch"
    )


def test_schema_rejects_a_malformed_workflow(workflow):
    workflow.write_text(GOOD)
    schema = ("--builtin-schema", "vendor.github-workflows")
    assert run("check-jsonschema", *schema, str(workflow)).returncode == 0
    workflow.write_text(GOOD.replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    result = run("check-jsonschema", *schema, str(workflow))
    assert result.returncode != 0, "a job without runs-on passed the schema check"


def test_ruff_rejects_a_line_over_88_columns(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "ok.py").write_text("x = 1\n")
    assert run("ruff", "check", "ok.py", cwd=tmp_path).returncode == 0
    (tmp_path / "wide.py").write_text(f"x = {'1 + ' * 30}1\n")
    result = run("ruff", "check", "wide.py", cwd=tmp_path)
    assert result.returncode != 0 and "E501" in result.stdout, result.stdout


def test_workflows_pass():
    result = run("zizmor", "--offline", "--no-progress", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr


def test_library_files_stay_small():
    # One idea per module (issue 16): a file over 400 lines is two ideas.
    sizes = {
        p.relative_to(ROOT): len(p.read_text().splitlines())
        for p in (ROOT / "src").rglob("*.py")
    }
    large = {str(p): n for p, n in sizes.items() if n > 400}
    assert not large, f"split these modules (over 400 lines): {large}"
