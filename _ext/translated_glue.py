"""myst-nb's glue roles inside translated text (the Chinese edition).

Sphinx translates a paragraph by parsing its msgstr as a small document of its own, and
myst-nb's ``{glue:text}`` role looks for the glued values in the notebook behind the
document it is parsed in, which a msgstr does not have: every glued number of a
translated paragraph would fail. A translated paragraph can only use the glue keys of
its English original, which the same page's parse has just looked up; so each value
found is kept, by page and key, and a role without a notebook behind it is answered from
there.
"""

from myst_nb.ext.glue import directives, roles, utils

_retrieve = utils.retrieve_glue_data
_found = {}


def retrieve_glue_data(document, key):
    env = getattr(document.settings, "env", None)
    page = env.docname if env is not None else None
    if "nb_renderer" in document:
        _found[page, key] = value = _retrieve(document, key)
        return value
    if (page, key) in _found:
        return _found[page, key]
    return _retrieve(document, key)


def setup(app):
    for module in (utils, roles, directives):
        module.retrieve_glue_data = retrieve_glue_data
    return {"parallel_read_safe": False, "parallel_write_safe": True}
