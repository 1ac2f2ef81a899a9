"""The printed book, ``_build/pdf/mmbook.pdf`` (``make pdf``), read back with pypdf.

Run by ``make html-check`` (``pytest tests/rendered --rendered``) after ``make book`` and
``make pdf``: every page of ``_toc.yml`` is in it, in order, with its title; the pages are
A4; chapters with figures print pictures; the kernel-free explorers print their starting
figure whole, on one page. (Chromium never slices a picture that fits on a page: it moves it
to the next one; ``_static/print.css`` caps pictures below a page's height and keeps figures,
formulas, tables and code cells whole.)
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
PDF = ROOT / "_build" / "pdf" / "mmbook.pdf"
PAGES = ROOT / "_build" / "pdf" / "pages"
sys.path.insert(0, str(ROOT / "tools"))
from build_book import toc_files  # noqa: E402
from print_pdf import page_title  # noqa: E402
from test_html import KERNEL_FREE  # noqa: E402

DOCS = toc_files()
A4 = (595.3, 841.9)  # points


def _squash(text: str) -> str:
    """Letters and digits only, lower case, ligatures undone (NFKC): PDF text extraction
    breaks lines and spaces, and prints "ﬃ" for "ffi"."""
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]", "", unicodedata.normalize("NFKC", text).lower())


@pytest.fixture(scope="module")
def reader():
    from pypdf import PdfReader

    if not PDF.exists():
        pytest.fail(f"no {PDF}: run `make book` then `make pdf`")
    assert PDF.stat().st_mtime >= (HTML / "index.html").stat().st_mtime - 1, (
        "the PDF is older than the built book: run `make pdf` again")
    return PdfReader(str(PDF))


@pytest.fixture(scope="module")
def spans(reader) -> dict:
    """``{doc: range of its PDF pages}``, split at the bookmarks."""
    starts = [reader.get_destination_page_number(item) for item in reader.outline]
    assert len(starts) == len(DOCS), (len(starts), len(DOCS))
    ends = [*starts[1:], len(reader.pages)]
    return {doc: range(a, b) for doc, a, b in zip(DOCS, starts, ends)}


def _text(reader, pages) -> str:
    return "\n".join(reader.pages[i].extract_text() for i in pages)


def test_one_bookmark_per_page_of_the_toc_in_order(reader):
    titles = [item.title for item in reader.outline]
    assert titles == [page_title(HTML / f"{doc}.html") for doc in DOCS]
    starts = [reader.get_destination_page_number(item) for item in reader.outline]
    assert starts == sorted(set(starts)), "a page printed nothing, or out of order"
    print(f"\nmmbook.pdf: {len(reader.pages)} pages for {len(DOCS)} pages of _toc.yml")
    assert len(reader.pages) >= 3 * len(DOCS)  # chapters run to several pages


def test_every_title_is_printed(reader, spans):
    """On the first page of its part of the PDF (text extraction is slow: only there)."""
    for doc, pages in spans.items():
        title = page_title(HTML / f"{doc}.html")
        text = _text(reader, pages[:1])
        assert _squash(title) in _squash(text), f"{doc}: its title {title!r} is not printed"


def test_pages_are_a4(reader):
    for number in (0, len(reader.pages) // 2, len(reader.pages) - 1):
        box = reader.pages[number].mediabox
        assert abs(float(box.width) - A4[0]) < 2 and abs(float(box.height) - A4[1]) < 2


def test_chapters_print_their_figures(reader, spans):
    """A chapter that shows figures in the HTML has pictures in its printed pages."""
    for doc, pages in spans.items():
        html = (HTML / f"{doc}.html").read_text()
        if 'class="cell_output' not in html or "<img" not in html:
            continue
        pictures = sum(len(_image_streams(reader.pages[i])) for i in pages)
        assert pictures > 0, f"{doc}: figures on the page, none in the PDF"


@pytest.mark.parametrize(("page", "div"), KERNEL_FREE, ids=[d for _, d in KERNEL_FREE])
def test_explorers_print_their_starting_figure(reader, spans, page, div):
    """The kernel-free explorer prints as a figure: its slider names and first frame's title
    are in the text, and its heatmaps are pictures on the page that has them."""
    doc = f"book/{page}"
    soup = BeautifulSoup((HTML / f"{doc}.html").read_text(), "html.parser")
    spec = json.loads(soup.find("script", id=f"{div}-frames").string)
    texts = {i: _squash(reader.pages[i].extract_text()) for i in spans[doc]}
    text = "".join(texts.values())
    for name in spec["names"]:
        assert _squash(name) in text, f"{page}: the slider {name!r} is not printed"
    titles = [_squash(frame["title"].replace("<br>", "")) for frame in spec["frames"]]
    assert any(t and t in text for t in titles), f"{page}: no frame title of {div} printed"
    shown = [i for i, t in texts.items() if any(title and title in t for title in titles)]
    assert shown and any(_image_streams(reader.pages[i]) for i in shown), (
        f"{page}: the explorer's page has no picture")
    # not cut by a page break: its title, pictures and every slider on one page
    assert any(all(_squash(name) in texts[i] for name in spec["names"]) for i in shown), (
        f"{page}: the explorer is split across pages")


def _image_streams(pdf_page) -> list:
    """The raw (still encoded) data of the page's image objects: cheap to hash."""
    resources = pdf_page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is None:
        return []
    streams = []
    for ref in xobjects.get_object().values():
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            streams.append(obj.get_data() if obj.get("/Filter") is None else obj._data)
        elif obj.get("/Subtype") == "/Form":  # a picture inside a form object
            streams += _image_streams(obj)
    return streams
