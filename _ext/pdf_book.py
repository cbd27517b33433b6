"""The book as a PDF (`make pdf`): Sphinx's LaTeX builder, typeset by XeLaTeX.

Jupyter Book's LaTeX builder loads sphinx-jupyterbook-latex, which turns the parts of
_toc.yml into LaTeX parts and folds the ``hide-input`` code away, as the web pages do.
Its document class, jupyterBook.cls, also loads a dozen packages the book does not use,
among them bbm, which Debian ships only in the 500 MB texlive-fonts-extra; so the PDF
uses Sphinx's own ``manual`` class, and this extension gives it what that class lacks:

- the two environments sphinx-jupyterbook-latex wraps code cells in (input on a grey
  ground, output indented, both wrapping long lines instead of cutting them);
- fonts that have every character the book prints: FreeSerif and FreeSans, DejaVu Sans
  Mono for code, Latin Modern Math, and through xeCJK (both editions print Chinese)
  Noto Serif CJK SC and Noto Sans CJK SC, with Kaiti (AR PL KaitiM GB) for Chinese
  emphasis as Chinese books set it; Chinese chapters are headed 第 1 章;
- A4 pages whose text block holds the 88 columns of a code cell in 8-point type;
- on paper nothing unfolds: the code the web pages fold (``hide-input``,
  ``hide-cell``) is printed, except in cells that only draw a figure or check a claim
  (PrintFoldedCode);
- the chapters numbered as the prose counts them: the claims page and the back matter
  are unnumbered chapters, and the bibliography is Sphinx's list under the
  bibliography page's title, not an empty chapter before it (rewrite_tex);
- exercises and solutions set between rules, not in a framed box: a code cell inside a
  framed box cannot break across pages, and ran over the footer.

The packages (Debian): see the Makefile's ``pdf-packages`` target.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

FONTS = r"""
\setmainfont{FreeSerif}[
  Extension = .otf, UprightFont = *, ItalicFont = *Italic,
  BoldFont = *Bold, BoldItalicFont = *BoldItalic]
\setsansfont{FreeSans}[
  Extension = .otf, UprightFont = *, ItalicFont = *Oblique,
  BoldFont = *Bold, BoldItalicFont = *BoldOblique]
\setmonofont{DejaVu Sans Mono}[Scale = MatchLowercase]
"""

# Both editions print Chinese (the glossary, the language names), so both load xeCJK
# (Sphinx loads it itself for the Chinese edition).
CJK_FONTS = r"""
\usepackage{xeCJK}
\setCJKmainfont{Noto Serif CJK SC}[
  BoldFont = Noto Serif CJK SC Bold, ItalicFont = AR PL KaitiM GB]
