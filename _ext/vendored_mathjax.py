"""Serve MathJax with the book when a vendored copy is there; otherwise leave Sphinx's
CDN default.

`make book` and `make test` copy MathJax from npm into `_vendor/mathjax` (git-ignored),
so that the math of the built book renders offline. A plain `jupyter-book build .` in a
fresh clone has no such copy: then the book loads MathJax from Sphinx's default CDN, and
the build still succeeds (a static path that does not exist would be a warning, and `-W`
would fail on it).
"""

from pathlib import Path

VENDOR = "_vendor"
SCRIPT = "mathjax/tex-mml-chtml.js"


def use_vendored(app, config):
    """On config-inited: add _vendor to the static files and point MathJax at it, if it
    exists."""
    if not (Path(app.srcdir) / VENDOR / SCRIPT).is_file():
        return
    if VENDOR not in config.html_static_path:
        config.html_static_path = [*config.html_static_path, VENDOR]
    config.mathjax_path = (
        SCRIPT  # relative to _static, where Sphinx copies the static paths
    )


def setup(app):
    app.connect("config-inited", use_vendored)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
