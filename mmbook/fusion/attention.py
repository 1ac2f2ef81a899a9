"""Attention over modalities, :math:`Z = \\sum_k \\alpha_k X^{(k)}`, as a fusion (chapter 7).

The attention primitives it builds on (:func:`mmbook.attention.masked_softmax` and the
cross-modal blocks) live in :mod:`mmbook.attention`, below the fusion package.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..attention import masked_softmax
from ..utils import check_positive_int, check_sizes, fill_absent
from .base import Fusion, register_fusion

__all__ = ["ModalityAttention"]


@register_fusion("attention", accepts=("hidden_size", "seed_bug"))
class ModalityAttention(Fusion):
    r"""Attention over modalities: :math:`Z = \sum_k \alpha_k X^{(k)}` with input-dependent weights.

    .. math::
        s_k = w^\top \tanh\!\left(W X^{(k)} + b\right), \qquad
        \alpha = \mathrm{softmax}_k(s), \qquad Z = \sum_{k=1}^{K} \alpha_k X^{(k)}

    One small scoring network is shared by the K modalities, so the weights depend on
    what each modality says for this input (the seeds' :math:`\alpha_k` "learned" as
    constants would be a weighted sum, chapter 6).

    A :class:`~mmbook.fusion.Fusion`: ``forward`` returns one tensor ``Z``; the weights
    :math:`\alpha` are kept in :attr:`last_weights` (detached) or returned with
    ``return_weights=True`` as ``(Z, alpha)``. Beyond the fusion contract it also takes
    sequences, ``(N, *, E)`` per modality (one weight per step). Without
    ``num_modalities`` it takes any number K of modalities, read from each call (so
    ``MultimodalModel(encoders, ModalityAttention(E), modality_dropout=p)`` works for
    any number of encoders).

    **Absent modality** (the package's rule, :mod:`mmbook.fusion.base`): an absent
    :math:`X^{(k)}` is set to 0 before it is scored (whatever it held, even NaN, is
    gone), its weight is 0 and the others' are renormalised; ``inputs[k]`` may be
    ``None`` when no sample has it; a sample (or step) with no modality raises.

    Args:
        input_size: E, the size of every :math:`X^{(k)}` (project first if they differ).
        hidden_size: size of the scoring network's hidden layer (default E).
        seed_bug: take the softmax of each score on its own (over a size-one axis), the
            seed code's mistake: every :math:`\alpha_k = 1` and :math:`Z = \sum_k X^{(k)}`.
        num_modalities: K, when fixed (``None``: any K >= 1, read from each call).

    Attributes:
        last_weights: :math:`\alpha` of the last forward pass, :math:`(N, *, K)`, detached.

    Shape:
        - inputs: a list of K tensors :math:`(N, *, E)` or one tensor :math:`(N, *, K, E)`
        - present: :math:`(K,)`, :math:`(N, K)` or :math:`(N, *, K)` bool, ``True`` = present
        - output: :math:`(N, *, E)`; with ``return_weights=True`` also
          :math:`\alpha` :math:`(N, *, K)`

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> fusion = ModalityAttention(input_size=4, num_modalities=3)
        >>> zs = [torch.randn(2, 4) for _ in range(3)]
        >>> fusion(zs).shape
        torch.Size([2, 4])
        >>> Z, alpha = fusion(zs, return_weights=True)
        >>> alpha.shape, bool(torch.allclose(alpha.sum(-1), torch.ones(2)))
        (torch.Size([2, 3]), True)
        >>> fusion(zs, present=torch.tensor([True, False, True])).shape
        torch.Size([2, 4])
        >>> fusion.last_weights[:, 1]
        tensor([0., 0.])
        >>> fusion([zs[0], None, zs[2]], present=[True, False, True]).shape
        torch.Size([2, 4])
    """

    def __init__(self, input_size: int, hidden_size: int | None = None, seed_bug: bool = False,
                 num_modalities: int | None = None):
        input_size = check_positive_int(input_size, "input_size")
        hidden_size = input_size if hidden_size is None else check_positive_int(hidden_size,
                                                                                "hidden_size")
        K = None if num_modalities is None else check_positive_int(num_modalities,
                                                                   "num_modalities")
        super().__init__((input_size,) * (K or 1), input_size)
        self.input_size, self.hidden_size, self.seed_bug = input_size, hidden_size, seed_bug
        self._num_modalities = K
        self.proj = nn.Linear(input_size, hidden_size)
        self.w = nn.Linear(hidden_size, 1, bias=False)
        self.last_weights = None

    @classmethod
    def from_in_features(cls, in_features: Sequence, **kwargs) -> ModalityAttention:
        """Equal sizes ``(E, ..., E)`` of K modalities: ``ModalityAttention(E,
        num_modalities=K)`` (it sums the modalities, so their sizes must agree)."""
        sizes = check_sizes(in_features, "in_features")
        if len(set(sizes)) != 1:
            raise ValueError(f"ModalityAttention needs equal in_features (it sums the "
                             f"modalities), got {sizes}")
        return cls(sizes[0], num_modalities=len(sizes), **kwargs)

    @property
    def num_modalities(self) -> int | None:
        """K, or ``None`` when any number of modalities is accepted."""
        return self._num_modalities

    def _stack(self, inputs) -> torch.Tensor:
        """The inputs as one tensor ``(N, *, K, E)``."""
        if isinstance(inputs, (list, tuple)):
            if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
                raise ValueError("inputs must be a non-empty list of tensors (N, *, E), None "
                                 "only where present says a modality is absent")
            shapes = {tuple(x.shape) for x in inputs}
            if len(shapes) != 1:
                raise ValueError(f"inputs must all have the same shape (N, *, E), got {shapes}")
            inputs = torch.stack(list(inputs), dim=-2)  # (N, *, K, E)
        if not isinstance(inputs, torch.Tensor) or inputs.dim() < 3 \
                or inputs.shape[-1] != self.input_size:
            raise ValueError(f"inputs must be (N, *, K, E) with E = {self.input_size}, got shape "
                             f"{tuple(getattr(inputs, 'shape', ()))}")
        K = self._num_modalities
        if K is not None and inputs.shape[-2] != K:
            raise ValueError(f"inputs must hold K = {K} modalities, got {inputs.shape[-2]}")
        return inputs

    def _present(self, present, X: torch.Tensor) -> torch.Tensor:
        """``present`` ((K,), (N, K) or (N, *, K)) broadcast to ``X.shape[:-1]``."""
        p = torch.as_tensor(present, device=X.device)
        lead, K = tuple(X.shape[:-2]), X.shape[-2]
        if p.dim() == 2 and tuple(p.shape) == (lead[0], K):  # per sample: every step alike
            p = p.reshape(lead[0], *(1,) * (len(lead) - 1), K)  # (N, 1, ..., K)
        elif tuple(p.shape) not in ((K,), (*lead, K)):
            raise ValueError(f"present must have shape ({K},), ({lead[0]}, {K}) or "
                             f"{(*lead, K)}, got {tuple(p.shape)}")
        return p.expand(*lead, K)

    def _inputs(self, inputs, present):
        """``(X (N, *, K, E), mask (N, *, K) or None)``: absent entries of X set to 0."""
        if isinstance(inputs, (list, tuple)) and any(x is None for x in inputs) \
                and present is not None:
            known = next((x for x in inputs if x is not None), None)
            shape = None if known is None else tuple(known.shape[1:])
            inputs = fill_absent(inputs, present, shapes=[shape] * len(inputs), name="inputs")
        X = self._stack(inputs)  # (N, *, K, E)
        if present is None:
            return X, None
        mask = self._present(present, X)  # (N, *, K)
        K, E = X.shape[-2], X.shape[-1]
        rows = fill_absent(list(X.reshape(-1, K, E).unbind(1)), mask.reshape(-1, K),
                           name="inputs")  # K x (N *, E): the one rule, step by step
        return torch.stack(rows, dim=1).reshape(X.shape), mask

    def forward(self, inputs, present=None, temperature: float = 1.0,
                return_weights: bool = False):
        X, present = self._inputs(inputs, present)  # (N, *, K, E), (N, *, K) or None
        s = self.w(torch.tanh(self.proj(X)))  # (N, *, K, 1)
        if self.seed_bug:  # softmax over the size-one axis: all ones
            alpha = masked_softmax(s, None if present is None else present.unsqueeze(-1),
                                   dim=-1, temperature=temperature).squeeze(-1)
        else:
            alpha = masked_softmax(s.squeeze(-1), present, dim=-1, temperature=temperature)
        Z = (alpha.unsqueeze(-1) * X).sum(-2)  # (N, *, E)
        self.last_weights = alpha.detach()  # (N, *, K)
        return (Z, alpha) if return_weights else Z

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"num_modalities={self._num_modalities}, seed_bug={self.seed_bug}")
