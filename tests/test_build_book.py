"""tools/build_book.py, the render step of `make book`, with jupyter-book stubbed out.

The issue it fixes: after a failed build, a later one kept the page built from the failed
execution (Sphinx saw an unchanged source). Here: a page whose cached execution changed is
rendered again, a notebook without current outputs stops the render before Jupyter Book
could execute it, and a render that failed or was interrupted is followed by one from
scratch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from mmbook.execute import NotebookRun, cache_context, store_in_cache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import build_book  # noqa: E402


def test_toc_order():
    docs = build_book.toc_files()
    assert docs[0] == "book/intro" and docs.index("book/01_introduction") < docs.index(
        "book/15_efficiency") < docs.index("book/glossary")
    assert [p.stem for p in build_book.toc_notebooks()] == sorted(
        p.stem for p in (build_book.ROOT / "book").glob("*.ipynb"))


@pytest.fixture
def book(tmp_path, monkeypatch):
    """Two tiny notebooks, a cache, a fake _build, and a jupyter-book that records its calls."""
    root, build = tmp_path / "src", tmp_path / "_build"
    (root / "book").mkdir(parents=True)
    notebooks = []
    for name in ("01_a", "02_b"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(f"print({name!r})")]
        path = root / "book" / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        notebooks.append(path)
    monkeypatch.setattr(build_book, "ROOT", root)
    monkeypatch.setattr(build_book, "BUILD", build)
    monkeypatch.setattr(build_book, "DOCTREES", build / ".doctrees")
    monkeypatch.setattr(build_book, "HTML", build / "html")
    monkeypatch.setattr(build_book, "RENDERED", build / ".doctrees" / "mmbook-rendered.json")
    monkeypatch.setattr(build_book, "INCOMPLETE", build / ".render-incomplete")
    monkeypatch.setattr(build_book, "toc_notebooks", lambda: notebooks)
    calls, outcome = [], {"rc": 0}

    def jupyter_book(command, cwd):  # writes a doctree and a page per notebook, like Sphinx
        calls.append(command)
        for path in notebooks:
            for file in (build / ".doctrees" / "book" / f"{path.stem}.doctree",
                         build / "html" / "book" / f"{path.stem}.html"):
                file.parent.mkdir(parents=True, exist_ok=True)
                if not file.exists():
                    file.write_text("rendered")
        return outcome["rc"]

    monkeypatch.setattr(build_book.subprocess, "call", jupyter_book)
    return notebooks, tmp_path / "cache", build, calls, outcome


def _cache(paths, cache, seed="0"):
    runs = [NotebookRun(str(p), 1.0, None, nbformat.read(str(p), as_version=4)) for p in paths]
    store_in_cache(runs, cache, {**cache_context(), "seed": seed})


def _render(cache):
    return build_book.main(["--cache", str(cache)])


def test_refuses_notebooks_without_current_outputs(book, capsys):
    notebooks, cache, build, calls, _ = book
    _cache(notebooks[:1], cache)
    assert _render(cache) == 2 and calls == []
    assert "book/02_b has no cached execution" in capsys.readouterr().err
    _cache(notebooks[1:], cache, seed="3")  # another seed: stale
    assert _render(cache) == 2 and calls == []
    assert "book/02_b was executed with other mmbook code" in capsys.readouterr().err


def test_pages_with_new_outputs_are_rendered_again(book, capsys):
    notebooks, cache, build, calls, _ = book
    _cache(notebooks, cache)
    assert _render(cache) == 0 and len(calls) == 1
    assert "-W" in calls[0] and "--keep-going" in calls[0]
    page_a = build / "html" / "book" / "01_a.html"
    page_b = build / "html" / "book" / "02_b.html"
    page_a.write_text("old page a")
    page_b.write_text("old page b")
    assert _render(cache) == 0  # nothing changed: the pages stay
    assert page_a.read_text() == "old page a"
    _cache(notebooks[1:], cache)  # `make notebooks` executed 02_b again
    assert _render(cache) == 0
    assert page_a.read_text() == "old page a" and page_b.read_text() == "rendered"
    assert "1 page(s) with new outputs: book/02_b" in capsys.readouterr().out


def test_after_a_failed_render_the_next_starts_from_scratch(book, capsys):
    notebooks, cache, build, calls, outcome = book
    _cache(notebooks, cache)
    outcome["rc"] = 1
    assert _render(cache) == 1 and (build / ".render-incomplete").exists()
    page = build / "html" / "book" / "01_a.html"
    page.write_text("written by the failed render")
    outcome["rc"] = 0
    assert _render(cache) == 0
    assert page.read_text() == "rendered" and not (build / ".render-incomplete").exists()
    assert "did not complete: rendering every page from scratch" in capsys.readouterr().out


def test_an_interrupted_render_counts_as_incomplete(book):
    notebooks, cache, build, calls, _ = book
    _cache(notebooks, cache)

    def killed(command, cwd):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build_book.subprocess, "call", killed)
        with pytest.raises(KeyboardInterrupt):
            _render(cache)
    assert (build / ".render-incomplete").exists()
    assert not (build / ".doctrees" / "mmbook-rendered.json").exists()
