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
