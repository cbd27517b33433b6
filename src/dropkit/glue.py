"""myst-nb's ``glue`` for the chapters, the same in Colab, where myst-nb is absent."""

from __future__ import annotations

__all__ = ["glue"]


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue``: store ``value`` under ``name`` for ``{glue:text}`name``` in
    the prose.

    It is myst-nb's own function where myst-nb is installed; elsewhere (Colab) it stores
    the value in the same output format, so a chapter runs the same everywhere. Glue in
    the cell that computed the value: a float's digits depend on the CPU, and that
    cell's output is not compared.
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        # numpy and torch scalars: their repr ("np.float64(0.5)", "tensor(0.5)") is not
        # a number that {glue:text}`name:.3f` can format; the Python number's is.
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        from IPython.core.formatters import format_display_data
        from IPython.display import display as ipy_display

        bundle, metadata = format_display_data(value)
        prefix = "" if display else "application/papermill.record/"
        metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
        ipy_display(
            {prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata
        )
        return
    myst_glue(name, value, display=display)
