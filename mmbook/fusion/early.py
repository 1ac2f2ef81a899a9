"""Feature-level (early) fusion: concatenation and a learned weighted sum (chapter 6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..utils import check_positive_int, check_sizes
from .base import Fusion, modality_weights, register_fusion

__all__ = ["ConcatFusion", "WeightedSumFusion"]


@register_fusion("concat")
class ConcatFusion(Fusion):
    r"""Feature-level fusion by concatenation.

    .. math:: z = [z_1; z_2; \dots; z_M] \in \mathbb{R}^{D_1 + \dots + D_M}

    No parameters: whatever comes next (the head) learns how the modalities interact.

    Args:
        in_features: the feature sizes ``D_1, ..., D_M``.

    Attributes:
        out_features: :math:`\sum_m D_m`.

    Shape:
        - input: a list of M tensors, :math:`(N, D_m)`
        - present: :math:`(N, M)` bool, optional
        - output: :math:`(N, \sum_m D_m)`

    Examples:
        >>> fusion = ConcatFusion((3, 5))
        >>> fusion([torch.randn(2, 3), torch.randn(2, 5)]).shape
        torch.Size([2, 8])

    **Absent modality** (``present[n, m]`` False): its block of the output is filled with
    zeros, :math:`z_m := 0`, whatever the input holds (the fusion cannot renormalise:
    the head expects every block).
    """

    def __init__(self, in_features: Sequence[int]):
        sizes = check_sizes(in_features, "in_features")
        super().__init__(sizes, sum(sizes))

    def forward(self, zs, present=None) -> torch.Tensor:
        zs, _ = self.check_inputs(zs, present)  # absent rows are 0 now
        return torch.cat(zs, dim=1)  # (N, sum D_m)


@register_fusion("weighted_sum", needs=("out_features",), accepts=("project",))
class WeightedSumFusion(Fusion):
    r"""Feature-level fusion by a learned weighted sum of projected modalities.

    .. math::
        \alpha = \operatorname{softmax}(w), \qquad
        z = \sum_{m=1}^{M} \alpha_m \,(W_m z_m + b_m)

    Each modality is first projected to the common size ``out_features`` (a sum needs
    equal sizes); the weights :math:`\alpha_m \ge 0` sum to one. With ``project=False``
    the projections are skipped (every :math:`D_m` must equal ``out_features``) and this
    is the seeds' :math:`Z = \sum_k \alpha_k X^{(k)}`.

    Args:
        in_features: the feature sizes ``D_1, ..., D_M``.
        out_features: the common size E.
        project: learn the projections :math:`W_m, b_m` (default) or use the identity.

    Attributes:
        weight_logits: the M logits :math:`w` (initialised to 0: equal weights).

    Shape:
        - input: a list of M tensors, :math:`(N, D_m)`
        - present: :math:`(N, M)` bool, optional
        - output: :math:`(N, E)`

    Examples:
        >>> fusion = WeightedSumFusion((3, 5), out_features=4)
        >>> fusion([torch.randn(2, 3), torch.randn(2, 5)]).shape
        torch.Size([2, 4])
        >>> fusion.weights  # softmax of zero logits: equal weights at the start
        tensor([0.5000, 0.5000], grad_fn=<SoftmaxBackward0>)

    **Absent modality**: the weights are renormalised per sample over the present ones,
    :math:`\alpha_{nm} = r_{nm} e^{w_m} / \sum_k r_{nk} e^{w_k}` with :math:`r` the
    ``present`` mask; one modality left gives its own projection.
    """

    def __init__(self, in_features: Sequence[int], out_features: int, project: bool = True):
        super().__init__(check_sizes(in_features, "in_features"),
                         check_positive_int(out_features, "out_features"))
        if not project and any(d != out_features for d in self.in_features):
            raise ValueError(f"project=False needs every in_features entry equal to "
                             f"out_features={out_features}, got {self.in_features}")
        self.projections = nn.ModuleList(
            nn.Linear(d, out_features) if project else nn.Identity() for d in self.in_features)
        self.weight_logits = nn.Parameter(torch.zeros(len(self.in_features)))

    @property
    def weights(self) -> torch.Tensor:
        r"""The modality weights :math:`\alpha = \operatorname{softmax}(w)`, shape (M,)."""
        return torch.softmax(self.weight_logits, dim=0)

    def forward(self, zs, present=None) -> torch.Tensor:
        zs, mask = self.check_inputs(zs, present)  # absent rows are 0, and get weight 0
        projected = torch.stack([p(z) for p, z in zip(self.projections, zs)], dim=1)  # (N, M, E)
        if mask is None:
            return (self.weights[:, None] * projected).sum(dim=1)  # (N, E)
        alpha = modality_weights(self.weight_logits, mask)  # (N, M)
        return (alpha[:, :, None] * projected).sum(dim=1)  # (N, E)
