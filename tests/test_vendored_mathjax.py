"""_ext/vendored_mathjax.py: MathJax from _vendor when `make` has put it there, else
Sphinx's CDN."""

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
import vendored_mathjax  # noqa: E402

CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"


def configure(srcdir):
    config = SimpleNamespace(html_static_path=["_static"], mathjax_path=CDN)
    vendored_mathjax.use_vendored(SimpleNamespace(srcdir=str(srcdir)), config)
    return config


def test_without_vendored_copy_the_cdn_stays(tmp_path):
    config = configure(tmp_path)
    assert config.html_static_path == ["_static"], (
        "a missing _vendor must not become a static path"
    )
    assert config.mathjax_path == CDN


def test_with_vendored_copy_math_is_served_locally(tmp_path):
    script = tmp_path / "_vendor" / "mathjax" / "tex-mml-chtml.js"
    script.parent.mkdir(parents=True)
    script.write_text("// MathJax")
    config = configure(tmp_path)
    assert config.html_static_path == ["_static", "_vendor"]
    assert config.mathjax_path == "mathjax/tex-mml-chtml.js"
    assert configure(tmp_path).html_static_path.count("_vendor") == 1


def test_config_names_the_extension():
    text = (ROOT / "_config.yml").read_text()
    assert "vendored_mathjax: _ext" in text
    assert "html_static_path" not in text, "_vendor must be added only when it exists"
