"""The classroom tools: the student edition keeps no solution; the grader survives
correct, wrong, crashing, looping and incomplete submissions and grades each exercise."""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mmbook.grade import find_exercises, grade_folder, student_edition

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))

RIGHT_FLOPS = "lstm_flops = 40 * 2 * 4 * 32 * (64 + 32)"
RIGHT_KD = '''def kd(s, t, T):
    return F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), log_target=True,
                    reduction="batchmean") * T ** 2'''


def _chapter(flops_src=RIGHT_FLOPS, kd_src=RIGHT_KD, drop_kd=False, extra=None):
    cells = [new_markdown_cell("# A chapter"),
             new_code_cell("import torch\nimport torch.nn.functional as F\n"
                           "from mmbook.exercises import ch15")]
    if extra:
        cells.append(new_code_cell(extra))
    cells += [new_markdown_cell("```{exercise-start}\n:label: ex-flops\n```\nCount.\n"
                                "```{exercise-end}\n```"),
              new_code_cell(flops_src + "\nch15.check_lstm_flops(lstm_flops)",
                            metadata={"mmbook": {"exercise": "ex-flops", "points": 2}}),
              new_markdown_cell("```{solution-start} ex-flops\n:class: dropdown\n```"),
              new_code_cell(RIGHT_FLOPS + "\nassert ch15.check_lstm_flops(lstm_flops)"),
              new_markdown_cell("```{solution-end}\n```\n\n```{exercise-start}\n"
                                ":label: ex-kd\n```\nDistil.\n```{exercise-end}\n```")]
    if not drop_kd:
        cells.append(new_code_cell(kd_src + "\n\n\nch15.check_distillation_loss(kd)",
                                   metadata={"mmbook": {"exercise": "ex-kd", "points": 1}}))
    cells.append(new_markdown_cell("```{solution}\n:class: dropdown\nThe answer is KL.\n```\n"
                                   "## Summary"))
    return new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def test_find_exercises_reads_labels_points_and_checks():
    ex = find_exercises(_chapter())
    assert [(e.label, e.points) for e in ex] == [("ex-flops", 2.0), ("ex-kd", 1.0)]
    assert ex[0].checks == [("ch15", "check_lstm_flops", "lstm_flops")]


def test_student_edition_of_the_fabricated_chapter():
    nb = student_edition(_chapter())
    text = "\n".join(c.source for c in nb.cells)
    assert "solution" not in text and "The answer is KL" not in text
    assert "assert ch15.check_lstm_flops" not in text  # the solution cell is gone
    assert "ex-kd" in text and "## Summary" in text  # the next exercise and the prose stay
    assert len(find_exercises(nb)) == 2


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


def test_grader_on_fabricated_submissions(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    cases = {
        "correct": _chapter(),
        "wrong": _chapter(flops_src="lstm_flops = 40 * 4 * 32 * (64 + 32)",  # MACs
                          kd_src=RIGHT_KD.replace(" * T ** 2", "")),
        "crashing": _chapter(flops_src="1 / 0\n" + RIGHT_FLOPS),
        "looping": _chapter(flops_src="while True:\n    pass\n" + RIGHT_FLOPS),
        "missing": _chapter(drop_kd=True),
        "faker": _chapter(flops_src="lstm_flops = 1\nprint('Correct!')"),
    }
    for name, nb in cases.items():  # students work in the student edition
        nbformat.write(student_edition(nb), subs / f"{name}.ipynb")
    ref = tmp_path / "ref"
    ref.mkdir()
    nbformat.write(_chapter(), ref / "correct.ipynb")
    for name in cases:  # the distributed chapter, under each submission's file name
        nbformat.write(_chapter(), ref / f"{name}.ipynb")
    out = tmp_path / "grades.csv"
    rows = grade_folder(subs, out, reference_dir=ref, cell_timeout=20, notebook_timeout=300)
    by = {r["student"]: r for r in csv.DictReader(out.open())}
    assert len(rows) == len(cases) == len(by)
    points = {s: (float(r["ex-flops points"]), float(r["ex-kd points"])) for s, r in by.items()}
    assert points["correct"] == (2.0, 1.0) and float(by["correct"]["total"]) == 3.0
    assert points["wrong"] == (0.0, 0.0)
    assert "multiply-adds" in by["wrong"]["ex-flops feedback"]
    assert "T^2" in by["wrong"]["ex-kd feedback"]
    assert points["crashing"] == (0.0, 1.0) and "NameError" in by["crashing"]["ex-flops feedback"]
    assert points["looping"] == (0.0, 1.0)
    assert points["missing"] == (2.0, 0.0) and "missing" in by["missing"]["ex-kd feedback"]
    assert points["faker"][0] == 0.0
    assert all(float(r["max"]) == 3.0 for r in by.values())


def test_grader_refuses_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no submitted notebook"):
        grade_folder(tmp_path, tmp_path / "g.csv")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_carries_its_points(path):
    nb = nbformat.read(path, as_version=4)
    for ex in find_exercises(nb):
        meta = nb.cells[ex.cell].metadata.get("mmbook", {})
        assert meta.get("exercise") == ex.label and meta.get("points", 0) > 0, (
            f"{path.name}: the starter cell of {ex.label} has no grading metadata "
            f"(run tools/tag_exercises.py)")
