"""Every page of the built book in headless Chromium, served from 127.0.0.1 with no
other network.

A page fails on a JavaScript exception, on a console error, or on any failed request to
the local server; requests to other hosts are recorded, and the site must not need any
(offline). Each chapter's full page is saved as a PNG in _build/screenshots/.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from conftest import LANG, ROOT, chapters, has_math, markdown_of, toc_files

DOCS = toc_files()
SCREENSHOTS = ROOT / "_build" / "screenshots" / LANG
# A word every edition's search must find in the chapters.
SEARCH = {"en": "dropout", "zh": "暂退法"}[LANG]

# Known, harmless errors of the pinned Jupyter Book 1 stack, each matched exactly.
# sphinx-thebe 0.3.1 puts its configuration script (`const THEBE_JS_URL = ...`) into
# every page twice under Sphinx 7.4, so the second copy throws; the first has already
# defined the same constants. The book does not use Thebe (no live-code button).
KNOWN = ["SyntaxError: Identifier 'THEBE_JS_URL' has already been declared"]


def local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost") or url.startswith(
        ("data:", "about:", "blob:")
    )


def problems_of(page) -> tuple[list[str], list[str]]:
    """(errors, external requests) recorded on `page` since it was loaded."""
    errors, external = [], []
    requests = {}
    for event in list(page.events):
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            requests[params["requestId"]] = url
            if not local(url):
                external.append(url)
        elif method == "Network.responseReceived":
            response = params["response"]
            if (
                local(response["url"])
                and response["status"] >= 400
                and not response["url"].endswith("/favicon.ico")
            ):
                errors.append(f"HTTP {response['status']} for {response['url']}")
        elif method == "Network.loadingFailed":
            url = requests.get(params["requestId"], "?")
            if local(url) and not params.get("canceled"):
                errors.append(f"failed to load {url}: {params['errorText']}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get(
                "text"
            )
            if text not in KNOWN:
                errors.append(
                    f"uncaught exception: {text}"
                    f" ({details.get('url')}:{details.get('lineNumber')})"
                )
        elif method == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
        ):
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params["args"]
            )
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            url = entry.get("url", "")
            # failed requests to other hosts are the closed network's doing, reported
            # below
            if entry["source"] == "network" and (
                not local(url) or url.endswith("/favicon.ico")
            ):
                continue
            if entry["source"] == "network" and local(url):
                continue  # reported by the Network events above, in more detail
            errors.append(f"{entry['source']} error: {entry['text']} {url}")
    return errors, external


@pytest.fixture(scope="module")
def tab(browser):
    page = browser.page()
    yield page
    page.close()


def load(tab, server, doc):
    tab.goto(f"{server}/{doc}.html")
    # MathJax typesets after the load event; wait for it (and for its fonts) where it is
    # used
    tab.evaluate(
        "(async () => { if (window.MathJax && MathJax.startup"
        " && MathJax.startup.promise) await MathJax.startup.promise;"
        " await document.fonts.ready; return true; })()"
    )


@pytest.mark.parametrize("doc", DOCS)
def test_page_loads_without_errors_or_network(tab, server, html, doc):
    load(tab, server, doc)
    errors, external = problems_of(tab)
    assert not errors, f"{doc}.html in Chromium:\n" + "\n".join(errors)
    assert not external, (
        f"{doc}.html needs the network (it must work offline): {external}"
    )
    title = tab.evaluate("(document.querySelector('main h1') || {}).textContent")
    assert title and title.strip(), f"{doc}.html shows no title"
    if has_math(markdown_of(doc)):
        rendered = tab.evaluate("document.querySelectorAll('mjx-container').length")
        assert rendered, f"{doc}.html has math, but MathJax rendered none of it"
        broken = tab.evaluate(
            "document.querySelectorAll("
            "'mjx-merror, mjx-container [data-mjx-error]').length"
        )
        assert not broken, f"MathJax could not typeset {broken} formulas on {doc}.html"
    if doc in chapters():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = tab.screenshot(SCREENSHOTS / f"{doc.replace('/', '__')}.png")
        assert shot.stat().st_size > 10_000, f"the screenshot of {doc} is nearly empty"


def test_images_are_displayed(tab, server, html):
    for doc in chapters():
        load(tab, server, doc)
        broken = tab.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth === "
            "0).map(i => i.src)"
        )
        assert not broken, f"{doc}.html: images the browser could not display: {broken}"


def test_search_works_offline(tab, server, html):
    tab.goto(f"{server}/search.html?q={quote(SEARCH)}")
    hits = tab.wait_for(
        "document.querySelectorAll('#search-results li').length", timeout=30
    )
    assert hits >= 1
    links = tab.evaluate(
        "Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)"
    )
    chapter_pages = {f"{server}/{doc}.html" for doc in chapters()}
    assert chapter_pages & {link.split("?")[0].split("#")[0] for link in links}, (
        f"searching {SEARCH!r} finds no chapter: {links}"
    )
    errors, external = problems_of(tab)
    assert not errors and not external, (errors, external)


def test_next_buttons_walk_the_toc(tab, server, html):
    """The 'next' link at the bottom of each page leads to the next TOC entry."""
    for here, there in zip(DOCS, DOCS[1:]):
        tab.goto(f"{server}/{here}.html")
        href = tab.evaluate("(document.querySelector('a.right-next') || {}).href")
        assert href, f"{here}.html has no 'next' link"
        want = urlsplit(f"{server}/{there}.html").path
        assert urlsplit(href).path == want, (
            f"{here}.html's 'next' goes to {href}, not {there}"
        )


def test_code_fits_the_column(tab, server, html):
    """No code cell or output scrolls sideways: each block's scroll width fits its
    box."""
    for doc in chapters():
        load(tab, server, doc)
        wide = tab.evaluate(
            "Array.from(document.querySelectorAll('main pre'))"
            ".filter(e => e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.textContent.split('\\n').reduce("
            "(a, b) => (b.length > a.length ? b : a), '').slice(0, 90))"
        )
        assert not wide, (
            f"{doc}.html: code blocks that scroll sideways, widest lines: {wide}"
        )


def test_each_chapter_downloads_as_a_notebook_with_outputs(tab, server, html):
    """The download button offers the chapter's .ipynb, stored with its outputs."""
    for doc in chapters():
        load(tab, server, doc)
        name = doc.rsplit("/", 1)[-1]
        href = tab.evaluate(
            f"(Array.from(document.querySelectorAll('a')).find(a =>"
            " (a.getAttribute('href') || '').includes('_sources')"
            f" && a.getAttribute('href').endsWith('/{name}.ipynb')) || {{}}).href"
        )
        assert href, f"{doc}.html offers no download of {name}.ipynb"
        counts = tab.evaluate(
            f"fetch({href!r}).then(r => r.json()).then(nb => [nb.cells.length,"
            " nb.cells.filter(c => (c.outputs || []).length).length])"
        )
        assert counts[0] > 0 and counts[1] > 0, (
            f"{href} has no cells with outputs: {counts}"
        )
