"""The chapters with learned comparisons, executed under two other seeds.

Every chapter reads its seed from ``MMBOOK_SEED`` (``SEED = seed_from_env()``) and its
claims must hold for any seed in 0..4, not only for the default 0. This CI-sized check
executes the chapters that train and compare models (their asserts are the claims) under
two seeds other than 0. It takes several minutes, so it runs only with ``--seeds``:

    OMP_NUM_THREADS=1 python -m pytest tests/test_seeds.py --seeds -n 2

(the whole book under one seed: ``MMBOOK_SEED=3 pytest book/*.ipynb --nbval-lax``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
LEARNED = ["01_introduction", "06_fusion_levels", "07_attention"]  # learned comparisons
SEEDS = [1, 3]

pytestmark = pytest.mark.seeds


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("chapter", LEARNED)
def test_chapter_claims_hold_under_another_seed(chapter, seed, monkeypatch):
    path = BOOK / f"{chapter}.ipynb"
    assert path.exists(), f"{path} is missing"
    monkeypatch.setenv("MMBOOK_SEED", str(seed))  # the kernel inherits the environment
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(BOOK)}})
    try:
        client.execute()
    except CellExecutionError as err:  # an assert on a claim (or any error) in a cell
        pytest.fail(f"{chapter} fails under MMBOOK_SEED={seed}:\n{str(err)[-3000:]}")
    errors = [o for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{chapter} under MMBOOK_SEED={seed} produced errors"
