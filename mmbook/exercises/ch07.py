"""Checkers for the exercises of chapter 7, *Attention for fusion*."""

from __future__ import annotations

import torch

from ..attention import masked_softmax
from . import Feedback, call_student, check_close, pending

__all__ = ["check_masked_softmax", "check_removed_modality"]


def _cases():
    g = torch.Generator().manual_seed(7)
    scores = 3 * torch.randn(4, 6, generator=g)
    mask = torch.rand(4, 6, generator=g) > 0.4
    mask[:3, 0] = True
    mask[3] = False  # a row with nothing to attend to
    return scores, mask


def check_masked_softmax(fn) -> Feedback:
    """Check ``fn(scores, mask)``: a softmax over the last axis that ignores masked entries.

    .. math:: \\alpha_j = \\frac{m_j e^{s_j}}{\\sum_k m_k e^{s_k}}

    ``mask`` is boolean, ``True`` = may attend; a row that is all ``False`` must give all
    zeros, not NaN.
    """
    scores, mask = _cases()
    got, fail = call_student(fn, scores.clone(), mask.clone())
    if fail is not None:
        return fail
    if got is None:
        return Feedback(False, "your function returned None: return the weights")
    got = torch.as_tensor(got)
    if got.shape != scores.shape:
        return Feedback(False, f"the weights have shape {tuple(got.shape)}, expected "
                               f"{tuple(scores.shape)} (one weight per score)")
    if torch.isnan(got).any():
        return Feedback(False, "some weights are NaN: the last row is fully masked, and "
                               "softmax of all -inf is 0/0. Fill with a large finite negative "
                               "number, or set fully masked rows to zero afterwards")
    if (got[~mask] != 0).any():
        return Feedback(False, "masked entries must get weight exactly 0 (use masked_fill "
                               "before the softmax, or multiply by the mask after it)")
    sums = got[:3].sum(-1)
    if not torch.allclose(sums, torch.ones(3), atol=1e-5):
        return Feedback(False, f"each row with something to attend to must sum to 1 over the "
                               f"last axis; yours sum to {[round(v, 3) for v in sums.tolist()]}")
    return check_close("weights", got, masked_softmax(scores, mask),
                       hint="compare with torch.softmax(scores.masked_fill(~mask, -inf), -1)")


def check_removed_modality(predicted, alpha, removed: int) -> Feedback:
    """Check a prediction of modality weights after modality ``removed`` is masked out.

    With :math:`\\alpha = \\mathrm{softmax}(s)` and scores :math:`s_k` that depend on
    modality :math:`k` only, removing modality :math:`r` renormalises the others:
    :math:`\\alpha'_k = \\alpha_k / (1 - \\alpha_r)` for :math:`k \\neq r`, :math:`\\alpha'_r = 0`.
    """
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    if predicted is None:
        return pending("predicted")
    predicted = torch.as_tensor(predicted, dtype=torch.float64)
    if predicted.shape != alpha.shape:
        return Feedback(False, f"predicted has shape {tuple(predicted.shape)}; give one weight per "
                               f"modality, shape {tuple(alpha.shape)} (0 for the removed one)")
    if predicted[..., removed].abs().max() > 1e-6:
        return Feedback(False, f"the removed modality {removed} must get weight 0")
    expected = alpha.clone()
    expected[..., removed] = 0
    expected = expected / expected.sum(-1, keepdim=True)
    if torch.allclose(predicted, alpha, atol=1e-4):
        return Feedback(False, "the other weights cannot stay as they were: they must sum to 1")
    return check_close("predicted weights", predicted, expected, atol=1e-3, rtol=1e-3,
                       hint="the scores of the remaining modalities do not change, so their "
                            "ratios do not either: divide each by their new total")
