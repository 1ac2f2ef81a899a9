"""Every trick of issue 26, played on the grader by a class of dishonest students.

Each student below hands in the starter code (or a wrong answer) plus one trick. Graded in
one run with honest and wrong classmates, each trick must earn nothing, harm no other
submission, file or process, and leave grades.csv right. Before: the grader of issue 26's
report (checks in the student's kernel, no sandbox); after: this grader (6 points to earn).

| student | trick | before | after |
|---|---|---|---|
| eval | ``eval`` redefined at notebook level | full marks | 0 |
| print | ``print`` redefined to print a result line | full marks | 0 |
| reload | ``importlib.reload`` replaced, checkers patched | full marks | 0 |
| hook | ``pre/post_run_cell`` hooks print results, write answer files | full marks | 0 |
| feedback | ``Feedback.passed`` patched | full marks | 0 |
| check-close | ``mmbook.exercises.check_close`` (and ``call_student``) replaced | full marks | 0 |
| detached | a process writes a result line after the kernel exits | full marks | 0 |
| overwrite | classmates' notebooks overwritten (found in ``/proc``) | harmed | 0, no harm |
| append | "always pass" appended to the checker module | all later passed | 0, no harm |
| rewrite-csv | grades.csv rewritten after the grader exits | grades lost | 0, grades.csv whole |
| solutions | the teacher's solution cells run from the book | full marks | 0 (no book in sight) |
| copy-live | a classmate's notebook re-run after every cell | full marks | 0 |
| processes | processes left running (new session, double fork) | left running | 0, all killed |
| fork-bomb | ``os.fork()`` in a loop | not tried | 0, capped at 256 processes |
| network | connects to the grading machine (loopback and its address) | not tried | 0, refused |
| big-output | 100 MB printed | not tried | 0, 200 kB kept |
| disk-fill | 1 GB written to ``/out``, ``/tmp``, the cwd, ``/dev/shm`` | not tried | 0, capped |
| edited-args | the checker's arguments edited to fit a wrong answer | scored | 0 |
| edited-points | ``points`` metadata set to 100 | counted | the teacher's 2 |
| bonus | an added exercise worth 1000 | counted (1300/1300) | ignored |
| honest | right answers in ``Copy of 15_small.ipynb`` | own metadata (300/300) | 6 |
| copycat | a classmate's file handed in | not seen | 6, reported as a copy |
"""

from __future__ import annotations

import shutil
import socket
import time

import nbformat
import pytest
from grade_helpers import (
    RIGHT,
    ROOT,
    code,
    grade_cli,
    honest_submission,
    md,
    processes_with,
    read_grades,
    require_sandbox,
    sha256,
    small_chapter,
    submission,
)

MARK = "mmbook-trick-7c41"  # in the command line of every process a trick leaves behind
# where a student would look for other notebooks (all of /usr would only take longer)
SEARCH = ("[p for root in ('/home', '/tmp', '/work', '/root', '/opt', '/grader', '/out', "
          "'/data', '/srv', '/mnt') for p in glob.glob(root + '/**/*.ipynb', recursive=True)]")
LABELS = ("ex-flops", "ex-kd", "ex-two", "ex-mom")


# The tricks that write, fork or read the whole file system first check that they run in
# the grader's sandbox: outside it (an old grader, --unsafe) they would really do harm.
GUARD = "import os\nassert os.path.exists('/grader/plan.json'), 'only in the grader sandbox'\n"
HARMFUL = ("overwrite", "append", "rewrite-csv", "solutions", "processes", "fork-bomb",
           "disk-fill", "detached")


