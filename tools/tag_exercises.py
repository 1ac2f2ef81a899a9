"""Give every exercise's starter cell its grading metadata (run after adding an exercise).

    python tools/tag_exercises.py book/*.ipynb

The starter cell (the first code cell after an ``{exercise-start}`` with a ``:label:``
that calls a checker) gets ``metadata["mmbook"] = {"exercise": label, "points": n}``;
points already set are kept (default 1). ``tests/test_grade.py`` checks that every
exercise has them.
"""

from __future__ import annotations

import sys

import nbformat

from mmbook.grade import find_exercises


def tag(path: str) -> int:
    nb = nbformat.read(path, as_version=4)
    changed = 0
    for ex in find_exercises(nb):
        meta = nb.cells[ex.cell].metadata.setdefault("mmbook", {})
        want = {"exercise": ex.label, "points": meta.get("points", 1)}
        if meta != want:
            meta.clear()
            meta.update(want)
            changed += 1
    if changed:
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(f"{p}: {tag(p)} exercise cells tagged")
