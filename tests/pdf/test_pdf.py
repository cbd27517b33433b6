"""The book as a PDF, both editions, as a reader gets it (`make pdf-test`).

`make pdf` builds _build/latex/dropkit.pdf and _build/latex/zh/dropkit-zh.pdf; these
tests read them with poppler (pdfinfo, pdftotext, pdftohtml, pdfimages, pdffonts,
pdftoppm) and the XeLaTeX logs. What they expect comes from the sources at test time
(_toc.yml, the chapters, the Chinese catalogues), not from a copy of today's text:

- every chapter of _toc.yml, in its order, starting on a page of its own under its
  title (the Chinese one's from locales/zh_CN), and the parts' titles;
- the table of contents and the cross-references lead to the right pages; no "??";
- displayed and inline formulas as text, every glued number of each chapter formatted
  as the web page shows it, every figure, every solution;
- every character has a glyph (XeLaTeX logs "Missing character" otherwise), all fonts
  embedded; no word runs off the page (long code lines wrap), no line is set wider
  than its place (a formula, a table's column);
- a few pages as PNG in _build/pdf-pages/, for a person to look at.

`pytest tests` does not collect this folder (pyproject.toml: norecursedirs).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po
from myst_nb.core.variables import format_plain_text
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "_ext"))
import language_links  # noqa: E402  (the file names the web pages link to)
import pdf_book  # noqa: E402  (the preface's name)

LATEX = ROOT / "_build" / "latex"
EDITIONS = {
    "en": {
        "pdf": LATEX / language_links.PDF["en"][0],
        "log": LATEX / language_links.PDF["en"][0].replace(".pdf", ".log"),
        "chapter": "Chapter {n}",
        "contents": "Contents",
        "solution": "Solution to Exercise",
    },
    "zh": {
        "pdf": LATEX / "zh" / language_links.PDF["zh_CN"][0],
        "log": ROOT
        / "_build/zh/_build/latex"
        / language_links.PDF["zh_CN"][0].replace(".pdf", ".log"),
        "chapter": "第 {n} 章",
        "contents": "目录",
        "solution": "解答练习",
    },
}
CATALOGUES = ROOT / "locales" / "zh_CN" / "LC_MESSAGES"
PAGES_OUT = ROOT / "_build" / "pdf-pages"
TOOLS = ("pdfinfo", "pdftotext", "pdftohtml", "pdfimages", "pdffonts", "pdftoppm")

# Tags that keep a cell's output out of the book (myst-nb, sphinx-jupyterbook-latex).
NO_OUTPUT = {"remove-cell", "remove-output", "hide-cell", "hide-output"}


@pytest.fixture(scope="session", params=list(EDITIONS))
def edition(request):
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: run `make pdf-packages` (poppler)"
        )
    info = dict(EDITIONS[request.param], lang=request.param)
    if not info["pdf"].exists():
        pytest.fail(f"{info['pdf'].relative_to(ROOT)} is not built: run `make pdf`")
    return info


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def squash(text: str) -> str:
    """Text as compared here: Unicode's compatibility forms (a math italic 𝑝 is p),
    no white space (pdftotext's line breaks and spaces), typographic quotes plain."""
    text = unicodedata.normalize("NFKC", text)
    for fancy, plain in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"')):
        text = text.replace(fancy, plain)
    return re.sub(r"\s+", "", text)


@cache
def pages_text(pdf: Path) -> list[str]:
    """The text of each page (pdftotext), page 1 first."""
    return run("pdftotext", "-enc", "UTF-8", str(pdf), "-").split("\f")[:-1]


@cache
def page_count(pdf: Path) -> int:
    return int(re.search(r"^Pages:\s+(\d+)", run("pdfinfo", str(pdf)), re.M).group(1))


# --- the sources -------------------------------------------------------------------


def toc() -> dict:
    return yaml.safe_load((ROOT / "_toc.yml").read_text())


def parts() -> list[tuple[str, list[str]]]:
    """(caption, [chapter documents]) of _toc.yml, in order."""
    return [
        (part.get("caption", ""), [c["file"] for c in part.get("chapters", [])])
        for part in toc().get("parts", [])
    ]


def source_of(doc: str) -> Path:
    doc = re.sub(r"\.(ipynb|md)$", "", doc)
    for suffix in (".ipynb", ".md"):
        if (ROOT / f"{doc}{suffix}").exists():
            return ROOT / f"{doc}{suffix}"
    raise FileNotFoundError(f"_toc.yml lists {doc!r}, which has no source")


def markdown_cells(doc: str) -> list[str]:
    path = source_of(doc)
    if path.suffix == ".md":
        return [path.read_text()]
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def title_of(doc: str) -> str:
    for cell in markdown_cells(doc):
        match = re.search(r"^# (.+)$", cell, re.M)
        if match:
            return match.group(1).strip()
    raise AssertionError(f"{doc} has no '# ' title")


@cache
def catalogue(doc: str):
    path = CATALOGUES / f"{re.sub(r'.(ipynb|md)$', '', doc)}.po"
    with path.open("rb") as f:
        return read_po(f)


def translated(doc: str, message: str) -> str:
    entry = catalogue(doc).get(message)
    assert entry is not None and entry.string and not entry.fuzzy, (
        f"{doc}: no Chinese translation of {message!r} (make i18n-check)"
    )
    return entry.string


def in_edition(lang: str, doc: str, message: str) -> str:
    return message if lang == "en" else translated(doc, message)


# LaTeX math as the PDF's text shows it, for formulas that are set on one line.
SYMBOLS = {
    "cdot": "⋅",
    "odot": "⊙",
    "times": "×",
    "leftarrow": "←",
    "rightarrow": "→",
    "to": "→",
    "sim": "∼",
    "approx": "≈",
    "mid": "∣",
    "oplus": "⊕",
    "le": "≤",
    "leq": "≤",
    "ge": "≥",
    "geq": "≥",
    "ne": "≠",
    "neq": "≠",
    "pm": "±",
    "infty": "∞",
    "ldots": "…",
    "dots": "…",
    "lVert": "‖",
    "rVert": "‖",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ϵ",
    "mu": "μ",
    "sigma": "σ",
    "theta": "θ",
    "lambda": "λ",
    "tau": "τ",
}
SPACES = ("qquad", "quad", ",", ";", ":", "!", " ")
SIZES = ("bigl", "bigr", "Bigl", "Bigr", "big", "Big", "left", "right")
WRAPPERS = ("mathbb", "mathrm", "operatorname", "mathcal", "mathbf", "mathit")


def math_as_text(tex: str) -> str | None:
    """The text of a formula that LaTeX sets on one line, or None (fractions, sums,
    sub- and superscripts, environments: their text order is the layout's)."""
    out = tex.strip()
    for space in SPACES:
        out = out.replace("\\" + space, " ")
    out = re.sub(r"\\(?:" + "|".join(SIZES) + r")(?![A-Za-z])", "", out)
    out = re.sub(r"\\(?:" + "|".join(WRAPPERS) + r")\{([^{}\\]*)\}", r"\1", out)
    out = re.sub(
        r"\\([A-Za-z]+)",
        lambda m: SYMBOLS.get(m.group(1), m.group(0)),
        out,
    )
    if re.search(r"[\\^_{}&$%#~]", out):
        return None
    return out.replace("-", "−").replace("'", "′").replace("*", "∗")


def formulas(doc: str, lang: str) -> tuple[list[str], list[str]]:
    """(display, inline) formulas of a page's Markdown, as LaTeX: displayed formulas
    are not translated; the inline ones of the Chinese edition are its translations'."""
    display, inline = [], []
    if lang != "en":
        display = formulas(doc, "en")[0]
        for message in catalogue(doc):
            if message.id and message.string:
                text = re.sub(r"`[^`\n]*`", "", message.string)
                inline += re.findall(r"(?<![\\$])\$([^\s$][^$\n]*?)(?<!\\)\$", text)
        return display, inline
    for cell in markdown_cells(doc):
        text = re.sub(r"```.*?```", "", cell, flags=re.S)
        display += re.findall(r"\$\$(.+?)\$\$", text, flags=re.S)
        text = re.sub(r"\$\$.+?\$\$", "", text, flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        inline += re.findall(r"(?<![\\$])\$([^\s$][^$\n]*?)(?<!\\)\$", text)
    return display, inline


def glued(doc: str, lang: str) -> list[tuple[str, str]]:
    """(key, the number as the page prints it) for each {glue:text} of a chapter (of
    its translated paragraphs, in Chinese)."""
    path = source_of(doc)
    if path.suffix != ".ipynb":
        return []
    values = {}
    for cell in json.loads(path.read_text())["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            data = output.get("data", {})
            mime = "application/papermill.record/text/plain"
            if name and mime in data:
                values[name] = data[mime]
    if lang == "en":
        prose = "\n".join(markdown_cells(doc))
    else:
        prose = "\n".join(m.string for m in catalogue(doc) if m.id and m.string)
    found = []
    for spec in re.findall(r"\{glue:text\}`([^`]+)`", prose):
        key, _, fmt = spec.rpartition(":") if ":" in spec else (spec, "", "")
        assert key in values, f"{doc}: glue key {key!r} is not glued in the notebook"
        found.append((key, format_plain_text(values[key], fmt)))
    return found


# --- the PDF's structure -----------------------------------------------------------


def chapter_docs() -> list[str]:
    return [doc for _, docs in parts() for doc in docs]


def chapter_numbers() -> dict[str, int | None]:
    """Each page of _toc.yml and its chapter number, as the prose counts chapters
    ("chapter 1" is Dropout from scratch): None for the claims page and the back
    matter, which the PDF sets as chapters without a number (pdf_book.py)."""
    numbers, n = {}, 0
    for doc in chapter_docs():
        if doc in pdf_book.UNNUMBERED or doc == pdf_book.BIBLIOGRAPHY:
            numbers[doc] = None
        else:
            n += 1
            numbers[doc] = n
    return numbers


@cache
def chapter_pages(lang: str) -> list[int]:
    """The page (1-based) on which each chapter starts: its label (if numbered) and
    title, in the order of _toc.yml."""
    info = EDITIONS[lang]
    texts = [squash(t) for t in pages_text(info["pdf"])]
    starts = []
    for doc, n in chapter_numbers().items():
        title = plain(in_edition(lang, doc, title_of(doc)))
        label = "" if n is None else info["chapter"].format(n=n)
        heading = squash(label) + squash(title)
        after = starts[-1] if starts else 0
        hits = [
            i + 1 for i, t in enumerate(texts) if i >= after and t.startswith(heading)
        ]
        assert hits, (
            f"{info['pdf'].name}: no page after page {after} starts {doc} "
            f"({label or 'unnumbered'}, {title!r})"
        )
        starts.append(hits[0])
    return starts


def plain(markdown: str) -> str:
    """A title's Markdown as text: code, emphasis and links unwrapped, simple math as
    the PDF prints it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = text.replace("`", "").replace("**", "").replace("*", "")
    return re.sub(
        r"\$([^$]+)\$", lambda m: math_as_text(m.group(1)) or m.group(0), text
    )


@cache
def links(pdf: Path) -> list[tuple[int, str, str]]:
    """(page, target, text) of every link (pdftohtml's XML: an internal link's target
    is '#<page>')."""
    xml = run("pdftohtml", "-xml", "-i", "-q", "-stdout", str(pdf))
    found = []
    for number, body in re.findall(r'<page number="(\d+)"(.*?)</page>', xml, re.S):
        for href, text in re.findall(r'<a href="([^"]*)">(.*?)</a>', body, re.S):
            target = href[href.index("#") :] if "#" in href else href
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
            found.append((int(number), target, text))
    return found


# --- the tests -----------------------------------------------------------------------


def test_page_count_and_size(edition):
    pages = page_count(edition["pdf"])
    info = run("pdfinfo", str(edition["pdf"]))
    assert "(A4)" in info, f"{edition['pdf'].name} is not on A4 pages:\n{info}"
    # title, contents, preface, a page per part, and each chapter at least two pages
    least = 3 + len(parts()) + 2 * len(chapter_docs())
    assert pages >= least, (
        f"{edition['pdf'].name} has {pages} pages, fewer than {least}"
    )


def test_both_editions_have_about_the_same_length():
    en, zh = (page_count(EDITIONS[lang]["pdf"]) for lang in ("en", "zh"))
    assert 0.8 <= zh / en <= 1.25, (
        f"English {en} pages, Chinese {zh}: not the same book"
    )


def test_every_chapter_in_toc_order_under_its_title(edition):
    starts = chapter_pages(edition["lang"])
    assert starts == sorted(set(starts)), f"chapters start on pages {starts}"
    texts = [squash(t) for t in pages_text(edition["pdf"])]
    before = 0
    for caption, docs in parts():
        name = squash(in_edition(edition["lang"], toc()["root"], caption))
        first = starts[chapter_docs().index(docs[0])]
        hits = [i + 1 for i in range(before, first - 1) if name in texts[i]]
        assert hits, f"no page before page {first} names the part {caption!r}"
        before = first


def test_chapters_are_numbered_as_the_prose_counts_them(edition):
    """The prose says "chapter 3" for Training with dropout, and each chapter's glued
    names start with its number (ch3_...): the PDF's numbers must agree (an unnumbered
    claims page, not a "Chapter 1", or every reference is one off)."""
    lang = edition["lang"]
    numbers = chapter_numbers()
    checked = 0
    for doc, n in numbers.items():
        prefixes = {key.split("_")[0] for key, _ in glued(doc, "en")}
        prefixes = {p for p in prefixes if re.fullmatch(r"ch\d+", p)}
        checked += bool(prefixes)
        assert prefixes <= {f"ch{n}"}, (
            f"{doc} is chapter {n} in the PDF but glues {sorted(prefixes)}"
        )
    assert checked >= 5, f"only {checked} chapters glue chN_ names"
    # "chapter 3 (Training with dropout)": the number next to a linked title
    text = " ".join(pages_text(edition["pdf"]))
    pattern = {
        "en": r"[Cc]hapter\s+(\d+)\s+\(([^)]*)\)",
        "zh": r"第\s*(\d+)\s*章（([^）]*)）",
    }
    titles = {
        squash(plain(in_edition(lang, doc, title_of(doc)))): n
        for doc, n in numbers.items()
    }
    named = 0
    for number, title in re.findall(pattern[lang], text):
        if squash(title) in titles:
            named += 1
            assert int(number) == titles[squash(title)], (
                f"the text says chapter {number} ({title}), which is chapter "
                f"{titles[squash(title)]}"
            )
    assert named, "no 'chapter N (title)' in the text: the check tests nothing"


def test_contents_and_cross_references_lead_to_the_chapters(edition):
    pdf, lang = edition["pdf"], edition["lang"]
    starts = chapter_pages(lang)
    internal = [(p, t, x) for p, t, x in links(pdf) if t.startswith("#")]
    last = page_count(pdf)
    bad = [(p, t) for p, t, _ in internal if not 1 <= int(t[1:]) <= last]
    assert not bad, f"links to pages that do not exist: {bad}"
    contents = range(1, starts[0])  # the pages before the first chapter
    for doc, start in zip(chapter_docs(), starts, strict=True):
        title = squash(plain(in_edition(lang, doc, title_of(doc))))
        # an entry is "3 Title" (its first line, if the title wraps)
        entries = [
            int(t[1:])
            for p, t, x in internal
            if p in contents
            and (entry := re.sub(r"^\d+(?:\.\d+)*", "", squash(x)))
            and title.startswith(entry)
        ]
        assert start in entries, (
            f"the table of contents has no link to {doc} on page {start} "
            f"(links there: {entries})"
        )
        # every link in the text that names the chapter goes to its first page
        for page, target, text in internal:
            if squash(text) == title and page not in contents:
                assert int(target[1:]) == start, (
                    f"page {page}: the link {text!r} goes to page {target[1:]}, "
                    f"not to page {start}"
                )


def test_no_unresolved_reference(edition):
    text = "\n".join(pages_text(edition["pdf"]))
    assert "??" not in text, (
        "an unresolved reference prints as ??: "
        + text[max(0, text.index("??") - 200) : text.index("??") + 50]
    )
    log = edition["log"].read_text(errors="replace")
    undefined = re.findall(
        r"(?:Citation|Reference|Hyper reference) `[^']*' on page \d+ undefined"
        r"|There were undefined references",
        log,
    )
    assert not undefined, f"{edition['log'].name}: {undefined[:5]}"


def test_every_character_has_a_glyph_and_every_font_is_embedded(edition):
    log = edition["log"].read_text(errors="replace")
    missing = sorted(set(re.findall(r"Missing character: There is no .*", log)))
    assert not missing, f"{edition['log'].name}:\n" + "\n".join(missing[:20])
    fonts = run("pdffonts", str(edition["pdf"])).splitlines()[2:]
    unembedded = [line for line in fonts if line.split()[-5] != "yes"]
    assert not unembedded, "fonts not embedded:\n" + "\n".join(unembedded)


def test_nothing_runs_off_the_page(edition):
    """Long code lines and outputs wrap: no word's box leaves the page less 1 cm."""
    xml = run("pdftotext", "-bbox", str(edition["pdf"]), "-")
    margin = 28.35
    problems = []
    for number, (width, body) in enumerate(
        re.findall(r'<page width="([\d.]+)" height="[\d.]+">(.*?)</page>', xml, re.S),
        1,
    ):
        for x0, x1, word in re.findall(
            r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">'
            r"([^<]*)</word>",
            body,
        ):
            if float(x0) < margin or float(x1) > float(width) - margin:
                problems.append(f"page {number}: {html.unescape(word)!r}")
    assert not problems, "text off the page:\n" + "\n".join(problems[:20])


def test_nothing_is_set_wider_than_its_place(edition):
    """No line wider than its column or the text by more than 2 pt (XeLaTeX's
    "Overfull \\hbox"): a formula too long for the page, a table column squeezed
    until its words run into the next one, a word of code that cannot break; no page
    taller than its text block by more than 3 pt ("Overfull \\vbox")."""
    log = edition["log"].read_text(errors="replace")
    overfull = [
        (float(points), where)
        for points, where in re.findall(
            r"Overfull \\hbox \(([\d.]+)pt too wide\) (.*)", log
        )
    ]
    wide = [f"{points:.1f} pt {where}" for points, where in overfull if points > 2]
    assert not wide, (
        f"{edition['log'].name}: set wider than its place (the line in the .tex):\n"
        + "\n".join(wide[:20])
    )
    # and no page's text taller than the page by more than 3 pt (a code cell that could
    # not break, printed over the footer)
    tall = [
        f"{points} pt {where}"
        for points, where in re.findall(
            r"Overfull \\vbox \(([\d.]+)pt too high\) (.*)", log
        )
        if float(points) > 3
    ]
    assert not tall, f"{edition['log'].name}: taller than the page:\n" + "\n".join(
        tall[:20]
    )


def test_formulas_are_typeset_as_text(edition):
    """Every displayed and inline formula that LaTeX sets on one line appears in the
    text."""
    text = squash("".join(pages_text(edition["pdf"])))
    checked, missing = 0, []
    for doc in [toc()["root"], *chapter_docs()]:
        display, inline = formulas(doc, edition["lang"])
        for tex in display + inline:
            shown = math_as_text(tex)
            if shown is None or len(squash(shown)) < 3:
                continue
            checked += 1
            if squash(shown) not in text:
                missing.append(f"{doc}: ${tex}$ (as {shown!r})")
    assert checked, "no formula of the book is set on one line: extend math_as_text"
    assert not missing, "formulas not in the PDF:\n" + "\n".join(missing)


def test_glued_numbers_appear_in_their_chapters(edition):
    lang = edition["lang"]
    texts = [squash(t) for t in pages_text(edition["pdf"])]
    starts = [*chapter_pages(lang), len(texts) + 1]
    checked, missing = 0, []
    for n, doc in enumerate(chapter_docs()):
        chapter = "".join(texts[starts[n] - 1 : starts[n + 1] - 1])
        for key, number in glued(doc, lang):
            checked += 1
            if squash(number) not in chapter:
                missing.append(f"{doc}: {key} = {number}")
    assert checked, "no {glue:text} number in the book"
    assert not missing, "glued numbers not in their chapters:\n" + "\n".join(missing)


def test_every_figure_and_solution_is_in(edition):
    expected = 0
    solutions = 0
    for doc in chapter_docs():
        path = source_of(doc)
        if path.suffix == ".ipynb":
            for cell in json.loads(path.read_text())["cells"]:
                if NO_OUTPUT & set(cell.get("metadata", {}).get("tags", [])):
                    continue
                for output in cell.get("outputs", []):
                    expected += "image/png" in output.get("data", {})
        solutions += sum(
            len(re.findall(r"^(?:`{3,}|:{3,})\{solution(?:-start)?\}", cell, re.M))
            for cell in markdown_cells(doc)
        )
    rows = run("pdfimages", "-list", str(edition["pdf"])).splitlines()[2:]
    images = [row for row in rows if row.split()[2] == "image"]
    assert len(images) == expected, (
        f"{len(images)} images in the PDF, {expected} figures in the chapters"
    )
    text = squash("".join(pages_text(edition["pdf"])))
    found = text.count(squash(edition["solution"]))
    assert found == solutions, f"{found} solutions in the PDF, {solutions} in the book"


def test_the_chinese_edition_is_in_chinese():
    zh = "".join(pages_text(EDITIONS["zh"]["pdf"]))
    en = "".join(pages_text(EDITIONS["en"]["pdf"]))
    assert zh.count("暂退法") >= 20, "the Chinese PDF hardly says 暂退法"
    # The English edition prints Chinese only in its glossary.
    assert "暂退法" in en, "the English glossary's 暂退法 is missing"


def test_pages_as_png_for_a_person_to_look_at(edition):
    """The title page, the contents, the preface, the first chapter, the first figure,
    the first solution and the glossary, as PNG in _build/pdf-pages/."""
    pdf, lang = edition["pdf"], edition["lang"]
    starts = chapter_pages(lang)
    texts = [squash(t) for t in pages_text(pdf)]
    rows = run("pdfimages", "-list", str(pdf)).splitlines()[2:]
    figure = min(int(row.split()[0]) for row in rows if row.split()[2] == "image")

    def first(word: str) -> int:
        return next(i + 1 for i, t in enumerate(texts) if squash(word) in t)

    preface = pdf_book.PREFACE[lang]
    to_preface = [int(t[1:]) for p, t, x in links(pdf) if squash(x) == squash(preface)]
    assert to_preface, f"the table of contents has no link to the {preface}"
    chosen = {
        "title": 1,
        "contents": first(edition["contents"]),
        "preface": to_preface[0],
        "chapter-1": starts[0],
        "figure": figure,
        "solution": first(edition["solution"]),
        "back-matter": starts[chapter_docs().index(parts()[-1][1][0])],
    }
    PAGES_OUT.mkdir(parents=True, exist_ok=True)
    for name, page in chosen.items():
        out = PAGES_OUT / f"{lang}-{name}"
        run(
            "pdftoppm", "-png", "-r", "80", "-singlefile",
            "-f", str(page), "-l", str(page), str(pdf), str(out),
        )  # fmt: skip
        image = Image.open(f"{out}.png").convert("L")
        low, high = image.getextrema()
        assert high - low > 100, f"{out}.png (page {page}) is blank"
