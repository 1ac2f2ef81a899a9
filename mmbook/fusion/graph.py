"""Fusion by graph attention over a sample's modalities (chapter 14).

The graph primitives (:class:`mmbook.graph.ModalityGraphAttention`, :class:`GraphConv`,
similarity network fusion) live in :mod:`mmbook.graph`, below the fusion package.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..graph import ModalityGraphAttention
from ..utils import check_positive_int, check_sizes
from .base import Fusion, register_fusion

__all__ = ["ModalityGraphFusion"]


@register_fusion("graph", needs=("out_features",))
class ModalityGraphFusion(Fusion):
    r"""Fusion by graph attention over a sample's modalities, read out by a mean.

    .. math::
        h_m = W_m z_m + b_m, \qquad h' = \operatorname{ELU}(\operatorname{GAT}(h)),
        \qquad z = \frac{1}{|\mathcal P|}\sum_{m \in \mathcal P} h'_m ,

    with :math:`\mathcal P` the modalities present. Each modality is projected to a common
    size E (the nodes), one :class:`~mmbook.graph.ModalityGraphAttention` layer lets every
    node gather from the others, and the mean over present nodes is the fused vector.

    **Absent modality** (the package's rule, :mod:`mmbook.fusion.base`): its node is
    removed from the graph (what it held, even NaN, is discarded), so the fusion works on
    any non-empty subset; ``zs[m]`` may be ``None`` when no sample has it.

    Args:
        in_features: the sizes ``D_1, ..., D_M``.
        out_features: E, the node size and the fused size.

    Attributes:
        last_weights: the attention weights of the last call, ``(N, M, M)``.

    Shape:
        - zs: M tensors :math:`(N, D_m)`
        - present: :math:`(N, M)` or :math:`(M,)` bool, optional
        - output: :math:`(N, E)`

    Examples:
        >>> fusion = ModalityGraphFusion((6, 4), out_features=8)
        >>> z = fusion([torch.randn(3, 6), torch.randn(3, 4)])
        >>> z.shape, fusion.last_weights.shape
        (torch.Size([3, 8]), torch.Size([3, 2, 2]))
    """

    def __init__(self, in_features: Sequence[int], out_features: int):
        in_features = check_sizes(in_features, "in_features")
        super().__init__(in_features, check_positive_int(out_features, "out_features"))
        self.projections = nn.ModuleList(nn.Linear(d, out_features) for d in in_features)
        self.attention = ModalityGraphAttention(out_features, out_features)

    @property
    def last_weights(self) -> torch.Tensor | None:
        """The attention weights of the last call, ``(N, M, M)``."""
        return self.attention.last_weights

    def forward(self, zs, present=None) -> torch.Tensor:
        zs, mask = self.check_inputs(zs, present)  # absent rows are 0
        h = torch.stack([p(z) for p, z in zip(self.projections, zs)], dim=1)  # (N, M, E)
        h = nn.functional.elu(self.attention(h, mask))  # (N, M, E), absent nodes' rows 0
        if mask is None:
            return h.mean(1)
        return h.sum(1) / mask.sum(1, keepdim=True).to(h.dtype)  # mean over present nodes
