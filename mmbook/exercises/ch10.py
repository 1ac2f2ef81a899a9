"""Checkers for chapter 10 (Cross-encoders and missing modalities)."""

from __future__ import annotations

import torch

from ..fusion import ConcatFusion, LateFusion
from . import Feedback, call_student, check_close, shape_error_hint

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
        return shape_error_hint(fail, "present[:, m] has shape (N,), which lines up with the "
                                      "feature axis of z (N, D_m), not its rows: index it as "
                                      "present[:, m:m + 1] (or present[:, m, None]), shape "
                                      "(N, 1), to select whole rows")
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
        return shape_error_hint(fail, _missing_keepdim(fn))
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


def _missing_keepdim(fn) -> str:
    """The hint for a shape error in the renormalised average: with N = C the reader's
    function runs, and a missing keepdim shows as each column divided by another row's
    count."""
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(torch.randn(4, 3, 4, generator=g), -1)  # (N, M, C), N = C
    present = torch.tensor([[True, True, True], [True, False, False], [False, True, True],
                            [True, False, True]])
    summed = (probs * present[:, :, None]).sum(1)  # (N, C)
    try:
        got = fn(probs, present)
        keepdim_missing = torch.allclose(torch.as_tensor(got, dtype=summed.dtype),
                                         summed / present.sum(1), atol=1e-5)
    except Exception:
        keepdim_missing = False
    hint = ("present.sum(1) has shape (N,), and (N, C) / (N,) divides the columns, not the "
            "rows: keep the summed dimension, present.sum(1, keepdim=True), shape (N, 1)")
    return ("you forgot keepdim: " if keepdim_missing else "check every sum over m: ") + hint


def _rescue_mistake(got: torch.Tensor, present: torch.Tensor, p: float) -> str | None:
    """At a large p most samples lose every modality: check what the rescue gives back."""
    full = present.all(1)  # the samples that had all M modalities
    many = (got[full].sum(1) >= 2).float().mean().item()  # about 3 p (1 - p)^2 + (1 - p)^3
    if many > 0.2:
        return (f"{many:.0%} of the samples kept two modalities or more at p = {p}: you gave "
                f"a sample that lost them all EVERY modality back; give back ONE, chosen at "
                f"random among those it had")
    kept = got[full].float().mean(0)  # (M,), each about 1 - p + p^M / M
    if (kept.max() - kept.min()).item() > 0.15:
        return (f"at p = {p} the modalities are kept at rates {kept.numpy().round(2)}: you "
                f"always give back the same modality; choose it at random among those the "
                f"sample had (torch.multinomial(present[empty].float(), 1))")
    return None


def check_modality_dropout(fn) -> Feedback:
    """Check ``fn(present, p)``: drop each present modality of each sample with
    probability p, never leaving a sample with none. Checked by its statistics."""
    torch.manual_seed(0)
    n, M, p = 4000, 3, 0.3
    present = torch.ones(n, M, dtype=torch.bool)
    present[: n // 4, 2] = False  # a quarter of the samples never had modality 3
    got, fail = call_student(fn, present.clone(), p)
    if fail is not None:
        return shape_error_hint(fail, "draw one number per sample AND modality, "
                                      "torch.rand(present.shape), shape (N, M), and keep any "
                                      "per-sample mask (N,) as (N, 1) when it meets an (N, M) "
                                      "one")
    if not isinstance(got, torch.Tensor) or got.shape != present.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return Feedback(False, f"return a mask of shape {tuple(present.shape)}, got {shape}")
    if got.dtype != torch.bool:
        return Feedback(False, f"return a bool mask (True = kept), got dtype {got.dtype}: "
                               f"combine masks with & and |, never by arithmetic (the "
                               f"package's fusions accept only bool)")
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
    torch.manual_seed(1)
    p_high = 0.9  # most samples lose everything: the rescue decides what is left
    high, fail = call_student(fn, present.clone(), p_high)
    if fail is not None:
        return fail
    if not isinstance(high, torch.Tensor) or high.shape != present.shape or \
            high.dtype != torch.bool or bool((high & ~present).any()) or \
            not bool(high.any(dim=1).all()):
        return Feedback(False, f"at p = {p_high} your mask breaks a rule it kept at p = {p}: "
                               f"bool (N, M), a subset of present, one modality per sample "
                               f"at least")
    mistake = _rescue_mistake(high, present, p_high)
    if mistake is not None:
        return Feedback(False, mistake)
    return Feedback(True, f"kept {kept:.2f} of the modalities at p = {p}, one per emptied "
                          f"sample given back at p = {p_high}, none of the samples empty.")
