"""Gated fusion, after the gated multimodal unit (Arevalo et al., 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..utils import check_positive_int, check_sizes
from .base import Fusion, modality_weights, register_fusion

__all__ = ["GatedFusion"]


@register_fusion("gated", needs=("out_features",))
class GatedFusion(Fusion):
    r"""Gated fusion, after the gated multimodal unit (Arevalo et al., 2017).

    .. math::
        h_m = \tanh(W_m z_m + b_m), \qquad
        g = \operatorname{softmax}_m\big(W_g [z_1; \dots; z_M] + b_g\big), \qquad
        h = \sum_{m=1}^{M} g_m \odot h_m

    The gate :math:`g \in \mathbb{R}^{M \times E}` is computed from all modalities and,
    for each of the E output features, sums to one over the modalities: the network
    decides, example by example and feature by feature, which modality to listen to.
    For M = 2 this is the GMU's :math:`g \odot h_1 + (1 - g) \odot h_2` with
    :math:`g = \sigma(\cdot)`.

    Args:
        in_features: the feature sizes ``D_1, ..., D_M``.
        out_features: E.

    Shape:
        - input: a list of M tensors, :math:`(N, D_m)`
        - present: :math:`(N, M)` bool, optional
        - output: :math:`(N, E)`

    Examples:
        >>> fusion = GatedFusion((3, 5), out_features=4)
        >>> zs = [torch.randn(2, 3), torch.randn(2, 5)]
        >>> fusion(zs).shape, fusion.gates(zs).shape
        (torch.Size([2, 4]), torch.Size([2, 2, 4]))

    **Absent modality**: its input to the gate is zero-filled and its gate is set to 0,
    the softmax renormalising over the present modalities (one left: :math:`h = h_m`).
    """

    def __init__(self, in_features: Sequence[int], out_features: int):
        super().__init__(check_sizes(in_features, "in_features"),
                         check_positive_int(out_features, "out_features"))
        M = len(self.in_features)
        self.transforms = nn.ModuleList(nn.Linear(d, out_features) for d in self.in_features)
        self.gate = nn.Linear(sum(self.in_features), M * out_features)

    def gates(self, zs, present=None) -> torch.Tensor:
        """The gate values :math:`g`, shape (N, M, E) (0 for absent modalities)."""
        return self._gates(*self.check_inputs(zs, present))

    def _gates(self, zs, mask) -> torch.Tensor:
        M, E = len(zs), self.out_features
        logits = self.gate(torch.cat(zs, dim=1)).view(-1, M, E)  # (N, M, E)
        return modality_weights(logits, mask)  # softmax over the (present) modalities

    def forward(self, zs, present=None) -> torch.Tensor:
        zs, mask = self.check_inputs(zs, present)  # absent rows are 0, their gates 0
        h = torch.stack([torch.tanh(t(z)) for t, z in zip(self.transforms, zs)], dim=1)
        return (self._gates(zs, mask) * h).sum(dim=1)  # (N, E)
