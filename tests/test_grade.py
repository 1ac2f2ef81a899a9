"""The classroom tools: the student edition keeps no solution; the grader judges each
exercise in its own process from data the sandboxed kernel produced, with the teacher's
calls, inputs and points, at the exercise's own cell, and loses nothing.

The tricks students play on the grader are in tests/test_grade_adversarial.py; an honest
submission of every chapter in tests/test_grade_chapters.py.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from grade_helpers import (
    CHECKS,
    RIGHT,
    ROOT,
    code,
    grade_cli,
    honest_submission,
    md,
    read_grades,
    require_sandbox,
    small_chapter,
    submission,
)

from mmbook.exercises import Feedback, ch05, ch14, ch15, grading
from mmbook.grade import (
    Grader,
    find_exercises,
    locate_exercises,
    main,
    read_roster,
    student_edition,
    write_student_edition,
    written_exercises,
)

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


# ----------------------------------------------------------------------------- reading chapters
def test_find_exercises_reads_labels_points_and_checks():
    ex = find_exercises(small_chapter())
    assert [(e.label, e.points) for e in ex] == [("ex-flops", 2.0), ("ex-kd", 1.0),
                                                 ("ex-two", 2.0), ("ex-mom", 1.0)]
    assert ex[0].checks == [("ch15", "check_lstm_flops", "lstm_flops")]
    two = ex[2].calls
    assert len(two) == 2 and two[1]["kwargs"]["frames"] == {"literal": True, "source": "5"}
    assert two[1]["args"] == [{"literal": False, "source": "big_flops"}]
    assert written_exercises(small_chapter()) == ["ex-written"]


def test_student_edition_of_the_fabricated_chapter():
    nb = student_edition(small_chapter())
    text = "\n".join(c.source for c in nb.cells)
    assert "solution" not in text and "Because." not in text
    assert RIGHT["ex-flops"] not in text  # the solution cells are gone
    assert "ex-written" in text and "## Summary" in text  # the exercises and the prose stay
    assert len(find_exercises(nb)) == 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_text_in_the_student_edition(path):
    nb = nbformat.read(path, as_version=4)
    student = student_edition(nb)
    text = "\n".join(c.source for c in student.cells)
    assert "{solution" not in text
    # every code cell of a gated solution is gone, every exercise and starter cell stays
    inside, solution_code = False, []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if "{solution-start}" in cell.source:
                inside = "{solution-end}" not in cell.source.split("{solution-start}")[-1]
            elif "{solution-end}" in cell.source:
                inside = False
        elif inside:
            solution_code.append(cell.source)
    kept = {c.source for c in student.cells if c.cell_type == "code"}
    assert not kept & set(solution_code)
    assert [e.label for e in find_exercises(student)] == [e.label for e in find_exercises(nb)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_carries_its_points_and_its_own_answer_names(path):
    nb = nbformat.read(path, as_version=4)
    answers = []
    for ex in find_exercises(nb):
        meta = nb.cells[ex.cell].metadata.get("mmbook", {})
        assert meta.get("exercise") == ex.label and meta.get("points", 0) > 0, (
            f"{path.name}: the starter cell of {ex.label} has no grading metadata "
            f"(run tools/tag_exercises.py)")
        for call in ex.calls:
            answers += [s["source"] for s in call["args"] + list(call["kwargs"].values())
                        if not s["literal"]]
    # two exercises checking one global (chapter 4's `answer`) clash when re-run
    assert len(answers) == len(set(answers)), f"{path.name}: {answers}"


def test_chapter1_answer_key_is_not_in_the_student_edition_and_its_exercise_is_graded():
    nb = nbformat.read(ROOT / "book" / "01_introduction.ipynb", as_version=4)
    text = "\n".join(c.source for c in student_edition(nb).cells)
    key = {"A": "uniqueness", "B": "synergy", "C": "redundancy"}
    assert "mystery_kinds =" not in text and repr(key) not in text and '"A": "uniq' not in text
    assert "ex-ch01-kinds" in [e.label for e in find_exercises(nb)]
    from mmbook.exercises import ch01

    assert ch01.mystery_kinds() == key  # the chapter's prose explains this very key
    assert ch01.check_interaction_kinds(dict(key)) and not ch01.check_interaction_kinds(
        {"A": "synergy", "B": "uniqueness", "C": "redundancy"})


def test_the_guide_lists_labels_the_grader_checks_or_leaves_to_the_teacher():
    """Every label in the teacher's guide exists, and is written where the guide says so."""
    import re

    checked, written = set(), set()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        checked |= {e.label for e in find_exercises(nb)}
        written |= set(written_exercises(nb))
    guide = (ROOT / "book" / "teacher_guide.md").read_text(encoding="utf-8")
    table = [ln for ln in guide.splitlines() if re.match(r"\| \d+ \| `ex-", ln)]
    assert len(table) == 15
    for line in table:
        for label, mark in re.findall(r"`(ex-[\w-]+)`( \*\(written\)\*)?", line):
            assert label in (written if mark else checked), (label, bool(mark))


