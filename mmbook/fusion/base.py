r"""The fusion contract, the absent-modality rule, :class:`MultimodalModel` and the registry.

**The contract.** A fusion is a :class:`Fusion`: ``forward(zs, present=None)`` maps a list
of M modality tensors ``zs[m]`` of shape ``(N, D_m)`` to one tensor ``(N, out_features)``.
Extra outputs (attention or modality weights) are attributes (``last_weights``) or come
on request, never as a tuple by default.

**The one rule for absent modalities** (every fusion of :mod:`mmbook.fusion` follows it,
and so do :mod:`mmbook.missing`, the graph attention of :mod:`mmbook.graph` and the
imputers of :mod:`mmbook.models`; the code is :func:`mmbook.utils.check_present` and
:func:`mmbook.utils.fill_absent`):

1. ``present`` is bool ``(N, M)`` (or ``(M,)``, the same for every sample), ``True`` =
   the modality is there. Anything else (another dtype or shape) raises, naming the
   shape received and the one expected.
2. What an absent modality holds is *removed* before anything reads it, with
   ``torch.where`` (never ``z * present``): NaN, inf or garbage in an absent row never
   reaches the output, nor the gradients of the fusion's parameters and inputs.
3. ``zs[m]`` may be ``None`` when modality m is absent from the whole batch.
4. A sample with **no** modality present is refused (``ValueError`` naming its rows), by
   every fusion alike: there is nothing to fuse.
5. What the fusion then does is its own documented choice: fill the block with zeros
   (concatenation, tensor products), renormalise the weights over the present modalities
   (weighted sum, gates, late fusion, attention), or drop the node (graph).

**The registry.** :data:`FUSIONS` maps a name to a :class:`FusionEntry`, the class and the
constructor arguments it needs (``out_features``, ``rank``, ``num_classes``) or accepts;
:func:`make_fusion` builds one from a name. Each family module registers its classes
with :func:`register_fusion`, so the registry knows every fusion once
:mod:`mmbook.fusion` is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..attention import masked_softmax
from ..missing import ModalityDropout
from ..utils import _fmt, check_present, check_sizes, fill_absent

__all__ = [
    "Fusion", "MultimodalModel", "check_modalities", "FusionEntry", "FUSIONS",
    "register_fusion", "make_fusion",
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
    ``forward(zs, present=None)``, starting with ``zs, mask = self.check_inputs(zs,
    present)``: it validates both, turns a ``None`` modality into zeros and zeroes the
    rows of absent modalities (the package's absent-modality rule, see
    :mod:`mmbook.fusion.base`). Extra outputs (attention or modality weights) are kept as
    attributes (e.g. ``last_weights``), never returned as a tuple by default. Inputs and
    outputs follow the inputs' device and dtype.

    Args:
        in_features: the feature sizes ``D_1, ..., D_M`` (an entry may be ``None``: any size).
        out_features: E, the size of the fused representation.

    Shape:
        - zs: a list of M tensors :math:`(N, D_m)` (``None`` where absent from the batch)
        - present: :math:`(N, M)` or :math:`(M,)` bool, optional
        - output: :math:`(N, E)`

    Examples:
        >>> class MeanFusion(Fusion):
        ...     def __init__(self, in_features):
        ...         super().__init__(in_features, in_features[0])
        ...     def forward(self, zs, present=None):
        ...         zs, mask = self.check_inputs(zs, present)  # absent rows are 0 now
        ...         total = torch.stack(zs, dim=1).sum(1)  # (N, E)
        ...         return total / (len(zs) if mask is None else mask.sum(1, keepdim=True))
        >>> fusion = MeanFusion((2, 2))
        >>> fusion([torch.ones(2, 2), torch.zeros(2, 2)])
        tensor([[0.5000, 0.5000],
                [0.5000, 0.5000]])
        >>> nan = torch.full((2, 2), float("nan"))
        >>> fusion([torch.ones(2, 2), nan], present=torch.tensor([[True, False]] * 2))
        tensor([[1., 1.],
                [1., 1.]])
    """

    def __init__(self, in_features: Sequence, out_features: int):
        super().__init__()
        self.in_features = tuple(in_features)
        self.out_features = int(out_features)

    @classmethod
    def from_in_features(cls, in_features: Sequence, **kwargs) -> Fusion:
        """Build from the modalities' sizes, as :func:`make_fusion` does (``cls(in_features,
        **kwargs)``; a fusion whose constructor reads them otherwise overrides this)."""
        return cls(in_features, **kwargs)

    @property
    def num_modalities(self) -> int | None:
        """M, the number of modalities this fusion takes (``None``: any number)."""
        return len(self.in_features)

    def check_modalities(self, zs, name: str = "zs") -> list:
        """Check ``zs`` against :attr:`in_features` (see :func:`check_modalities`)."""
        return check_modalities(zs, self.in_features, name=name)

    def check_present(self, present, batch_size: int | None = None,
                      device=None) -> torch.Tensor:
        """:func:`mmbook.utils.check_present` with M = :attr:`num_modalities`: the mask as
        bool ``(N, M)`` (``(1, M)`` from an ``(M,)`` mask without ``batch_size``)."""
        return check_present(present, self.num_modalities, batch_size, device)

    def check_inputs(self, zs, present=None, name: str = "zs"):
        """Check ``zs`` and ``present`` together and apply the absent-modality rule.

        Without ``present`` this is :meth:`check_modalities` and the mask is ``None``. With
        it, ``zs[m]`` may be ``None`` for a modality absent from every sample (it becomes
        zeros ``(N, D_m)``), and the rows of absent modalities are set to 0 with
        ``torch.where`` (:func:`mmbook.utils.fill_absent`), so whatever they held (even
        NaN) is gone.

        Returns:
            ``(zs, mask)``: a list of M tensors ``(N, D_m)`` and bool ``(N, M)`` (or None).

        Raises:
            ValueError: as :meth:`check_modalities` and :func:`mmbook.utils.check_present`
                (a sample with no modality among them), or a ``None`` entry for a
                modality that some sample has.
        """
        if present is None:
            return self.check_modalities(zs, name), None
        M = self.num_modalities
        if isinstance(zs, (list, tuple)) and len(zs) != M:
            raise ValueError(f"{name} must hold {M} modalities (None where absent), got "
                             f"{len(zs)}")
        zs = self.check_modalities(fill_absent(zs, present, shapes=self.in_features,
                                               name=name), name)
        return zs, check_present(present, M, zs[0].shape[0], zs[0].device)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def modality_weights(logits: torch.Tensor, mask) -> torch.Tensor:
    r"""Softmax over the M modalities of ``logits``, per sample over the present ones only.

    .. math:: \alpha_{nm} = \frac{r_{nm} e^{w_{nm}}}{\sum_k r_{nk} e^{w_{nk}}}

    (:func:`mmbook.attention.masked_softmax` along the modality axis.)

    Args:
        logits: the M logits ``(M,)`` (shared by every sample) or ``(N, M, ...)``.
        mask: bool ``(N, M)`` from :meth:`Fusion.check_inputs`, or ``None`` (all present).

    Returns:
        ``(N, M, ...)`` weights summing to 1 over M (``(M,)`` without a mask); an absent
        modality's weight is exactly 0.

    Examples:
        >>> modality_weights(torch.zeros(3), torch.tensor([[True, True, False]]))
        tensor([[0.5000, 0.5000, 0.0000]])
    """
    if mask is None:
        return torch.softmax(logits, dim=-1 if logits.dim() == 1 else 1)
    if logits.dim() == 1:
        logits = logits.expand(mask.shape[0], -1)  # (N, M)
    shape = mask.shape + (1,) * (logits.dim() - 2)  # (N, M, 1, ...)
    return masked_softmax(logits, mask.view(shape), dim=1)


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
    renormalise; see each :class:`Fusion`): whatever an absent modality's representation
    holds is discarded. The encoders still run on every input (an encoder's own gradient
    is finite only if its input is: give zeros, not NaN, for absent raw inputs); a
    modality absent from every sample may be passed as ``None`` (all its positional
    inputs), and its encoder is skipped. With
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
        >>> from mmbook.fusion import ConcatFusion, ModalityAttention
        >>> model = MultimodalModel([nn.Linear(6, 3), nn.Identity()], ConcatFusion((3, 5)),
        ...                         head=nn.Linear(8, 10))
        >>> model(torch.randn(2, 6), torch.randn(2, 5)).shape
        torch.Size([2, 10])
        >>> any_k = MultimodalModel([nn.Identity()] * 3, ModalityAttention(4),
        ...                         modality_dropout=0.5)  # M = 3, from the encoders
        >>> any_k(*[torch.randn(2, 4) for _ in range(3)]).shape
        torch.Size([2, 4])
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
            n, M = known.shape[0], len(zs)  # M from the encoders: the fusion may take any M
            mask = (torch.ones(n, M, dtype=torch.bool, device=known.device) if present is None
                    else check_present(present, M, n, known.device))
            present = self.modality_dropout(mask)
        if present is None:
            return self.head(self.fusion(zs))
        return self.head(self.fusion(zs, present=present))


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class FusionEntry:
    """One record of :data:`FUSIONS`: a fusion class and the constructor arguments it takes.

    Attributes:
        name: the registry name (``"low_rank"``).
        cls: the :class:`Fusion` subclass; built by ``cls.from_in_features(in_features,
            **arguments)``.
        needs: the arguments it cannot do without, beyond ``in_features``
            (``("out_features", "rank")``).
        accepts: the optional ones (``("bias",)``).

    Examples:
        >>> entry = FUSIONS["low_rank"]
        >>> entry.needs, entry.takes("out_features"), entry.takes("num_classes")
        (('out_features', 'rank'), True, False)
        >>> fusion = entry.build((3, 5), out_features=4, rank=2, num_classes=10, strict=False)
        >>> type(fusion).__name__, fusion.rank  # num_classes was offered, not taken
        ('LowRankTensorFusion', 2)
    """

    name: str
    cls: type
    needs: tuple = ()
    accepts: tuple = ()

    def takes(self, argument: str) -> bool:
        """Whether the constructor takes ``argument`` (needed or optional)."""
        return argument in self.needs or argument in self.accepts

    def build(self, in_features: Sequence, *, strict: bool = True, **arguments) -> Fusion:
        """The fusion, from ``in_features`` and the arguments it takes among ``arguments``.

        ``None`` values count as not given. With ``strict=True`` an argument it does not
        take is an error (``out_features`` is then allowed only if it equals what the
        fusion returns); with ``strict=False`` such arguments are ignored, so a model can
        offer every value it has.

        Raises:
            ValueError: a needed argument missing; with ``strict``, an argument it does not
                take, or an ``out_features`` it cannot return.
        """
        given = {k: v for k, v in arguments.items() if v is not None}
        missing = [k for k in self.needs if k not in given]
        if missing:
            raise ValueError(f"{self.cls.__name__} ({self.name!r}) needs "
                             f"{' and '.join(missing)}")
        extra = sorted(k for k in given if not self.takes(k) and k != "out_features")
        if strict and extra:
            raise ValueError(f"{self.name!r} takes {self.needs + self.accepts or 'nothing'} "
                             f"beyond in_features, got {extra}")
        fusion = self.cls.from_in_features(
            in_features, **{k: v for k, v in given.items() if self.takes(k)})
        out = given.get("out_features")
        if strict and out is not None and not self.takes("out_features") \
                and out != fusion.out_features:
            raise ValueError(f"{self.cls.__name__} has out_features={fusion.out_features}, "
                             f"got out_features={out}")
        return fusion


