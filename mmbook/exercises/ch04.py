"""Checkers for chapter 4 (convolution)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmbook.conv import conv_output_size
from mmbook.exercises import Feedback, call_student, check_close, check_equal, pending

__all__ = ["check_output_size", "check_conv_single", "check_conv_parameters"]


def _integer_answer(answer, expected: int, what: str) -> Feedback | None:
    """None when ``answer`` is an int; else the Feedback for a missing, float or other answer."""
    if answer is None:
        return pending(what)
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return Feedback(False, f"{what} must be an int, got {type(answer).__name__} {answer!r}.")
    if isinstance(answer, float):
        if answer == expected:
            return Feedback(False, f"{answer!r} is a float, and a count is an int: write it "
                                   "without a decimal point (// divides and rounds down; "
                                   "int(...) converts).")
        return Feedback(False, f"{what} must be an int, got the float {answer!r}"
                               + (" (use //, which rounds down)." if answer % 1 else "."))
    return None


def check_output_size(answer, n: int, kernel: int, stride: int = 1, padding: int = 0) -> Feedback:
    """Is ``answer`` the output length of a convolution over ``n`` samples?

    Names the usual slips: true division instead of floor, padding ignored or added on one
    side only, the ``+ 1`` forgotten, the stride ignored, rounding up. When one wrong value
    can come from two slips (it happens for some sizes), both are named.
    """
    expected = conv_output_size(n, kernel, stride, padding)
    if (isinstance(answer, float) and answer % 1
            and abs(answer - ((n + 2 * padding - kernel) / stride + 1)) < 1e-9):
        return Feedback(False, f"{answer} is (n + 2p - k) / s + 1 without rounding: round down "
                               "(floor, //) before adding 1.")
    fail = _integer_answer(answer, expected, "the output size")
    if fail is not None:
        return fail
    if answer == expected:
        return check_equal("the output size", answer, expected)
    span = n + 2 * padding - kernel
    mistakes = [  # (what a common slip gives, what the slip is)
        ((n - kernel) // stride + 1, "the padding was left out: the input grows by p on "
                                     "each side, (n + 2p - k) // s + 1"),
        ((n + padding - kernel) // stride + 1, "the padding is added on both sides: 2p, "
                                               "not p"),
        (span // stride, "the + 1 is missing (it counts the first window)"),
        (span + 1, "the stride was ignored: divide the span by s"),
        (n - kernel + 1, "both the stride and the padding were ignored"),
        (-(-span // stride) + 1, "that rounds up: the last window must fit, so round down"),
    ]
    slips = [why for value, why in mistakes if value == answer]
    if not slips:
        return check_equal("the output size", answer, expected,
                           "Use (n + 2p - k) // s + 1.")
    either = ". Or: ".join(s[0].upper() + s[1:] for s in slips)
    both = " (this value has two possible causes)" if len(slips) > 1 else ""
    return Feedback(False, f"{answer} is not the output size{both}. {either}.")


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
    if got.shape == expected.shape and not torch.count_nonzero(got):
        return Feedback(False, "y is still all zeros (the starter as given): fill y[i, j], "
                               "then run the cell again.", pending=True)
    if got.shape == expected.shape and torch.allclose(got.to(expected.dtype), flipped, atol=1e-5):
        return Feedback(False, "you flipped the kernel: that is the convolution of signal "
                               "processing; deep learning's conv uses w_kl x_{i+k, j+l}.")
    return check_close("y", got, expected, hint="Output shape is (H - K + 1, W - L + 1); "
                       "sum w[k, l] * x[i + k, j + l] over k and l.")


def check_conv_parameters(answer, in_channels: int, out_channels: int, kernel_size: int,
                          bias: bool = True) -> Feedback:
    """Is ``answer`` the number of parameters of ``nn.Conv2d(in, out, kernel_size)``?"""
    expected = out_channels * (in_channels * kernel_size ** 2 + int(bias))
    fail = _integer_answer(answer, expected, "the parameter count")
    if fail is not None:
        return fail
    if answer == out_channels * kernel_size ** 2 + out_channels * int(bias):
        return Feedback(False, "each kernel spans every input channel: multiply by C_in too.")
    if bias and answer == out_channels * in_channels * kernel_size ** 2:
        return Feedback(False, "add one bias per output channel.")
    if bias and answer == out_channels * in_channels * kernel_size ** 2 + 1:
        return Feedback(False, "one bias per output channel, not one for the layer.")
    if answer == out_channels * (in_channels * kernel_size + int(bias)):
        return Feedback(False, "a K x K kernel has K^2 weights per input channel, not K.")
    return check_equal("the parameter count", answer, expected,
                       "C_out kernels of C_in x K x K weights, plus C_out biases.")
