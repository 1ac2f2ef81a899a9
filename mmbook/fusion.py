"""Fusion modules: how the representations of M modalities become one.

Every fusion module takes a list of modality tensors ``[z_1, ..., z_M]``, ``z_m`` of shape
``(N, D_m)``, and returns one tensor of shape ``(N, out_features)``:

* feature level (early): :class:`ConcatFusion`, :class:`WeightedSumFusion`;
* decision level (late): :class:`LateFusion` (average, learned weights, meta-classifier);
* beyond the seeds: :class:`TensorFusion` (Zadeh et al., 2017),
  :class:`LowRankTensorFusion` (Liu et al., 2018), :class:`GatedFusion` (Arevalo et al., 2017).

:class:`MultimodalModel` joins per-modality encoders, a fusion module and a head into one
network that a :class:`~mmbook.train.Trainer` can train (``model(*inputs) -> logits``).
Fusing encoder outputs inside one network trained end to end is the seeds' "model level"
(hybrid) fusion; :class:`mmbook.models.HybridCNNRNN` is their CNN + RNN example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .missing import ModalityDropout
from .utils import _fmt, check_choice, check_positive_int, check_sizes

__all__ = [
    "Fusion",
    "ConcatFusion",
    "WeightedSumFusion",
    "LateFusion",
    "TensorFusion",
    "LowRankTensorFusion",
    "GatedFusion",
    "MultimodalModel",
    "check_modalities",
    "FUSIONS",
    "make_fusion",
]


def check_modalities(zs, in_features: Sequence, name: str = "zs") -> list:
    """Check a list of modality tensors against the expected feature sizes.

    Args:
        zs: a list or tuple of M tensors, ``zs[m]`` of shape ``(N, D_m)``.
        in_features: the expected ``D_m``; an entry that is not an int (``None`` or a
            module) accepts any feature size.
        name: the argument's name, used in messages.

    Returns:
        ``zs`` as a list.

    Raises:
        ValueError: wrong number of modalities, a tensor that is not 2-D, batch sizes that
            differ, or a feature size that differs from ``in_features``; the message names
            the argument, the shape received and the shape expected.

    Shape:
        - zs[m]: :math:`(N, D_m)`

    Examples:
        >>> zs = [torch.zeros(2, 3), torch.zeros(2, 5)]
        >>> len(check_modalities(zs, (3, 5)))
        2
        >>> check_modalities(zs, (3, 4))
        Traceback (most recent call last):
        ...
        ValueError: zs[1] has shape (2, 5) but expected (N, 4)
    """
    if isinstance(zs, torch.Tensor) or not isinstance(zs, (list, tuple)):
        raise ValueError(f"{name} must be a list of {len(in_features)} modality tensors "
                         f"(N, D_m), got {type(zs).__name__}")
    if len(zs) != len(in_features):
        raise ValueError(f"{name} must hold {len(in_features)} modalities, got {len(zs)}")
    batch = None
    for m, (z, d) in enumerate(zip(zs, in_features)):
        if not isinstance(z, torch.Tensor):
            raise ValueError(f"{name}[{m}] must be a tensor, got {type(z).__name__}")
        want = _fmt(("N", d if isinstance(d, int) else "D"))
        if z.dim() != 2:
            raise ValueError(f"{name}[{m}] must have 2 dimensions {want}, got shape "
                             f"{_fmt(z.shape)}")
        if batch is not None and z.shape[0] != batch:
            raise ValueError(f"{name}[{m}] has batch size {z.shape[0]} (shape "
                             f"{_fmt(z.shape)}) but {name}[0] has {batch}: all modalities "
                             f"must share the batch dimension N")
        batch = z.shape[0]
        if isinstance(d, int) and z.shape[1] != d:
            raise ValueError(f"{name}[{m}] has shape {_fmt(z.shape)} but expected {want}")
    return list(zs)


# --------------------------------------------------------------------------- contract
class Fusion(nn.Module):
    r"""The contract every fusion module follows.

    A fusion maps a list of M modality representations ``[z_1, ..., z_M]``, ``z_m`` of
    shape ``(N, D_m)``, to one tensor of shape ``(N, out_features)``:

    .. math:: z = \operatorname{fuse}(z_1, \dots, z_M) \in \mathbb{R}^{E}

    Subclasses call ``super().__init__(in_features, out_features)`` and implement
    ``forward(zs, present=None)``. ``present`` (bool ``(N, M)`` or ``(M,)``, ``True`` = the
    modality is there) says which modalities each sample has; a fusion that cannot use it
    raises ``NotImplementedError`` naming what to do instead. Extra outputs (attention or
    modality weights) are kept as attributes (e.g. ``last_weights``), never returned as a
    tuple by default. Inputs and outputs follow the inputs' device and dtype.

    Args:
        in_features: the feature sizes ``D_1, ..., D_M`` (an entry may be ``None``: any size).
        out_features: E, the size of the fused representation.

    Shape:
        - zs: a list of M tensors :math:`(N, D_m)`
        - present: :math:`(N, M)` or :math:`(M,)` bool, optional
        - output: :math:`(N, E)`

    Examples:
        >>> class MeanFusion(Fusion):
        ...     def __init__(self, in_features):
        ...         super().__init__(in_features, in_features[0])
        ...     def forward(self, zs, present=None):
        ...         zs = self.check_modalities(zs)
        ...         return torch.stack(zs).mean(0)
        >>> MeanFusion((4, 4))([torch.ones(2, 4), torch.zeros(2, 4)])
        tensor([[0.5000, 0.5000, 0.5000, 0.5000],
                [0.5000, 0.5000, 0.5000, 0.5000]])
    """

    def __init__(self, in_features: Sequence, out_features: int):
        super().__init__()
        self.in_features = tuple(in_features)
        self.out_features = int(out_features)

    @property
    def num_modalities(self) -> int:
        """M, the number of modalities this fusion takes."""
        return len(self.in_features)

    def check_modalities(self, zs, name: str = "zs") -> list:
        """Check ``zs`` against :attr:`in_features` (see :func:`check_modalities`)."""
        return check_modalities(zs, self.in_features, name=name)

    def check_present(self, present, batch_size: int | None = None,
                      device=None) -> torch.Tensor:
        """Validate a ``present`` mask and return it as bool ``(N, M)`` (or ``(1, M)``).

        Raises:
            ValueError: wrong shape, or a sample with no modality present.
        """
        M = self.num_modalities
        p = torch.as_tensor(present, device=device)
        if p.dtype != torch.bool:
            raise ValueError(f"present must be a bool tensor (N, {M}) or ({M},), "
                             f"got dtype {p.dtype}")
        if p.dim() == 1:
            p = p[None, :]
        if p.dim() != 2 or p.shape[1] != M or (batch_size is not None
                                               and p.shape[0] not in (1, batch_size)):
            n = "N" if batch_size is None else batch_size
            raise ValueError(f"present must have shape ({n}, {M}) or ({M},), got "
                             f"{tuple(torch.as_tensor(present).shape)}")
        empty = ~p.any(dim=1)
        if p.device.type != "meta" and bool(empty.any()):  # meta: shapes only, no values
            rows = torch.nonzero(empty).flatten()[:5].tolist()
            raise ValueError(f"present: every sample needs at least one modality; rows "
                             f"{rows} have none")
        return p

    def check_inputs(self, zs, present=None, name: str = "zs"):
        """Check ``zs`` and ``present`` together; return ``(zs, mask)``.

        Without ``present`` this is :meth:`check_modalities` and ``mask`` is ``None``.
        With it, ``zs[m]`` may be ``None`` for a modality absent from every sample (it is
        replaced by zeros of shape ``(N, D_m)``), and ``mask`` is bool ``(N, M)``.

        Raises:
            ValueError: as :meth:`check_modalities` and :meth:`check_present`, or a
                ``None`` entry for a modality that some sample has.
        """
        if present is None:
            return self.check_modalities(zs, name), None
        M = self.num_modalities
        if isinstance(zs, torch.Tensor) or not isinstance(zs, (list, tuple)) or len(zs) != M:
            got = len(zs) if isinstance(zs, (list, tuple)) else type(zs).__name__
            raise ValueError(f"{name} must be a list of {M} modality tensors (N, D_m), "
                             f"None where absent, got {got}")
        known = [z for z in zs if isinstance(z, torch.Tensor)]
        if not known:
            raise ValueError(f"{name}: at least one modality tensor is needed, got only None")
        n = known[0].shape[0] if known[0].dim() else 0
        mask = self.check_present(present, n, device=known[0].device).expand(n, M)
        filled = []
        for m, z in enumerate(zs):
            if z is None:
                if bool(mask[:, m].any()):
                    raise ValueError(f"{name}[{m}] is None but present[:, {m}] is True for "
                                     f"some samples")
                d = self.in_features[m]
                if not isinstance(d, int):
                    raise ValueError(f"{name}[{m}] is None and in_features[{m}] gives no size")
                z = known[0].new_zeros(n, d)
            filled.append(z)
        return self.check_modalities(filled, name), mask

    @staticmethod
    def zero_absent(zs, mask) -> list:
        """``z_m`` with the rows of absent samples set to 0 (``mask`` bool ``(N, M)``).

        ``torch.where``, not a product: whatever an absent row holds (even NaN) is
        discarded."""
        return [torch.where(mask[:, m:m + 1], z, torch.zeros((), dtype=z.dtype, device=z.device))
                for m, z in enumerate(zs)]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def _masked_weights(logits: torch.Tensor, mask) -> torch.Tensor:
    """``softmax`` of the M modality logits, per sample over the present ones only.

    ``logits`` (M,) or (N, M, ...); ``mask`` bool (N, M) or None. Returns (N, M, ...)
    (or (M,) without a mask)."""
    if mask is None:
        return torch.softmax(logits, dim=-1 if logits.dim() == 1 else 1)
    if logits.dim() == 1:
        logits = logits.expand(mask.shape[0], -1)  # (N, M)
    shape = mask.shape + (1,) * (logits.dim() - 2)
    masked = logits.masked_fill(~mask.view(shape), float("-inf"))
    return torch.softmax(masked, dim=1)


def _append_one(z: torch.Tensor) -> torch.Tensor:
    """``[z; 1]``: append a constant 1 to every row."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)  # (N, D + 1)


