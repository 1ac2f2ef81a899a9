"""Exercises are numbered per chapter (7.1, 7.2, ...), not across the book."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("chapter_numbers",
                                               ROOT / "_ext" / "chapter_numbers.py")
chapter_numbers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chapter_numbers)


def test_chapter_of():
    assert chapter_numbers.chapter_of("book/07_attention") == 7
    assert chapter_numbers.chapter_of("book/10_cross_encoders") == 10
    assert chapter_numbers.chapter_of("book/glossary") is None
    assert chapter_numbers.chapter_of("book/intro") is None


def test_renumber_counts_within_each_chapter_in_page_order():
    # what Sphinx assigns without a numbered toctree: one counter across the book
    fig = {
        "book/06_fusion_levels": {"exercise": {"ex-a": (17,), "ex-b": (18,)}, "figure": {}},
        "book/07_attention": {"exercise": {"ex-heads": (21,), "ex-mask": (19,),
                                           "ex-remove": (20,)}},
        "book/glossary": {"exercise": {"x": (3,)}},
        "book/08_subspace": {"table": {"t": (1,)}},
    }
    out = chapter_numbers.renumber(fig)
    assert out["book/06_fusion_levels"]["exercise"] == {"ex-a": (6, 1), "ex-b": (6, 2)}
    assert out["book/07_attention"]["exercise"] == {"ex-mask": (7, 1), "ex-remove": (7, 2),
                                                    "ex-heads": (7, 3)}
    assert out["book/glossary"]["exercise"] == {"x": (3,)}  # not a chapter: untouched
    assert out["book/08_subspace"] == {"table": {"t": (1,)}}


def test_the_book_loads_the_extension():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"]["chapter_numbers"] == "_ext"