def _host_ip() -> str:
    """The grading machine's address on its network (loopback when it has none)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # picks the outgoing interface; sends nothing
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def _tricks(out, honest_path, reference_path, port) -> dict:
    """``{student: code}`` of the tricks; paths are the host's; ``port``: a TCP port the
    grading machine listens on. The harmful ones start with :data:`GUARD`."""
    tricks = _unguarded(out, honest_path, reference_path, port)
    return {k: (GUARD + v if k in HARMFUL else v) for k, v in tricks.items()}


def _unguarded(out, honest_path, reference_path, port) -> dict:
    forged = ("'@@MMBOOK-GRADE@@' + json.dumps({l: [True, 'Correct!'] for l in "
              f"{list(LABELS)!r}}})")
    ok = "type('F', (), {'passed': True, 'message': 'ok', '__bool__': lambda s: True})()"
    return {
        "eval": f"import builtins\neval = lambda *a, **k: {ok}\nbuiltins.eval = eval",
        "print": ("import builtins, json\n_p = builtins.print\n"
                  f"def print(*a, **k):\n    _p({forged})\nbuiltins.print = print\n"
                  "print('hello')"),
        "reload": ("import importlib\nfrom mmbook.exercises import Feedback, ch05, ch15\n"
                   "importlib.reload = lambda m: m\n"
                   "for m in (ch05, ch15):\n"
                   "    for n in dir(m):\n"
                   "        if n.startswith('check_'):\n"
                   "            setattr(m, n, lambda *a, **k: Feedback(True, 'ok'))"),
        "hook": ("import json, os\n"
                 f"def hook(*a, **k):\n    print({forged})\n"
                 "    for label in os.listdir('/out/answers') if os.path.isdir('/out/answers') "
                 "else []:\n"
                 "        with open(f'/out/answers/{label}/answers.json', 'w') as f:\n"
                 "            json.dump({'label': label, 'calls': [{'values': {'0': {'t': 'int',"
                 " 'v': '1'}}, 'missing': {}, 'runs': {'book': [], 'hidden': []}}]}, f)\n"
                 "get_ipython().events.register('pre_run_cell', hook)\n"
                 "get_ipython().events.register('post_run_cell', hook)"),
        "feedback": ("from mmbook.exercises import Feedback\n"
                     "Feedback.passed = property(lambda s: True, lambda s, v: None)\n"
                     "Feedback.pending = property(lambda s: False, lambda s, v: None)\n"
                     "Feedback.__bool__ = lambda s: True"),
        "check-close": ("import mmbook.exercises as E\nfrom mmbook.exercises import ch05, ch15\n"
                        "E.check_close = lambda *a, **k: E.Feedback(True, 'ok')\n"
                        "E.check_equal = E.check_close\n"
                        "ch15.check_close = ch05.check_close = E.check_close\n"
                        "E.call_student = lambda fn, *a, **k: (1, None)"),
        "detached": ("import os, subprocess\n"
                     f"subprocess.Popen(['/bin/sh', '-c', 'sleep 30; echo "
                     f"@@MMBOOK-GRADE@@ > /proc/' + str(os.getpid()) + '/fd/1', '{MARK}'], "
                     "start_new_session=True)"),
        "overwrite": ("import glob, os\n"
                      f"targets = [{str(honest_path)!r}]\n"
                      "for fd in glob.glob('/proc/*/fd/*') + glob.glob('/proc/*/cwd'):\n"
                      "    try:\n        targets.append(os.path.realpath(fd))\n"
                      "    except OSError:\n        pass\n"
                      f"targets += {SEARCH}\n"
                      "for t in set(targets):\n"
                      "    if t.endswith('.ipynb') and 'submission.ipynb' not in t:\n"
                      "        try:\n            open(t, 'w').write('{}')\n"
                      "        except OSError as e:\n            print('refused', t, e)"),
        "append": ("import mmbook.exercises.ch15 as m\n"
                   "evil = \"\\ncheck_lstm_flops = lambda *a, **k: "
                   "__import__('mmbook.exercises').exercises.Feedback(True, 'ok')\\n\"\n"
                   f"for p in (m.__file__, {str(ROOT / 'mmbook/exercises/ch15.py')!r}, "
                   f"{str(ROOT / 'mmbook/exercises/__init__.py')!r}):\n"
                   "    try:\n        open(p, 'a').write(evil)\n"
                   "    except OSError as e:\n        print('refused', p, e)"),
        "rewrite-csv": ("import subprocess\n"
                        f"subprocess.Popen(['/bin/sh', '-c', 'sleep 30; echo student,total > "
                        f"{out}/grades.csv; : > {out}/report.md', '{MARK}'], "
                        "start_new_session=True)\n"
                        f"try:\n    open({str(out / 'grades.csv')!r}, 'w').write('x,99')\n"
                        "except OSError as e:\n    print('refused', e)"),
        "solutions": ("import glob, json\n"
                      f"paths = {SEARCH} + [{str(reference_path)!r}]\n"
                      "for p in paths:\n"
                      "    try:\n        nb = json.load(open(p))\n"
                      "    except (OSError, ValueError):\n        continue\n"
                      "    inside = False\n"
                      "    for c in nb['cells']:\n"
                      "        src = ''.join(c['source'])\n"
                      "        if c['cell_type'] == 'markdown':\n"
                      "            inside = 'solution-start' in src or (inside and "
                      "'solution-end' not in src)\n"
                      "        elif inside:\n"
                      "            exec(src, globals())"),
        "copy-live": ("import json\n"
                      "def copy(*a, **k):  # after every cell: the classmate's code again\n"
                      "    try:\n"
                      f"        nb = json.load(open({str(honest_path)!r}))\n"
                      "    except OSError:\n        return\n"
                      "    for c in nb['cells']:\n"
                      "        if c['cell_type'] == 'code':\n"
                      "            try:\n"
                      "                exec(''.join(c['source']), get_ipython().user_ns)\n"
                      "            except Exception:\n                pass\n"
                      "get_ipython().events.register('post_run_cell', copy)"),
        "processes": ("import os, subprocess\n"
                      f"subprocess.Popen(['/bin/sh', '-c', 'sleep 1000; true', '{MARK}'], "
                      "start_new_session=True)\n"
                      "if os.fork() == 0:\n    os.setsid()\n"
                      f"    os.execv('/bin/sh', ['/bin/sh', '-c', 'sleep 1000; true', '{MARK}'])"),
        "fork-bomb": ("import os, time\npeak = 0\n"
                      "def bomb():\n    global peak\n    while True:\n        try:\n"
                      "            os.fork()\n        except OSError:  # the cap: count, wait\n"
                      "            n = sum(p.isdigit() for p in os.listdir('/proc'))\n"
                      "            if n > peak:  # in /tmp: it outlives a kernel restart\n"
                      "                peak = n\n"
                      "                open('/tmp/peak', 'w').write(str(peak))\n"
                      "            time.sleep(0.5)\nbomb()"),
        "network": ("import socket\n"
                    f"for host in ('127.0.0.1', {_host_ip()!r}):\n"
                    "    try:\n"
                    f"        socket.create_connection((host, {port}), timeout=5).sendall("
                    "b'stolen answers')\n        print('NET', host, 'reached')\n"
                    "    except OSError as e:\n        print('NET', host, 'refused', e)"),
        "big-output": "for _ in range(100):\n    print('x' * 1_000_000)",
        "disk-fill": ("for path in ('/out/big', '/tmp/big', 'big', '/dev/shm/big'):\n"
                      "    try:\n        with open(path, 'wb') as f:\n"
                      "            for _ in range(1000):\n"
                      "                f.write(b'0' * 1_000_000)\n"
                      "    except OSError as e:\n        print('refused', path, e)"),
    }


def _edited(teacher):
    """Tricks on the notebook's own cells: edited calls, points and an added exercise."""
    args = submission(teacher, {"ex-flops": "lstm_flops = 2 * 4 * 32 * (64 + 32)",  # 1 frame
                                "ex-two": "small_flops = big_flops = 0"})
    for cell in args.cells:
        cell.source = (cell.source.replace("check_lstm_flops(lstm_flops)",
                                           "check_lstm_flops(lstm_flops, frames=1)")
                       .replace("input_size=8, hidden_size=4, frames=3", "input_size=0, "
                                "hidden_size=0, frames=0"))
    points = submission(teacher, {"ex-flops": RIGHT["ex-flops"]})
    for cell in points.cells:
        if "mmbook" in cell.metadata:
            cell.metadata["mmbook"]["points"] = 100
    bonus = submission(teacher, extra={"end": [
        md("```{exercise-start}\n:label: ex-bonus\n```\nBonus.\n```{exercise-end}\n```"),
        code("bonus = 40 * 2 * 4 * 32 * (64 + 32)\nch15.check_lstm_flops(bonus)", "ex-bonus",
             1000)]})
    return {"edited-args": args, "edited-points": points, "bonus": bonus}