# --------------------------------------------------------------------------- early
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
        zs, mask = self.check_inputs(zs, present)
        if mask is not None:
            zs = self.zero_absent(zs, mask)
        return torch.cat(zs, dim=1)  # (N, sum D_m)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


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
        zs, mask = self.check_inputs(zs, present)
        if mask is not None:
            zs = self.zero_absent(zs, mask)  # absent rows get weight 0; no NaN leaks
        projected = torch.stack([p(z) for p, z in zip(self.projections, zs)], dim=1)  # (N, M, E)
        if mask is None:
            return (self.weights[:, None] * projected).sum(dim=1)  # (N, E)
        alpha = _masked_weights(self.weight_logits, mask)  # (N, M)
        return (alpha[:, :, None] * projected).sum(dim=1)  # (N, E)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# --------------------------------------------------------------------------- late
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
        M = len(self.heads)
        if not isinstance(present, torch.Tensor) and len(present) != M:
            raise ValueError(f"present must hold {M} booleans (or be bool (N, {M})), got "
                             f"{len(present)}")
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
        else:
            known = next((ll for ll in logits if isinstance(ll, torch.Tensor)), None)
            n = None if known is None else known.shape[0]
            mask = self._present(present, n, None if known is None else known.device)
            idx = [m for m in range(M) if bool(mask[:, m].any())]
            kept = check_modalities([logits[m] for m in idx], [self.num_classes] * len(idx),
                                    name="logits")
            full = [torch.zeros_like(kept[0])] * M  # placeholders: weight 0 below
            for m, ll in zip(idx, kept):
                full[m] = ll
            kept = full
        log_p = torch.stack([torch.log_softmax(ll, dim=1) for ll in kept], dim=1)  # (N, M, C)
        if mask is not None:  # absent rows may hold anything: weight 0 must not meet NaN
            log_p = log_p.masked_fill(~mask.expand(log_p.shape[:2])[:, :, None], 0.0)
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
        known = next((z for z in zs if isinstance(z, torch.Tensor)), None)
        n = None if known is None else known.shape[0]
        mask = self._present(present, n, None if known is None else known.device)
        idx = [m for m in range(M) if bool(mask[:, m].any())]
        kept = check_modalities([zs[m] for m in idx], [self.in_features[m] for m in idx])
        rows = mask.expand(kept[0].shape[0], M)
        kept = [torch.where(rows[:, m:m + 1], z, torch.zeros((), dtype=z.dtype, device=z.device))
                for m, z in zip(idx, kept)]  # absent rows: zeros in, weight 0 out
        logits = [None] * M
        for m, ll in zip(idx, self._heads(kept, idx)):
            logits[m] = ll
        return self.combine(logits, mask)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, mode={self.mode!r}"


