"""Checkers for chapter 6 (Fusion levels)."""

from __future__ import annotations

import math

import torch

from ..fusion import LateFusion, TensorFusion
from . import Feedback, call_student, check_close, check_equal, pending

__all__ = [
    "tensor_fusion_parameters",
    "low_rank_parameters",
    "check_tensor_fusion_parameters",
    "check_low_rank_parameters",
    "check_two_way_tensor_fusion",
    "check_average_probabilities",
]


def tensor_fusion_parameters(in_features, out_features: int) -> int:
    """Parameters of ``nn.Linear`` on a tensor fusion of ``in_features``: the reference."""
    return (math.prod(d + 1 for d in in_features) + 1) * out_features


def low_rank_parameters(in_features, out_features: int, rank: int) -> int:
    """Parameters of ``LowRankTensorFusion(in_features, out_features, rank)``."""
    return rank * sum(d + 1 for d in in_features) * out_features + out_features


def _is_int(answer) -> bool:
    return isinstance(answer, int) and not isinstance(answer, bool)


def check_tensor_fusion_parameters(answer, in_features=(32, 16, 8),
                                   out_features: int = 64) -> Feedback:
    """Check the parameter count of a linear layer (with bias) on a tensor fusion."""
    if answer is None:
        return pending("the parameter count")
    if not _is_int(answer):
        return Feedback(False, f"answer must be an int, got {answer!r}")
    want = tensor_fusion_parameters(in_features, out_features)
    no_ones = (math.prod(in_features) + 1) * out_features
    if answer == no_ones:
        return Feedback(False, "you multiplied the D_m: each modality is [z_m; 1], of size "
                               "D_m + 1")
    if answer == math.prod(d + 1 for d in in_features) * out_features:
        return Feedback(False, "almost: the linear layer also has a bias of out_features")
    return check_equal("the parameter count", answer, want,
                       hint="the layer maps prod(D_m + 1) inputs to out_features outputs, "
                            "plus a bias")


def check_low_rank_parameters(answer, in_features=(32, 16, 8), out_features: int = 64,
                              rank: int = 4) -> Feedback:
    """Check the parameter count of a low-rank tensor fusion layer."""
    if answer is None:
        return pending("the parameter count")
    if not _is_int(answer):
        return Feedback(False, f"answer must be an int, got {answer!r}")
    return check_equal("the parameter count", answer,
                       low_rank_parameters(in_features, out_features, rank),
                       hint="R factors per modality, each (D_m + 1) x E, plus a bias of E")


def check_two_way_tensor_fusion(fn) -> Feedback:
    """Check ``fn(z1, z2)`` against :class:`mmbook.fusion.TensorFusion` for two modalities."""
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 4, generator=g)
    got, fail = call_student(fn, z1, z2)
    if fail is not None:
        return fail
    return check_close("the fused tensor", got, TensorFusion((3, 4))([z1, z2]),
                       hint="append a column of ones to each z, take the outer product of "
                            "the rows (torch.einsum('ni,nj->nij', ...)) and flatten it to "
                            "(N, (D_1 + 1)(D_2 + 1))")


def check_average_probabilities(fn) -> Feedback:
    """Check ``fn(logits_list)`` returning the average of the per-modality probabilities."""
    g = torch.Generator().manual_seed(1)
    logits = [torch.randn(6, 4, generator=g) for _ in range(3)]
    got, fail = call_student(fn, logits)
    if fail is not None:
        return fail
    fusion = LateFusion([torch.nn.Identity()] * 3, 4, mode="mean")
    want = fusion(logits).exp()
    if got is not None and torch.as_tensor(got).shape == want.shape and torch.allclose(
            torch.as_tensor(got, dtype=want.dtype), sum(logits) / 3):
        return Feedback(False, "you averaged the logits: turn each into probabilities "
                               "(softmax over classes) first")
    return check_close("the averaged probabilities", got, want,
                       hint="softmax each modality's logits over dim=1, then average")
