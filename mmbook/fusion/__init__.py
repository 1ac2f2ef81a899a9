"""Fusion modules: how the representations of M modalities become one.

Every fusion module takes a list of modality tensors ``[z_1, ..., z_M]``, ``z_m`` of shape
``(N, D_m)``, and returns one tensor of shape ``(N, out_features)`` (the contract,
:class:`Fusion`, and the one rule for absent modalities are in :mod:`.base`). One module
per family:

* :mod:`.early`, feature level: :class:`ConcatFusion`, :class:`WeightedSumFusion`;
* :mod:`.late`, decision level: :class:`LateFusion` (average, learned weights,
  meta-classifier);
* :mod:`.tensor`: :class:`TensorFusion` (Zadeh et al., 2017),
  :class:`LowRankTensorFusion` (Liu et al., 2018);
* :mod:`.gated`: :class:`GatedFusion` (Arevalo et al., 2017);
* :mod:`.attention`: :class:`ModalityAttention`, input-dependent weights over modalities;
* :mod:`.graph`: :class:`ModalityGraphFusion`, graph attention over a sample's modalities.

:class:`MultimodalModel` joins per-modality encoders, a fusion module and a head into one
network that a :class:`~mmbook.train.Trainer` can train (``model(*inputs) -> logits``).
Fusing encoder outputs inside one network trained end to end is the seeds' "model level"
(hybrid) fusion; :class:`mmbook.models.HybridCNNRNN` is their CNN + RNN example.
:func:`make_fusion` builds any of them by name from the registry :data:`FUSIONS`.
"""

from .attention import ModalityAttention
from .base import (
    FUSIONS,
    Fusion,
    FusionEntry,
    MultimodalModel,
    check_modalities,
    make_fusion,
    register_fusion,
)
from .early import ConcatFusion, WeightedSumFusion
from .gated import GatedFusion
from .graph import ModalityGraphFusion
from .late import LateFusion
from .tensor import LowRankTensorFusion, TensorFusion

__all__ = [
    "Fusion",
    "ConcatFusion",
    "WeightedSumFusion",
    "LateFusion",
    "TensorFusion",
    "LowRankTensorFusion",
    "GatedFusion",
    "ModalityAttention",
    "ModalityGraphFusion",
    "MultimodalModel",
    "check_modalities",
    "FUSIONS",
    "FusionEntry",
    "register_fusion",
    "make_fusion",
]
