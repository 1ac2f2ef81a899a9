"""Shared pieces of the grader's tests: a small reference chapter, honest submissions built
from a reference's solutions, the sandbox requirement, process and file checks."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mmbook.grade import find_exercises, student_edition

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3",
                             "language": "python"}}


def md(text: str):
    return new_markdown_cell(text)


def code(src: str, label: str | None = None, points: float | None = None):
    meta = {"mmbook": {"exercise": label, "points": points}} if label else {}
    return new_code_cell(src, metadata=meta)


def exercise(label: str, text: str = "Do it.") -> list:
    return [md(f"```{{exercise-start}}\n:label: {label}\n```\n{text}\n```{{exercise-end}}\n```")]


def solution(label: str, src: str) -> list:
    return [md(f"```{{solution-start}} {label}\n:class: dropdown\n```"), code(src),
            md("```{solution-end}\n```")]


def notebook(cells):
    return new_notebook(cells=cells, metadata=dict(KERNELSPEC))


# ----------------------------------------------------------------------------- a small chapter
RIGHT = {
    "ex-flops": "lstm_flops = 40 * 2 * 4 * 32 * (64 + 32)",
    "ex-kd": '''def kd(s, t, T):
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1),
                    reduction="batchmean") * T ** 2''',
    "ex-two": "small_flops = 3 * 2 * 4 * 4 * (8 + 4)\nbig_flops = 5 * 2 * 4 * 8 * (16 + 8)",
    "ex-mom": '''def momentum_step(theta, grad, buf, lr, mu):
    buf = grad.clone() if buf is None else mu * buf + grad
    return theta - lr * buf, buf''',
}
STARTER = {
    "ex-flops": "lstm_flops = None  # your answer: an int",
    "ex-kd": "def kd(s, t, T):\n    return None  # your code",
    "ex-two": "small_flops = None\nbig_flops = None",
    "ex-mom": "def momentum_step(theta, grad, buf, lr, mu):\n    return theta, buf  # your code",
}
CHECKS = {
    "ex-flops": "ch15.check_lstm_flops(lstm_flops)",
    "ex-kd": "ch15.check_distillation_loss(kd)",
    "ex-two": ("ch15.check_lstm_flops(small_flops, input_size=8, hidden_size=4, frames=3)\n"
               "ch15.check_lstm_flops(big_flops, input_size=16, hidden_size=8, frames=5)"),
    "ex-mom": "ch05.check_momentum_step(momentum_step)",
}
POINTS = {"ex-flops": 2, "ex-kd": 1, "ex-two": 2, "ex-mom": 1}
SETUP = "import torch\nimport torch.nn.functional as F\nfrom mmbook.exercises import ch05, ch15"


def small_chapter(labels=("ex-flops", "ex-kd", "ex-two", "ex-mom")):
    """The teacher's edition of a small chapter: graded exercises, and a written one."""
    cells = [md("# 15. A small chapter\n\nFor the grader's tests."), code(SETUP)]
    for label in labels:
        cells += exercise(label)
        cells.append(code(f"{STARTER[label]}\n{CHECKS[label]}", label, POINTS[label]))
        cells += solution(label, f"{RIGHT[label]}\nassert {CHECKS[label].splitlines()[0]}")
    cells.append(md("```{exercise}\n:label: ex-written\n\nWhy?\n```\n```{solution} "
                    "ex-written\n:class: dropdown\n\nBecause.\n```"))
    cells.append(md("## Summary"))
    return notebook(cells)


def submission(reference, answers: dict | None = None, extra: dict | None = None):
    """The student edition of ``reference`` with the starter cell of each label in
    ``answers`` replaced by that code (kept checker call included); ``extra``: cells
    inserted before a label's exercise (``{label: [cells]}``, label ``"end"`` appends)."""
    nb = student_edition(reference)
    answers, extra = answers or {}, extra or {}
    for ex in find_exercises(nb):
        if ex.label in answers:
            call = "\n".join(f"{m}.{f}({a})" for m, f, a in ex.checks)
            nb.cells[ex.cell].source = f"{answers[ex.label]}\n{call}"
    for label in [lb for lb in extra if lb != "end"]:
        start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                     and f":label: {label}" in c.source)
        nb.cells[start:start] = extra[label]
    nb.cells += extra.get("end", [])
    return nb


