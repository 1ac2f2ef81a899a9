"""UCI "Multiple Features": 2000 handwritten numerals described by six aligned views."""

from __future__ import annotations

import numpy as np

from .download import fetch

__all__ = ["load_mfeat", "MFEAT_VIEWS"]

MFEAT_VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}


def _read_view(name: str, root) -> tuple:
    a = np.loadtxt(fetch("mfeat", f"mfeat-{name}.csv", root), delimiter=",", skiprows=1)
    x, y = a[:, :-1].astype(np.float32), a[:, -1].astype(np.int64)
    if x.shape[1] != MFEAT_VIEWS[name]:
        raise ValueError(f"mfeat-{name}: expected {MFEAT_VIEWS[name]} features, got {x.shape[1]}")
    return x, y


def load_mfeat(views=None, *, root=None, test_size: float = 0.25, seed: int = 0):
    """Load the mfeat views with a stratified train/test split.

    Args:
        views: view names to load (default: all six, in the order fou, fac, kar, pix,
            zer, mor).
        root: data root (default: ``$MMBOOK_DATA`` or the user cache).
        test_size: fraction of each class held out for testing (default 0.25: 500 test
            digits, 50 per class).
        seed: seed of the stratified split (``sklearn.model_selection.train_test_split``).

    Returns:
        ``dict`` with ``"train"`` and ``"test"``, each ``{"views": {name: X}, "y": y,
        "index": i}``: X float32 ``(n, D_view)``, y int64 ``(n,)``, and i int64 ``(n,)`` the
        row of the raw files each digit comes from; rows are aligned across views.

    Raises:
        ValueError: unknown views, a bad ``test_size``, or view files whose labels
            disagree (rows not aligned).
    """
    from sklearn.model_selection import train_test_split

    views = tuple(MFEAT_VIEWS) if views is None else tuple(views)
    unknown = [v for v in views if v not in MFEAT_VIEWS]
    if unknown or not views:
        raise ValueError(f"views must be a non-empty subset of {tuple(MFEAT_VIEWS)}, got {views!r}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    data = {v: _read_view(v, root) for v in views}
    y = data[views[0]][1]
    for v in views[1:]:
        if not np.array_equal(data[v][1], y):
            raise ValueError(f"mfeat-{v}: labels are not aligned with mfeat-{views[0]}")
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                              random_state=seed)
    return {name: {"views": {v: data[v][0][idx] for v in views}, "y": y[idx], "index": idx}
            for name, idx in (("train", tr), ("test", te))}
