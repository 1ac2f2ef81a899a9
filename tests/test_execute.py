"""mmbook.execute, the one notebook executor, on tiny notebooks made here.

What `make book` and `make notebooks` rely on: outputs cached under the key Jupyter Book
looks up, a notebook skipped only when its record is current (same code cells, package and
seed), a failed run leaving no record, a stalled run stopped, an interrupted run leaving no
process behind and keeping the notebooks that had finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from mmbook.execute import IDLE, cache_context, cached_record, is_current, run_notebook

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A tiny notebook")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _execute(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``python -m mmbook.execute ARGS`` in a child process (it installs signal handlers)."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "mmbook.execute", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
                          timeout=180, **kwargs)


@pytest.fixture
def counting(tmp_path) -> tuple[Path, Path]:
    """A notebook that appends a line to runs.txt each time it is executed."""
    runs = tmp_path / "runs.txt"
    nb = _notebook(tmp_path / "count.ipynb",
                   f"import os\nwith open({str(runs)!r}, 'a') as f:\n    f.write('run\\n')",
                   "assert os.environ.get('FAIL') != '1', 'told to fail'\nprint('done')")
    return nb, runs


def test_skip_current_executes_only_what_is_not_cached(tmp_path, counting):
    nb, runs = counting
    cache = tmp_path / "cache"
    first = _execute(str(nb), "--cache", str(cache), "--skip-current")
    assert first.returncode == 0, first.stderr
    assert is_current(nb, cache)
    second = _execute(str(nb), "--cache", str(cache), "--skip-current")
    assert second.returncode == 0, second.stderr
    assert "cached" in second.stdout and runs.read_text().count("run") == 1
    # another seed or another package version is not current; without --skip-current, runs
    assert not is_current(nb, cache, {**cache_context(), "seed": "3"})
    assert not is_current(nb, cache, {**cache_context(), "mmbook": "0" * 64})
    assert _execute(str(nb), "--cache", str(cache)).returncode == 0
    assert runs.read_text().count("run") == 2
    assert len(list(cache.glob("executed/*"))) == 1  # one record per notebook


def test_seed_from_the_environment_makes_a_record_stale(tmp_path, counting):
    nb, runs = counting
    cache = tmp_path / "cache"
    assert _execute(str(nb), "--cache", str(cache), env={"MMBOOK_SEED": "3"}).returncode == 0
    out = _execute(str(nb), "--cache", str(cache), "--skip-current")
    assert out.returncode == 0 and "cached" not in out.stdout
    assert runs.read_text().count("run") == 2


def test_jupyter_book_finds_the_record(tmp_path, counting):
    """The key is the one myst-nb computes from the notebook it reads."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import standard_nb_read

    nb, _ = counting
    cache = tmp_path / "cache"
    assert _execute(str(nb), "--cache", str(cache)).returncode == 0
    record = get_cache(str(cache)).match_cache_notebook(standard_nb_read(nb.read_text()))
    assert record.data["context"] == cache_context()
    _, merged = get_cache(str(cache)).merge_match_into_notebook(standard_nb_read(nb.read_text()))
    assert "done" in merged.cells[-1].outputs[0]["text"]
    # a changed code cell has no record
    changed = nbformat.read(str(nb), as_version=4)
    changed.cells[-1].source += "\nprint('more')"
    nbformat.write(changed, str(nb))
    assert cached_record(nb, cache) is None and not is_current(nb, cache)


def test_a_failed_run_leaves_no_record(tmp_path, counting):
    nb, _ = counting
    cache = tmp_path / "cache"
    assert _execute(str(nb), "--cache", str(cache)).returncode == 0
    assert cached_record(nb, cache) is not None
    failed = _execute(str(nb), "--cache", str(cache), env={"FAIL": "1"})
    assert failed.returncode == 1 and "told to fail" in failed.stderr
    assert cached_record(nb, cache) is None  # the older outputs are not rendered instead


def test_a_run_that_uses_no_cpu_is_taken_for_a_stall(tmp_path):
    nb = _notebook(tmp_path / "sleeps.ipynb", "import time\ntime.sleep(120)")
    start = time.perf_counter()
    run = run_notebook(nb, notebook_timeout=150, idle_timeout=3, retry_stall=False)
    assert run.error is not None and run.error.startswith(IDLE), run.error
    assert time.perf_counter() - start < 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_interrupted_run_leaves_no_process_and_keeps_what_finished(tmp_path):
    cache = tmp_path / "cache"
    quick = _notebook(tmp_path / "quick.ipynb", "print('quick')")
    pid_files = [tmp_path / f"kernel{i}.pid" for i in (1, 2)]
    longs = [_notebook(tmp_path / f"long{i}.ipynb",
                       f"import os, time\nopen({str(f)!r}, 'w').write(str(os.getpid()))\n"
                       "time.sleep(120)") for i, f in zip((1, 2), pid_files)]
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen([sys.executable, "-m", "mmbook.execute", *map(str, longs),
                             str(quick), "--jobs", "3", "--cache", str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": pythonpath})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                all(f.exists() and f.read_text() for f in pid_files)
                and cached_record(quick, cache)):
            time.sleep(0.2)
        assert all(f.exists() for f in pid_files), "the kernels never started"
        kernels = [int(f.read_text()) for f in pid_files]
        proc.send_signal(signal.SIGTERM)  # two notebooks running: the main thread must wake
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "interrupted" in err
    time.sleep(0.5)
    assert not any(map(_alive, kernels)), "a kernel outlived the interrupted run"
    assert all(cached_record(nb, cache) is None for nb in longs)  # interrupted: not kept
    assert is_current(quick, cache)  # finished before the interrupt: kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_leaves_no_process(tmp_path):
    """Even SIGKILL (no handler runs): each notebook's child sees its parent gone and kills
    its own process group, kernel included."""
    pid_file = tmp_path / "kernel.pid"
    nb = _notebook(tmp_path / "long.ipynb",
                   f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                   "time.sleep(120)")
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen([sys.executable, "-m", "mmbook.execute", str(nb)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": pythonpath})
    deadline = time.monotonic() + 90
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert pid_file.exists(), "the kernel never started"
    kernel = int(pid_file.read_text())
    deadline = time.monotonic() + 20
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel), "the kernel outlived its killed parent"
