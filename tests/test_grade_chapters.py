"""An honest, correct submission of every chapter earns full points.

Each submission is the student edition of a chapter with every starter cell replaced by
the teacher's solution code, graded against the book in the sandbox. By default each
chapter is cut to what its exercises need (its setup cell, the cells defining the names
the exercises use, the exercises; see ``grade_helpers.sliced``): about 10-30 s a chapter.
``--grade-full-chapters`` grades the whole chapters instead (each runs its experiments:
about 25 minutes on two cores).
"""

from __future__ import annotations

import nbformat
import pytest
from grade_helpers import ROOT, honest_submission, read_grades, require_sandbox, sliced

from mmbook.grade import Grader, find_exercises

CHAPTERS = [p for p in sorted((ROOT / "book").glob("*.ipynb"))
            if find_exercises(nbformat.read(p, as_version=4))]


@pytest.fixture(scope="module")
def graded_book(tmp_path_factory, request):
    require_sandbox()
    full = request.config.getoption("--grade-full-chapters")
    subs = tmp_path_factory.mktemp("honest")
    for path in CHAPTERS:
        nb = honest_submission(nbformat.read(path, as_version=4))
        student = subs / f"honest-{path.stem[:2]}"
        student.mkdir()
        nbformat.write(nb if full else sliced(nb), student / f"Copy of {path.name}")
    out = tmp_path_factory.mktemp("grades") / "out"
    grader = Grader(ROOT / "book", jobs=2, cell_timeout=600 if full else 300,
                    notebook_timeout=1800 if full else 600, progress=False)
    grader.grade(subs, out)
    return read_grades(out / "grades.csv"), out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_honest_submission_earns_full_points(graded_book, path):
    rows, out = graded_book
    row = rows[f"honest-{path.stem[:2]}"]
    exercises = find_exercises(nbformat.read(path, as_version=4))
    got = {e.label: float(row[e.label]) for e in exercises}
    assert got == {e.label: e.points for e in exercises}, row["notes"]
    state = next((out / "state").glob(f"honest-{path.stem[:2]}-*.json")).read_text()
    assert '"status": "correct"' in state
