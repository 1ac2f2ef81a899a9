"""Execute notebooks once each, in parallel, and print each one's time.

    python tools/run_notebooks.py book/*.ipynb [--jobs 2] [--cache DIR] [--out DIR]

A notebook whose cell raises (an ``assert`` included) fails the run; its error is printed.
Each notebook runs in a process of its own (killed if it exceeds ``--notebook-timeout``),
so one stuck kernel cannot hang the run.
With ``--cache`` each executed notebook is stored in that Jupyter Book (jupyter-cache)
cache, keyed as Jupyter Book keys it (its code cells and kernel), so that the book build
that follows renders these outputs instead of executing the notebook a second time: this
is the notebook test of ``make test``, and each notebook runs once per test run.
With ``--out`` the executed notebooks are also written there. ``make gpu-check`` uses it
with ``MMBOOK_DEVICE=cuda`` to time every chapter on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def execute_one(path: str, out: str, timeout: int) -> dict:
    """Execute ``path`` (in this process), write the executed notebook to ``out``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except CellExecutionError as err:
        error = str(err)[-3000:]
    except Exception as err:  # a dead kernel, a cell timeout
        error = f"{type(err).__name__}: {err}"[-3000:]
    seconds = time.perf_counter() - start
    nbformat.write(nb, out)
    return {"seconds": seconds, "error": error}


def run(path: str, timeout: int, notebook_timeout: int, workdir: Path) -> tuple:
    """Execute one notebook in a child process; return (path, seconds, error, executed).

    A run that goes past ``notebook_timeout`` is killed and tried once more: rarely, a
    kernel and its client both sit idle, each waiting for a message from the other (seen
    here with ipykernel 7 and widget-displaying chapters; nbclient's cell timeout does not
    fire then). A second stall fails the notebook.
    """
    result = _run_once(path, timeout, notebook_timeout, workdir)
    if result[2] is not None and result[2].startswith(_STALL):
        print(f"{path}: stalled past {notebook_timeout} s; trying once more", flush=True)
        result = _run_once(path, timeout, notebook_timeout, workdir)
    return result


_STALL = "the notebook ran over"


def _run_once(path: str, timeout: int, notebook_timeout: int, workdir: Path) -> tuple:
    import nbformat

    out = workdir / (Path(path).stem + ".executed.ipynb")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--one", path, "--write", str(out),
                             "--timeout", str(timeout)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=notebook_timeout)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        result = json.loads(lines[-1]) if lines else {
            "seconds": time.perf_counter() - start,
            "error": f"the runner failed (exit {proc.returncode}): {stderr[-2000:]}"}
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel
        proc.communicate()
        result = {"seconds": time.perf_counter() - start,
                  "error": f"{_STALL} {notebook_timeout} s and was stopped"}
    executed = nbformat.read(out, as_version=4) if out.exists() else None
    return path, result["seconds"], result["error"], executed


def store_in_cache(results, cache_path: str) -> None:
    """Store the executed notebooks where Jupyter Book's ``execute_notebooks: cache`` finds
    them (the same record it would write after executing them itself)."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(cache_path)
    for path, seconds, error, executed in results:
        if error is None:
            # the key hashes the code cells with ALL their metadata: copy the outputs into
            # the source notebook rather than caching nbclient's copy (it adds timings)
            nb = nbformat.read(path, as_version=4)
            for cell, done in zip(nb.cells, executed.cells):
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = done.outputs, done.execution_count
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, str(Path(path).resolve()),
                              data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="folder for the executed notebooks")
    parser.add_argument("--cache", default=None, help="jupyter-cache folder to fill")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--notebook-timeout", type=int, default=600,
                        help="seconds per notebook (a run past it is tried once more)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--write", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(execute_one(args.one, args.write, args.timeout)), flush=True)
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda p: run(p, args.timeout, args.notebook_timeout,
                                              Path(tmp)), args.notebooks))
    if args.cache is not None:
        store_in_cache(results, args.cache)
    if args.out is not None:
        import nbformat

        Path(args.out).mkdir(parents=True, exist_ok=True)
        for path, _, _, executed in results:
            if executed is not None:
                nbformat.write(executed, str(Path(args.out) / Path(path).name))
    failed = [r for r in results if r[2] is not None]
    for path, seconds, error, _ in results:
        print(f"{seconds:7.1f} s  {'FAILED' if error else 'ok    '}  {path}")
    print(f"{time.perf_counter() - start:7.1f} s  total wall time ({args.jobs} jobs)")
    for path, _, error, _ in failed:
        print(f"\n===== {path} =====\n{error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
