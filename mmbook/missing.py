"""Missing modalities (chapter 10): masks of which modalities each sample has, and
modality dropout.

The whole package writes "which modalities are there" as one boolean mask ``present`` of
shape ``(N, M)``, ``True`` = the modality is present (the package's mask convention:
True = real). Every fusion module in :mod:`mmbook.fusion` accepts it
(``fusion(zs, present=...)``) and documents what it does with an absent modality;
:class:`mmbook.fusion.MultimodalModel` carries it from ``model(*inputs, present=...)`` to
its fusion. The rule itself (how ``present`` is validated, how an absent modality's
values are removed, what a sample with no modality gets) is written once, in
:func:`mmbook.utils.check_present` and :func:`mmbook.utils.fill_absent`, and described in
:mod:`mmbook.fusion.base`. This module sits below the fusion package: it imports
:mod:`mmbook.utils` only.

* :func:`missing_mask` builds a test-time mask in which a given fraction of the samples
  lose one modality;
* :class:`ModalityDropout` drops whole modalities at random during training, so that a
  model learns to predict from any non-empty subset (Neverova et al., 2016, "ModDrop").
"""

from __future__ import annotations

import torch
from torch import nn

from .utils import (
    check_nonnegative_int,
    check_positive_int,
    check_present,
    check_probability,
    check_shape,
)

__all__ = ["missing_mask", "ModalityDropout"]


def missing_mask(n: int, num_modalities: int, modality: int, rate: float,
                 generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """A ``present`` mask in which ``round(rate * n)`` random samples lose one modality.

    Args:
        n: N, the number of samples.
        num_modalities: M.
        modality: the index m of the modality that goes missing.
        rate: the fraction of samples that lose it, in [0, 1].
        generator: a ``torch.Generator`` for the choice of samples (reproducible masks).
        device: where the mask lives.

    Returns:
        bool ``(N, M)``: ``True`` everywhere except ``mask[i, modality]`` for the chosen i.

    Raises:
        ValueError: a modality index outside ``[0, M)``, or a rate outside [0, 1]; a
            sample never loses every modality (M = 1 with a positive rate is refused).

    Shape:
        - output: :math:`(N, M)` bool

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = missing_mask(8, 2, modality=1, rate=0.25, generator=g)
        >>> m.shape, int((~m[:, 1]).sum()), bool(m[:, 0].all())
        (torch.Size([8, 2]), 2, True)
    """
    n = check_nonnegative_int(n, "n")
    M = check_positive_int(num_modalities, "num_modalities")
    modality = check_nonnegative_int(modality, "modality")
    if modality >= M:
        raise ValueError(f"modality must be an index in [0, {M}), got {modality}")
    rate = check_probability(rate, "rate")
    k = round(rate * n)
    if M == 1 and k > 0:
        raise ValueError("missing_mask: with one modality a sample would have none left")
    mask = torch.ones(n, M, dtype=torch.bool)
    rows = torch.randperm(n, generator=generator)[:k]
    mask[rows, modality] = False
    return mask.to(device) if device is not None else mask


class ModalityDropout(nn.Module):
    r"""Drop whole modalities at random during training (modality dropout, "ModDrop").

    In training mode each present modality of each sample is dropped independently with
    probability p:

    .. math:: \tilde r_{nm} = r_{nm}\,[u_{nm} \ge p], \qquad u_{nm} \sim U(0, 1)

    and a sample that would lose all its modalities keeps one of them, chosen uniformly
    among those it had, so no sample is ever left empty (unlike plain dropout, nothing is
    rescaled: an absent modality is handled by the fusion, not by the scale of a sum). In
    evaluation mode, or with p = 0, the mask passes through unchanged. Randomness comes
    from torch's global generator, so :class:`mmbook.train.Trainer`'s seed makes it
    reproducible.

    Args:
        p: the probability of dropping each modality, in [0, 1).

    Shape:
        - present: :math:`(N, M)` bool (True = present; every row needs one, as everywhere
          in the package: :func:`mmbook.utils.check_present`)
        - output: :math:`(N, M)` bool, a subset of ``present`` with at least one True per row

    Examples:
        >>> drop = ModalityDropout(0.5).train()
        >>> _ = torch.manual_seed(0)
        >>> out = drop(torch.ones(1000, 2, dtype=torch.bool))
        >>> bool(out.any(dim=1).all()), round(out.float().mean().item(), 1)
        (True, 0.6)

    Source: N. Neverova, C. Wolf, G. Taylor, F. Nebout, "ModDrop: adaptive multi-modal
    gesture recognition", IEEE TPAMI 38(8), 2016.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = check_probability(p, "p", allow_one=False)

    def forward(self, present: torch.Tensor) -> torch.Tensor:
        check_shape(present, ("N", "M"), "present")
        present = check_present(present, present.shape[1])  # bool, no sample left empty
        if not self.training or self.p == 0.0 or present.shape[0] == 0:
            return present
        keep = present & (torch.rand(present.shape, device=present.device) >= self.p)
        empty = ~keep.any(dim=1)  # (N,) rows that lost everything
        if bool(empty.any()):
            rescue = torch.multinomial(present[empty].float(), 1).squeeze(1)  # (n_empty,)
            keep[empty.nonzero().squeeze(1), rescue] = True
        return keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
