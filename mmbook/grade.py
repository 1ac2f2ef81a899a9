"""The classroom edition of the book: student notebooks, and a grader for their work.

**Student edition.** :func:`student_edition` removes every solution from a chapter: the
gated solutions (from ``{solution-start}`` to ``{solution-end}``, the code cells between
them included) and the plain ``{solution}`` blocks. The exercises and their starter cells
stay, and their checkers (``mmbook.exercises``) work as in the book.
``make student`` writes the whole edition under ``_build/student/``.

**Grading.** ``python -m mmbook.grade SUBMISSIONS/ --out grades.csv`` grades a folder of
submitted notebooks: ``SUBMISSIONS/<student>/<chapter>.ipynb`` (or
``SUBMISSIONS/<student>.ipynb``). Each notebook is executed in its own process and kernel,
in a temporary copy of its folder, with a time limit per cell (a cell that runs over it is
interrupted and the notebook goes on) and per notebook (past it the process is killed).
Errors do not stop the execution. Then the grader re-runs, in the same kernel, each
exercise's checks on the student's objects, with the checker modules freshly reloaded, so a
printed "Correct!" earns nothing by itself. An exercise earns its points when all its
checks pass, and zero otherwise, with the checker's message as feedback; a missing or
crashing cell, or a notebook that runs out of time, gets zero for the exercises it affects,
never a crashed grader. The result is one CSV row per student, with two columns per
exercise (points, feedback) and the total.

An exercise is found by its starter cell: the first code cell after a markdown cell that
opens ``{exercise-start}`` with a ``:label:``. Its checks are the ``chNN.check_...(...)``
calls in that cell; its points are in the cell's metadata,
``{"mmbook": {"exercise": label, "points": n}}`` (1 if absent).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Exercise", "find_exercises", "student_edition", "write_student_edition",
           "grade_notebook", "grade_folder", "main"]

_LABEL = re.compile(r"```\{exercise-start\}\s*\n:label:\s*(\S+)")
_CHECK = re.compile(r"\b(ch\d\d)\.(check_\w+)\(")
_MARK = "@@MMBOOK-GRADE@@"


@dataclass
class Exercise:
    """One graded exercise: its label, points, starter cell and checker calls."""

    label: str
    points: float
    cell: int
    checks: list = field(default_factory=list)  # [(module, function, arguments source)]


def _source(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _call_arguments(text: str, start: int) -> str:
    """The source between the parenthesis opened just before ``start`` and its match."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise ValueError(f"unbalanced parentheses in a checker call: {text[start - 30:start + 30]!r}")


def find_exercises(nb) -> list:
    """The graded exercises of a notebook (see the module docstring for the convention).

    Args:
        nb: a notebook (``nbformat.NotebookNode`` or the JSON dict).

    Returns:
        a list of :class:`Exercise`, in order.
    """
    found, pending = [], None
    for i, cell in enumerate(nb["cells"]):
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            labels = _LABEL.findall(text)
            if labels:
                pending = labels[-1]
            continue
        if pending is None:
            continue
        meta = cell.get("metadata", {}).get("mmbook", {})
        checks = [(m.group(1), m.group(2), _call_arguments(text, m.end()))
                  for m in _CHECK.finditer(text)]
        if checks:
            found.append(Exercise(meta.get("exercise", pending), float(meta.get("points", 1)),
                                  i, checks))
        pending = None
    return found


# ----------------------------------------------------------------------------- student edition
_GATED = re.compile(r"```\{solution-start\}.*?(```\{solution-end\}\s*\n?```|\Z)", re.S)
_PLAIN = re.compile(r"```\{solution\}.*?\n```[ \t]*(\n|\Z)", re.S)
_END = re.compile(r"\A.*?```\{solution-end\}\s*\n?```[ \t]*\n?", re.S)


