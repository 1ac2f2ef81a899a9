"""Checkers for chapter 3 (RNNs and LSTMs from their equations)."""

from __future__ import annotations

import torch

from . import Feedback, call_student, check_close

__all__ = ["check_forget_gate", "check_lstm_num_params", "check_gru_update"]



def check_forget_gate(forget_gate) -> Feedback:
    r"""Check ``forget_gate(x, h_prev, W_xf, W_hf, b_f)`` against
    :math:`f_t = \sigma(W_{xf} x_t + W_{hf} h_{t-1} + b_f)` on a batch (rows are samples).

    Shape:
        - x: :math:`(N, D)`, h_prev: :math:`(N, H)`, W_xf: :math:`(H, D)`,
          W_hf: :math:`(H, H)`, b_f: :math:`(H,)`; output :math:`(N, H)`.
    """
    g = torch.Generator().manual_seed(3)
    N, D, H = 4, 3, 5
    x, h = torch.randn(N, D, generator=g), torch.randn(N, H, generator=g)
    W_xf, W_hf = torch.randn(H, D, generator=g), torch.randn(H, H, generator=g)
    b_f = torch.randn(H, generator=g)
    got, err = call_student(forget_gate, x, h, W_xf, W_hf, b_f)
    if err is not None:
        return err
    if got is None:
        return Feedback(False, "forget_gate returned None: return f_t")
    a = x @ W_xf.T + h @ W_hf.T + b_f  # (N, H)
    got = torch.as_tensor(got)
    mistakes = {
        "you used tanh; a gate is a sigmoid, so that it lies in (0, 1)": torch.tanh(a),
        "the bias b_f is missing": torch.sigmoid(a - b_f),
        "the recurrent term W_hf h_{t-1} is missing": torch.sigmoid(a - h @ W_hf.T),
        "you returned the pre-activation; apply the sigmoid": a,
    }
    for hint, wrong in mistakes.items():
        if got.shape == wrong.shape and torch.allclose(got.to(wrong.dtype), wrong, atol=1e-5):
            return Feedback(False, hint)
    return check_close("f_t", got, torch.sigmoid(a),
                       hint="with rows as samples, W x_t is x @ W_xf.T")


def _lstm_params_reference(D: int, H: int) -> int:
    return 4 * (H * D + H * H + 2 * H)


def check_lstm_num_params(num_params) -> Feedback:
    """Check ``num_params(D, H)``: the parameters of ``torch.nn.LSTM(D, H)`` (one layer)."""
    cases = [(40, 128), (1, 1), (64, 32), (3, 7)]
    for D, H in cases:
        got, err = call_student(num_params, D, H)
        if err is not None:
            return err
        want = _lstm_params_reference(D, H)
        if got == want:
            continue
        if got == 4 * (H * D + H * H + H):
            return Feedback(False, f"for D={D}, H={H} you gave {got}, not torch's count: "
                                   "torch keeps two bias vectors per gate, b_x and b_h")
        if got == H * D + H * H + 2 * H or got == H * D + H * H + H:
            return Feedback(False, f"for D={D}, H={H} you gave {got}, not torch's count: "
                                   "you counted one gate; an LSTM has four (i, f, g, o)")
        if got == 4 * (H * D + H * H):
            return Feedback(False, f"for D={D}, H={H} you gave {got}, not torch's count: "
                                   "the biases are missing")
        return Feedback(False, f"for D={D}, H={H} you gave {got!r}, not torch's count. "
                               "Count, per gate, W_x (H x D), W_h (H x H) and the biases")
    return Feedback(True, "4 (H D + H^2 + 2 H): four gates, each with W_x, W_h and two biases.")


def check_gru_update(gru_update) -> Feedback:
    r"""Check ``gru_update(z, n, h_prev)`` against torch's
    :math:`h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}`."""
    g = torch.Generator().manual_seed(5)
    z = torch.rand(4, 6, generator=g)
    n, h = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    got, err = call_student(gru_update, z, n, h)
    if err is not None:
        return err
    if got is None:
        return Feedback(False, "gru_update returned None: return h_t")
    swapped = z * n + (1 - z) * h
    got = torch.as_tensor(got)
    if got.shape == swapped.shape and torch.allclose(got.to(swapped.dtype), swapped, atol=1e-5):
        return Feedback(False, "z and 1 - z are swapped: in torch's convention z_t is the "
                               "share of the OLD state h_{t-1} that is kept")
    return check_close("h_t", got, (1 - z) * n + z * h)
