"""UCI "Multiple Features": 2000 handwritten numerals described by six aligned views."""

from __future__ import annotations

import numpy as np
import torch

from ..utils import check_probability
from .base import ModalityDataset
from .download import fetch

__all__ = ["load_mfeat", "MFEAT_VIEWS", "MultiViewDataset"]

MFEAT_VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
MFEAT_ROWS, MFEAT_CLASSES = 2000, 10


class MultiViewDataset(ModalityDataset):
    """Aligned views of the same samples: item ``i`` is ``(x_1[i], ..., x_M[i], y[i])``.

    The array accessors serve scikit-learn code; the items serve a ``Trainer``.

    Attributes:
        views: ``{name: X}``, X float32 NumPy ``(n, D_view)`` (shares memory with the tensors).
        y: int64 NumPy ``(n,)``.
        index: int64 NumPy ``(n,)``, the row of the raw files each sample comes from.
        modalities: the view names, in order.

    Args:
        views: ``{name: X}``, X ``(n, D_view)`` arrays with aligned rows.
        y: ``(n,)`` integer labels.
        index: ``(n,)`` the raw row of each sample.
        num_classes: C.

    Shape:
        - item ``i``: ``(x_1 (D_1,), ..., x_M (D_M,), y ())``

    Raises:
        ValueError: views whose rows are not aligned with ``y`` (from
            :class:`~mmbook.data.ModalityDataset`).

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> views = {"fou": rng.standard_normal((5, 3)).astype(np.float32),
        ...          "mor": rng.standard_normal((5, 2)).astype(np.float32)}
        >>> ds = MultiViewDataset(views, np.array([0, 1, 2, 1, 0]), np.arange(5), 3)
        >>> len(ds), ds.modalities, ds.num_classes
        (5, ('fou', 'mor'), 3)
        >>> [tuple(t.shape) for t in ds[0]]
        [(3,), (2,), ()]
        >>> np.shares_memory(ds.views["mor"], ds.modality("mor").tensors[0].numpy())
        True
    """

    def __init__(self, views: dict, y: np.ndarray, index: np.ndarray, num_classes: int):
        self.views = {v: np.ascontiguousarray(x) for v, x in views.items()}
        self.y, self.index = np.asarray(y), np.asarray(index)
        super().__init__({v: torch.from_numpy(x) for v, x in self.views.items()},
                         torch.from_numpy(self.y), num_classes)


def _read_view(name: str, root) -> tuple:
    """One view file: ``X (2000, D)`` float32 and ``y (2000,)`` int64, checked."""
    path = fetch("mfeat", f"mfeat-{name}.csv", root)
    try:
        a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: not a numeric CSV with one header line ({err})") from None
    want = (MFEAT_ROWS, MFEAT_VIEWS[name] + 1)
    if a.shape != want:
        raise ValueError(f"{path}: expected {want[0]} rows of {want[1] - 1} features and a "
                         f"label, got an array of shape {a.shape}")
    x, labels = a[:, :-1], a[:, -1]
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: {int((~np.isfinite(x)).sum())} features are NaN or inf")
    if not (np.isin(labels, np.arange(MFEAT_CLASSES))).all():
        raise ValueError(f"{path}: labels must be the integers 0..{MFEAT_CLASSES - 1}, got "
                         f"{np.unique(labels)[:12]}")
    return x.astype(np.float32), labels.astype(np.int64)


def load_mfeat(views=None, *, root=None, test_size: float = 0.25, seed: int = 0) -> dict:
    """Load the mfeat views with a stratified train/test split.

    Args:
        views: view names to load (default: all six, in the order fou, fac, kar, pix,
            zer, mor).
        root: data root (default: ``$MMBOOK_DATA`` or the user cache).
        test_size: fraction of each class held out for testing (default 0.25: 500 test
            digits, 50 per class).
        seed: seed of the stratified split (``sklearn.model_selection.train_test_split``).

    Returns:
        ``{"train": ds, "test": ds}``, each a :class:`MultiViewDataset`: ``ds.views[name]``
        float32 ``(n, D_view)``, ``ds.y`` int64 ``(n,)``, ``ds.index`` int64 ``(n,)`` (the row
        of the raw files); rows are aligned across views; ``ds[i]`` is
        ``(x_1, ..., x_M, y)`` as tensors.

    Raises:
        ValueError: unknown views, a bad ``test_size``, a view file whose shape, values or
            labels are not those of mfeat, or view files whose labels disagree.
    """
    from sklearn.model_selection import train_test_split

    views = tuple(MFEAT_VIEWS) if views is None else tuple(views)
    unknown = [v for v in views if v not in MFEAT_VIEWS]
    if unknown or not views:
        raise ValueError(f"views must be a non-empty subset of {tuple(MFEAT_VIEWS)}, got {views!r}")
    if check_probability(test_size, "test_size") in (0.0, 1.0):
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    data = {v: _read_view(v, root) for v in views}
    y = data[views[0]][1]
    for v in views[1:]:
        if not np.array_equal(data[v][1], y):
            raise ValueError(f"mfeat-{v}: labels are not aligned with mfeat-{views[0]}")
    tr, te = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                              random_state=seed)
    return {name: MultiViewDataset({v: data[v][0][idx] for v in views}, y[idx], idx,
                                   MFEAT_CLASSES)
            for name, idx in (("train", tr), ("test", te))}
