"""Synthetic two-modality data sets whose interaction structure is known by construction.

Three kinds, after the redundancy / uniqueness / synergy taxonomy of multimodal
interactions (Liang et al., 2023):

* ``redundancy``: both modalities carry the label; each alone suffices.
* ``uniqueness``: only modality 1 carries the label; modality 2 is pure noise.
* ``synergy``: the label is the XOR of one sign in each modality; each modality alone is
  independent of the label (chance accuracy), the two together determine it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils import check_choice, check_positive, check_positive_int
from .base import ModalityDataset

__all__ = ["make_interactions", "INTERACTION_KINDS", "InteractionDataset"]

INTERACTION_KINDS = ("redundancy", "uniqueness", "synergy")


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    u = rng.standard_normal(dim)
    return u / np.linalg.norm(u)


def _signal(rng, n: int, dim: int, s: np.ndarray, margin: float) -> np.ndarray:
    """Gaussian noise in R^dim plus ``margin * s`` along a random unit direction."""
    u = _unit(rng, dim)
    return rng.standard_normal((n, dim)) + margin * s[:, None] * u[None, :], u


class InteractionDataset(ModalityDataset):
    """Two modalities ``x1``, ``x2`` and binary labels ``y``, with a known interaction.

    Attributes:
        tensors: ``(x1, x2, y)``; ``x1``, ``x2``, ``y`` name them.
        kind: ``"redundancy"``, ``"uniqueness"`` or ``"synergy"``.

    Shape:
        - x1, x2: :math:`(N, D)`; y: :math:`(N,)`; item ``i``: ``(x1[i], x2[i], y[i])``

    Examples:
        >>> ds = InteractionDataset(torch.zeros(4, 3), torch.ones(4, 2),
        ...                         torch.tensor([0, 1, 1, 0]), "synergy")
        >>> len(ds), ds.modalities, ds.num_classes, ds.kind
        (4, ('x1', 'x2'), 2, 'synergy')
        >>> [tuple(t.shape) for t in ds[1]], ds.x2 is ds.tensors[1]
        ([(3,), (2,), ()], True)
    """

    def __init__(self, x1: torch.Tensor, x2: torch.Tensor, y: torch.Tensor, kind: str):
        super().__init__({"x1": x1, "x2": x2}, y, num_classes=2)
        self.kind = kind

    x1 = property(lambda self: self.tensors[0], doc="modality 1, float32 ``(N, D)``")
    x2 = property(lambda self: self.tensors[1], doc="modality 2, float32 ``(N, D)``")
    y = property(lambda self: self.tensors[2], doc="labels, int64 ``(N,)``")


def make_interactions(kind: str, n: int = 1000, seed: int = 0, dim: int = 8,
                      margin: float = 2.0) -> InteractionDataset:
    """Two modality tensors and binary labels with a known interaction.

    Args:
        kind: ``"redundancy"``, ``"uniqueness"`` or ``"synergy"``.
        n: number of examples (> 0).
        seed: seed of the generator; the same arguments give the same tensors.
        dim: features per modality (>= 1).
        margin: class separation along the informative direction, in noise standard
            deviations (redundancy / uniqueness). Larger is easier.

    Returns:
        an :class:`InteractionDataset` (items ``(x1, x2, y)``; ``.tensors`` is
        ``(x1, x2, y)``): two float32 tensors of shape ``(n, dim)`` and an int64 label
        tensor of shape ``(n,)`` with values in {0, 1}.

    Shape:
        - x1, x2: :math:`(N, D)` with N = n, D = dim
        - y: :math:`(N,)`

    Raises:
        ValueError: an unknown ``kind``, or ``n``, ``dim``, ``margin`` not positive.

    Source:
        P. P. Liang et al., "Quantifying & Modeling Multimodal Interactions: An
        Information Decomposition Framework", NeurIPS 2023.

    Examples:
        The gap between the class means of a modality, :math:`\\|\\bar x_{y=1} -
        \\bar x_{y=0}\\|` (about ``2 * margin`` where it carries the label):

        >>> def gap(x, y):
        ...     return round(float((x[y == 1].mean(0) - x[y == 0].mean(0)).norm()), 1)
        >>> red, uni = make_interactions("redundancy"), make_interactions("uniqueness")
        >>> gap(red.x1, red.y), gap(red.x2, red.y), gap(uni.x1, uni.y), gap(uni.x2, uni.y)
        (4.0, 3.9, 4.0, 0.2)

        Synergy: neither modality's mean moves with the label, their product does:

        >>> syn = make_interactions("synergy")
        >>> x1x2 = (syn.x1[:, :, None] * syn.x2[:, None, :]).flatten(1)  # (N, D * D)
        >>> gap(syn.x1, syn.y), gap(syn.x2, syn.y), gap(x1x2, syn.y)
        (0.2, 0.2, 1.4)
        >>> torch.equal(make_interactions("synergy", seed=0).x1, syn.x1)  # deterministic
        True
        >>> tuple(syn.x1.shape), syn.x1.dtype, syn.y.dtype
        ((1000, 8), torch.float32, torch.int64)
    """
    check_choice(kind, INTERACTION_KINDS, "kind")
    n, dim = check_positive_int(n, "n"), check_positive_int(dim, "dim")
    margin = check_positive(margin, "margin")
    rng = np.random.default_rng(seed)
    if kind == "synergy":
        x1 = rng.standard_normal((n, dim))
        x2 = rng.standard_normal((n, dim))
        a = x1 @ _unit(rng, dim)
        b = x2 @ _unit(rng, dim)
        y = ((a > 0) ^ (b > 0)).astype(np.int64)  # XOR: each sign alone says nothing
    else:
        y = rng.integers(0, 2, n)
        s = 2.0 * y - 1.0  # labels as -1 / +1
        x1, _ = _signal(rng, n, dim, s, margin)
        if kind == "redundancy":
            x2, _ = _signal(rng, n, dim, s, margin)
        else:
            x2 = rng.standard_normal((n, dim))
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return InteractionDataset(as_t(x1), as_t(x2), torch.from_numpy(y.astype(np.int64)), kind)
