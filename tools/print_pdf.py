"""Print the built book to one PDF, for teachers who print: `make pdf`.

Each page of ``_toc.yml``, in reading order, is loaded from ``_build/html`` by headless
Chromium (MathJax typeset, figures and the kernel-free explorers drawn, the print style
``_static/print.css``: A4, no navigation, figures kept whole) and printed to
``_build/pdf/pages/NN_page.pdf``; ``pypdf`` then joins them into ``_build/pdf/mmbook.pdf``
with one bookmark per page. Jupyter Book's LaTeX route needs a TeX installation (Debian's
texlive-xetex alone is 239 MB to download, 699 MB installed, before the LaTeX packages and
CJK fonts the book needs); Chromium is already needed for the rendered-HTML check.

    python tools/print_pdf.py [--html _build/html] [--out _build/pdf/mmbook.pdf] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path

from build_book import ROOT, toc_files

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
                  "--virtual-time-budget=30000",
                  # the width of A4's printable area, so that figures sized by JavaScript
                  # (the plotly explorers) are laid out for the paper, not for a screen
                  "--window-size=700,1000"]


def chromium() -> str:
    """Chromium's command: ``$CHROMIUM``, else chromium, chromium-browser or google-chrome."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise SystemExit("print_pdf: no Chromium found: `make chromium` (apt-get install chromium) "
                     "or set CHROMIUM to its path")


def page_title(html: Path) -> str:
    """The page's first heading (its chapter title), as plain text."""
    text = html.read_text(encoding="utf-8")
    match = re.search(r"<h1[^>]*>(.*?)</h1>", text, flags=re.S)
    title = re.sub(r"<[^>]+>", "", match.group(1)) if match else html.stem
    return " ".join(unescape(title).replace("#", "").split())


def print_page(html: Path, pdf: Path, timeout: float = 180) -> Path:
    """Print one built page to ``pdf`` with headless Chromium."""
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                              f"--print-to-pdf={pdf}", html.resolve().as_uri()],
                             capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"chromium could not print {html} ({out.returncode}): "
                           f"{out.stderr[-1500:]}")
    return pdf


def merge(pdfs: list[Path], titles: list[str], out: Path) -> int:
    """Join the pages' PDFs into ``out``, one bookmark per page; return the page count."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for pdf, title in zip(pdfs, titles):
        first = len(writer.pages)
        writer.append(str(pdf))
        writer.add_outline_item(title=title, page_number=first)
    writer.add_metadata({"/Title": "Multimodal Fusion with Neural Networks, interactively"})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".pdf.part")
    with open(tmp, "wb") as f:
        writer.write(f)
    os.replace(tmp, out)  # never a half-written book
    return len(writer.pages)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", default=str(ROOT / "_build" / "html"))
    parser.add_argument("--out", default=str(ROOT / "_build" / "pdf" / "mmbook.pdf"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    html, out = Path(args.html), Path(args.out)
    docs = toc_files()
    pages = [html / f"{doc}.html" for doc in docs]
    missing = [str(p) for p in pages if not p.exists()]
    if missing:
        print(f"print_pdf: pages missing from {html}: {missing}: run `make book`",
              file=sys.stderr)
        return 1
    folder = out.parent / "pages"
    pdfs = [folder / f"{i:02d}_{Path(doc).name}.pdf" for i, doc in enumerate(docs)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(print_page, pages, pdfs))
    count = merge(pdfs, [page_title(p) for p in pages], out)
    print(f"print_pdf: {len(pages)} pages of _toc.yml -> {out} ({count} PDF pages, "
          f"{out.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