def test_locate_exercises_by_metadata_then_by_label():
    nb = submission(small_chapter())
    flops = next(i for i, c in enumerate(nb.cells) if "check_lstm_flops(lstm" in c.source)
    nb.cells.insert(flops + 1, code("lstm_flops = 7\n" + CHECKS["ex-flops"], "ex-flops", 1))
    kd = next(i for i, c in enumerate(nb.cells) if "check_distillation" in c.source)
    nb.cells[kd].metadata = {}  # Colab may lose it: found after the label's markdown
    where, notes = locate_exercises(nb, ["ex-flops", "ex-kd", "ex-gone"])
    assert where["ex-flops"] == flops + 1 and "2 cells carry" in notes[0]
    assert where["ex-kd"] == kd and "ex-gone" not in where


# ----------------------------------------------------------------------------- the codec
def test_encode_decode_round_trip_and_untrusted_records():
    value = (torch.tensor(1.5), torch.ones(2, dtype=torch.bfloat16), np.arange(3),
             np.float32(2.5), {"a": [1, None, True], 3: "x"}, float("nan"), 10 ** 30,
             torch.ones(2, requires_grad=True), torch.Size([2, 3]))
    tree, arrays = grading.encode(value)
    back = grading.decode(json.loads(json.dumps(tree)), arrays)
    assert back[0].shape == () and back[0].item() == 1.5
    assert back[1].dtype == torch.bfloat16 and isinstance(back[2], np.ndarray)
    assert isinstance(back[3], np.float32) and back[4] == {"a": [1, None, True], 3: "x"}
    assert np.isnan(back[5]) and back[6] == 10 ** 30 and back[7].requires_grad
    assert back[8] == (2, 3)
    odd, _ = grading.encode(object())
    assert isinstance(grading.decode(odd, []), grading.Unreadable)
    for bad in ({"t": "tensor", "a": 7}, {"t": "dict", "items": [[{"t": "list", "items": []},
                                                                  {"t": "none"}]]},
                {"t": "int", "v": "1e9999"}, {"no": "type"}, {"t": "list", "items": 3}):
        assert isinstance(grading.decode(bad, []), grading.Unreadable), bad
    files = {"answers/ex/answers.json": b'{"label": "ex", "calls": []}'}
    import io

    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)  # code inside
    files["answers/ex/a0.npy"] = buf.getvalue()
    record, arrays = grading.read_answers(files, "ex")
    assert record == {"label": "ex", "calls": []} and arrays == [None]  # never unpickled


