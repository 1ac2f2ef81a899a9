"""Chapter 12 under several seeds: its tables, mean and standard deviation over the seeds.

Executes ``book/12_vision_language.ipynb`` once per seed (``MMBOOK_SEED``) with
:func:`mmbook.execute.run_notebook`, going on past failing cells (an assert that fails
under some seed is reported, not hidden), and reads the chapter's own result tables from
the executed notebook's outputs, so the numbers are exactly the chapter's::

    OMP_NUM_THREADS=1 python benchmarks/ch12_seeds.py --seeds 0 1 2 3 4 --jobs 2

The chapter's assert margins were set from this script's output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
from pathlib import Path

from mmbook.execute import run_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "book" / "12_vision_language.ipynb"
TABLES = {"v39": "VQA accuracy per question type", "v40": "margin over the colour-blind answer",
          "v28": "where co-attention looks (share of questions, per type)",
          "v48": "captions"}


def _text(cell) -> str:
    return "\n".join(o.get("data", {}).get("text/plain", "") or o.get("text", "")
                     for o in cell.get("outputs", []))


def parse_table(text: str) -> dict:
    """A :class:`mmbook.plot.ResultsTable`'s text form back into ``{row: {column: value}}``."""
    lines = [ln for ln in text.strip("'\n").splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if set(ln.replace(" ", "")) == {"-"}) - 1
    split = lambda ln: re.split(r"\s{2,}", ln.strip())  # noqa: E731
    header, rows = split(lines[start]), {}
    for ln in lines[start + 2:]:
        cells = split(ln)
        if len(cells) != len(header):
            break
        values = {}
        for h, c in zip(header[1:], cells[1:]):
            try:
                values[h] = float(c)
            except ValueError:
                values[h] = c
        rows[cells[0]] = values
    return rows


def run(seed: int) -> dict:
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    result = run_notebook(NOTEBOOK, cell_timeout=1200, notebook_timeout=2400, allow_errors=True,
                          env={"MMBOOK_SEED": str(seed), "PYTHONPATH": pythonpath})
    out = {"seed": seed, "seconds": result.seconds, "error": result.error, "failed": [],
           "tables": {}}
    if result.executed is None:
        return out
    for cell in result.executed.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            out["failed"].append({"cell": cell.get("id"), "error": errors[0].get("ename", "") + ": "
                                  + errors[0].get("evalue", "")[:300]})
        if cell.get("id") in TABLES and not errors:
            try:
                out["tables"][cell["id"]] = parse_table(_text(cell))
            except StopIteration:
                pass
    return out


def summarise(results: list) -> str:
    lines = []
    for cid, title in TABLES.items():
        tables = [r["tables"][cid] for r in results if cid in r["tables"]]
        if not tables:
            continue
        lines.append(f"\n## {title} (seeds {[r['seed'] for r in results if cid in r['tables']]})")
        for row in tables[0]:
            cols = [c for c, v in tables[0][row].items() if isinstance(v, float)]
            cells = []
            for c in cols:
                vals = [t[row][c] for t in tables if row in t and isinstance(t[row].get(c), float)]
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                cells.append(f"{c} {statistics.mean(vals):.3f} ± {sd:.3f} "
                             f"[{min(vals):.3f}, {max(vals):.3f}]")
            lines.append(f"- {row}: " + "; ".join(cells))
    for r in results:
        lines.append(f"\nseed {r['seed']}: {r['seconds']:.0f} s, failed cells: {r['failed']}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the raw results as JSON here")
    args = parser.parse_args(argv)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(run, args.seeds))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(summarise(results))


if __name__ == "__main__":
    main()