# --------------------------------------------------------------------------- tensor
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
        zs, mask = self.check_inputs(zs, present)
        if mask is not None:
            zs = self.zero_absent(zs, mask)
        t = _append_one(zs[0])  # (N, D_1 + 1)
        for z in zs[1:]:
            t = torch.einsum("ni,nj->nij", t, _append_one(z)).flatten(1)  # (N, P * (D_m + 1))
        return t

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


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
        zs, mask = self.check_inputs(zs, present)
        if mask is not None:
            zs = self.zero_absent(zs, mask)
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


# --------------------------------------------------------------------------- gated
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
        zs, mask = self.check_inputs(zs, present)
        if mask is not None:
            zs = self.zero_absent(zs, mask)
        M, E = len(zs), self.out_features
        logits = self.gate(torch.cat(zs, dim=1)).view(-1, M, E)  # (N, M, E)
        return _masked_weights(logits, mask)  # softmax over the (present) modalities

    def forward(self, zs, present=None) -> torch.Tensor:
        g = self.gates(zs, present)
        zs, mask = self.check_inputs(zs, present)
        if mask is not None:
            zs = self.zero_absent(zs, mask)
        h = torch.stack([torch.tanh(t(z)) for t, z in zip(self.transforms, zs)], dim=1)
        return (g * h).sum(dim=1)  # (N, E)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


