"""Sphinx extension: number exercises per chapter (Exercise 7.1, 7.2, ...).

sphinx-exercise numbers exercises with Sphinx's figure numbering, which counts across
the whole book when the table of contents is not numbered ("Exercise 20" in chapter 7).
After Sphinx has assigned its numbers, this renumbers the exercises of every chapter
``book/NN_topic`` as ``(NN, 1), (NN, 2), ...`` in their order on the page; Sphinx and
sphinx-exercise print such a tuple as "7.1". Solutions ("Solution to Exercise 7.1") and
``{numref}`` references read the same numbers.
"""

from __future__ import annotations

import re

_CHAPTER = re.compile(r"(?:^|/)(\d+)_[^/]*$")


def chapter_of(docname: str) -> int | None:
    """The chapter number of ``book/07_attention`` (7), or None for other pages."""
    m = _CHAPTER.search(docname)
    return int(m.group(1)) if m else None


def renumber(toc_fignumbers: dict, kind: str = "exercise") -> dict:
    """Per-chapter numbers for ``kind`` in Sphinx's ``env.toc_fignumbers`` (in place)."""
    for docname, kinds in toc_fignumbers.items():
        chapter = chapter_of(docname)
        if chapter is None or kind not in kinds:
            continue
        in_order = sorted(kinds[kind].items(), key=lambda item: item[1])
        kinds[kind] = {key: (chapter, k + 1) for k, (key, _) in enumerate(in_order)}
    return toc_fignumbers


def _on_env_updated(app, env):
    renumber(env.toc_fignumbers)
    return []


def setup(app):
    # after sphinx's own TocTreeCollector (priority 500) has assigned the numbers
    app.connect("env-get-updated", _on_env_updated, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
