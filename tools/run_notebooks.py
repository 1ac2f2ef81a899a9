"""Execute notebooks once each, in parallel, and print each one's time.

    python tools/run_notebooks.py book/*.ipynb [--jobs 2] [--cache DIR] [--out DIR]

A notebook whose cell raises (an ``assert`` included) fails the run; its error is printed.
With ``--cache`` each executed notebook is stored in that Jupyter Book (jupyter-cache)
cache, keyed as Jupyter Book keys it (its code cells and kernel), so that the book build
that follows renders these outputs instead of executing the notebook a second time: this
is the notebook test of ``make test``, and each notebook runs once per test run.
With ``--out`` the executed notebooks are also written there. ``make gpu-check`` uses it
with ``MMBOOK_DEVICE=cuda`` to time every chapter on a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def execute(path: str, out: str | None, timeout: int):
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
    except Exception as err:  # a dead kernel, a timeout
        error = f"{type(err).__name__}: {err}"[-3000:]
    seconds = time.perf_counter() - start
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(Path(out) / Path(path).name))
    return path, seconds, error, (nb if error is None else None)


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
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="folder for the executed notebooks")
    parser.add_argument("--cache", default=None, help="jupyter-cache folder to fill")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(execute, args.notebooks, [args.out] * len(args.notebooks),
                                [args.timeout] * len(args.notebooks)))
    if args.cache is not None:
        store_in_cache(results, args.cache)
    failed = [r for r in results if r[2] is not None]
    for path, seconds, error, _ in results:
        print(f"{seconds:7.1f} s  {'FAILED' if error else 'ok    '}  {path}")
    print(f"{time.perf_counter() - start:7.1f} s  total wall time ({args.jobs} jobs)")
    for path, _, error, _ in failed:
        print(f"\n===== {path} =====\n{error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
