"""tools/under_load.sh: a command beside LOAD busy processes, which stop when it ends.

(`tools/fresh_clone_check.sh` runs the README's commands this way on a fresh clone.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "under_load.sh"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# counts the load's processes (stress-ng, or the busy loops) running while it runs
_COUNT_BUSY = """
import os, time
def load():
    n = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = open(f"/proc/{pid}/cmdline").read()
        except OSError:
            continue
        n += args.startswith("stress-ng") or "while True: pass" in args
    return n
time.sleep(1)
print("busy:", load())
"""


def _under_load(*command, load=2, timeout=120):
    return subprocess.run([str(SCRIPT), *command], capture_output=True, text=True,
                          env={**os.environ, "LOAD": str(load)}, timeout=timeout)


def _load_processes() -> list:
    """stress-ng or the fallback busy loops, wherever they were started."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines()
            if ln.startswith("stress-ng --cpu") or "while True: pass" in ln]


def test_the_command_runs_beside_busy_processes_that_stop_after_it():
    before = len(_load_processes())
    out = _under_load(sys.executable, "-c", _COUNT_BUSY)
    assert out.returncode == 0, out.stderr
    assert "running beside" in out.stdout and "load average" in out.stdout
    (busy,) = re.findall(r"^busy: (\d+)$", out.stdout, flags=re.M)
    assert int(busy) - before >= 2  # the two busy processes at least
    assert len(_load_processes()) == before, "the load outlived the command"


def test_the_exit_status_is_the_commands():
    out = _under_load("bash", "-c", "exit 7", load=1)
    assert out.returncode == 7 and "exited 7" in out.stdout


def test_a_notebook_runs_under_the_load(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("total = sum(i * i for i in range(10 ** 6))\n"
                                          "assert total == 333332833333500000")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, str(path))
    out = _under_load(sys.executable, "-m", "mmbook.execute", str(path), "--idle-timeout", "60",
                      timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok      " + str(path) in out.stdout
