"""Checkers for chapter 4 (convolution)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbook.conv import conv_output_size
from mmbook.exercises import Feedback, call_student, check_close, check_equal

__all__ = ["check_output_size", "check_conv_single", "check_conv_parameters"]


def check_output_size(answer, n: int, kernel: int, stride: int = 1, padding: int = 0) -> Feedback:
    """Is ``answer`` the output length of a convolution over ``n`` samples?"""
    if answer is None:
        return Feedback(False, "answer is None: replace it with a number.")
    expected = conv_output_size(n, kernel, stride, padding)
    mistakes = [  # (what a common slip gives, the hint), first match wins
        ((n + 2 * padding - kernel) / stride + 1, "Round down (floor) before adding 1."),
        ((n + padding - kernel) // stride + 1, "The padding is added on both sides: 2p."),
        ((n + 2 * padding - kernel) // stride, "Do not forget the + 1 (the first window)."),
        (n - kernel + 1, "Use the stride and the padding too."),
    ]
    hint = next((h for v, h in mistakes if v == answer and v != expected), "")
    return check_equal("the output size", answer, expected,
                       hint or "Use floor((n + 2p - k) / s) + 1.")


def check_conv_single(fn, seed: int = 0) -> Feedback:
    """Is ``fn(x, w)`` the single-channel y_ij = sum_k sum_l w_kl x_{i+k, j+l}?

    ``fn`` takes ``x`` of shape (H, W) and ``w`` of shape (K, L) and returns (H-K+1, W-L+1).
    """
    g = torch.Generator().manual_seed(seed)
    x, w = torch.randn(6, 7, generator=g), torch.randn(3, 2, generator=g)
    got, fail = call_student(fn, x, w)
    if fail is not None:
        return fail
    if got is None:
        return Feedback(False, "your function returned None: did you forget to return y?")
    expected = F.conv2d(x[None, None], w[None, None])[0, 0]
    flipped = F.conv2d(x[None, None], w.flip(0, 1)[None, None])[0, 0]
    got = torch.as_tensor(got)
    if got.shape == expected.shape and torch.allclose(got.to(expected.dtype), flipped, atol=1e-5):
        return Feedback(False, "you flipped the kernel: that is the convolution of signal "
                               "processing; deep learning's conv uses w_kl x_{i+k, j+l}.")
    return check_close("y", got, expected, hint="Output shape is (H - K + 1, W - L + 1); "
                       "sum w[k, l] * x[i + k, j + l] over k and l.")


def check_conv_parameters(answer, in_channels: int, out_channels: int, kernel_size: int,
                          bias: bool = True) -> Feedback:
    """Is ``answer`` the number of parameters of ``nn.Conv2d(in, out, kernel_size)``?"""
    expected = out_channels * (in_channels * kernel_size ** 2 + int(bias))
    if answer == out_channels * kernel_size ** 2 + out_channels * int(bias):
        return Feedback(False, "each kernel spans every input channel: multiply by C_in too.")
    if bias and answer == out_channels * in_channels * kernel_size ** 2:
        return Feedback(False, "add one bias per output channel.")
    return check_equal("the parameter count", answer, expected,
                       "C_out kernels of C_in x K x K weights, plus C_out biases.")