def test_hidden_inputs_shift_every_generator_and_restore_them():
    g = torch.Generator
    with grading.hidden_inputs(17):
        a = torch.randn(3, generator=torch.Generator().manual_seed(1))
        b = np.random.default_rng(1).normal(size=3)
        torch.manual_seed(1)
        c = torch.rand(2)
    assert torch.Generator is g
    assert torch.equal(a, torch.randn(3, generator=torch.Generator().manual_seed(18)))
    assert np.allclose(b, np.random.default_rng(18).normal(size=3))
    torch.manual_seed(18)
    assert torch.equal(c, torch.rand(2))


# ----------------------------------------------------------------------------- produce / judge
def _record(tmp_path, namespace, calls, salt=5, label="ex"):
    """Produce in ``namespace`` (as the kernel does), then read the files back."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"salt": salt, "exercises": {label: {"calls": calls}}}))
    grading.produce(plan, label, tmp_path / "answers", namespace=namespace)
    files = {p.relative_to(tmp_path).as_posix(): p.read_bytes()
             for p in (tmp_path / "answers").rglob("*") if p.is_file()}
    return grading.read_answers(files, label)


def _call(module, function, arguments):
    return {"module": module, "function": function, **grading.parse_call(arguments)}


def _judge(tmp_path, namespace, arguments, module="ch15", function="check_distillation_loss",
           salt=5):
    call = _call(module, function, arguments)
    record, arrays = _record(tmp_path, namespace, [call], salt)
    return grading.judge_call(call, record["calls"][0], arrays, salt)


def test_judge_replays_the_students_function_and_adds_hidden_inputs(tmp_path):
    ns = {}
    exec("import torch.nn.functional as F\n" + RIGHT["ex-kd"], ns)
    verdicts = _judge(tmp_path, ns, "kd")
    assert [run for run, _ in verdicts] == ["book", "hidden"]
    assert all(v.passed for _, v in verdicts)
    # the answers to the book's inputs, memorised: right in the book, wrong when hidden
    seen = []
    ch15.check_distillation_loss(lambda *a: seen.append(a) or ns["kd"](*a))
    book = [(a, ns["kd"](*a)) for a in seen]

    def memorised(*args):
        for a, answer in book:
            if all(torch.equal(x, y) if torch.is_tensor(x) else x == y for x, y in zip(a, args)):
                return answer.clone()
        return torch.tensor(0.0)

    verdicts = _judge(tmp_path / "hard", {"kd": memorised}, "kd")
    assert verdicts[0][1].passed and not verdicts[1][1].passed


def test_judge_uses_the_teachers_literals_and_names_the_mistake(tmp_path):
    ns = {"small": 3 * 2 * 4 * 4 * (8 + 4) // 2}  # MACs, not FLOPs
    verdicts = _judge(tmp_path, ns, "small, input_size=8, hidden_size=4, frames=3",
                      function="check_lstm_flops")
    assert not verdicts[0][1].passed and "multiply-adds" in verdicts[0][1].message
    call = _call("ch15", "check_lstm_flops", "small, input_size=8, hidden_size=4, frames=3")
    # the student edited the call (frames=1) so that a wrong count matches: the record
    # carries only the answer's value, the judge uses the teacher's literals
    ns = {"small": 2 * 4 * 4 * (8 + 4)}
    record, arrays = _record(tmp_path / "edit", ns, [_call(
        "ch15", "check_lstm_flops", "small, input_size=8, hidden_size=4, frames=1")])
    assert ch15.check_lstm_flops(ns["small"], input_size=8, hidden_size=4, frames=1)
    assert not grading.judge_call(call, record["calls"][0], arrays, 5)[0][1].passed


def test_judge_replays_adaptive_calls_and_probes(tmp_path):
    ns = {}
    exec(RIGHT["ex-mom"], ns)
    assert all(v.passed for _, v in _judge(tmp_path / "m", ns, "momentum_step", "ch05",
                                            "check_momentum_step"))
    ns = {"momentum_step": lambda theta, grad, buf, lr, mu: (theta - lr * grad, grad)}
    verdict = _judge(tmp_path / "w", ns, "momentum_step", "ch05", "check_momentum_step")[0][1]
    assert not verdict.passed and "step 2" in verdict.message
    import torch as t

    class Reverse(t.autograd.Function):
        @staticmethod
        def forward(ctx, x, lam):
            ctx.lam = lam
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return -ctx.lam * g, None

    ns = {"reverse": lambda x, lam: Reverse.apply(x, lam), "detached": lambda x, lam: x.detach()}
    assert all(v.passed for _, v in _judge(tmp_path / "g", ns, "reverse", "ch14",
                                            "check_gradient_reversal"))
    verdict = _judge(tmp_path / "d", ns, "detached", "ch14", "check_gradient_reversal")[0][1]
    assert not verdict.passed and "detached" in verdict.message
    assert ch14.check_gradient_reversal(ns["reverse"])  # the book's checker is unchanged


def test_judge_refuses_records_for_other_inputs_and_missing_answers(tmp_path):
    ns = {}
    exec("import torch.nn.functional as F\n" + RIGHT["ex-kd"], ns)
    call = _call("ch15", "check_distillation_loss", "kd")
    record, arrays = _record(tmp_path, ns, [call])
    forged = json.loads(json.dumps(record))
    forged["calls"][0]["runs"]["book"][0]["args"]["items"][2] = {"t": "float", "v": "1.0"}
    verdict = grading.judge_call(call, forged["calls"][0], arrays, 5)[0][1]
    assert not verdict.passed and "other inputs" in verdict.message
    nothing = grading.judge_call(call, {"values": {"0": {"t": "function", "name": "kd"}},
                                        "runs": {}}, [], 5)[0][1]
    assert not nothing.passed and "did not answer" in nothing.message
    missing, _ = _record(tmp_path / "none", {}, [call])
    verdict = grading.judge_call(call, missing["calls"][0], [], 5)[0][1]
    assert not verdict.passed and "kd is not defined" in verdict.message
    raised = _judge(tmp_path / "r", {"kd": lambda *a: 1 / 0}, "kd")[0][1]
    assert not raised.passed and "ZeroDivisionError" in raised.message


def test_a_checker_verdict_is_the_graders_own_feedback(tmp_path):
    """Whatever the kernel does to Feedback, the judge builds its own."""
    ns = {"kd": lambda *a: None}
    verdicts = _judge(tmp_path, ns, "kd")
    assert isinstance(verdicts[0][1], Feedback) and verdicts[0][1].pending
    assert not ch05.check_mse_grad(lambda y_hat, y: None)


# ----------------------------------------------------------------------------- refusals
def test_student_edition_refuses_to_overwrite_the_book(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(small_chapter(), book / "15_small.ipynb")
    before = (book / "15_small.ipynb").read_bytes()
    assert main(["--student-edition", str(book), "--out", str(book)]) == 2
    assert "overwrite the teacher's notebooks" in capsys.readouterr().err
    assert (book / "15_small.ipynb").read_bytes() == before
    teacher_copy = tmp_path / "copy"
    teacher_copy.mkdir()
    shutil.copy(book / "15_small.ipynb", teacher_copy)
    with pytest.raises(ValueError, match="holds solutions"):
        write_student_edition(book, teacher_copy)
    out = write_student_edition(book, tmp_path / "student")
    assert write_student_edition(book, tmp_path / "student") == out  # its own output: fine


def test_grader_refuses_unsafe_outputs_and_a_missing_sandbox(tmp_path, capsys, monkeypatch):
    book, subs = tmp_path / "book", tmp_path / "subs"
    book.mkdir()
    subs.mkdir()
    nbformat.write(small_chapter(), book / "15_small.ipynb")
    nbformat.write(submission(small_chapter()), subs / "ann.ipynb")
    grader = Grader(book, progress=False)
    for out, words in ((book, "overlaps"), (book / "grades", "overlaps"), (subs, "overlaps"),
                       (tmp_path / "grades.csv", "give a folder")):
        with pytest.raises(ValueError, match=words):
            grader.grade(subs, out)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "grades.csv").write_text("student,total\nann,99\n")
    with pytest.raises(ValueError, match="--resume to continue"):
        grader.grade(subs, taken)
    assert (taken / "grades.csv").read_text() == "student,total\nann,99\n"
    from mmbook import sandbox

    monkeypatch.setitem(sandbox._PROBLEM, "value", "bubblewrap is not installed: run "
                                                   "`make sandbox`")
    assert main([str(subs), "--reference", str(book), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "refusing to grade: bubblewrap is not installed" in err and "--unsafe" in err
    assert not (tmp_path / "o").exists()


def test_force_replaces_only_the_graders_own_outputs(tmp_path):
    """--force empties the grader's files of a previous run and nothing else."""
    from mmbook.grade import _check_out

    out = tmp_path / "grades"
    (out / "feedback" / "ann").mkdir(parents=True)
    (out / "grades.csv").write_text("student,total\nann,99\n", encoding="utf-8")
    (out / "feedback" / "ann" / "15_small.md").write_text("old", encoding="utf-8")
    (out / "my notes.txt").write_text("the teacher's own file", encoding="utf-8")
    with pytest.raises(ValueError, match="--force to grade again"):
        _check_out(out, [tmp_path / "book"], resume=False, force=False)
    _check_out(out, [tmp_path / "book"], resume=False, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["my notes.txt"]
    _check_out(out, [tmp_path / "book"], resume=True, force=False)  # resume keeps all
    assert (out / "my notes.txt").exists()


def test_roster_reads_text_and_csv(tmp_path):
    (tmp_path / "a.txt").write_text("# class 3B\nann\n\nbob\nann\n", encoding="utf-8")
    assert read_roster(tmp_path / "a.txt") == ["ann", "bob"]
    (tmp_path / "b.csv").write_text("\ufeffname,student,email\nAnn A,ann,a@x\nZoë Z,zoë,z@x\n",
                                    encoding="utf-8")
    assert read_roster(tmp_path / "b.csv") == ["ann", "zoë"]


# ----------------------------------------------------------------------------- a class, graded
WRONG = {"ex-flops": "lstm_flops = 40 * 4 * 32 * (64 + 32)",  # MACs
         "ex-kd": RIGHT["ex-kd"].replace(" * T ** 2", ""),
         "ex-two": "small_flops = 3 * 2 * 4 * 4 * (8 + 4)\nbig_flops = 1",  # one of two
         "ex-mom": "def momentum_step(theta, grad, buf, lr, mu):\n"
                   "    return theta - lr * grad, grad"}


def _class(tmp_path):
    ref = tmp_path / "book"
    ref.mkdir()
    teacher = small_chapter()
    nbformat.write(teacher, ref / "15_small.ipynb")
    subs = tmp_path / "subs"
    cases = {
        "honest/Copy of 15_small.ipynb": honest_submission(teacher),
        "wrong/15_small.ipynb": submission(teacher, WRONG),
        "syntax/15_small.ipynb": submission(teacher, {**RIGHT, "ex-kd": "def kd(s, t, T):\n"
                                                      "    return (s - t"}),
        "dies/15_small.ipynb": submission(teacher, RIGHT, {"ex-kd": [code(
            "import os\nos._exit(3)")]}),
        "loops/15_small.ipynb": submission(teacher, RIGHT, {"ex-two": [code(
            "import time\nwhile True:\n    time.sleep(0.1)")]}),
        "fails-late/15_small.ipynb": submission(teacher, RIGHT, {"end": [code("1 / 0")]}),
        "faker/15_small.ipynb": submission(teacher, {"ex-flops": "lstm_flops = 1\n"
                                                     "print('Correct!')"}),
        "Zoë/15_small.ipynb": submission(teacher, {"ex-flops": RIGHT["ex-flops"]}),
    }
    missing = submission(teacher, RIGHT)
    missing.cells = [c for c in missing.cells if "check_distillation" not in c.source]
    cases["missing/15_small.ipynb"] = missing
    for name, nb in cases.items():
        (subs / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, subs / name)
    (subs / "twice").mkdir()
    nbformat.write(submission(teacher, {"ex-flops": RIGHT["ex-flops"]}), subs / "twice" / "a.ipynb")
    nbformat.write(submission(teacher, RIGHT), subs / "twice" / "b.ipynb")
    os.utime(subs / "twice" / "a.ipynb", (1e9, 1e9))  # b is the newest
    (subs / "broken").mkdir()
    (subs / "broken" / "15_small.ipynb").write_text("{ not a notebook")
    (subs / "stranger").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[md("# my own notes")]),
                   subs / "stranger" / "notes.ipynb")
    roster = tmp_path / "class.csv"
    roster.write_text("student,email\nhonest,h@x\nwrong,w@x\nabsent,a@x\n", encoding="utf-8")
    return ref, subs, roster


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    require_sandbox()
    tmp_path = tmp_path_factory.mktemp("class")
    ref, subs, roster = _class(tmp_path)
    out = tmp_path / "grades"
    # a teacher's shell under the C locale: names and files stay UTF-8
    done = grade_cli(subs, "--reference", ref, "--out", out, "--roster", roster, "--jobs", 2,
                     "--cell-timeout", 20, "--notebook-timeout", 240,
                     env={"LC_ALL": "C", "LANG": "C"})
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path, ref, subs, roster, out, done