def student_edition(nb):
    """A copy of ``nb`` with every solution removed (exercises and starter cells kept).

    Raises:
        ValueError: a ``{solution-start}`` that is never closed.
    """
    import copy

    nb = copy.deepcopy(nb)
    cells, inside = [], False
    for cell in nb["cells"]:
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            if inside:
                if "{solution-end}" not in text:
                    continue
                text, inside = _END.sub("", text, count=1), False
            text = _PLAIN.sub("", text)
            if "{solution-start}" in text:
                start = text.index("```{solution-start}")
                rest = text[start:]
                if "{solution-end}" in rest:
                    text = text[:start] + _GATED.sub("", rest)
                else:
                    text, inside = text[:start], True
            if not text.strip():
                continue
            cell["source"] = text
        elif inside:
            continue
        cell.setdefault("metadata", {})
        cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} is never closed by a {solution-end}")
    nb["cells"] = cells
    return nb


def write_student_edition(src_dir, out_dir) -> list:
    """Write the student edition of every ``*.ipynb`` in ``src_dir`` to ``out_dir``.

    Returns:
        the paths written.
    """
    import nbformat

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(Path(src_dir).glob("*.ipynb")):
        nb = student_edition(nbformat.read(path, as_version=4))
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


# ----------------------------------------------------------------------------- grading
def _grading_cell(exercises) -> str:
    """Source of the cell the grader appends: re-run each check, print JSON results."""
    calls = [[ex.label, [[mod, fn, args] for mod, fn, args in ex.checks]] for ex in exercises]
    return f'''
import importlib as _il, json as _json
_results = {{}}
for _label, _checks in {calls!r}:
    _ok, _msgs = True, []
    for _mod, _fn, _args in _checks:
        try:
            _m = _il.reload(_il.import_module("mmbook.exercises." + _mod))
            _fb = eval(_m.__name__.rsplit(".", 1)[1] + "." + _fn + "(" + _args + ")",
                       {{**globals(), _mod: _m}})
            _ok = _ok and bool(getattr(_fb, "passed", False))
            _msgs.append(str(getattr(_fb, "message", _fb)))
        except Exception as _err:
            _ok = False
            _msgs.append(f"{{type(_err).__name__}}: {{_err}}")
    _results[_label] = [_ok, " | ".join(_msgs)]
print("{_MARK}" + _json.dumps(_results))
'''


