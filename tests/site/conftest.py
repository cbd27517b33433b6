"""Shared pieces of the site tests: the built book, its table of contents, a local
server, a browser.

These tests read `_build/html`, so they run after `jupyter-book build` (`make test` runs
them last, as `make site`). `pytest tests` does not collect this folder (pyproject.toml:
norecursedirs).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
# The same tests check the Chinese edition (make site runs them twice): its pages are
# the same documents under _build/html/zh, served from the same site root as the English
# ones.
LANG = os.environ.get("DROPKIT_SITE_LANG", "en")
if LANG not in ("en", "zh"):
    raise ValueError(f"DROPKIT_SITE_LANG must be 'en' or 'zh', but got {LANG!r}")
PREFIX = "/zh" if LANG == "zh" else ""
HTML = SITE / "zh" if LANG == "zh" else SITE
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cdp  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
import sync  # noqa: E402  (the table of contents is read the way `make sync` reads it)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    """Every document of _toc.yml (root first), as written there, without suffix."""
    return [re.sub(r"\.(ipynb|md)$", "", f) for f in sync.toc_entries()]


def source_of(doc: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (ROOT / f"{doc}{suffix}").exists():
            return ROOT / f"{doc}{suffix}"
    raise FileNotFoundError(
        f"_toc.yml lists {doc!r}, but neither {doc}.ipynb nor {doc}.md exists"
    )


def markdown_of(doc: str) -> str:
    """The Markdown a reader's page is made of (for a notebook, its Markdown cells)."""
    path = source_of(doc)
    if path.suffix == ".md":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join(
        "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
    )


def has_math(markdown: str) -> bool:
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return bool(
        re.search(
            r"\$\$.+?\$\$|\$[^\s$][^$\n]*?\$|\\begin\{(equation|align)", text, re.S
        )
    )


def chapters() -> list[str]:
    """The TOC's notebooks: the pages that have a Colab "
    "button."""
    return [doc for doc in toc_files() if source_of(doc).suffix == ".ipynb"]


@pytest.fixture(scope="session")
def html() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail(
            f"{HTML} has no built book: run `make build` first (make test does)"
        )
    return HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(html):
    """`python -m http.server`'s handler serving _build/html on 127.0.0.1 at a free
    port;
    the URL of the edition under test (the Chinese one is under /zh)."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}{PREFIX}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    executable = cdp.find_chromium()
    if executable is None:
        message = (
            "Chromium not found: install Debian's `chromium` (make site does, as root)"
        )
        if IN_CI:
            pytest.fail(message + "; CI=true, so the browser tests may not skip")
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="dropkit-chromium-") as profile:
        b = cdp.Browser(executable, profile)
        try:
            yield b
        finally:
            b.close()