@pytest.fixture(scope="module")
def tricked_class(tmp_path_factory):
    require_sandbox()
    tmp = tmp_path_factory.mktemp("tricks")
    ref, subs, out = tmp / "book", tmp / "subs", tmp / "grades"
    ref.mkdir()
    teacher = small_chapter()
    nbformat.write(teacher, ref / "15_small.ipynb")
    honest_path = subs / "honest" / "Copy of 15_small.ipynb"
    notebooks = {"honest/Copy of 15_small.ipynb": honest_submission(teacher),
                 "wrong/15_small.ipynb": submission(teacher, {
                     "ex-flops": "lstm_flops = 40 * 4 * 32 * (64 + 32)"}),
                 "renamed/05_training.ipynb": honest_submission(teacher)}
    count = code("import os\nprint('PEAK', open('/tmp/peak').read(), 'NOW', "
                 "sum(p.isdigit() for p in os.listdir('/proc')), 'END')")
    listener = socket.create_server(("0.0.0.0", 0))  # what a student must not reach
    listener.setblocking(False)
    port = listener.getsockname()[1]
    for student, src in _tricks(out, honest_path, ref / "15_small.ipynb", port).items():
        cells = [code(src)] + ([count] if student == "fork-bomb" else [])
        notebooks[f"{student}/15_small.ipynb"] = submission(teacher, extra={"ex-flops": cells})
    for student, nb in _edited(teacher).items():
        notebooks[f"{student}/15_small.ipynb"] = nb
    for name, nb in notebooks.items():
        (subs / name).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, subs / name)
    (subs / "copycat").mkdir()
    shutil.copy(honest_path, subs / "copycat" / "mine.ipynb")  # handed in a classmate's file
    guarded = [*subs.rglob("*.ipynb"), ref / "15_small.ipynb",
               *(ROOT / "mmbook").rglob("*.py")]
    before = {p: sha256(p) for p in guarded}
    start = time.monotonic()
    done = grade_cli(subs, "--reference", ref, "--out", out, "--jobs", 2,
                     "--cell-timeout", 20, "--notebook-timeout", 240, timeout=1800)
    seconds = time.monotonic() - start
    try:
        reached = listener.accept()[0].recv(100) or b"connected"
    except BlockingIOError:
        reached = b""
    listener.close()
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "before": before, "done": done, "seconds": seconds, "reached": reached,
            "students": sorted(p.name for p in subs.iterdir())}