def _execute_one(path: str, cell_timeout: int) -> dict:
    """Execute one submission and its grading cell (runs in a child process)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    exercises = find_exercises(nb)
    nb.cells.append(nbformat.v4.new_code_cell(_grading_cell(exercises)))
    client = NotebookClient(nb, timeout=cell_timeout, allow_errors=True,
                            interrupt_on_timeout=True, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    try:
        client.execute()
    except Exception as err:  # a dead kernel: report, grade what can be graded (nothing)
        return {"error": f"{type(err).__name__}: {err}"}
    for out in nb.cells[-1].get("outputs", []):
        text = out.get("text", "")
        if _MARK in text:
            return {"results": json.loads(text.split(_MARK, 1)[1].strip().splitlines()[0])}
    return {"error": "the grading cell produced no result (the kernel was interrupted?)"}


def grade_notebook(path, reference=None, cell_timeout: int = 60,
                   notebook_timeout: int = 600) -> dict:
    """Grade one submitted notebook.

    Args:
        path: the submission (``.ipynb``).
        reference: the chapter as distributed (its exercises and points); default the
            submission's own cells. Exercises the student deleted still count (zero).
        cell_timeout: seconds a cell may run before it is interrupted.
        notebook_timeout: seconds the whole notebook may run before it is stopped.

    Returns:
        ``{label: (points, max_points, feedback)}`` for every exercise.
    """
    import nbformat

    path = Path(path)
    ref = nbformat.read(reference or path, as_version=4)
    expected = find_exercises(ref)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / path.name
        shutil.copy(path, work)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "mmbook.grade", "--execute-one", str(work),
                 "--cell-timeout", str(cell_timeout)],
                capture_output=True, text=True, timeout=notebook_timeout, cwd=tmp)
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith(_MARK)]
            outcome = json.loads(lines[-1][len(_MARK):]) if lines else {
                "error": f"the grader's child failed: {done.stderr.strip()[-500:]}"}
        except subprocess.TimeoutExpired:
            outcome = {"error": f"the notebook ran over its {notebook_timeout} s limit"}
    results = outcome.get("results", {})
    grades = {}
    for ex in expected:
        if ex.label in results:
            ok, message = results[ex.label]
        else:
            ok, message = False, outcome.get("error", "the exercise's cell is missing")
        grades[ex.label] = (ex.points if ok else 0.0, ex.points, message)
    return grades


def _submissions(folder: Path) -> list:
    """``[(student, notebook path)]`` for ``folder/<student>/*.ipynb`` or
    ``folder/<student>.ipynb``."""
    subs = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            subs += [(entry.name, p) for p in sorted(entry.glob("*.ipynb"))]
        elif entry.suffix == ".ipynb":
            subs.append((entry.stem, entry))
    return subs


def grade_folder(folder, out_csv, reference_dir=None, cell_timeout: int = 60,
                 notebook_timeout: int = 600) -> list:
    """Grade every submission in ``folder`` and write one CSV row per student.

    Args:
        folder: ``<student>/<chapter>.ipynb`` or ``<student>.ipynb`` files.
        out_csv: the CSV to write: ``student``, then ``<label> points`` and
            ``<label> feedback`` per exercise, then ``total`` and ``max``.
        reference_dir: folder of the distributed chapters (matched by file name); default
            each submission's own cells.
        cell_timeout, notebook_timeout: see :func:`grade_notebook`.

    Returns:
        the rows written (dicts).

    Raises:
        ValueError: ``folder`` holds no notebook.
    """
    folder = Path(folder)
    subs = _submissions(folder)
    if not subs:
        raise ValueError(f"folder {folder} holds no submitted notebook (*.ipynb)")
    rows, labels = {}, []
    for student, path in subs:
        ref = None
        if reference_dir is not None and (Path(reference_dir) / path.name).exists():
            ref = Path(reference_dir) / path.name
        grades = grade_notebook(path, ref, cell_timeout, notebook_timeout)
        row = rows.setdefault(student, {"student": student})
        for label, (pts, max_pts, message) in grades.items():
            if label not in labels:
                labels.append(label)
            row[f"{label} points"] = pts
            row[f"{label} feedback"] = message
            row["total"] = row.get("total", 0.0) + pts
            row["max"] = row.get("max", 0.0) + max_pts
    columns = ["student"] + [f"{lb} {k}" for lb in labels for k in ("points", "feedback")]
    columns += ["total", "max"]
    with open(out_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows.values())
    return list(rows.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmbook.grade",
                                     description="Grade a folder of submitted notebooks.")
    parser.add_argument("submissions", nargs="?", help="folder of submitted notebooks")
    parser.add_argument("--out", default="grades.csv", help="CSV file (or, with "
                        "--student-edition, the output folder)")
    parser.add_argument("--reference", default=None, help="folder of the distributed chapters")
    parser.add_argument("--cell-timeout", type=int, default=60)
    parser.add_argument("--notebook-timeout", type=int, default=600)
    parser.add_argument("--student-edition", metavar="SRC", default=None,
                        help="write the student edition of the notebooks in SRC to --out")
    parser.add_argument("--execute-one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_one:
        print(_MARK + json.dumps(_execute_one(args.execute_one, args.cell_timeout)))
        return 0
    if args.student_edition:
        for p in write_student_edition(args.student_edition, args.out):
            print("wrote", p)
        return 0
    if not args.submissions:
        parser.error("give the folder of submissions")
    rows = grade_folder(args.submissions, args.out, args.reference, args.cell_timeout,
                        args.notebook_timeout)
    for row in rows:
        print(f"{row['student']}: {row.get('total', 0):g} / {row.get('max', 0):g}")
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
