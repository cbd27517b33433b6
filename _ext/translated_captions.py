"""The captions of the table of contents' parts in the Chinese edition.

The parts' captions ("Part I: Dropout, from scratch to memory speed") are the captions
of the toctrees that sphinx-external-toc inserts into the root page from _toc.yml, by a
transform that runs after Sphinx's Locale transform has translated the page: the
gettext builder extracts them into intro.po, but no build translated them, so the
Chinese sidebar and the Chinese PDF's part pages kept the English. Here they are looked
up in the page's catalogue once the toctrees are in.
"""

from os import path

from sphinx import addnodes
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain


class TranslateTocCaptions(SphinxTransform):
    default_priority = 110  # after sphinx_external_toc's InsertToctrees (100)

    def apply(self, **kwargs):
        if not self.config.language or self.config.language == "en":
            return
        toctrees = [
            node
            for node in self.document.findall(addnodes.toctree)
            if node.get("rawcaption")
        ]
        if not toctrees:
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        dirs = [path.join(self.env.srcdir, d) for d in self.config.locale_dirs]
        catalog, found = init_locale(dirs, self.config.language, domain)
        if not found:
            return
        for node in toctrees:
            translated = catalog.gettext(node["rawcaption"])
            if translated != node["rawcaption"]:
                node["caption"] = translated


def setup(app):
    app.add_transform(TranslateTocCaptions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