# --------------------------------------------------------------------------- model
class MultimodalModel(nn.Module):
    r"""Encoders, a fusion module and a head, joined into one network.

    .. math:: \hat y = \text{head}\big(\text{fusion}([\text{enc}_1(x_1), \dots,
              \text{enc}_M(x_M)])\big)

    ``model(*inputs)`` hands the first ``arity[0]`` positional inputs to encoder 1, the
    next ``arity[1]`` to encoder 2, and so on (AV digits: ``arity=(1, 2)`` for ``image``,
    then ``audio, length``). For late fusion pass a :class:`LateFusion` (it holds the
    per-modality heads) and ``head=None``.

    **Missing modalities**: ``model(*inputs, present=mask)`` (bool ``(N, M)``, True =
    present) hands the mask to the fusion, which applies its documented rule (fill or
    renormalise; see each :class:`Fusion`). The encoders still run on every input (give
    anything finite, e.g. zeros, for absent ones); a modality absent from every sample may
    be passed as ``None`` (all its positional inputs), and its encoder is skipped. With
    ``modality_dropout=p`` (training only) each sample loses each modality with
    probability p, never all of them (:class:`mmbook.missing.ModalityDropout`).

    Args:
        encoders: one module per modality (``nn.Identity()`` for raw features).
        fusion: a :class:`Fusion` over M modalities (any subclass: its ``forward(zs)``
            maps a list of M tensors to one tensor).
        head: the module after the fusion (``None``: the fusion output is returned).
        arity: the number of positional inputs of each encoder (default: 1 each).
        modality_dropout: p, the probability of dropping each modality of each training
            sample (0: off); needs a :class:`Fusion`, which knows what to do with absent
            modalities.

    Shape:
        - inputs: the encoders' inputs, in order, batch first
        - present: :math:`(N, M)` or :math:`(M,)` bool, optional
        - output: the head's output, e.g. :math:`(N, C)` logits

    Examples:
        >>> from torch import nn
        >>> model = MultimodalModel([nn.Linear(6, 3), nn.Identity()], ConcatFusion((3, 5)),
        ...                         head=nn.Linear(8, 10))
        >>> model(torch.randn(2, 6), torch.randn(2, 5)).shape
        torch.Size([2, 10])
    """

    def __init__(self, encoders: Sequence[nn.Module], fusion: Fusion,
                 head: nn.Module | None = None, arity: Sequence[int] | None = None,
                 modality_dropout: float = 0.0):
        super().__init__()
        if isinstance(encoders, nn.Module) and not isinstance(encoders, nn.ModuleList):
            raise ValueError("encoders must be a sequence of modules, one per modality, "
                             f"got a single {type(encoders).__name__}")
        self.encoders = nn.ModuleList(encoders)
        if len(self.encoders) < 1:
            raise ValueError("encoders must hold at least one module")
        M = len(self.encoders)
        arity = (1,) * M if arity is None else check_sizes(arity, "arity")
        if len(arity) != M:
            raise ValueError(f"arity must hold {M} positive ints (one per encoder), "
                             f"got {arity!r}")
        self.arity = arity
        if not isinstance(fusion, Fusion):
            raise TypeError(f"fusion must be a mmbook.fusion.Fusion (forward(zs) -> one tensor "
                            f"(N, out_features)), got {type(fusion).__name__}")
        K = fusion.num_modalities
        if K is not None and K != M:
            raise ValueError(f"fusion takes {K} modalities but {M} encoders were given")
        self.fusion = fusion
        self.head = head if head is not None else nn.Identity()
        self.modality_dropout = ModalityDropout(modality_dropout)

    def split_inputs(self, inputs: Sequence) -> list:
        """Group the positional inputs by encoder, ``arity[m]`` each."""
        if len(inputs) != sum(self.arity):
            raise ValueError(f"inputs: expected {sum(self.arity)} positional inputs "
                             f"(arity {self.arity}), got {len(inputs)}")
        groups, start = [], 0
        for a in self.arity:
            groups.append(tuple(inputs[start:start + a]))
            start += a
        return groups

    def encode(self, *inputs) -> list:
        """The per-modality representations ``[z_1, ..., z_M]`` (``None`` for a modality
        whose inputs are all ``None``)."""
        return [None if all(v is None for v in x) else enc(*x)
                for enc, x in zip(self.encoders, self.split_inputs(inputs))]

    def forward(self, *inputs, present=None) -> torch.Tensor:
        zs = self.encode(*inputs)
        if self.training and self.modality_dropout.p > 0:
            known = next(z for z in zs if z is not None)
            n, M = known.shape[0], len(zs)
            mask = (torch.ones(n, M, dtype=torch.bool, device=known.device) if present is None
                    else self.fusion.check_present(present, n, known.device).expand(n, M))
            present = self.modality_dropout(mask)
        if present is None:
            return self.head(self.fusion(zs))
        return self.head(self.fusion(zs, present=present))