#: The one registry of fusion names: name -> :class:`FusionEntry`. The family modules fill
#: it with :func:`register_fusion` when :mod:`mmbook.fusion` is imported.
FUSIONS: dict[str, FusionEntry] = {}


def register_fusion(name: str, needs: Sequence[str] = (), accepts: Sequence[str] = ()):
    """A class decorator that adds a :class:`Fusion` to :data:`FUSIONS` under ``name``.

    Args:
        name: the registry name.
        needs: constructor arguments it needs beyond ``in_features`` (``"out_features"``).
        accepts: the optional ones.

    Raises:
        ValueError: a name already taken by another class, or a class that is not a Fusion.

    Examples:
        >>> @register_fusion("doc_max")
        ... class MaxFusion(Fusion):
        ...     def __init__(self, in_features):
        ...         super().__init__(in_features, in_features[0])
        ...     def forward(self, zs, present=None):
        ...         zs, mask = self.check_inputs(zs, present)
        ...         return torch.stack(zs, 1).amax(1)
        >>> make_fusion("doc_max", (2, 2))([torch.zeros(1, 2), torch.ones(1, 2)])
        tensor([[1., 1.]])
        >>> del FUSIONS["doc_max"]
    """
    def register(cls):
        if not (isinstance(cls, type) and issubclass(cls, Fusion)):
            raise ValueError(f"register_fusion({name!r}) needs a Fusion subclass, got {cls!r}")
        old = FUSIONS.get(name)
        if old is not None and old.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"fusion name {name!r} is taken by {old.cls.__name__}")
        FUSIONS[name] = FusionEntry(name, cls, tuple(needs), tuple(accepts))
        return cls
    return register


