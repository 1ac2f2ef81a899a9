"""Tensor fusion (Zadeh et al., 2017) and its low-rank factorisation (Liu et al., 2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..utils import check_positive_int, check_sizes
from .base import Fusion, register_fusion

__all__ = ["TensorFusion", "LowRankTensorFusion"]


def _append_one(z: torch.Tensor) -> torch.Tensor:
    """``[z; 1]``: append a constant 1 to every row."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)  # (N, D + 1)


@register_fusion("tensor")
class TensorFusion(Fusion):
    r"""Tensor fusion (Zadeh et al., 2017): the outer product of the modalities.

    .. math::
        z = \operatorname{vec}\Big(\bigotimes_{m=1}^{M} \begin{bmatrix} z_m \\ 1
        \end{bmatrix}\Big) \in \mathbb{R}^{\prod_m (D_m + 1)}

    The appended 1 keeps every unimodal term and every lower-order product next to the
    M-way products; a linear layer on :math:`z` is a general multilinear function of the
    modalities. No parameters, but the size grows as the product of the :math:`D_m + 1`.
    The flattening is row-major: entry :math:`(i_1, \dots, i_M)` of the tensor is at
    position :math:`i_M + (D_M + 1)(i_{M-1} + \dots)`.

    Args:
        in_features: the feature sizes ``D_1, ..., D_M``.

    Attributes:
        out_features: :math:`\prod_m (D_m + 1)`.

    Shape:
        - input: a list of M tensors, :math:`(N, D_m)`
        - present: :math:`(N, M)` bool, optional
        - output: :math:`(N, \prod_m (D_m + 1))`

    Examples:
        >>> fusion = TensorFusion((2, 3))
        >>> fusion.out_features  # (2 + 1) * (3 + 1)
        12
        >>> fusion([torch.randn(5, 2), torch.randn(5, 3)]).shape
        torch.Size([5, 12])

    **Absent modality**: :math:`z_m := 0`, so :math:`[z_m; 1] = [0; 1]`: every product that
    involves modality m vanishes and exactly the terms of the present modalities remain.
    """

    def __init__(self, in_features: Sequence[int]):
        sizes = check_sizes(in_features, "in_features")
        super().__init__(sizes, math.prod(d + 1 for d in sizes))

    def forward(self, zs, present=None) -> torch.Tensor:
        zs, _ = self.check_inputs(zs, present)  # absent rows are 0: z_m := 0
        t = _append_one(zs[0])  # (N, D_1 + 1)
        for z in zs[1:]:
            t = torch.einsum("ni,nj->nij", t, _append_one(z)).flatten(1)  # (N, P * (D_m + 1))
        return t


@register_fusion("low_rank", needs=("out_features", "rank"), accepts=("bias",))
class LowRankTensorFusion(Fusion):
    r"""Low-rank multimodal fusion (Liu et al., 2018).

    A linear layer on the tensor-fusion output, :math:`h = \mathcal{W} \cdot
    \bigotimes_m [z_m; 1] + b`, needs a weight tensor of :math:`\prod_m (D_m + 1) \times E`
    entries. Writing that tensor as a sum of R rank-one terms,
    :math:`\mathcal{W} = \sum_{i=1}^{R} \bigotimes_m W_m^{(i)}`, with modality-specific
    factors :math:`W_m^{(i)} \in \mathbb{R}^{(D_m + 1) \times E}` (for each output e, an
    outer product of the columns :math:`W_m^{(i)}[:, e]`), the product never has to be
    formed:

    .. math::
        h = \sum_{i=1}^{R} \prod_{m=1}^{M} \left([z_m; 1]^\top W_m^{(i)}\right) + b

    (the product over m is elementwise over the E outputs). Parameters:
    :math:`R \sum_m (D_m + 1) E + E`, linear in M instead of exponential. Every factor is
    a registered parameter (MultiBench's version keeps them in a plain list, so they are
    never trained nor moved to the GPU).

    Args:
        in_features: the feature sizes ``D_1, ..., D_M``.
        out_features: E.
        rank: R.
        bias: learn the bias b.

    Attributes:
        factors: ``nn.ParameterList``; ``factors[m]`` has shape ``(R, D_m + 1, E)``.

    Shape:
        - input: a list of M tensors, :math:`(N, D_m)`
        - present: :math:`(N, M)` bool, optional
        - output: :math:`(N, E)`

    Examples:
        >>> fusion = LowRankTensorFusion((2, 3), out_features=4, rank=2)
        >>> zs = [torch.randn(5, 2), torch.randn(5, 3)]
        >>> fusion(zs).shape
        torch.Size([5, 4])
        >>> dense = TensorFusion((2, 3))(zs) @ fusion.full_weight() + fusion.bias
        >>> bool(torch.allclose(fusion(zs), dense, atol=1e-5))
        True

    **Absent modality**: :math:`z_m := 0`, as in :class:`TensorFusion` (modality m then
    contributes only the last row of its factors, :math:`[0; 1]^\top W_m^{(i)}`).
    """

    def __init__(self, in_features: Sequence[int], out_features: int, rank: int,
                 bias: bool = True):
        super().__init__(check_sizes(in_features, "in_features"),
                         check_positive_int(out_features, "out_features"))
        self.rank = check_positive_int(rank, "rank")
        self.factors = nn.ParameterList(
            nn.Parameter(torch.empty(rank, d + 1, out_features)) for d in self.in_features)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each factor ~ N(0, 1 / (D_m + 1)), so each :math:`[z_m;1]^T W_m^{(i)}` has unit
        scale for unit inputs; the first factor is scaled by :math:`1/\\sqrt{R}` so the
        sum over the rank does not grow with R."""
        for m, W in enumerate(self.factors):
            std = (W.shape[1]) ** -0.5 / (math.sqrt(self.rank) if m == 0 else 1.0)
            nn.init.normal_(W, std=std)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, zs, present=None) -> torch.Tensor:
        zs, _ = self.check_inputs(zs, present)  # absent rows are 0: z_m := 0
        h = None
        for z, W in zip(zs, self.factors):
            f = torch.einsum("nd,rde->nre", _append_one(z), W)  # (N, R, E)
            h = f if h is None else h * f
        h = h.sum(dim=1)  # (N, E)
        return h if self.bias is None else h + self.bias

    def full_weight(self) -> torch.Tensor:
        r"""The equivalent full weight, :math:`\sum_i \bigotimes_m W_m^{(i)}`, flattened
        like :class:`TensorFusion`'s output: shape :math:`(\prod_m (D_m + 1), E)`."""
        W = self.factors[0]  # (R, P, E) with P growing
        for F in self.factors[1:]:
            W = torch.einsum("rpe,rqe->rpqe", W, F).flatten(1, 2)  # (R, P * (D_m + 1), E)
        return W.sum(dim=0)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, bias={self.bias is not None}")
