"""A link on every page to the same page in the other language (English <-> 中文).

The English book is built into _build/html and the Chinese one into _build/html/zh (make
book), with the same page names. Each page gets a small link above its content and a
``<link rel="alternate" hreflang>`` for each edition, computed from the page's own
depth, so they work wherever the site is served from.

Beside it, a link to the whole book as a PDF in the page's language: `make pdf` builds
dropkit.pdf and zh/dropkit-zh.pdf, and `make book` and the publish workflow put them at
the root of each edition (tests/pdf checks that the names agree).
"""

from html import escape

OTHER = {"en": ("zh-CN", "中文", "zh/"), "zh_CN": ("en", "English", "../")}
# The PDF of each edition, at its root: (file, link text, title).
PDF = {
    "en": ("dropkit.pdf", "PDF", "The whole book as a PDF"),
    "zh_CN": ("dropkit-zh.pdf", "PDF", "全书 PDF 版"),
}


def add_link(app, pagename, templatename, context, doctree):
    if doctree is None:  # search, genindex: generated pages
        return
    language = app.config.language or "en"
    lang, label, hop = OTHER.get(language, OTHER["en"])
    up = "../" * pagename.count("/")
    href = f"{up}{hop}{pagename}.html"
    link = (
        f'<p class="language-switch"><a href="{escape(href)}" hreflang="{lang}" '
        f'lang="{lang}">{label}</a></p>\n'
    )
    name, text, title = PDF.get(language, PDF["en"])
    link += (
        f'<p class="pdf-link"><a href="{escape(up + name)}" type="application/pdf" '
        f'title="{escape(title)}">{text}</a></p>\n'
    )
    context["body"] = link + context.get("body", "")
    here = "zh-CN" if language == "zh_CN" else "en"
    own = pagename.rsplit("/", 1)[-1] + ".html"
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{lang}" href="{escape(href)}" />'
        f'\n<link rel="alternate" hreflang="{here}" href="{escape(own)}" />'
    )


def setup(app):
    app.connect("html-page-context", add_link)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