def make_fusion(fusion, in_features: Sequence[int], out_features: int | None = None, *,
                strict: bool = True, **kwargs) -> Fusion:
    """A fusion module from a name in :data:`FUSIONS`, or a :class:`Fusion` checked as is.

    Args:
        fusion: a registry name (``"concat"``, ``"weighted_sum"``, ``"late"``, ``"tensor"``,
            ``"low_rank"``, ``"gated"``, ``"attention"``, ``"graph"``) or a :class:`Fusion`.
        in_features: the modalities' feature sizes ``D_1, ..., D_M``.
        out_features: E, for the fusions that learn a projection (their entry needs it);
            one that does not accepts only the size it returns.
        strict: refuse arguments the fusion does not take (default); ``False`` ignores
            them, so a model can offer ``out_features``, ``rank`` ... to any fusion.
        **kwargs: the other constructor arguments (``rank`` for ``"low_rank"``).

    Returns:
        the :class:`Fusion`; a module passed in must take ``len(in_features)`` modalities.

    Examples:
        >>> make_fusion("concat", (3, 5))
        ConcatFusion(in_features=(3, 5), out_features=8)
        >>> make_fusion("low_rank", (3, 5), 4, rank=2).out_features
        4
        >>> make_fusion("concat", (3, 5), 4, strict=False, rank=2).out_features  # ignored
        8
        >>> make_fusion("gated", (3, 5))
        Traceback (most recent call last):
        ...
        ValueError: GatedFusion ('gated') needs out_features
        >>> make_fusion("sum", (3, 5))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: fusion must be one of (...) or a Fusion, got 'sum'
    """
    sizes = check_sizes(in_features, "in_features")
    if isinstance(fusion, Fusion):
        K = fusion.num_modalities
        if K is not None and K != len(sizes):
            raise ValueError(f"fusion takes {K} modalities, expected {len(sizes)}")
        return fusion
    if not isinstance(fusion, str) or fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {tuple(FUSIONS)} or a Fusion, got {fusion!r}")
    return FUSIONS[fusion].build(sizes, strict=strict, out_features=out_features, **kwargs)
