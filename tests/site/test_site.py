"""The built book (_build/html) as files: pages, links, Colab links, figures, math,
exercises."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from bs4 import BeautifulSoup
from conftest import (
    LANG,
    ROOT,
    SITE,
    chapters,
    config,
    has_math,
    markdown_of,
    source_of,
    toc_files,
)
from PIL import Image

DOCS = toc_files()
CHAPTERS = chapters()


@cache
def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


@cache
def ids(path: Path) -> frozenset:
    page = soup(path)
    return frozenset(el["id"] for el in page.find_all(id=True)) | frozenset(
        a["name"] for a in page.find_all("a", attrs={"name": True})
    )


def pages(html: Path) -> list[Path]:
    """Every HTML page of the site (not the copies of sources or theme assets)."""
    return sorted(
        p
        for p in html.rglob("*.html")
        if not {"_static", "_sources"} & set(p.relative_to(html).parts)
    )


def local_references(page: Path):
    """(tag, attribute, value) for every reference of `page` to a file of the site."""
    for tag, attr in (
        ("a", "href"),
        ("link", "href"),
        ("script", "src"),
        ("img", "src"),
        ("source", "src"),
    ):
        for el in soup(page).find_all(tag, attrs={attr: True}):
            value = el[attr]
            parts = urlsplit(value)
            if (
                parts.scheme
                or parts.netloc
                or value.startswith(("mailto:", "javascript:", "data:"))
            ):
                continue
            yield tag, attr, value


def resolve(page: Path, value: str) -> tuple[Path, str]:
    parts = urlsplit(value)
    target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


@pytest.mark.parametrize("doc", DOCS)
def test_toc_entry_has_a_page(html, doc):
    page = html / f"{doc}.html"
    assert page.is_file(), (
        f"_toc.yml lists {doc}, but the build has no {page.relative_to(html)}"
    )
    assert soup(page).find("main") is not None and soup(page).find("h1") is not None, (
        f"{page.name} has no title"
    )


def test_navigation_lists_every_toc_entry(html):
    nav = soup(html / "intro.html").select(
        "nav.bd-links a[href], .bd-sidebar a.reference.internal[href]"
    )
    targets = {resolve(html / "intro.html", a["href"])[0] for a in nav}
    for doc in DOCS[1:]:
        assert (html / f"{doc}.html").resolve() in targets, (
            f"the sidebar does not link to {doc}"
        )


def pdf_name() -> str:
    """The file name of this edition's PDF (`make pdf`), as the pages link to it."""
    sys.path.insert(0, str(ROOT / "_ext"))
    import language_links

    return language_links.PDF["zh_CN" if LANG == "zh" else "en"][0]


def test_internal_links_and_anchors_resolve(html):
    # The PDF is built by `make pdf` (the workflow's pdf job), not by `make book`: its
    # link is checked here once it is there, and by test_each_page_links_to_the_pdf.
    # Both editions' PDFs: the English pages link to this edition's, the Chinese pages
    # (under zh/ when html is the English root) to theirs.
    sys.path.insert(0, str(ROOT / "_ext"))
    import language_links

    pdf_names = {name for name, *_ in language_links.PDF.values()}
    problems = []
    for page in pages(html):
        for tag, attr, value in local_references(page):
            target, fragment = resolve(page, value)
            where = f"{page.relative_to(html)}: <{tag} {attr}={value!r}>"
            if target.name in pdf_names and not target.exists():
                continue
            if not target.is_file():
                problems.append(f"{where} -> missing file")
            elif fragment and target.suffix == ".html" and fragment not in ids(target):
                problems.append(
                    f"{where} -> {target.relative_to(html)} has no id {fragment!r}"
                )
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_site_has_pages_beyond_the_toc(html):
    # search and index pages are part of navigation; the link check covers what they
    # link to
    for name in ("search.html", "genindex.html", "searchindex.js"):
        assert (html / name).is_file(), f"the build has no {name}"


@pytest.mark.parametrize("doc", CHAPTERS)
def test_chapter_has_colab_link_to_its_notebook(html, doc):
    repo = config()["repository"]
    owner_repo = urlsplit(repo["url"]).path.strip("/").removesuffix(".git")
    branch = repo.get("branch", "main")
    book = repo.get("path_to_book", "").strip("/")
    links = [
        a["href"]
        for a in soup(html / f"{doc}.html").find_all("a", href=True)
        if a["href"].startswith("https://colab.research.google.com/")
    ]
    assert links, f"{doc}.html has no 'open in Colab' link"
    notebook = "/".join(filter(None, [book, doc]))
    expected = (
        "https://colab.research.google.com/github/"
        f"{owner_repo}/blob/{branch}/{notebook}.ipynb"
    )
    assert expected in links, f"{doc}.html's Colab link is {links}, expected {expected}"
    path = urlsplit(expected).path.split(f"/blob/{branch}/", 1)[1]
    notebook = ROOT / path
    assert notebook.is_file(), (
        f"the Colab link of {doc} names {path}, which is not in the repository"
    )
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True
    )
    assert tracked.returncode == 0, (
        f"{path} is not committed, so Colab cannot open it from {branch}"
    )


