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

import pytest

from mmbook.execute import run_notebook

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
LEARNED = ["01_introduction", "06_fusion_levels", "07_attention",  # learned comparisons
           "10_cross_encoders", "11_retrieval", "12_vision_language", "13_sentiment",
           "14_graph_generative", "15_efficiency"]
SEEDS = [1, 3]

pytestmark = pytest.mark.seeds


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("chapter", LEARNED)
def test_chapter_claims_hold_under_another_seed(chapter, seed):
    path = BOOK / f"{chapter}.ipynb"
    assert path.exists(), f"{path} is missing"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    run = run_notebook(path, cell_timeout=900, notebook_timeout=1200,
                       env={"MMBOOK_SEED": str(seed), "PYTHONPATH": pythonpath})
    # an assert on a claim (or any error) in a cell fails the run
    assert run.ok, f"{chapter} fails under MMBOOK_SEED={seed}:\n{run.error}"
