"""The classroom edition of the book, and a grader a teacher can trust with real grades.

**Student edition.** :func:`student_edition` removes every solution from a chapter: the
gated solutions (from ``{solution-start}`` to ``{solution-end}``, the code cells between
them included) and the plain ``{solution}`` blocks. The exercises and their starter cells
stay, and their checkers (``mmbook.exercises``) work as in the book.
``make student`` writes the whole edition under ``_build/student/``.

**Grading**::

    python -m mmbook.grade SUBMISSIONS/ --reference book --out grades/ \\
        [--roster class.csv] [--chapters 05 06] [--jobs 2] [--resume | --force]

``SUBMISSIONS/<student>/<any name>.ipynb`` (or ``SUBMISSIONS/<student>.ipynb``). What it
guarantees (the teacher's guide, ``book/teacher_guide.md``, says it in full):

* **isolation**: each notebook runs in its own sandbox (:mod:`mmbook.sandbox`); without
  one the grader refuses to run, unless ``--unsafe``;
* **unforgeable checks**: the kernel only *produces* answers, as data; the grader's own
  process *judges* them (:mod:`mmbook.exercises.grading`), with the checker calls, inputs
  and points of the reference edition (the teacher's book), matched by exercise label,
  never by file name, plus hidden inputs drawn for this grading run;
* **exact points**: each exercise is judged at its own cell, with the namespace as the
  student left it there; a crash later costs nothing; an exercise with several checks
  earns a share per check; written-answer exercises are listed for grading by hand;
* **nothing lost**: ``grades.csv`` (UTF-8) is rewritten atomically after each student;
  a run can be resumed; a class list gives 0 and a reason to a missing student or
  notebook; duplicates and identical answers are reported (``report.md``);
* **feedback**: ``feedback/<student>/<chapter>.md`` per student and chapter, naming each
  mistake without the expected value, and ``executed/<student>/<chapter>.ipynb`` for the
  teacher.
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import datetime
import hashlib
import json
import os
import re
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Exercise", "Chapter", "find_exercises", "written_exercises", "read_reference",
           "locate_exercises", "student_edition", "write_student_edition", "Grader",
           "grade_folder", "main"]

_LABEL = re.compile(r"```\{exercise-start\}[^\n]*\n:label:\s*(\S+)")
_ANY_LABEL = re.compile(r"```\{exercise(?:-start)?\}[^\n]*\n:label:\s*(\S+)")
_WRITTEN = re.compile(r"```\{exercise\}[^\n]*\n:label:\s*(\S+)")
_CHECK = re.compile(r"\b(ch\d\d)\.(check_\w+)\(")
_REGION_END = re.compile(r"\{(solution-start|solution|exercise-start|exercise)\}")
MAX_NOTEBOOK_BYTES = 20 << 20


@dataclass
class Exercise:
    """One automatically graded exercise: its label, points, starter cell and checker calls
    (``[(module, function, arguments source)]``)."""

    label: str
    points: float
    cell: int
    checks: list = field(default_factory=list)

    @property
    def calls(self) -> list:
        """The checker calls as the grader's plan holds them (literals vs answers)."""
        from .exercises.grading import parse_call

        return [{"module": m, "function": f, **parse_call(a)} for m, f, a in self.checks]