def _points(row) -> dict:
    return {k: float(row[k]) for k in ("ex-flops", "ex-kd", "ex-two", "ex-mom", "total")}


def test_class_points_are_exact(graded_class):
    *_, out, done = graded_class
    rows = read_grades(out / "grades.csv")
    assert list(rows)[:3] == ["honest", "wrong", "absent"]  # the roster's order first
    full = {"ex-flops": 2, "ex-kd": 1, "ex-two": 2, "ex-mom": 1, "total": 6}
    assert _points(rows["honest"]) == full and rows["honest"]["max"] == "6"
    assert _points(rows["wrong"]) == {"ex-flops": 0, "ex-kd": 0, "ex-two": 1, "ex-mom": 0,
                                      "total": 1}  # a share per check: one of two right
    assert _points(rows["absent"])["total"] == 0 and "no submission" in rows["absent"]["notes"]
    # a syntax error costs its own exercise only; a crash or a loop costs what it reaches
    assert _points(rows["syntax"]) == {**full, "ex-kd": 0, "total": 5}
    # the kernel dies before ex-kd: the later cells run in a fresh kernel, without the
    # setup cell's imports (kd needs F: 0), ex-two and ex-mom need none
    assert _points(rows["dies"]) == {**full, "ex-kd": 0, "total": 5}
    assert _points(rows["loops"]) == full  # interrupted at 20 s, the notebook goes on
    assert _points(rows["fails-late"]) == full  # cells after the exercises cannot zero them
    assert _points(rows["faker"])["total"] == 0
    assert _points(rows["Zoë"]) == {"ex-flops": 2, "ex-kd": 0, "ex-two": 0, "ex-mom": 0,
                                    "total": 2}
    assert _points(rows["missing"]) == {**full, "ex-kd": 0, "total": 5}
    assert _points(rows["twice"]) == full and "graded the newest, b.ipynb" in rows["twice"][
        "notes"]
    assert _points(rows["broken"])["total"] == 0
    assert "matches no chapter" in rows["stranger"]["notes"]
    assert all(r["to grade by hand"] == "ex-written" for r in rows.values())
    assert "honest:" in done.stdout


