"""Execute notebooks once each, in parallel, and print each one's time.

    python tools/run_notebooks.py book/*.ipynb [--jobs 2] [--out DIR] [--timeout 600]

A notebook whose cell raises (an ``assert`` included) fails the run; its error is printed.
With ``--out`` the executed notebooks are written there (same file names). Used by
``make gpu-check`` (with ``MMBOOK_DEVICE=cuda``) to time every chapter on a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def execute(path: str, out: str | None, timeout: int) -> tuple[str, float, str | None]:
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
    return path, seconds, error


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(execute, args.notebooks, [args.out] * len(args.notebooks),
                                [args.timeout] * len(args.notebooks)))
    failed = [r for r in results if r[2] is not None]
    for path, seconds, error in results:
        print(f"{seconds:7.1f} s  {'FAILED' if error else 'ok    '}  {path}")
    print(f"{time.perf_counter() - start:7.1f} s  total wall time ({args.jobs} jobs)")
    for path, _, error in failed:
        print(f"\n===== {path} =====\n{error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