@dataclass
class Chapter:
    """A chapter of the reference edition: its exercises, graded and written."""

    name: str
    path: Path
    title: str
    exercises: list
    written: list
    digest: str

    @property
    def labels(self) -> set:
        return {e.label for e in self.exercises} | set(self.written)


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
    """The automatically graded exercises of a notebook.

    An exercise is a markdown cell opening ``{exercise-start}`` with a ``:label:``; its
    starter cell is the first code cell after it, before its solution, that calls a checker
    (``chNN.check_...(...)``); its points are in that cell's metadata,
    ``{"mmbook": {"exercise": label, "points": n}}`` (1 if absent).

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
            elif _REGION_END.search(text):
                pending = None
            continue
        if pending is None:
            continue
        meta = cell.get("metadata", {}).get("mmbook", {})
        checks = [(m.group(1), m.group(2), _call_arguments(text, m.end()))
                  for m in _CHECK.finditer(text)]
        if checks:
            found.append(Exercise(pending, float(meta.get("points", 1)), i, checks))
            pending = None
    return found


def written_exercises(nb) -> list:
    """Labels of the exercises no checker grades (``{exercise}`` blocks, and gated ones
    without a checker call): the teacher grades them by hand."""
    graded = {e.label for e in find_exercises(nb)}
    labels = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            labels += [lb for lb in _ANY_LABEL.findall(_source(cell)) if lb not in graded]
    return labels


def read_reference(folder) -> list:
    """The chapters (with at least one exercise) of the reference edition in ``folder``.

    Raises:
        ValueError: no chapter with exercises, or one label in two chapters.
    """
    import nbformat

    chapters, seen = [], {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        raw = path.read_bytes()
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        exercises, written = find_exercises(nb), written_exercises(nb)
        if not exercises and not written:
            continue
        title = next((ln.lstrip("# ").strip() for c in nb.cells if c.cell_type == "markdown"
                      for ln in _source(c).splitlines() if ln.startswith("# ")), path.stem)
        chapter = Chapter(path.stem, path, title, exercises, written,
                          hashlib.sha256(raw).hexdigest())
        for label in chapter.labels:
            if label in seen:
                raise ValueError(f"the label {label} is in {seen[label]} and {path.name}")
            seen[label] = path.name
        for ex in exercises:
            ex.calls  # noqa: B018 -- fail now on a call the grader cannot read
        chapters.append(chapter)
    if not chapters:
        raise ValueError(f"{folder} holds no chapter with exercises (*.ipynb)")
    return chapters


def _labels_in(nb) -> set:
    labels = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            labels |= set(_ANY_LABEL.findall(_source(cell)))
        meta = cell.get("metadata", {}).get("mmbook", {})
        if isinstance(meta, dict) and isinstance(meta.get("exercise"), str):
            labels.add(meta["exercise"])
    return labels


def locate_exercises(nb, labels) -> tuple:
    """Where each exercise of ``labels`` is in a submission (judged right after that cell).

    The cell whose metadata carries the label (the last one, if the student copied it);
    else the first code cell calling a checker after the markdown cell with the label;
    else the last code cell before the next exercise.

    Returns:
        ``({label: cell index}, notes)``; a label not found is absent.
    """
    notes, where = [], {}
    cells = nb.get("cells", [])
    for label in labels:
        tagged = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"
                  and isinstance(c.get("metadata", {}).get("mmbook"), dict)
                  and c["metadata"]["mmbook"].get("exercise") == label]
        if tagged:
            where[label] = tagged[-1]
            if len(tagged) > 1:
                notes.append(f"{label}: {len(tagged)} cells carry this exercise; the last one "
                             f"(cell {tagged[-1]}) was graded")
            continue
        start = next((i for i, c in enumerate(cells) if c.get("cell_type") == "markdown"
                      and label in _ANY_LABEL.findall(_source(c))), None)
        if start is None:
            continue
        region = []
        for i in range(start + 1, len(cells)):
            c = cells[i]
            if c.get("cell_type") == "markdown" and _REGION_END.search(_source(c)):
                break
            if c.get("cell_type") == "code":
                region.append(i)
        calling = [i for i in region if _CHECK.search(_source(cells[i]))]
        if calling or region:
            where[label] = (calling or region[-1:])[0]
    return where, notes


# ----------------------------------------------------------------------------- student edition
_GATED = re.compile(r"```\{solution-start\}.*?(```\{solution-end\}\s*\n?```|\Z)", re.S)
_PLAIN = re.compile(r"```\{solution\}.*?\n```[ \t]*(\n|\Z)", re.S)
_END = re.compile(r"\A.*?```\{solution-end\}\s*\n?```[ \t]*\n?", re.S)


def student_edition(nb):
    """A copy of ``nb`` with every solution removed (exercises and starter cells kept).

    Raises:
        ValueError: a ``{solution-start}`` that is never closed.
    """
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


def _has_solutions(path: Path) -> bool:
    try:
        return "{solution" in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True


def write_student_edition(src_dir, out_dir, force: bool = False) -> list:
    """Write the student edition of every ``*.ipynb`` in ``src_dir`` to ``out_dir``.

    Raises:
        ValueError: ``out_dir`` is ``src_dir`` (it would overwrite the book), or, without
            ``force``, a notebook there holds solutions (a teacher's copy, not an edition
            written here before).

    Returns:
        the paths written.
    """
    import nbformat

    src, out = Path(src_dir), Path(out_dir)
    if out.resolve() == src.resolve():
        raise ValueError(f"--out {out_dir} is the book itself: the student edition would "
                         "overwrite the teacher's notebooks. Choose another folder.")
    paths = sorted(src.glob("*.ipynb"))
    if not force:
        kept = [str(out / p.name) for p in paths if (out / p.name).exists()
                and _has_solutions(out / p.name)]
        if kept:
            raise ValueError(f"{kept[0]} holds solutions: it is not a student edition, and "
                             "would be overwritten (use --force if you mean it)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = student_edition(nbformat.read(path, as_version=4))
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


# ----------------------------------------------------------------------------- grading
def _slug(name: str) -> str:
    slug = re.sub(r"[^\w.-]+", "_", name, flags=re.UNICODE).strip("._") or "student"
    return slug[:80]


def _normalised(src: str) -> str:
    """A digest of the code without comments or layout (for spotting identical answers)."""
    try:
        text = ast.dump(ast.parse(src))
    except (SyntaxError, ValueError, RecursionError):
        text = " ".join(src.split())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _notebooks(folder: Path) -> dict:
    """``{student: [notebook paths]}`` for ``folder/<student>/**.ipynb`` and
    ``folder/<student>.ipynb``."""
    found: dict = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            paths = sorted(p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints"
                           not in p.parts and not any(q.startswith(".") for q in
                                                     p.relative_to(entry).parts))
            if paths:
                found.setdefault(entry.name, []).extend(paths)
        elif entry.suffix == ".ipynb":
            found.setdefault(entry.stem, []).append(entry)
    return found


def read_roster(path) -> list:
    """Student ids from a class list: a text file (one per line) or a CSV with a
    ``student`` (or ``id``) column, else its first column. ``#`` lines are skipped."""
    text = Path(path).read_text(encoding="utf-8-sig")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    rows = list(csv.reader(lines))
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(k) for k in ("student", "id") if k in header), None)
    if column is not None:
        rows = rows[1:]
    students = []
    for row in rows:
        if row and row[column or 0].strip() and row[column or 0].strip() not in students:
            students.append(row[column or 0].strip())
    return students


class Grader:
    """Grades submissions against a reference edition (see the module docstring).

    Args:
        reference: folder of the reference edition (the teacher's book).
        chapters: chapter names or numbers to grade (default: every chapter a submission
            matches).
        jobs: notebooks graded at once.
        cell_timeout, notebook_timeout: seconds.
        unsafe: run without the sandbox.
        secret: the hidden-input offset (default: drawn now).
        limits: the sandbox's :class:`mmbook.sandbox.Limits`.
        progress: show a progress bar.
    """

    def __init__(self, reference, chapters=None, jobs: int = 1, cell_timeout: int = 300,
                 notebook_timeout: float = 1200, unsafe: bool = False,
                 secret: int | None = None, limits=None, progress: bool = True,
                 seed: int = 0):
        self.chapters = read_reference(reference)
        self.reference = Path(reference)
        self.wanted = chapters
        self.jobs = max(1, int(jobs))
        self.cell_timeout, self.notebook_timeout = int(cell_timeout), float(notebook_timeout)
        self.unsafe, self.limits, self.progress = unsafe, limits, progress
        self.secret = int(secret) if secret is not None else 1 + secrets.randbelow(2 ** 31)
        self.seed = seed
        self._judge_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ matching
    def chapter_of(self, labels: set):
        """The chapter sharing the most labels with ``labels`` (``None`` if none)."""
        best = max(self.chapters, key=lambda c: len(c.labels & labels))
        return best if best.labels & labels else None

    def _select(self, names) -> list:
        if not names:
            return []
        out = []
        for name in names:
            hits = [c for c in self.chapters if c.name == name or c.name.split("_")[0] ==
                    str(name).zfill(2)]
            if not hits:
                raise ValueError(f"--chapters {name}: no such chapter with exercises in "
                                 f"{self.reference} ({', '.join(c.name for c in self.chapters)})")
            out += [c for c in hits if c not in out]
        return out

    # ------------------------------------------------------------------ one notebook
    def grade_notebook(self, path: Path, chapter: Chapter, sandbox, slot: int = 0) -> dict:
        """Run and judge one submitted notebook; returns its result (a JSON-able dict)."""
        import nbformat

        result = {"file": str(path), "chapter": chapter.name, "notes": [], "exercises": {}}
        try:
            raw = path.read_bytes()
            if len(raw) > MAX_NOTEBOOK_BYTES:
                raise ValueError(f"the file is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        except Exception as err:
            why = f"the notebook could not be read ({type(err).__name__}: {str(err)[:200]})"
            result["notes"].append(why)
            return self._zero(result, chapter, why)
        where, notes = locate_exercises(nb, [e.label for e in chapter.exercises])
        result["notes"] += notes
        for cell in nb.cells:  # the outputs the student saved play no part
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        after: dict = {}
        for label, index in where.items():
            after.setdefault(index, []).append(
                '__import__("mmbook.exercises.grading", fromlist=["produce"]).produce('
                f'"/grader/plan.json", {label!r}, "/out/answers")')
        plan = json.dumps({"salt": self.secret, "exercises": {
            e.label: {"calls": e.calls} for e in chapter.exercises}})
        files, events = {}, []
        if where:
            run = sandbox.run(nbformat.writes(nb).encode("utf-8"), plan,
                              {i: "\n".join(code) for i, code in after.items()}, slot=slot,
                              cell_timeout=self.cell_timeout,
                              notebook_timeout=self.notebook_timeout,
                              stop_after=max(where.values()))
            files, result["seconds"] = run.files, round(run.seconds, 1)
            if run.error:
                result["notes"].append(run.error)
            elif not self._finished(files):
                err = files.get("runner.err", b"").decode("utf-8", "replace").strip()
                why = err.splitlines()[-1][:200] if err else ""
                result["notes"].append(
                    f"the notebook did not finish: it ran past {self.notebook_timeout:g} s, "
                    "or its run failed (" + (why or "no report: a notebook that fills /out, "
                                             "where the results go, leaves none")
                    + "); the exercises after the point it reached got 0")
            events = self._events(files)
            result["notes"] += [f"cell {e.get('cell')}: {str(e.get('text'))[:200]}"
                                for e in events if e.get("event") in ("restarted", "timeout")]
            if "executed.ipynb" in files:
                result["executed"] = files["executed.ipynb"]
        result["code"] = {label: _normalised(_source(nb.cells[i])) for label, i in where.items()}
        with self._judge_lock:
            for ex in chapter.exercises:
                result["exercises"][ex.label] = self._judge(ex, where.get(ex.label), files,
                                                            events)
        return result

    @staticmethod
    def _finished(files: dict) -> bool:
        return b'"events"' in files.get("runner.json", b"")

    @staticmethod
    def _events(files: dict) -> list:
        try:
            lines = files.get("runner.json", b"").decode("utf-8").splitlines()
            events = json.loads(lines[-1]).get("events", []) if lines else []
            return [e for e in events if isinstance(e, dict)][:1000]
        except (ValueError, UnicodeDecodeError, AttributeError):
            return []

    def _judge(self, ex: Exercise, cell, files: dict, events: list) -> dict:
        from .exercises.grading import judge_call, read_answers

        out = {"points": 0.0, "max": ex.points}
        if cell is None:
            return {**out, "status": "missing",
                    "message": "the exercise's cell is not in the notebook"}
        record, arrays = read_answers(files, ex.label)
        trouble = [e for e in events if e.get("cell") == cell]
        before = [e for e in events if isinstance(e.get("cell"), int) and e["cell"] < cell
                  and e.get("event") in ("timeout", "restarted")]
        said = "; ".join(f"{e.get('event')}: {str(e.get('text'))[:200]}" for e in trouble)
        if record is None:
            why = ("the notebook stopped before this exercise was checked"
                   + (f" ({said})" if said else "")
                   + (f" (an earlier cell: {before[-1].get('text')})" if before else ""))
            return {**out, "status": "error", "message": why}
        calls = record.get("calls") if isinstance(record.get("calls"), list) else []
        passed, messages, pending = 0, [], True
        for j, call in enumerate(ex.calls):
            entry = calls[j] if j < len(calls) else None
            verdicts = judge_call(call, entry, arrays, self.secret)
            ok = all(v.passed for _, v in verdicts)
            passed += ok
            pending = pending and verdicts[0][1].pending
            failing = next(((run, v) for run, v in verdicts if not v.passed), verdicts[0])
            prefix = "on the grader's hidden inputs: " if failing[0] == "hidden" else ""
            messages.append(prefix + failing[1].message)
        points = round(ex.points * passed / len(ex.calls), 4)
        status = ("correct" if passed == len(ex.calls) else "partly correct" if passed
                  else "not attempted" if pending else "wrong")
        message = " | ".join(messages)
        if said and status != "correct":
            message += f" (the cell: {said})"
        restarts = [e for e in before if e.get("event") == "restarted"]
        if restarts and status != "correct":
            message += (f" (the kernel was restarted at cell {restarts[-1].get('cell')}, before "
                        "this exercise: what the cells above it defined was lost)")
        return {**out, "points": points, "status": status, "message": message}

    @staticmethod
    def _zero(result: dict, chapter: Chapter, why: str) -> dict:
        for ex in chapter.exercises:
            result["exercises"][ex.label] = {"points": 0.0, "max": ex.points,
                                             "status": "missing", "message": why}
        return result

    # ------------------------------------------------------------------ a class
    def grade(self, submissions, out, roster=None, resume: bool = False,
              force: bool = False) -> list:
        """Grade a folder of submissions into the folder ``out``; returns the CSV rows."""
        from .sandbox import Limits, Sandbox

        submissions, out = Path(submissions), Path(out)
        _check_out(out, [submissions, self.reference], resume, force)
        found = _notebooks(submissions) if submissions.is_dir() else None
        if found is None:
            raise ValueError(f"{submissions} is not a folder")
        students = list(roster or [])
        extra = sorted(s for s in found if s not in students)
        students += extra
        if not students:
            raise ValueError(f"folder {submissions} holds no submitted notebook (*.ipynb)")
        matched = self._match(found)
        chapters = self._select(self.wanted) or [c for c in self.chapters if any(
            c.name in m for m in matched.values())]
        if not chapters:
            raise ValueError(f"no notebook in {submissions} matches a chapter of "
                             f"{self.reference} (none holds an exercise label of it)")
        config = {"reference": {c.name: c.digest for c in chapters},
                  "secret": self.secret, "roster": bool(roster)}
        config = _start(out, config, resume)
        self.secret = config["secret"]
        report = {"not on the roster": [s for s in extra if roster]}
        state = out / "state"
        done = {}
        for student in students:
            path = state / f"{_slug(student)}-{_digest(student)}.json"
            if resume and path.exists():
                try:
                    done[student] = json.loads(path.read_text(encoding="utf-8"))
                except ValueError:
                    pass
        todo = [s for s in students if s not in done]
        rows = {s: _row(done[s], chapters) for s in done}
        bar = _progress(len(todo), self.progress and bool(todo))
        limits = self.limits or Limits()
        env = {"MMBOOK_SEED": str(self.seed)}
        with Sandbox(limits=limits, unsafe=self.unsafe, env=env) as sandbox:
            slots = list(range(self.jobs))
            slot_lock = threading.Lock()

            def work(student):
                with slot_lock:
                    slot = slots.pop()
                try:
                    record = self._grade_student(student, found.get(student, []),
                                                 matched.get(student, {}), chapters, sandbox,
                                                 slot)
                finally:
                    with slot_lock:
                        slots.append(slot)
                with self._write_lock:
                    _save_student(out, student, record)
                    rows[student] = _row(record, chapters)
                    _write_csv(out / "grades.csv", [rows[s] for s in students if s in rows],
                               chapters)
                    bar.update(1, student, rows[student])
                return record

            with ThreadPoolExecutor(self.jobs) as pool:
                records = list(pool.map(work, todo))
        bar.close()
        for s, r in zip(todo, records):
            done[s] = r
        _write_csv(out / "grades.csv", [rows[s] for s in students], chapters)
        _write_report(out, students, done, chapters, report)
        return [rows[s] for s in students]

    def _match(self, found: dict) -> dict:
        """``{student: {chapter name: [paths]}}``, plus ``"?"`` for unmatched notebooks."""
        import nbformat

        matched = {}
        for student, paths in found.items():
            for path in paths:
                try:
                    raw = path.read_bytes()
                    nb = nbformat.reads(raw.decode("utf-8"), as_version=4) if len(
                        raw) <= MAX_NOTEBOOK_BYTES else {"cells": []}
                except Exception:
                    nb = {"cells": []}
                chapter = self.chapter_of(_labels_in(nb))
                key = chapter.name if chapter is not None else "?"
                matched.setdefault(student, {}).setdefault(key, []).append(str(path))
        return matched

    def _grade_student(self, student, paths, matched, chapters, sandbox, slot) -> dict:
        record = {"student": student, "chapters": {}, "notes": []}
        for bad in matched.get("?", []):
            record["notes"].append(f"{Path(bad).name} matches no chapter of the reference "
                                   "(no exercise label in it): not graded")
        if not paths:
            record["notes"].append("no submission")
        for chapter in chapters:
            candidates = [Path(p) for p in matched.get(chapter.name, [])]
            if not candidates:
                result = self._zero({"file": None, "chapter": chapter.name, "notes": [],
                                     "exercises": {}}, chapter,
                                    f"no notebook for {chapter.name}")
                record["chapters"][chapter.name] = result
                if paths:
                    record["notes"].append(f"no notebook for {chapter.name}")
                continue
            chosen = max(candidates, key=lambda p: (p.stat().st_mtime, p.name))
            if len(candidates) > 1:
                record["notes"].append(
                    f"{len(candidates)} notebooks for {chapter.name} "
                    f"({', '.join(p.name for p in candidates)}): graded the newest, "
                    f"{chosen.name}")
            result = self.grade_notebook(chosen, chapter, sandbox, slot)
            result["sha256"] = hashlib.sha256(chosen.read_bytes()).hexdigest()
            record["chapters"][chapter.name] = result
        return record


# ----------------------------------------------------------------------------- output files
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


_OURS = ("grades.csv", "report.md", "grading.json", "feedback", "executed", "state")


def _check_out(out: Path, protected: list, resume: bool, force: bool) -> None:
    """Refuse an output folder that is (or is inside, or holds) the book or the
    submissions, or that holds a previous output, unless --resume / --force."""
    if out.suffix.lower() == ".csv":
        raise ValueError(f"--out {out}: give a folder (grades.csv, feedback/ ... go in it)")
    for p in protected:
        if _inside(out, p) or _inside(p, out):
            raise ValueError(f"--out {out} overlaps {p}: the grader never writes into the "
                             "book or the submissions. Choose another folder.")
    if out.exists() and any(out.iterdir()) and not (resume or force):
        raise ValueError(f"{out} exists and is not empty: --resume to continue that "
                         "grading, --force to grade again from scratch (its grades.csv, "
                         "report.md, feedback/, executed/ and state/ are replaced)")
    if out.exists() and force and not resume:
        import shutil

        for name in _OURS:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()


def _start(out: Path, config: dict, resume: bool) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "grading.json"
    if resume and path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before.get("reference") != config["reference"]:
            raise ValueError(f"--resume: {out} was graded against another reference (or other "
                             "chapters); use --force to grade again from scratch")
        return before
    config = {**config, "started": datetime.datetime.now().isoformat(timespec="seconds")}
    _atomic_write(path, json.dumps(config, indent=1))
    return config


def _atomic_write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _columns(chapters) -> list:
    cols = ["student"]
    for c in chapters:
        cols += [e.label for e in c.exercises]
    return cols + ["total", "max", "to grade by hand", "notes"]


def _row(record: dict, chapters) -> dict:
    row = {"student": record["student"], "total": 0.0, "max": 0.0}
    notes = list(record.get("notes", []))
    for c in chapters:
        result = record["chapters"].get(c.name, {"exercises": {}})
        for e in c.exercises:
            got = result["exercises"].get(e.label, {"points": 0.0})
            row[e.label] = f"{got['points']:g}"
            row["total"] += got["points"]
            row["max"] += e.points
        notes += [f"{c.name}: {n}" for n in result.get("notes", [])]
    row["to grade by hand"] = " ".join(lb for c in chapters for lb in c.written)
    row["total"], row["max"] = f"{row['total']:g}", f"{row['max']:g}"
    row["notes"] = "; ".join(notes)
    return row


def _write_csv(path: Path, rows: list, chapters) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(chapters), restval="")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(path, buf.getvalue())


def _save_student(out: Path, student: str, record: dict) -> None:
    name = f"{_slug(student)}-{_digest(student)}"
    for chapter, result in record["chapters"].items():
        executed = result.pop("executed", None)
        if executed:
            _atomic_write(out / "executed" / name / f"{chapter}.ipynb", executed)
            result["executed"] = f"executed/{name}/{chapter}.ipynb"
        if result.get("file"):
            _atomic_write(out / "feedback" / name / f"{chapter}.md",
                          _feedback(student, chapter, result, record))
    _atomic_write(out / "state" / f"{name}.json", json.dumps(record, indent=1, default=str))


def _feedback(student: str, chapter: str, result: dict, record: dict) -> str:
    exercises = result["exercises"]
    got = sum(e["points"] for e in exercises.values())
    top = sum(e["max"] for e in exercises.values())
    lines = [f"# {chapter}: feedback for {student}", "",
             f"**{got:g} / {top:g} points** for the automatically checked exercises "
             f"({Path(result['file']).name}).", "", "| exercise | points | result |",
             "|---|---|---|"]
    lines += [f"| {label} | {e['points']:g} / {e['max']:g} | {e['status']} |"
              for label, e in exercises.items()]
    for label, e in exercises.items():
        lines += ["", f"## {label}: {e['status']}", "", e["message"]]
    if result.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def _write_report(out: Path, students, done: dict, chapters, report: dict) -> None:
    lines = ["# Grading report", ""]
    written = [lb for c in chapters for lb in c.written]
    if written:
        lines += ["## To grade by hand (written answers; see executed/)", "",
                  ", ".join(written), ""]
    if report["not on the roster"]:
        lines += ["## Submissions from students not on the roster", ""]
        lines += [f"- {s}" for s in report["not on the roster"]] + [""]
    notes = [(s, n) for s in students for n in done.get(s, {}).get("notes", [])
             if n != "no submission"]
    missing = [s for s in students if "no submission" in done.get(s, {}).get("notes", [])]
    if missing:
        lines += ["## No submission", ""] + [f"- {s}" for s in missing] + [""]
    if notes:
        lines += ["## Notes", ""] + [f"- {s}: {n}" for s, n in notes] + [""]
    lower: dict = {}
    for s in students:
        lower.setdefault(s.casefold().strip(), []).append(s)
    clash = [v for v in lower.values() if len(v) > 1]
    if clash:
        lines += ["## Student names that differ only by case or spaces", ""]
        lines += [f"- {', '.join(v)}" for v in clash] + [""]
    lines += _copies(students, done, chapters)
    _atomic_write(out / "report.md", "\n".join(lines) + "\n")


def _copies(students, done: dict, chapters) -> list:
    """Pairs of students whose notebooks are identical, or whose answer cells are (code
    without comments or layout), in two or more exercises, all they changed."""
    import nbformat

    lines = []
    for c in chapters:
        starters = {}
        try:
            nb = student_edition(nbformat.read(c.path, as_version=4))
            where, _ = locate_exercises(nb, [e.label for e in c.exercises])
            starters = {lb: _normalised(_source(nb.cells[i])) for lb, i in where.items()}
        except Exception:
            pass
        answers, files = {}, {}
        for s in students:
            result = done.get(s, {}).get("chapters", {}).get(c.name, {})
            if result.get("sha256"):
                files.setdefault(result["sha256"], []).append(s)
            changed = {lb: code for lb, code in (result.get("code") or {}).items()
                       if code != starters.get(lb)}
            if len(changed) >= 2:
                answers.setdefault(json.dumps(sorted(changed.items())), []).append(s)
        for group in files.values():
            if len(group) > 1:
                lines.append(f"- {c.name}: identical notebook files: {', '.join(group)}")
        for group in answers.values():
            if len(group) > 1:
                lines.append(f"- {c.name}: identical answer cells (all they changed): "
                             f"{', '.join(group)}")
    return (["## Possible copies (for you to judge; no points are taken)", ""] + lines + [""]
            if lines else [])


class _progress:
    """A tqdm progress bar on stderr (or a line per student when tqdm is missing)."""

    def __init__(self, total: int, show: bool):
        self.bar = None
        self.show = show
        if show:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="student", file=sys.stderr)
            except ImportError:
                pass

    def update(self, n: int, student: str, row: dict) -> None:
        line = f"{student}: {row['total']} / {row['max']}"
        if self.bar is not None:
            self.bar.set_postfix_str(line[:60])
            self.bar.update(n)
        elif self.show:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def grade_folder(folder, out, reference, **kwargs) -> list:
    """Grade every submission in ``folder`` into the folder ``out``
    (:class:`Grader` arguments and ``roster``, ``resume``, ``force`` as keywords).

    Returns:
        the rows of ``out/grades.csv`` (dicts).
    """
    options = {k: kwargs.pop(k) for k in ("roster", "resume", "force") if k in kwargs}
    return Grader(reference, **kwargs).grade(folder, out, **options)


def _default_reference():
    book = Path(__file__).resolve().parents[1] / "book"
    return book if book.is_dir() else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmbook.grade",
        description="Grade a folder of submitted notebooks (each in a sandbox), or write "
                    "the student edition of the book. See book/teacher_guide.md.")
    parser.add_argument("submissions", nargs="?", help="folder of submitted notebooks: "
                        "<student>/<any>.ipynb or <student>.ipynb")
    parser.add_argument("--out", default=None, help="output folder (grades.csv, feedback/, "
                        "executed/, report.md); with --student-edition, the edition's folder")
    parser.add_argument("--reference", default=None, help="the teacher's edition of the "
                        "chapters (default: the book/ folder beside the package)")
    parser.add_argument("--roster", default=None, help="class list (one id per line, or a CSV "
                        "with a 'student' column): a student without a notebook gets 0")
    parser.add_argument("--chapters", nargs="+", default=None, help="chapters to grade "
                        "(names or numbers; default: those the submissions match)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once")
    parser.add_argument("--cell-timeout", type=int, default=300)
    parser.add_argument("--notebook-timeout", type=int, default=1200)
    parser.add_argument("--memory", type=float, default=4.0, help="GiB per notebook")
    parser.add_argument("--secret", type=int, default=None, help="the hidden-input offset "
                        "(default: drawn, and kept in OUT/grading.json)")
    parser.add_argument("--resume", action="store_true", help="continue a grading in --out")
    parser.add_argument("--force", action="store_true", help="replace a previous output")
    parser.add_argument("--unsafe", action="store_true", help="grade without the sandbox "
                        "(student code then runs as you, with your files: trusted notebooks "
                        "only)")
    parser.add_argument("--student-edition", metavar="SRC", default=None,
                        help="write the student edition of the notebooks in SRC to --out")
    args = parser.parse_args(argv)
    try:
        if args.student_edition:
            if not args.out:
                parser.error("--student-edition needs --out")
            for p in write_student_edition(args.student_edition, args.out, args.force):
                print("wrote", p)
            return 0
        if not args.submissions:
            parser.error("give the folder of submissions")
        reference = args.reference or _default_reference()
        if reference is None:
            parser.error("give --reference (the teacher's edition of the chapters)")
        from .sandbox import Limits, sandbox_problem

        if not args.unsafe and sandbox_problem():
            print(f"refusing to grade: {sandbox_problem()}.\nThe sandbox keeps each "
                  "student's code away from your files, the other submissions and the "
                  "grades; --unsafe grades without it.", file=sys.stderr)
            return 2
        roster = read_roster(args.roster) if args.roster else None
        out = args.out or "grades"
        grader = Grader(reference, args.chapters, args.jobs, args.cell_timeout,
                        args.notebook_timeout, args.unsafe, args.secret,
                        Limits(memory=int(args.memory * (1 << 30))))
        rows = grader.grade(args.submissions, out, roster, args.resume, args.force)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for row in rows:
        print(f"{row['student']}: {row['total']} / {row['max']}")
    print(f"wrote {Path(out) / 'grades.csv'}, feedback/ and report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
