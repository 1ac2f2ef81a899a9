"""The printed book, ``_build/pdf/mmbook.pdf`` (``make pdf``), read back with pypdf.

Run by ``make html-check`` (``pytest tests/rendered --rendered``) after ``make book`` and
``make pdf``: every page of ``_toc.yml`` is in it, in order, with its title; the pages are
A4; the kernel-free explorers print their starting figure; no figure is cut by a page break.
"""

from __future__ import annotations

import hashlib
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
def chapters(reader) -> dict:
    """``{doc: text of its PDF pages}``, split at the bookmarks."""
    starts = [reader.get_destination_page_number(item) for item in reader.outline]
    assert len(starts) == len(DOCS), (len(starts), len(DOCS))
    ends = [*starts[1:], len(reader.pages)]
    return {doc: "\n".join(reader.pages[i].extract_text() for i in range(a, b))
            for doc, a, b in zip(DOCS, starts, ends)}


def test_one_bookmark_per_page_of_the_toc_in_order(reader):
    titles = [item.title for item in reader.outline]
    assert titles == [page_title(HTML / f"{doc}.html") for doc in DOCS]
    starts = [reader.get_destination_page_number(item) for item in reader.outline]
    assert starts == sorted(set(starts)), "a page printed nothing, or out of order"
    print(f"\nmmbook.pdf: {len(reader.pages)} pages for {len(DOCS)} pages of _toc.yml")
    assert len(reader.pages) >= 3 * len(DOCS)  # chapters run to several pages


def test_every_title_is_printed(chapters):
    for doc, text in chapters.items():
        title = page_title(HTML / f"{doc}.html")
        assert _squash(title) in _squash(text), f"{doc}: its title {title!r} is not printed"


def test_pages_are_a4(reader):
    for number in (0, len(reader.pages) // 2, len(reader.pages) - 1):
        box = reader.pages[number].mediabox
        assert abs(float(box.width) - A4[0]) < 2 and abs(float(box.height) - A4[1]) < 2


def test_chapters_print_their_figures(reader, chapters):
    """A chapter that shows figures in the HTML has pictures in its printed pages."""
    starts = [reader.get_destination_page_number(item) for item in reader.outline]
    ends = [*starts[1:], len(reader.pages)]
    for doc, a, b in zip(DOCS, starts, ends):
        html = (HTML / f"{doc}.html").read_text()
        if 'class="cell_output' not in html or "<img" not in html:
            continue
        pictures = sum(len(reader.pages[i].images) for i in range(a, b))
        assert pictures > 0, f"{doc}: figures on the page, none in the PDF"


@pytest.mark.parametrize("page", sorted(KERNEL_FREE))
def test_explorers_print_their_starting_figure(reader, chapters, page):
    """The kernel-free explorer prints as a figure: its slider names and first frame's title
    are in the text, and its heatmaps are pictures on the page that has them."""
    doc, div = f"book/{page}", KERNEL_FREE[page]
    soup = BeautifulSoup((HTML / f"{doc}.html").read_text(), "html.parser")
    spec = json.loads(soup.find("script", id=f"{div}-frames").string)
    text = _squash(chapters[doc])
    for name in spec["names"]:
        assert _squash(name) in text, f"{page}: the slider {name!r} is not printed"
    titles = [_squash(frame["title"]) for frame in spec["frames"]]
    assert any(t and t in text for t in titles), f"{page}: no frame title of {div} printed"
    index = DOCS.index(doc)
    start = reader.get_destination_page_number(reader.outline[index])
    end = (reader.get_destination_page_number(reader.outline[index + 1])
           if index + 1 < len(DOCS) else len(reader.pages))
    shown = [i for i in range(start, end)
             if any(t and t in _squash(reader.pages[i].extract_text()) for t in titles)]
    assert shown and any(reader.pages[i].images for i in shown), (
        f"{page}: the explorer's page has no picture")


def test_no_figure_is_cut_by_a_page_break():
    """A picture cut by a page break is drawn on both pages: no picture of a chapter's PDF
    may appear on two of its pages (print.css keeps figures whole)."""
    from pypdf import PdfReader

    files = sorted(PAGES.glob("*.pdf"))
    assert len(files) == len(DOCS), f"{PAGES}: {len(files)} files for {len(DOCS)} pages"
    cut = []
    for file in files:
        seen: dict = {}
        for number, pdf_page in enumerate(PdfReader(str(file)).pages):
            for image in pdf_page.images:
                digest = hashlib.sha256(image.data).hexdigest()
                seen.setdefault(digest, set()).add(number)
        cut += [f"{file.stem}: a picture on pages {sorted(pages)}"
                for pages in seen.values() if len(pages) > 1]
    assert not cut, cut