def test_images_exist_and_are_not_empty(html):
    problems, seen = [], 0
    for page in pages(html):
        for img in soup(page).find_all("img", src=True):
            src = img["src"]
            if src.startswith("data:"):
                continue
            if urlsplit(src).scheme:
                problems.append(
                    f"{page.relative_to(html)}: image from outside the site: {src}"
                )
                continue
            target, _ = resolve(page, src)
            seen += 1
            if not target.is_file() or target.stat().st_size == 0:
                problems.append(f"{page.relative_to(html)}: {src} is missing or empty")
            elif target.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif"):
                with Image.open(target) as im:
                    im.verify()
                    if min(im.size) < 10:
                        problems.append(
                            f"{page.relative_to(html)}: {src} is only {im.size} pixels"
                        )
    assert not problems, "\n".join(problems)
    figures = sum("image/png" in str(source_of(d).read_text()) for d in CHAPTERS)
    assert seen >= figures, (
        f"{figures} chapters store figures, but the site shows only {seen} images"
    )


@pytest.mark.parametrize("doc", DOCS)
def test_math_is_rendered_where_the_source_has_math(html, doc):
    if not has_math(markdown_of(doc)):
        pytest.skip(f"{doc} has no $ math")
    page = soup(html / f"{doc}.html")
    math = page.select("span.math, div.math")
    assert math, f"{doc}'s source has $ math, but its page has no math element"
    raw = page.find("main").get_text()
    assert not re.search(r"(?<!\\)\$\$", raw), f"{doc}.html shows unrendered $$ math"
    scripts = [s.get("src", "") for s in page.find_all("script")]
    mathjax = [s for s in scripts if "mathjax" in s.lower() or "tex-" in s]
    assert mathjax, f"{doc}.html does not load MathJax"
    for src in mathjax:
        assert not urlsplit(src).scheme, (
            f"{doc}.html loads MathJax from {src}; make book serves it with the book"
        )
        target, _ = resolve(html / f"{doc}.html", src)
        assert target.is_file() and target.stat().st_size > 100_000, (
            f"{src} is not a copy of MathJax (run make book)"
        )


@pytest.mark.parametrize("doc", DOCS)
def test_exercises_and_solutions_are_rendered(html, doc):
    markdown = markdown_of(doc)
    exercises = len(re.findall(r"^(```|:::)\{exercise\}", markdown, re.M))
    solutions = len(re.findall(r"^(```|:::)\{solution-start\}", markdown, re.M))
    if not exercises:
        pytest.skip(f"{doc} has no exercises")
    page = soup(html / f"{doc}.html")
    rendered = page.select("div.exercise.admonition")
    assert len(rendered) == exercises, (
        f"{doc}: {exercises} {{exercise}} blocks in the source,"
        f" {len(rendered)} on the page"
    )
    for block in rendered:
        assert block.select_one(".admonition-title") and block.get("id"), (
            f"{doc}: an exercise has no title or label"
        )
    folded = page.select("div.solution.dropdown.admonition")
    assert len(folded) == solutions, (
        f"{doc}: {solutions} solutions in the source,"
        f" {len(folded)} folded solutions on the page"
    )
    for block in folded:
        link = block.select_one(".admonition-title a[href]")
        assert link is not None, f"{doc}: a solution does not link to its exercise"


@pytest.mark.parametrize("doc", DOCS)
def test_language_link_leads_to_the_same_page_in_the_other_edition(html, doc):
    page = html / f"{doc}.html"
    links = soup(page).select("p.language-switch a[href]")
    assert len(links) == 1, f"{doc}.html has {len(links)} language links, not 1"
    target, _ = resolve(page, links[0]["href"])
    other = SITE / f"{doc}.html" if LANG == "zh" else SITE / "zh" / f"{doc}.html"
    assert target == other.resolve(), (
        f"{doc}.html's language link goes to {target}, not {other}"
    )
    assert target.is_file(), f"{doc}.html links to {target}, which was not built"
    want = "en" if LANG == "zh" else "zh-CN"
    assert links[0].get("hreflang") == want and soup(target).html.get("lang") == want


@pytest.mark.parametrize("doc", DOCS)
def test_each_page_links_to_the_pdf_of_its_edition(html, doc):
    page = html / f"{doc}.html"
    links = soup(page).select("p.pdf-link a[href]")
    assert len(links) == 1, f"{doc}.html has {len(links)} PDF links, not 1"
    target, _ = resolve(page, links[0]["href"])
    assert target == (html / pdf_name()).resolve(), (
        f"{doc}.html's PDF link goes to {target}, not to {pdf_name()} at the root of"
        " its edition"
    )
    if target.exists():  # after `make pdf`
        assert target.read_bytes()[:5] == b"%PDF-", f"{target} is not a PDF"


def test_pages_declare_their_language(html):
    want = "zh-CN" if LANG == "zh" else "en"
    for doc in DOCS:
        assert soup(html / f"{doc}.html").html.get("lang") == want, (
            f"{doc}.html is not lang={want}"
        )