def test_class_feedback_names_mistakes_without_the_answer(graded_class):
    tmp_path, *_, out, _ = graded_class
    fb = {p.parent.name.split("-")[0]: p.read_text(encoding="utf-8")
          for p in (out / "feedback").glob("*/15_small.md")}
    assert "multiply-adds" in fb["wrong"] and "T^2" in fb["wrong"] and "step 2" in fb["wrong"]
    assert "983,040" not in fb["wrong"] and "partly correct" in fb["wrong"]
    assert "SyntaxError" in fb["syntax"] and "kd is not defined" in fb["syntax"]
    assert "kernel died" in fb["dies"] or "fresh kernel" in fb["dies"]
    assert "not attempted" in fb["faker"]
    assert "not in the notebook" in fb["missing"]
    assert "Zoë" in fb["Zoë"]
    assert (out / "executed").is_dir() and len(list((out / "executed").glob("*/*.ipynb"))) >= 9
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "absent" in report and "ex-written" in report and "not on the roster" in report


def test_class_grading_resumes_without_grading_anyone_twice(graded_class):
    tmp_path, ref, subs, roster, out, _ = graded_class
    state = {p.name: p.stat().st_mtime_ns for p in (out / "state").glob("*.json")}
    again = grade_cli(subs, "--reference", ref, "--out", out, "--roster", roster,
                      "--cell-timeout", 20)
    assert again.returncode == 2 and "--resume to continue" in again.stderr
    late = subs / "late"
    late.mkdir()
    shutil.copy(subs / "honest" / "Copy of 15_small.ipynb", late / "mine.ipynb")
    resumed = grade_cli(subs, "--reference", ref, "--out", out, "--roster", roster,
                        "--resume", "--cell-timeout", 20)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = {p.name: p.stat().st_mtime_ns for p in (out / "state").glob("*.json")}
    assert {k: after[k] for k in state} == state and len(after) == len(state) + 1
    rows = read_grades(out / "grades.csv")
    assert _points(rows["late"])["total"] == 6 and _points(rows["honest"])["total"] == 6
    assert "identical notebook files: honest, late" in (out / "report.md").read_text(
        encoding="utf-8")
    assert not list(Path(out).rglob("*.tmp"))  # every write was atomic


