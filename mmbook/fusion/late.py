"""Decision-level (late) fusion: each modality predicts, the predictions are combined."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..utils import check_choice, check_positive_int, check_sizes, fill_absent
from .base import Fusion, check_modalities, register_fusion

__all__ = ["LateFusion"]


@register_fusion("late", needs=("num_classes",), accepts=("mode",))
class LateFusion(Fusion):
    r"""Decision-level fusion: each modality predicts, then the predictions are combined.

    Each modality gets its own head :math:`f_m` giving class logits :math:`\ell_m =
    f_m(z_m)` and probabilities :math:`p_m = \operatorname{softmax}(\ell_m)`. The
    combination, by ``mode``:

    * ``"mean"``: :math:`p = \frac{1}{M}\sum_m p_m` (averaging, soft voting);
    * ``"weighted"``: :math:`p = \sum_m \beta_m p_m` with learned
      :math:`\beta = \operatorname{softmax}(v)`;
    * ``"meta"``: a linear meta-classifier on the stacked log-probabilities,
      :math:`\ell = \sum_m A_m \log p_m + c` (stacking).

    The output is a vector of logits (for ``"mean"`` and ``"weighted"``, :math:`\log p`,
    which ``cross_entropy`` treats correctly), so the module trains end to end like any
    other. In every mode the decision is a sum of per-modality terms: late fusion cannot
    represent an interaction such as XOR between modalities. The meta-classifier is
    linear on purpose: a non-linear one trained end to end would turn this into feature
    fusion through a C-dimensional bottleneck.

    **Absent modality**: ``forward(zs, present=None)`` with ``present`` (M booleans, or
    bool ``(N, M)`` per sample) lets only the present modalities vote (``"mean"``,
    ``"weighted"``): :math:`\beta` is renormalised per sample over them, so one modality
    left gives exactly its own prediction; ``zs[m]`` may be ``None`` for a modality absent
    from every sample. ``"meta"`` refuses an absent modality (its meta-classifier has an
    input block per modality).

    Args:
        in_features: one entry per modality: an int :math:`D_m` (the head is then
            ``nn.Linear(D_m, num_classes)``) or an ``nn.Module`` mapping ``(N, D_m)`` to
            ``(N, num_classes)`` (use ``nn.Identity()`` when the inputs already are logits).
        num_classes: C.
        mode: ``"mean"``, ``"weighted"`` or ``"meta"``.

    Attributes:
        heads: the per-modality heads :math:`f_m` (an ``nn.ModuleList``).
        out_features: C.

    Shape:
        - input: a list of M tensors, :math:`(N, D_m)`
        - present: :math:`(M,)` or :math:`(N, M)` bool, optional
        - output: :math:`(N, C)` logits

    Examples:
        >>> fusion = LateFusion((3, 5), num_classes=4, mode="mean")
        >>> logits = fusion([torch.randn(2, 3), torch.randn(2, 5)])
        >>> logits.shape, bool(torch.allclose(logits.exp().sum(1), torch.ones(2)))
        (torch.Size([2, 4]), True)
        >>> fusion.weights
        tensor([0.5000, 0.5000])
    """

    MODES = ("mean", "weighted", "meta")

    def __init__(self, in_features: Sequence, num_classes: int, mode: str = "mean"):
        sizes = check_sizes(in_features, "in_features", allow_modules=True)
        super().__init__(tuple(d if isinstance(d, int) else None for d in sizes),
                         check_positive_int(num_classes, "num_classes"))
        self.num_classes = self.out_features
        self.mode = check_choice(mode, self.MODES, "mode")
        self.heads = nn.ModuleList(nn.Linear(d, num_classes) if isinstance(d, int) else d
                                   for d in sizes)
        M = len(sizes)
        # equal weights as a buffer, so that .weights follows the module's device and dtype
        self.register_buffer("_uniform", torch.full((M,), 1.0 / M), persistent=False)
        if mode == "weighted":
            self.weight_logits = nn.Parameter(torch.zeros(M))
        elif mode == "meta":
            self.meta = nn.Linear(M * num_classes, num_classes)

    def modality_logits(self, zs) -> list:
        """The per-modality predictions :math:`\\ell_m = f_m(z_m)`, a list of (N, C)."""
        zs = check_modalities(zs, self.in_features)
        return self._heads(zs, range(len(zs)))

    def _heads(self, zs, idx) -> list:
        logits = [self.heads[m](z) for m, z in zip(idx, zs)]
        check_modalities(logits, [self.num_classes] * len(logits), name="head outputs")
        return logits

    def _present(self, present, batch_size: int | None = None, device=None) -> torch.Tensor:
        """Validate ``present`` (M booleans or bool (N, M)); return it as bool (N or 1, M)."""
        mask = self.check_present(present, batch_size, device=device)
        if self.mode == "meta" and not bool(mask.all()):
            raise ValueError("present: mode='meta' needs every modality (its meta-classifier "
                             "has one input block per modality); use 'mean' or 'weighted'")
        return mask

    def combine(self, logits, present=None) -> torch.Tensor:
        """Combine per-modality logits ``[l_1, ..., l_M]`` (each (N, C)) into (N, C).

        With ``present`` (M booleans or bool (N, M)), absent modalities are ignored (an
        entry may be ``None`` when no sample has it) and the weights :math:`\beta` are
        renormalised per sample over the present ones: decision-level fusion degrades
        gracefully when a modality is missing.
        """
        M = len(self.heads)
        if not isinstance(logits, (list, tuple)) or len(logits) != M:
            got = len(logits) if isinstance(logits, (list, tuple)) else type(logits).__name__
            raise ValueError(f"logits must be a list of {M} tensors (N, C), got {got}")
        if present is None:
            kept = check_modalities(list(logits), [self.num_classes] * M, name="logits")
            mask = None
        else:  # absent rows (even NaN) and None entries become 0: weight 0 meets no NaN
            kept = check_modalities(fill_absent(logits, present, shapes=[self.num_classes] * M,
                                                name="logits"),
                                    [self.num_classes] * M, name="logits")
            mask = self._present(present, kept[0].shape[0], kept[0].device)
        log_p = torch.stack([torch.log_softmax(ll, dim=1) for ll in kept], dim=1)  # (N, M, C)
        if self.mode == "meta":
            return self.meta(log_p.flatten(1))  # (N, M*C) -> (N, C)
        w = log_p.new_zeros(M) if self.mode == "mean" else self.weight_logits
        if mask is None:
            log_beta = torch.log_softmax(w, dim=0)[None, :]  # (1, M)
        else:
            mask = mask.expand(log_p.shape[0], M)
            log_beta = torch.log_softmax(w.expand(mask.shape).masked_fill(~mask, float("-inf")),
                                         dim=1)  # (N, M): beta over the present modalities
        return torch.logsumexp(log_beta[:, :, None] + log_p, dim=1)  # log sum_m beta_m p_m

    @property
    def weights(self) -> torch.Tensor:
        r"""The modality weights :math:`\beta` (``"mean"`` and ``"weighted"`` modes)."""
        if self.mode == "weighted":
            return torch.softmax(self.weight_logits, dim=0)
        if self.mode == "mean":
            return self._uniform
        raise AttributeError("mode='meta' has no modality weights; see .meta")

    def forward(self, zs, present=None) -> torch.Tensor:
        if present is None:
            return self.combine(self.modality_logits(zs))
        M = len(self.heads)
        if not isinstance(zs, (list, tuple)) or len(zs) != M:
            raise ValueError(f"zs must be a list of {M} entries (None where absent), got "
                             f"{type(zs).__name__}")
        # absent rows: zeros in, weight 0 out; a None modality (size unknown for a module
        # head) gets an empty placeholder, as its head is skipped
        filled = fill_absent(zs, present, shapes=[d or 0 for d in self.in_features])
        mask = self._present(present, filled[0].shape[0], filled[0].device)
        idx = [m for m in range(M) if bool(mask[:, m].any())]
        kept = check_modalities([filled[m] for m in idx], [self.in_features[m] for m in idx])
        logits = [None] * M
        for m, ll in zip(idx, self._heads(kept, idx)):
            logits[m] = ll
        return self.combine(logits, mask)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, mode={self.mode!r}"
