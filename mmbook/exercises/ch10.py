"""Checkers for chapter 10 (Cross-encoders and missing modalities)."""

from __future__ import annotations

import torch

from ..fusion import ConcatFusion, LateFusion
from . import Feedback, call_student, check_close

__all__ = ["check_masked_concat", "check_renormalised_average", "check_modality_dropout"]


def _case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    zs = [torch.randn(6, 3, generator=g), torch.randn(6, 2, generator=g)]
    present = torch.tensor([[True, True], [True, False], [False, True], [True, False],
                            [True, True], [False, True]])
    return zs, present


def check_masked_concat(fn) -> Feedback:
    """Check ``fn(zs, present)``: concatenation with absent modalities zero-filled.

    The absent rows of the test inputs hold NaN, as a missing sensor may: a product by
    the mask keeps them (0 * NaN = NaN)."""
    zs, present = _case()
    dirty = [torch.where(present[:, m:m + 1], z, torch.tensor(float("nan")))
             for m, z in enumerate(zs)]
    got, fail = call_student(fn, dirty, present)
    if fail is not None:
        return fail
    want = ConcatFusion((3, 2))(dirty, present=present)
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        if torch.isnan(got).any():
            return Feedback(False, "your output holds NaN: the absent rows of the input hold "
                                   "NaN; without a mask they pass through, and multiplying by "
                                   "the mask keeps them (0 * NaN = NaN): select with "
                                   "torch.where instead")
        inverse = torch.cat([torch.where(~present[:, m:m + 1], torch.nan_to_num(z), 0.0)
                             for m, z in enumerate(dirty)], dim=1)
        if torch.allclose(got, inverse):
            return Feedback(False, "you zeroed the present modalities and kept the absent "
                                   "ones: present is True where the modality IS there")
    return check_close("the fused tensor", got, want,
                       hint="zero the rows where present[:, m] is False, then concatenate "
                            "along dim 1")


def check_renormalised_average(fn) -> Feedback:
    """Check ``fn(probs, present)``: the mean of the present modalities' probabilities.

    ``probs`` is (N, M, C), ``present`` bool (N, M)."""
    g = torch.Generator().manual_seed(1)
    logits = [torch.randn(6, 4, generator=g) for _ in range(3)]
    probs = torch.stack([torch.softmax(ll, 1) for ll in logits], dim=1)  # (N, M, C)
    present = torch.tensor([[True, True, True], [True, False, False], [False, True, True],
                            [True, False, True], [False, False, True], [True, True, False]])
    got, fail = call_student(fn, probs, present)
    if fail is not None:
        return fail
    want = LateFusion([torch.nn.Identity()] * 3, 4, "mean").combine(logits, present).exp()
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        over_m = (probs * present[:, :, None]).sum(1) / 3
        if torch.allclose(got, over_m, atol=1e-5):
            return Feedback(False, "you divided by M = 3 for every sample: divide by the "
                                   "number of modalities each sample has, so the "
                                   "probabilities still sum to 1")
        if torch.allclose(got, (probs * present[:, :, None]).sum(1), atol=1e-5):
            return Feedback(False, "you summed the present modalities' probabilities but did "
                                   "not divide: divide by present.sum(1, keepdim=True)")
        if torch.allclose(got, probs.mean(1), atol=1e-5):
            return Feedback(False, "you averaged every modality, the absent ones too: "
                                   "use present to keep only the present ones")
    return check_close("the averaged probabilities", got, want,
                       hint="sum probs * present over m, divide by present.sum(1)")


def check_modality_dropout(fn) -> Feedback:
    """Check ``fn(present, p)``: drop each present modality of each sample with
    probability p, never leaving a sample with none. Checked by its statistics."""
    torch.manual_seed(0)
    n, M, p = 4000, 3, 0.3
    present = torch.ones(n, M, dtype=torch.bool)
    present[: n // 4, 2] = False  # a quarter of the samples never had modality 3
    got, fail = call_student(fn, present.clone(), p)
    if fail is not None:
        return fail
    if not isinstance(got, torch.Tensor) or got.shape != present.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return Feedback(False, f"return a mask of shape {tuple(present.shape)}, got {shape}")
    got = got.bool()
    if bool((got & ~present).any()):
        return Feedback(False, "your mask makes a modality present that was absent: only "
                               "drop, never add (combine with & present)")
    if not bool(got.any(dim=1).all()):
        return Feedback(False, f"{int((~got.any(dim=1)).sum())} samples lost every "
                               f"modality: restore one of the modalities they had")
    if bool((got[n // 4:] == got[n // 4]).all()):
        return Feedback(False, "every sample lost the same modalities: draw the mask per "
                               "sample (shape (N, M)), not once per batch")
    kept = got[n // 4:].float().mean().item()  # about 1 - p, a little more (the rescue)
    if kept < 0.5:
        return Feedback(False, f"you kept {kept:.2f} of the modalities: with p = {p} about "
                               f"{1 - p:.1f} should stay; did you drop with probability "
                               f"1 - p?")
    if not 0.66 <= kept <= 0.76:
        return Feedback(False, f"you kept {kept:.2f} of the modalities; with p = {p}, about "
                               f"{1 - p + p ** M / M:.2f} should stay (1 - p, plus the p^M of "
                               f"samples that lost all, one modality in M given back)")
    return Feedback(True, f"kept {kept:.2f} of the modalities, none of the samples empty.")