# --------------------------------------------------------------------------- registry
def _modality_attention(in_features, out_features=None, **kwargs):
    from .attention import ModalityAttention  # attention builds on this module

    sizes = check_sizes(in_features, "in_features")
    if len(set(sizes)) != 1:
        raise ValueError(f"'attention' needs equal in_features (it sums the modalities), got "
                         f"{sizes}")
    if out_features is not None and out_features != sizes[0]:
        raise ValueError(f"'attention' returns in_features[0]={sizes[0]} features, got "
                         f"out_features={out_features}")
    return ModalityAttention(sizes[0], num_modalities=len(sizes), **kwargs)


def _needs_out(cls):
    def build(in_features, out_features=None, **kwargs):
        if out_features is None:
            raise ValueError(f"{cls.__name__} needs out_features")
        return cls(in_features, out_features, **kwargs)
    return build


def _no_out(cls):
    def build(in_features, out_features=None, **kwargs):
        fusion = cls(in_features, **kwargs)
        if out_features is not None and out_features != fusion.out_features:
            raise ValueError(f"{cls.__name__} has out_features={fusion.out_features}, got "
                             f"out_features={out_features}")
        return fusion
    return build


#: The one registry of fusion names: name -> ``build(in_features, out_features=None,
#: **kwargs)`` returning a :class:`Fusion`.
FUSIONS = {
    "concat": _no_out(ConcatFusion),
    "tensor": _no_out(TensorFusion),
    "weighted_sum": _needs_out(WeightedSumFusion),
    "low_rank": _needs_out(LowRankTensorFusion),
    "gated": _needs_out(GatedFusion),
    "attention": _modality_attention,
}


def make_fusion(fusion, in_features: Sequence[int], out_features: int | None = None,
                **kwargs) -> Fusion:
    """A fusion module from a name in :data:`FUSIONS`, or a :class:`Fusion` checked as is.

    Args:
        fusion: a name (``"concat"``, ``"tensor"``, ``"weighted_sum"``, ``"low_rank"``,
            ``"gated"``, ``"attention"``) or a :class:`Fusion` instance.
        in_features: the modalities' feature sizes ``D_1, ..., D_M``.
        out_features: E, for the fusions that learn a projection (``None`` otherwise).
        **kwargs: passed to the class (``rank`` for ``"low_rank"``).

    Returns:
        the :class:`Fusion`; a module passed in must take ``len(in_features)`` modalities.

    Examples:
        >>> make_fusion("concat", (3, 5))
        ConcatFusion(in_features=(3, 5), out_features=8)
        >>> make_fusion("low_rank", (3, 5), 4, rank=2).out_features
        4
        >>> make_fusion("sum", (3, 5))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: fusion must be one of ('concat', 'tensor', ...) or a Fusion, got 'sum'
    """
    sizes = check_sizes(in_features, "in_features")
    if isinstance(fusion, Fusion):
        K = fusion.num_modalities
        if K is not None and K != len(sizes):
            raise ValueError(f"fusion takes {K} modalities, expected {len(sizes)}")
        return fusion
    if not isinstance(fusion, str) or fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {tuple(FUSIONS)} or a Fusion, got {fusion!r}")
    return FUSIONS[fusion](sizes, out_features, **kwargs)