def honest_submission(reference):
    """The student edition of ``reference``, the teacher's solution code for each exercise
    written below its starter cell's given lines (what an honest, correct student hands
    in: the starter's imports and given values stay, the answer follows)."""
    solutions = {}
    cells = reference.cells
    for i, cell in enumerate(cells):
        m = re.search(r"\{solution-start\}\s*(\S+)", cell.source) if cell.cell_type == \
            "markdown" else None
        if not m:
            continue
        body = []
        for nxt in cells[i + 1:]:
            if nxt.cell_type == "markdown" and "{solution-end}" in nxt.source:
                break
            if nxt.cell_type == "code":
                body.append(nxt.source)
        solutions[m.group(1)] = "\n\n".join(body)
    nb = student_edition(reference)
    for ex in find_exercises(nb):
        if solutions.get(ex.label):
            nb.cells[ex.cell].source += "\n\n" + solutions[ex.label]
    return nb


# ----------------------------------------------------------------------------- chapter slices
def _names(src: str) -> tuple:
    """``(defined, free)``: the names a cell binds at top level, and those it reads from
    the notebook's namespace (at top level or from inside its functions)."""
    import builtins
    import symtable

    try:
        table = symtable.symtable(src, "<cell>", "exec")
    except SyntaxError:
        return set(), set()
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned()
               or s.is_imported()}
    free = set()

    def walk(t):
        for sym in t.get_symbols():
            if sym.is_referenced() and (t.get_type() == "module" or sym.is_global()):
                free.add(sym.get_name())
        for child in t.get_children():
            walk(child)

    walk(table)
    return defined, free - set(dir(builtins))


def sliced(nb):
    """``nb`` cut to what its exercises need: the cells up to its first code cell that
    imports, the earlier code cells that define a name the exercise cells read
    (transitively, the latest definition only), and everything from the exercises on."""
    exercises = find_exercises(nb)
    first = min(e.cell for e in exercises) if exercises else len(nb.cells)
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                 and "{exercise" in c.source)
    setup = next((i for i, c in enumerate(nb.cells[:first]) if c.cell_type == "code"
                  and "import" in c.source and "google.colab" not in c.source), 0)
    keep = set(range(0, setup + 1)) | set(range(start, len(nb.cells)))
    needed = set()
    for i in range(start, len(nb.cells)):
        if nb.cells[i].cell_type == "code":
            needed |= _names(nb.cells[i].source)[1]
    for i in range(start - 1, setup, -1):
        if nb.cells[i].cell_type != "code":
            continue
        defined, free = _names(nb.cells[i].source)
        if defined & needed:
            keep.add(i)
            needed = (needed - defined) | free
    out = nbformat.reads(nbformat.writes(nb), as_version=4)
    out.cells = [c for i, c in enumerate(out.cells) if i in keep]
    return out


# ----------------------------------------------------------------------------- the machine
def require_sandbox():
    """Make sure the sandbox works (installing bubblewrap with `make sandbox` when root).

    Fails, never skips silently; skips loudly only when the kernel forbids namespaces."""
    from mmbook import sandbox

    if sandbox.sandbox_problem() and shutil.which("bwrap") is None and os.geteuid() == 0:
        subprocess.run(["make", "-s", "sandbox"], cwd=ROOT, check=False)
        sandbox._PROBLEM.clear()
    problem = sandbox.sandbox_problem()
    if problem and "cannot create its namespaces" in problem:
        pytest.skip(f"THE GRADER'S SANDBOX CANNOT RUN ON THIS MACHINE: {problem}")
    if problem:
        pytest.fail(f"the grader's sandbox is not available: {problem}")


def processes_with(marker: str) -> list:
    """PIDs of the processes whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and int(entry) != os.getpid():
                found.append(int(entry))
    return found


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def grade_cli(*args, env=None, timeout=900):
    """Run ``python -m mmbook.grade`` as a teacher would; returns the CompletedProcess."""
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mmbook.grade", *map(str, args)],
                          capture_output=True, text=True, env=full, timeout=timeout,
                          cwd=ROOT)


def read_grades(path) -> dict:
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}
