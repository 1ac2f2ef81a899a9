"""Render the book from the notebooks' cached executions: the second step of `make book`.

`make book` first executes, through the project's one executor, every notebook whose cache
record is not current (``python -m mmbook.execute book/*.ipynb --cache _build/.jupyter_cache
--skip-current``), then runs this script, which

1. stops, naming them, if a notebook of ``_toc.yml`` has no current cache record (Jupyter
   Book would otherwise execute it itself, one notebook at a time, with the per-cell
   timeout of ``_config.yml``; or render outputs of older code);
2. removes the doctree and the HTML page of every notebook whose cache record changed since
   the last complete render (Sphinx re-reads a page only when its *source* file changed, so
   it would keep a page rendered from an earlier, perhaps failed, execution);
3. starts from scratch (no doctrees, no HTML) when the previous render did not complete
   (failed or interrupted): Sphinx would keep what that render wrote, and would not repeat
   the warnings of pages it does not read again, so a second build would pass;
4. runs ``jupyter-book build . -W -n --keep-going`` (which finds every notebook in the cache
   and executes none) and, when it passes, records which execution each page shows.

    python tools/build_book.py [--cache _build/.jupyter_cache] [--all]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
DOCTREES = BUILD / ".doctrees"
HTML = BUILD / "html"
RENDERED = DOCTREES / "mmbook-rendered.json"  # page -> the execution it shows
INCOMPLETE = BUILD / ".render-incomplete"


def toc_files(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The documents of the table of contents, in reading order (``book/01_introduction``)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            found.extend(str(node[key]) for key in ("root", "file") if key in node)
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc.read_text()))
    return found


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks of ``_toc.yml``, in reading order."""
    return [root / f"{f}.ipynb" for f in toc_files(root / "_toc.yml")
            if (root / f"{f}.ipynb").exists()]


def executions(notebooks, cache_path) -> tuple[dict, list, list]:
    """``({doc: execution id}, missing, stale)`` of the notebooks in the cache."""
    from mmbook.execute import cache_context, cached_record

    context = cache_context()
    shown, missing, stale = {}, [], []
    for nb in notebooks:
        record = cached_record(nb, cache_path)
        doc = nb.relative_to(ROOT).with_suffix("").as_posix()
        if record is None:
            missing.append(doc)
            continue
        data = record.data or {}
        if data.get("context") != context:
            stale.append(doc)
        shown[doc] = data.get("run") or f"{record.hashkey}@{record.created}"
    return shown, missing, stale


def forget(doc: str) -> None:
    """Remove a page's doctree and HTML: Sphinx reads and writes it again."""
    for path in (DOCTREES / f"{doc}.doctree", HTML / f"{doc}.html"):
        path.unlink(missing_ok=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=str(BUILD / ".jupyter_cache"))
    parser.add_argument("--all", action="store_true", help="render every page again")
    args = parser.parse_args(argv)

    shown, missing, stale = executions(toc_notebooks(), args.cache)
    if missing or stale:
        for doc in missing:
            print(f"build_book: {doc} has no cached execution", file=sys.stderr)
        for doc in stale:
            print(f"build_book: {doc} was executed with other mmbook code or another seed",
                  file=sys.stderr)
        print("build_book: run `make book` (it executes them first); nothing was rendered",
              file=sys.stderr)
        return 2
    if INCOMPLETE.exists() or args.all:
        why = "--all" if args.all else "the previous render did not complete"
        print(f"build_book: {why}: rendering every page from scratch")
        shutil.rmtree(DOCTREES, ignore_errors=True)
        shutil.rmtree(HTML, ignore_errors=True)
    before = json.loads(RENDERED.read_text()) if RENDERED.exists() else {}
    changed = sorted(doc for doc, run in shown.items() if before.get(doc) != run)
    for doc in changed:
        forget(doc)
    if changed:
        print(f"build_book: {len(changed)} page(s) with new outputs: {', '.join(changed)}")
    BUILD.mkdir(exist_ok=True)
    INCOMPLETE.write_text("a render started and did not complete\n")
    RENDERED.unlink(missing_ok=True)
    start = time.perf_counter()
    jb = Path(sys.executable).with_name("jupyter-book")
    rc = subprocess.call([str(jb) if jb.exists() else "jupyter-book", "build", str(ROOT),
                          "-W", "-n", "--keep-going"], cwd=ROOT)
    print(f"build_book: jupyter-book build took {time.perf_counter() - start:.0f} s")
    if rc != 0:
        print("build_book: the render failed; the next one starts from scratch", file=sys.stderr)
        return rc
    DOCTREES.mkdir(parents=True, exist_ok=True)
    RENDERED.write_text(json.dumps(shown, indent=1))
    INCOMPLETE.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
