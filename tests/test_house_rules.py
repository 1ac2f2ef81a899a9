"""The book's house rules, checked on every chapter (DESIGN.md, "Chapter anatomy").

- at least three exercises per chapter (sphinx-exercise ``exercise-start`` or ``exercise``
  with a label), each with a solution;
- no visible code cell longer than 30 lines (longer code is hidden or lives in ``mmbook``);
- no assert on a wall-clock time (a busy machine fails it): times are reported, counts asserted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
HIDDEN = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
MAX_LINES = 30
# an assert line that mentions a time: what the before-stop check and the reviewers look for
WALL_CLOCK = re.compile(r"seconds|latency|elapsed|perf_counter|monotonic|time\.time|_ms\b|_s\b")


def cells(path: Path) -> list:
    return json.loads(path.read_text())["cells"]


def source(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def labels(path: Path, directive: str) -> list:
    found = []
    for cell in cells(path):
        if cell["cell_type"] == "markdown":
            found += re.findall(r"\{" + directive + r"\}[^\n]*\n:label:\s*(\S+)", source(cell))
    return found


def exercise_labels(path: Path) -> list:
    """Coded exercises (gated ``exercise-start``) and written ones (``exercise``)."""
    return labels(path, "exercise-start") + labels(path, "exercise")


def long_visible_cells(path: Path) -> list:
    out = []
    for cell in cells(path):
        tags = set(cell.get("metadata", {}).get("tags", []))
        n = len(source(cell).splitlines())
        if cell["cell_type"] == "code" and not tags & HIDDEN and n > MAX_LINES:
            out.append((cell.get("id"), n))
    return out


def wall_clock_asserts(text: str) -> list:
    return [line.strip() for line in text.splitlines()
            if re.match(r"\s*assert\b", line) and WALL_CLOCK.search(line)]


def test_the_rules_see_the_chapters():
    assert len(CHAPTERS) >= 15


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_at_least_three_exercises_each_with_a_solution(path):
    exercises = exercise_labels(path)
    assert len(exercises) >= 3, f"{path.name}: {len(exercises)} exercises ({exercises})"
    text = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    solutions = re.findall(r"\{solution(?:-start)?\}\s*(\S+)", text)
    assert sorted(set(solutions) & set(exercises)) == sorted(exercises), \
        f"{path.name}: exercises without a solution: {sorted(set(exercises) - set(solutions))}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_visible_code_cell_over_30_lines(path):
    assert long_visible_cells(path) == [], f"{path.name}: visible cells over {MAX_LINES} lines"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_assert_on_a_wall_clock_time(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    assert wall_clock_asserts(code) == [], f"{path.name}: times are reported, never asserted"


def test_the_rules_can_fail():
    """Each rule flags a chapter that breaks it (a check that cannot fail checks nothing)."""
    assert wall_clock_asserts('x = 1\nassert stats["median_ms"] < 5\nassert acc > 0.5') == \
        ['assert stats["median_ms"] < 5']
    assert wall_clock_asserts("assert elapsed < budget") != []
    assert wall_clock_asserts("assert flops == 2 * n") == []
