"""Chapter 15's checkers: right answers pass, each named slip gets its diagnosis."""

import torch
import torch.nn.functional as F

from mmbook.exercises import ch15


def test_lstm_flops_checker_names_the_slips():
    right = 40 * 2 * 4 * 32 * (64 + 32)  # nn.LSTM(64, 32) over 40 frames
    assert ch15.check_lstm_flops(right)
    assert "multiply-adds" in ch15.check_lstm_flops(right // 2).message
    assert "recurrent" in ch15.check_lstm_flops(40 * 2 * 4 * 32 * 64).message
    assert "four" in ch15.check_lstm_flops(40 * 2 * 32 * 96).message
    assert "one frame" in ch15.check_lstm_flops(2 * 4 * 32 * 96).message
    assert "must be an int" in ch15.check_lstm_flops(float(right)).message
    assert not ch15.check_lstm_flops(right + 1)


def _stream(lstm, x, chunk):
    state = None
    for s in range(0, x.shape[1], chunk):
        _, state = lstm(x[:, s:s + chunk], state)
    return state[0][-1]


def test_streaming_checker():
    assert ch15.check_streaming(_stream)

    def no_carry(lstm, x, chunk):
        for s in range(0, x.shape[1], chunk):
            _, state = lstm(x[:, s:s + chunk])
        return state[0][-1]

    def cell_state(lstm, x, chunk):
        state = None
        for s in range(0, x.shape[1], chunk):
            _, state = lstm(x[:, s:s + chunk], state)
        return state[1][-1]

    def first_chunk(lstm, x, chunk):
        return lstm(x[:, :chunk])[1][0][-1]

    def crashes(lstm, x, chunk):
        raise RuntimeError("boom")

    assert "last chunk alone" in ch15.check_streaming(no_carry).message
    assert "cell state" in ch15.check_streaming(cell_state).message
    assert "first chunk" in ch15.check_streaming(first_chunk).message
    assert "raised RuntimeError" in ch15.check_streaming(crashes).message


def _kd(s, t, T):
    return F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1),
                    reduction="batchmean") * T ** 2


def _kd_log_target(s, t, T):
    return F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), log_target=True,
                    reduction="batchmean") * T ** 2


def test_distillation_checker():
    assert ch15.check_distillation_loss(_kd)
    assert "T^2" in ch15.check_distillation_loss(lambda s, t, T: _kd(s, t, T) / T ** 2).message
    assert "reversed" in ch15.check_distillation_loss(lambda s, t, T: _kd(t, s, T)).message
    assert "teacher's logits by T" in ch15.check_distillation_loss(
        lambda s, t, T: F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t, 1),
                                 log_target=True, reduction="batchmean") * T ** 2).message
    assert "batchmean" in ch15.check_distillation_loss(
        lambda s, t, T: _kd(s, t, T) * s.shape[0]).message
    assert not ch15.check_distillation_loss(lambda s, t, T: torch.tensor(0.0))


def test_distillation_checker_catches_a_masked_teacher_class_and_a_missing_keepdim():
    """log_target=True is right on ordinary logits and NaN where the teacher masks a class
    (distillation_loss is finite there); a softmax by hand without keepdim gets a hint,
    not a RuntimeError."""
    verdict = ch15.check_distillation_loss(_kd_log_target)
    assert not verdict and "masks a class" in verdict.message and "F.softmax" in verdict.message

    def by_hand(s, t, T):  # p (log p - log q): 0 * -inf where p = 0
        p = F.softmax(t / T, 1)
        return (p * (p.log() - F.log_softmax(s / T, 1))).sum(1).mean() * T ** 2

    assert "0 log 0" in ch15.check_distillation_loss(by_hand).message

    def no_keepdim(s, t, T):
        p = torch.exp(t / T) / torch.exp(t / T).sum(dim=1)  # (N, C) / (N,)
        return F.kl_div(F.log_softmax(s / T, 1), p, reduction="batchmean") * T ** 2

    verdict = ch15.check_distillation_loss(no_keepdim)
    assert not verdict and "keepdim=True" in verdict.message
    assert "log_target=True" in ch15.check_distillation_loss(
        lambda s, t, T: F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1),
                                 reduction="batchmean") * T ** 2).message


def test_checkers_name_biases_short_chunk_layer_axis_and_kl_slips():
    D, H, T = 64, 32, 40
    assert "bias" in ch15.check_lstm_flops(T * (2 * 4 * H * (D + H) + 2 * 4 * H)).message

    def stream(lstm, x, chunk, drop_short=False, keep_layers=False):
        state, stop = None, x.shape[1] - (x.shape[1] % chunk if drop_short else 0)
        for s in range(0, stop, chunk):
            _, state = lstm(x[:, s:min(s + chunk, stop)], state)
        return state[0] if keep_layers else state[0][-1]

    assert ch15.check_streaming(stream)
    assert "shorter chunk" in ch15.check_streaming(
        lambda lstm, x, c: stream(lstm, x, c, drop_short=True)).message
    assert "h[-1]" in ch15.check_streaming(
        lambda lstm, x, c: stream(lstm, x, c, keep_layers=True)).message

    def kd(s, t, T, input_log=True, target_log=False, flag=False, reduction="batchmean"):
        inp = F.log_softmax(s / T, 1) if input_log else F.softmax(s / T, 1)
        tgt = F.log_softmax(t / T, 1) if target_log else F.softmax(t / T, 1)
        return T ** 2 * F.kl_div(inp, tgt, log_target=flag, reduction=reduction)

    assert ch15.check_distillation_loss(kd)
    assert "batchmean" in ch15.check_distillation_loss(
        lambda s, t, T: kd(s, t, T, reduction="mean")).message
    assert "LOG-probabilities" in ch15.check_distillation_loss(
        lambda s, t, T: kd(s, t, T, input_log=False, target_log=False, flag=False)).message
    assert "log_target=True" in ch15.check_distillation_loss(
        lambda s, t, T: kd(s, t, T, target_log=True)).message
    assert "masks a class" in ch15.check_distillation_loss(
        lambda s, t, T: kd(s, t, T, target_log=True, flag=True)).message


def test_lstm_flops_starter_is_pending():
    fb = ch15.check_lstm_flops(None)
    assert fb.pending and not fb
