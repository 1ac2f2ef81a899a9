"""The data contract every data set follows: a ``Dataset`` of ``(*inputs, target)`` items.

A multimodal data set is a :class:`ModalityDataset`: item ``i`` is ``(*inputs, target)``,
the inputs of modality 1 first (``arity[0]`` of them), then those of modality 2, and so
on; ``.modalities`` names the modalities in that order, ``.arity`` says how many inputs
each has (AV digits: ``(1, 2)``, the audio being frames and lengths), ``.modality(name)``
is that modality alone with the target (for unimodal baselines) and ``.num_classes`` is C
(``None`` for a regression target). :class:`ModalityDataset` implements the contract for
aligned tensors; a data set that holds its items otherwise (one image per scene shared by
several questions, questions as strings) subclasses it and overrides ``__len__``,
``__getitem__`` and ``modality``.
"""

from __future__ import annotations

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, TensorDataset

from ..utils import check_positive_int, check_shape

__all__ = ["ModalityDataset", "batch_loader"]


def batch_loader(tensors, batch_size: int, seed: int = 0) -> DataLoader:
    """Shuffled mini-batches of aligned tensors, each batch taken in one indexing step.

    A ``DataLoader(TensorDataset(...), batch_size=B)`` fetches the B items of a batch one
    by one and stacks them; this loader hands the sampler's B indices to the tensors at
    once (``tensor[indices]``), which gives the same batches for a fraction of the cost
    when the model itself is small. Pass it to :meth:`mmbook.train.Trainer.fit` in place
    of the tensors; each pass over it is a new permutation drawn from ``seed``.

    Args:
        tensors: ``(*inputs, target)``, tensors sharing their first dimension N.
        batch_size: B (the last batch may be smaller).
        seed: seeds the shuffling.

    Examples:
        >>> x, y = torch.arange(10.0)[:, None], torch.arange(10)
        >>> batches = list(batch_loader((x, y), batch_size=4, seed=0))
        >>> [len(b[1]) for b in batches], bool(torch.equal(batches[0][0][:, 0].long(),
        ...                                                 batches[0][1]))
        ([4, 4, 2], True)
    """
    tensors = tuple(tensors)
    if not tensors or len({len(t) for t in tensors}) != 1:
        raise ValueError(f"tensors must share their first dimension N, got shapes "
                         f"{[tuple(t.shape) for t in tensors]}")
    data = TensorDataset(*tensors)
    sampler = BatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(seed)),
                           check_positive_int(batch_size, "batch_size"), drop_last=False)
    return DataLoader(data, sampler=sampler, batch_size=None)


class ModalityDataset(Dataset):
    """Aligned modality tensors and a target: item ``i`` is ``(x_1[i], ..., x_M[i], y[i])``.

    Args:
        inputs: ``{name: tensor (N, ...)}``, one entry per modality, in order; a modality
            with several inputs gives a tuple of tensors (``{"audio": (frames, lengths)}``).
        target: ``(N,)`` labels.
        num_classes: C (default: ``max(target) + 1``).

    Attributes:
        tensors: ``(x_1, ..., x_M, y)`` flattened (a modality's several inputs in order),
            as in :class:`torch.utils.data.TensorDataset`.
        modalities: the modality names.
        arity: the number of inputs of each modality.

    Examples:
        >>> ds = ModalityDataset({"a": torch.zeros(4, 2), "b": torch.ones(4, 3)},
        ...                      torch.tensor([0, 1, 1, 0]))
        >>> len(ds), ds.modalities, ds.arity, ds.num_classes
        (4, ('a', 'b'), (1, 1), 2)
        >>> [tuple(t.shape) for t in ds[0]]
        [(2,), (3,), ()]
        >>> ds.modality("b").tensors[0].shape
        torch.Size([4, 3])
        >>> seq = ModalityDataset({"audio": (torch.zeros(4, 5, 2), torch.tensor([5, 3, 2, 5]))},
        ...                       torch.tensor([0, 1, 1, 0]))
        >>> seq.arity, len(seq[0]), len(seq.modality("audio")[0])
        ((2,), 3, 3)
    """

    def __init__(self, inputs: dict, target: torch.Tensor, num_classes: int | None = None):
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError(f"inputs must be a non-empty dict {{name: tensor}}, got "
                             f"{type(inputs).__name__}")
        target = torch.as_tensor(target)
        check_shape(target, ("N",), "target")
        parts = {name: tuple(x) if isinstance(x, (tuple, list)) else (x,)
                 for name, x in inputs.items()}
        for name, xs in parts.items():
            for x in xs:
                if not isinstance(x, torch.Tensor) or x.dim() < 1 or len(x) != len(target):
                    got = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
                    raise ValueError(f"inputs[{name!r}] must be tensors with N={len(target)} "
                                     f"rows, got {got}")
        self.modalities = tuple(parts)
        self.arity = tuple(len(xs) for xs in parts.values())
        self.tensors = (*(x for xs in parts.values() for x in xs), target)
        if num_classes is None:
            num_classes = int(target.max()) + 1 if len(target) else 0
        self.num_classes = int(num_classes)

    def __len__(self) -> int:
        return len(self.tensors[-1])

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)

    def inputs(self, name: str) -> tuple:
        """The input tensors of one modality (``arity`` of them)."""
        if name not in self.modalities:
            raise ValueError(f"name must be one of {self.modalities}, got {name!r}")
        k = self.modalities.index(name)
        start = sum(self.arity[:k])
        return tuple(self.tensors[start:start + self.arity[k]])

    def modality(self, name: str) -> TensorDataset:
        """One modality alone with the target: items ``(*inputs of that modality, y)``."""
        return TensorDataset(*self.inputs(name), self.tensors[-1])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{m}={tuple(self.inputs(m)[0].shape[1:])}" for m in self.modalities)
        return f"{type(self).__name__}(n={len(self)}, {shapes}, num_classes={self.num_classes})"