def test_unsafe_mode_runs_the_same_child_without_the_sandbox(tmp_path):
    """--unsafe (trusted notebooks only): same executor, same judge, no container."""
    from mmbook.grade import grade_folder

    ref, subs = tmp_path / "book", tmp_path / "subs"
    ref.mkdir()
    subs.mkdir()
    teacher = small_chapter(("ex-flops", "ex-kd"))
    nbformat.write(teacher, ref / "15_small.ipynb")
    nbformat.write(honest_submission(teacher), subs / "honest.ipynb")
    nbformat.write(submission(teacher, {"ex-kd": WRONG["ex-kd"]}), subs / "wrong.ipynb")
    rows = {r["student"]: r for r in grade_folder(subs, tmp_path / "out", ref, unsafe=True,
                                                   jobs=2, cell_timeout=60,
                                                   notebook_timeout=300, progress=False)}
    assert rows["honest"]["total"] == "3" and rows["wrong"]["total"] == "0"
    assert "T^2" in next((tmp_path / "out" / "feedback").glob("wrong-*/*.md")).read_text(
        encoding="utf-8")


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are switched only when grading as root")
def test_two_graders_at_once_never_share_a_uid():
    """A uid's RLIMIT_NPROC counts the processes of every sandbox running as it: two graders
    (two pytest workers, two teachers) on one machine take distinct blocks of uids."""
    from mmbook.sandbox import UID_BLOCK, Sandbox

    with Sandbox(unsafe=True) as a, Sandbox(unsafe=True) as b:
        assert abs(a.uid_base - b.uid_base) >= UID_BLOCK
        assert {a._uid(j) for j in range(2)}.isdisjoint({b._uid(j) for j in range(2)})
        first = a.uid_base
    with Sandbox(unsafe=True) as c:  # a block is free again once its grader is done
        assert c.uid_base <= first
