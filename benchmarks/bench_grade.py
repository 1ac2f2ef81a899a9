"""Time to grade a class: N honest submissions of one chapter, graded in the sandbox.

Not a test: run it by hand (``python benchmarks/bench_grade.py --students 30 --chapter 05``)
and read the time. Each submission is the chapter's student edition with the teacher's
solutions written into its starter cells (as ``tests/test_grade_chapters.py`` builds them);
by default cut to what the exercises need (``--full``: the whole chapter, which runs its
experiments). Prints the wall time, the time per notebook and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main(argv=None) -> dict:
    from grade_helpers import honest_submission, sliced

    from mmbook.grade import Grader

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--chapter", default="05", help="the notebook's number, e.g. 05")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="whole chapters, not sliced")
    args = parser.parse_args(argv)
    path = next((ROOT / "book").glob(f"{args.chapter}_*.ipynb"))
    nb = honest_submission(nbformat.read(path, as_version=4))
    nb = nb if args.full else sliced(nb)
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        for i in range(args.students):
            (subs / f"student{i:02d}").mkdir(parents=True)
            nbformat.write(nb, subs / f"student{i:02d}" / f"Copy of {path.name}")
        grader = Grader(ROOT / "book", jobs=args.jobs, progress=False)
        load = os.getloadavg()[0]
        start = time.monotonic()
        rows = grader.grade(subs, Path(tmp) / "out")
        seconds = time.monotonic() - start
        load = max(load, os.getloadavg()[0])
    full = sum(r["total"] == r["max"] for r in rows)
    result = {"students": args.students, "chapter": path.stem, "jobs": args.jobs,
              "sliced": not args.full, "seconds": seconds,
              "per_notebook": seconds * args.jobs / args.students, "full_marks": full,
              "load": load}
    print(f"{args.students} submissions of {path.stem} ({'whole' if args.full else 'sliced'}"
          f"), --jobs {args.jobs}: {seconds:.0f} s, {result['per_notebook']:.1f} s a notebook "
          f"per job, {full} with full marks; load average {load:.1f} on {os.cpu_count()} "
          "CPUs")
    return result


if __name__ == "__main__":
    main()