\setCJKsansfont{Noto Sans CJK SC}[BoldFont = Noto Sans CJK SC Bold]
\setCJKmonofont{Noto Sans Mono CJK SC}[Scale = 0.9908]
"""

# xeCJK sets quotation marks, dashes, the ellipsis and the middle dot with the CJK font,
# as Chinese text wants; English text wants them in its own font.
LATIN_PUNCTUATION = r"""
\xeCJKDeclareCharClass{Default}{"00B7, "2013, "2014, "2018, "2019, "201C, "201D, "2026}
"""

# The Chinese text has no single curly quotes: the ones it prints are apostrophes of
# English words (the glossary's "Welch's t-test"), which a CJK font sets full-width.
LATIN_APOSTROPHES = r"""
\xeCJKDeclareCharClass{Default}{"2018, "2019}
"""

# Headings: a chapter's label ("Chapter 1", or 第 1 章 as Chinese books write it) above
# its title, in the sans-serif of the section headings. The parts' titles say "Part I:
# ..." themselves, so a part page shows its title alone.
HEADINGS = r"""
\makeatletter
\renewcommand{\@makechapterhead}[1]{\vspace*{10\p@}{\parindent\z@\raggedright
  \normalfont\py@HeaderFamily
  \ifnum\c@secnumdepth>\m@ne\Large\dropkitchapterlabel\par\nobreak\vskip 12\p@\fi
  \interlinepenalty\@M\huge #1\par\nobreak\vskip 30\p@}}
\renewcommand{\@makeschapterhead}[1]{\vspace*{10\p@}{\parindent\z@\raggedright
  \normalfont\py@HeaderFamily\interlinepenalty\@M\huge #1\par\nobreak\vskip 30\p@}}
\def\@part[#1]#2{%
  \ifnum\c@secnumdepth>-2\relax\refstepcounter{part}\fi
  \addcontentsline{toc}{part}{#1}%
  \markboth{}{}%
  {\centering\interlinepenalty\@M\normalfont\py@HeaderFamily\Huge #2\par}%
  \@endpart}
\makeatother
"""
# Each edition's words for what LaTeX names (babel is English in both: Sphinx has no
# babel language for Chinese). \@chappos after the number is Sphinx's own hook, which
# its running footers use too ("第 2 章 从零开始实现暂退法"): with its own space, as
# xeCJK drops the \space Sphinx puts between two Chinese characters.
WORDS = {
    "en": r"""
\newcommand{\dropkitchapterlabel}{\@chapapp\ \thechapter}
\addto\captionsenglish{\renewcommand{\contentsname}{Contents}}
""",
    "zh": r"""
\def\@chappos{章\hspace{0.5em}}
\newcommand{\dropkitchapterlabel}{\@chapapp\,\thechapter\,\@chappos}
\addto\captionsenglish{\renewcommand{\contentsname}{目录}%
  \renewcommand{\chaptername}{第}}
""",
}
# The introduction (the root page, whose title is the book's) opens the book as its
# preface, after the table of contents.
PREFACE = {"en": "Preface", "zh": "前言"}

# Code cells: sphinx-jupyterbook-latex wraps inputs and outputs in these environments.
CELLS = r"""
\newenvironment{sphinxVerbatimInput}
  {\sphinxsetup{VerbatimColor={RGB}{245,245,245},
                VerbatimBorderColor={RGB}{204,204,204}}}
  {}
\newenvironment{sphinxVerbatimOutput}
  {\sphinxsetup{VerbatimColor={RGB}{255,255,255},
                VerbatimBorderColor={RGB}{230,230,230}}%
   \begin{adjustwidth}{12pt}{0pt}}
  {\end{adjustwidth}}
"""


# Admonitions (the exercises and solutions of sphinx-exercise, notes) between two
# rules with their title, instead of Sphinx's framed box: a code cell nested in a
# framed box is kept whole on one page if Sphinx guesses it fits, and its guess is
# wrong inside a box (code ran over the footer), or loses its own frame when it does
# not fit.
# A title is kept with the first lines of its body (not alone at the foot of a page).
ADMONITIONS = r"""
\renewenvironment{sphinxadmonition}[2]
  {\par\addvspace{\medskipamount}\needspace{5\baselineskip}%
   \noindent{\color{sphinxnoteBorderColor}%
   \rule{\linewidth}{0.6pt}}\par\nobreak
   \noindent{\py@HeaderFamily\bfseries #2}\par\nobreak\smallskip}
  {\par\nobreak\noindent{\color{sphinxnoteBorderColor}\rule{\linewidth}{0.6pt}}%
   \par\addvspace{\medskipamount}}
"""


def configure(app, config):
    """On config-inited, after sphinx-jupyterbook-latex (priority 500) has set its
    class and preamble."""
    if "sphinx_jupyterbook_latex" not in config.extensions:
        return
    chinese = (config.language or "").startswith("zh")
    lang = "zh" if chinese else "en"
    config.latex_engine = "xelatex"
    config.latex_theme = "manual"
    elements = dict(config.latex_elements)
    preamble = elements.get("preamble", "")
    # ucharclasses (its fonts by Unicode block) and xeCJK both hook XeTeX's character
    # classes; the book sets its fonts itself. The name of the table of contents is
    # the edition's (WORDS).
    for line in (
        r"\usepackage[Latin,Greek]{ucharclasses}",
        r"\addto\captionsenglish{\renewcommand{\contentsname}{Contents}}",
    ):
        preamble = preamble.replace(line, "")
    elements["preamble"] = (
        preamble
        + r"\usepackage[strict]{changepage}"
        + CELLS
        + HEADINGS
        + r"\makeatletter"
        + ADMONITIONS
        + WORDS[lang]
        + r"\makeatother"
        # no paragraph leaves its first or last line alone on a page
        + r"\widowpenalty=10000\clubpenalty=10000"
        # the running headers are as tall as a CJK line
        + r"\setlength{\headheight}{14pt}"
        # Tables: cells set ragged right (tabulary's L, not Sphinx's justified J: a
        # justified 2 cm column stretches its spaces) and no column squeezed below
        # 60 pt (Sphinx's 15 pt squeezed chapter 10's "torch, seeded alike" until its
        # words ran into the next column).
        + r"\newcolumntype{T}{L}\setlength{\tymin}{60pt}"
        # Inline code may break after an underscore too (Sphinx breaks it after . , ; ?
        # ! / only): a table cell is narrower than `dot_product_attention`. Not after
        # a leading one (`_set_random_seed`). Sphinx rereads the code with \scantokens,
        # where @ is not a letter: hence \dropkitnolead.
        + r"\makeatletter\let\dropkit@upquote\sphinxupquote"
        + r"\protected\def\sphinxupquote#1{{\def\_{\textunderscore\allowbreak}"
        + r"\dropkit@upquote{\dropkitnolead#1}}}"
        + r"\def\dropkitnolead{\@ifnextchar\_{\textunderscore\@gobble}{}}"
        + r"\makeatother"
        # Sections numbered (2.4), their subsections not: the web pages number none,
        # and some subsections number themselves ("Bug 1: Division by the keep rate").
        + r"\setcounter{secnumdepth}{1}"
    )
    elements.update(
        papersize="a4paper",
        # chapters open on the next page, odd or even: no blank pages in a PDF read on
        # a screen
        extraclassoptions="openany",
        pointsize="10pt",
        # A4 less 2 cm a side: a 17 cm text block, where 88 columns of 8-point DejaVu
        # Sans Mono (15 cm) fit in an output's indentation inside an exercise's box;
        # a longer line wraps, with a mark, and one without spaces wraps anyway.
        sphinxsetup=(
            "hmargin={2cm,2cm}, vmargin={2.2cm,2.2cm}, verbatimforcewraps=true"
        ),
        fontpkg=FONTS
        + CJK_FONTS
        + (LATIN_APOSTROPHES if chinese else LATIN_PUNCTUATION),
        fvset=r"\fvset{fontsize=\footnotesize,formatcom=\xeCJKVerbAddon}",
        # An index of the book's own would be empty: the Markdown pages define none.
        printindex="",
        fncychap="",
        tableofcontents=(
            r"\sphinxtableofcontents"
            rf"\chapter*{{{PREFACE[lang]}}}\markboth{{{PREFACE[lang]}}}{{}}"
            rf"\addcontentsline{{toc}}{{chapter}}{{{PREFACE[lang]}}}"
        ),
    )
    config.latex_elements = elements
    # The intro's {tableofcontents} would repeat the table of contents as a list.
    config.jblatex_show_tocs = False
    # The index is empty (printindex above): makeindex, not xindy, which needs Lisp.
    config.latex_use_xindy = False
    # On paper a link's address is part of the text: in a footnote.
    config.latex_show_urls = "footnote"


class PrintFoldedCode(SphinxPostTransform):
    """On paper nothing unfolds: print the code of folded cells (``hide-input``,
    ``hide-cell``: library code, data pipelines, the timing helpers), except where the
    cell only draws a figure or checks a claim (its output, the figure or the verdict,
    is printed; the notebooks have its code). Runs before sphinx-jupyterbook-latex's
    MystNbPostTransform (priority 400), which drops what is still folded."""

    default_priority = 390
    formats = ("latex",)

    def run(self, **kwargs):
        for cell in self.document.findall(nodes.container):
            classes = cell.get("classes", [])
            if "cell" not in classes or "tag_claim-check" in classes:
                continue
            if next(cell.findall(nodes.image), None) is not None:
                continue
            cell["classes"] = [
                c for c in classes if c not in ("tag_hide-input", "tag_hide-cell")
            ]


# The pages the prose does not count as chapters ("chapter 1" is Dropout from scratch):
# in the PDF, chapters without a number, whose sections are unnumbered too.
UNNUMBERED = ("chapters/checking_claims", "glossary")
BIBLIOGRAPHY = "bibliography"
CHAPTER = re.compile(
    r"^\\chapter\{(?P<title>.*)\}\n(?P<labels>\\label\{\\detokenize\{(?P<doc>[^:}]+):.*)$",
    re.M,
)


def rewrite_tex(tex: str) -> str:
    """The LaTeX of the book with its chapters numbered as the prose counts them and
    the bibliography page's empty chapter folded into Sphinx's list of references."""

    def chapter(match):
        title, labels, doc = match["title"], match["labels"], match["doc"]
        if doc in UNNUMBERED:
            return (
                rf"\setcounter{{secnumdepth}}{{-1}}\chapter*{{{title}}}\phantomsection"
                rf"\addcontentsline{{toc}}{{chapter}}{{{title}}}\markboth{{{title}}}{{}}"
                "\n" + labels
            )
        if doc == BIBLIOGRAPHY:
            # Its references are Sphinx's list at the end (sphinxcontrib-bibtex
            # gathers every citation there), set under this page's title.
            return rf"\renewcommand{{\bibname}}{{{title}}}" + "\n"
        return rf"\setcounter{{secnumdepth}}{{1}}\chapter{{{title}}}" + "\n" + labels

    out, count = CHAPTER.subn(chapter, tex)
    if not count:
        raise RuntimeError("pdf_book: no \\chapter in the LaTeX (Sphinx changed?)")
    # A table without a caption (the glossary's) continues as "continued from previous
    # page", not as "Table 9.1": longtable steps the counter of the last numbered
    # chapter.
    out = re.sub(
        r"\\begin\{longtable\}.*?\\end\{longtable\}",
        lambda m: (
            m[0]
            if "\\caption" in m[0] or "\\sphinxcaption" in m[0]
            else m[0].replace("\\tablename\\ \\thetable{} \\textendash{} ", "")
        ),
        out,
        flags=re.S,
    )
    # In the references a DOI is printed as its link's text already: no footnote
    # repeating its address (latex_show_urls = "footnote" is for the prose).
    out = re.sub(
        r"\\begin\{sphinxthebibliography\}.*?\\end\{sphinxthebibliography\}",
        lambda m: re.sub(
            r"%\n\\begin\{footnote\}\[\d+\]\\sphinxAtStartFootnote\n.*?\\end\{footnote\}",
            "",
            m[0],
            flags=re.S,
        ),
        out,
        flags=re.S,
    )
    # A reference's long address is justified with huge gaps: set the list ragged.
    out = out.replace(
        "\\begin{sphinxthebibliography}{",
        "\\raggedright\\begin{sphinxthebibliography}{",
    )
    return out


def finish(app, exception):
    """After Sphinx writes the LaTeX, before Jupyter Book runs latexmk on it."""
    if exception is not None or app.builder.name != "latex":
        return
    if "sphinx_jupyterbook_latex" not in app.config.extensions:
        return
    for _, target, *_ in app.config.latex_documents:
        path = Path(app.outdir) / target
        path.write_text(rewrite_tex(path.read_text(encoding="utf-8")), encoding="utf-8")


def setup(app):
    app.connect("config-inited", configure, priority=900)
    app.add_post_transform(PrintFoldedCode)
    app.connect("build-finished", finish)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