TRICKS = ["eval", "print", "reload", "hook", "feedback", "check-close", "detached",
          "overwrite", "append", "rewrite-csv", "solutions", "copy-live", "processes",
          "fork-bomb", "network", "big-output", "disk-fill", "edited-args", "bonus"]


@pytest.mark.parametrize("student", TRICKS)
def test_trick_earns_nothing(tricked_class, student):
    row = read_grades(tricked_class["out"] / "grades.csv")[student]
    assert float(row["total"]) == 0 and row["max"] == "6", row


def test_edited_points_and_a_bonus_exercise_change_no_points(tricked_class):
    rows = read_grades(tricked_class["out"] / "grades.csv")
    # ex-flops answered right, its points edited to 100: the teacher's 2 count
    assert rows["edited-points"]["total"] == "2" and rows["edited-points"]["ex-flops"] == "2"
    assert "ex-bonus" not in rows["bonus"] and all(r["max"] == "6" for r in rows.values())


def test_honest_and_wrong_classmates_are_graded_right(tricked_class):
    rows = read_grades(tricked_class["out"] / "grades.csv")
    assert rows["honest"]["total"] == "6"  # "Copy of 15_small.ipynb": matched by its labels
    assert rows["renamed"]["total"] == "6"  # named like another chapter: its labels decide
    assert rows["wrong"]["total"] == "0"
    assert rows["copycat"]["total"] == "6"  # correct code, but reported:
    report = (tricked_class["out"] / "report.md").read_text(encoding="utf-8")
    assert "identical notebook files: copycat, honest" in report
    assert set(rows) == set(tricked_class["students"])


def test_no_file_was_harmed_and_no_process_left(tricked_class):
    changed = [str(p) for p, h in tricked_class["before"].items() if sha256(p) != h]
    assert not changed
    assert not processes_with(MARK)
    rows = read_grades(tricked_class["out"] / "grades.csv")
    assert rows and "report" not in rows  # grades.csv is the grader's, whole


def test_no_network(tricked_class):
    assert tricked_class["reached"] == b""  # the grading machine's listener heard nothing
    executed = {p.parent.name.rsplit("-", 1)[0]: p
                for p in (tricked_class["out"] / "executed").glob("*/*.ipynb")}
    nb = nbformat.read(executed["network"], as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    lines = [line for line in printed.splitlines() if line.startswith("NET ")]
    assert len(lines) == 2 and all(" refused " in line for line in lines), printed


def test_limits_held(tricked_class):
    executed = {p.parent.name.rsplit("-", 1)[0]: p
                for p in (tricked_class["out"] / "executed").glob("*/*.ipynb")}
    text = executed["fork-bomb"].read_text(encoding="utf-8")
    peak, now = (int(v) for v in text.split("PEAK ")[1].split(" END")[0].split(" NOW "))
    assert 100 < peak <= 256 + 8  # the bomb reached the sandbox's process cap, not more
    assert now < 20  # at the timeout, what the cell started was killed
    big = executed["big-output"]
    assert big.stat().st_size < 2_000_000  # 100 MB printed, 200 kB kept per cell
    assert "dropped" in big.read_text(encoding="utf-8")
    print(f"\nthe tricked class ({len(tricked_class['students'])} notebooks, 2 jobs) was "
          f"graded in {tricked_class['seconds']:.0f} s; the fork bomb peaked at {peak} "
          f"processes")
