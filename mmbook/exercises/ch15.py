"""Checkers for chapter 15 (Efficient and real-time fusion)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import distillation_loss
from ..profile import count_flops
from . import Feedback, call_student, check_close, pending

__all__ = ["check_lstm_flops", "check_streaming", "check_distillation_loss"]


def check_lstm_flops(answer, input_size: int = 64, hidden_size: int = 32,
                     frames: int = 40) -> Feedback:
    """Check the FLOPs of ``nn.LSTM(input_size, hidden_size)`` over ``frames`` frames of one
    recording, against :func:`mmbook.profile.count_flops`; name the usual slips."""
    if answer is None:  # the starter as given
        return pending("lstm_flops")
    if isinstance(answer, bool) or not isinstance(answer, int):
        return Feedback(False, f"answer must be an int (a count of operations), got {answer!r}")
    want = count_flops(nn.LSTM(input_size, hidden_size, batch_first=True),
                       torch.zeros(1, frames, input_size))
    D, H, T = input_size, hidden_size, frames
    slips = {
        want // 2: "that is the number of multiply-adds (MACs): a multiply-add is 2 FLOPs",
        T * 2 * 4 * H * D: "you forgot the recurrent product W_h h_{t-1}: each gate sees "
                           "[x_t; h_{t-1}], D + H inputs",
        T * 2 * H * (D + H): "one gate only: an LSTM computes four (i, f, g, o) of size H",
        2 * 4 * H * (D + H): "that is one frame: multiply by the number of frames",
        T * (2 * 4 * H * (D + H) + 2 * 4 * H): "you counted the bias additions: count the "
                                               "matrix products only, as FlopCounterMode "
                                               "does (closed form T 2 4H (D + H))",
    }
    if answer == want:
        return Feedback(True, f"{answer:,} FLOPs, as FlopCounterMode counts on LSTMScratch.")
    if answer in slips:
        return Feedback(False, slips[answer])
    return Feedback(False, f"{answer:,} is not the count: per frame 4 gates of size "
                           f"H, each a product with [x_t; h_(t-1)], 2 FLOPs per multiply-add")


def check_streaming(fn) -> Feedback:
    """Check ``fn(lstm, frames, chunk)`` returning the final hidden state ``(N, H)`` of a
    batch-first ``nn.LSTM`` fed ``frames`` (N, T, F) ``chunk`` frames at a time."""
    g = torch.Generator().manual_seed(0)
    lstm = nn.LSTM(4, 6, batch_first=True)
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.randn(2, 10, 4, generator=g)
    with torch.no_grad():
        got, fail = call_student(fn, lstm, x, 3, name="your streaming function")
        if fail is not None:
            return fail
        _, (h, c) = lstm(x)
        want = h[-1]
        last_only = lstm(x[:, 9:])[1][0][-1]
        first_only = lstm(x[:, :3])[1][0][-1]
        no_short_chunk = lstm(x[:, :9])[1][0][-1]
    if got is not None and torch.is_tensor(got) and got.shape == want.shape:
        if torch.allclose(got, last_only, atol=1e-5):
            return Feedback(False, "that is the encoding of the last chunk alone: pass the "
                                   "state (h, c) returned by one chunk into the next")
        if torch.allclose(got, c[-1], atol=1e-5):
            return Feedback(False, "that is the cell state c: the encoding is the hidden "
                                   "state h (state[0])")
        if torch.allclose(got, first_only, atol=1e-5):
            return Feedback(False, "that is the first chunk's encoding: keep feeding chunks "
                                   "until the frames run out (the last chunk may be shorter)")
        if torch.allclose(got, no_short_chunk, atol=1e-5):
            return Feedback(False, "the last, shorter chunk was left out (10 frames in chunks "
                                   "of 3: 3 + 3 + 3 + 1): range(0, T, chunk) reaches it")
    if torch.is_tensor(got) and got.dim() == 3 and got.shape[1:] == want.shape:
        return Feedback(False, f"you returned h with its layer axis, shape {tuple(got.shape)}: "
                               "take the top layer, h[-1], shape (N, H)")
    return check_close("the streamed encoding", got, want,
                       hint="loop over chunks x[:, s:s + chunk], calling lstm(chunk, state) "
                            "and keeping the returned state")


_KD_HINT = ("T**2 * F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), "
            "reduction='batchmean')")


def check_distillation_loss(fn) -> Feedback:
    """Check ``fn(student_logits, teacher_logits, temperature)`` returning the soft term
    :math:`T^2\\,\\mathrm{KL}(p_t^T \\| p_s^T)` averaged over the batch: on random logits,
    then with a class the teacher masks (a logit of -inf, probability 0)."""
    g = torch.Generator().manual_seed(1)
    s, t, T = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g) * 2, 3.0
    got, fail = call_student(fn, s, t, T, name="your loss")
    if fail is not None:
        return fail
    want = distillation_loss(s, t, temperature=T)
    if got is not None and torch.is_tensor(got) and got.numel() == 1:
        got_f = got.detach().reshape(()).to(want.dtype)
        if torch.isnan(got_f):
            return Feedback(False, "the loss is NaN: F.kl_div's target is the teacher's "
                                   "probabilities, F.softmax(t / T, dim=1), unless you pass "
                                   "log_target=True")
        for wrong, message in _kd_slips(s, t, T, want):
            if torch.allclose(got_f, wrong, rtol=1e-4) and not torch.allclose(wrong, want):
                return Feedback(False, message)
    verdict = check_close("the distillation loss", got, want, hint=_KD_HINT)
    if not verdict:
        return verdict
    return _check_masked_teacher(fn, s, t, T)


def _kd_slips(s, t, T, want):
    """(the value a typical slip gives, what to say about it)."""
    kl = want / T ** 2
    reverse = F.kl_div(F.log_softmax(t / T, 1), F.softmax(s / T, 1),
                       reduction="batchmean") * T ** 2
    no_t_teacher = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t, 1),
                            reduction="batchmean") * T ** 2
    return (
        (kl, "multiply by T^2: without it the soft gradients shrink as 1/T^2"),
        (reverse, "the KL is reversed: the teacher's distribution comes first, "
                  "KL(p_teacher || p_student)"),
        (no_t_teacher, "divide the teacher's logits by T too: both distributions are "
                       "softened"),
        (want * s.shape[0], "average over the batch (reduction='batchmean'), not the sum"),
        (want / s.shape[1], "reduction='mean' divides by every element (N times the "
                            "classes): use reduction='batchmean', the mean over samples"),
        (T ** 2 * F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean"),
         "F.kl_div's input must be the student's LOG-probabilities (log_softmax), not "
         "probabilities"),
        (T ** 2 * F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1),
                           reduction="batchmean"),
         "F.kl_div's target is the teacher's probabilities (F.softmax): given "
         "log-probabilities, it needs log_target=True"),
    )


def _check_masked_teacher(fn, s, t, T) -> Feedback:
    """A class the teacher rules out (logit -inf) adds 0 log 0 = 0 to the KL divergence."""
    masked = t.clone()
    masked[:, 0] = -float("inf")
    got, fail = call_student(fn, s, masked, T, name="your loss (a teacher masking class 0)")
    if fail is not None:
        return fail
    want = distillation_loss(s, masked, temperature=T)
    if torch.is_tensor(got) and got.numel() == 1 and not torch.isfinite(got).all():
        return Feedback(False, "right on ordinary logits, but NaN or inf when the teacher "
                               "masks a class (logit -inf, probability 0), where 0 log 0 must "
                               "count as 0. F.kl_div with the probabilities F.softmax(t / T, "
                               "dim=1) as target does that; log_target=True, or "
                               "p * (log p - log q) by hand, gives 0 * (-inf) = NaN")
    verdict = check_close("the distillation loss with a masked teacher class", got, want,
                          hint=_KD_HINT)
    if verdict:
        return Feedback(True, "the distillation loss matches the reference, also when the "
                              "teacher masks a class.")
    return verdict
