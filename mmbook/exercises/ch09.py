"""Checkers for chapter 9 (Kernel methods)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics.pairwise import rbf_kernel

from ..kernels import kernel_alignment
from . import Feedback, call_student, check_close

__all__ = ["check_rbf_kernel", "check_centered_alignment", "check_center_kernel"]



def check_rbf_kernel(fn) -> Feedback:
    """Check ``fn(X, Y, sigma)`` -> exp(-||x - y||^2 / (2 sigma^2)) against scikit-learn."""
    rng = np.random.default_rng(0)
    X, Y, sigma = rng.normal(size=(6, 3)), rng.normal(size=(4, 3)), 1.5
    got, fail = call_student(fn, X, Y, sigma)
    if fail is not None:
        return fail
    want = rbf_kernel(X, Y, gamma=1 / (2 * sigma**2))
    if got is not None and np.shape(got) == want.shape and np.allclose(
            got, rbf_kernel(X, Y, gamma=1 / sigma**2)):
        return Feedback(False, "you used gamma = 1/sigma^2: the Gaussian kernel has "
                               "gamma = 1/(2 sigma^2)")
    sq = ((X[:, None] - Y[None]) ** 2).sum(-1)
    slips = [
        (np.exp(-sq / (2 * sigma)), "you divided by 2 sigma: the Gaussian kernel divides by "
                                    "2 sigma^2 (sigma is a standard deviation, sigma^2 the "
                                    "variance)"),
        (np.exp(-np.sqrt(sq) / (2 * sigma**2)), "you used the distance ||x - y||: the Gaussian "
                                                "kernel uses its square"),
        (np.exp(-sq * sigma**2 / 2), "you multiplied by sigma^2: divide by 2 sigma^2"),
        (np.exp(sq / (2 * sigma**2)), "the exponent must be negative: exp(-||x - y||^2 / "
                                      "(2 sigma^2)) falls from 1 as x and y move apart"),
    ]
    for value, why in slips:
        if got is not None and np.shape(got) == want.shape and np.allclose(got, value):
            return Feedback(False, why)
    return check_close("the kernel matrix", got, want,
                       hint="K_ij = exp(-||x_i - y_j||^2 / (2 sigma^2)), shape (N, N')")


def check_centered_alignment(fn) -> Feedback:
    """Check ``fn(K1, K2)`` -> the centered kernel alignment, against mmbook's."""
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(12, 3)), rng.normal(size=(12, 2))
    K1, K2 = A @ A.T + 1.0, np.exp(-((B[:, None] - B[None]) ** 2).sum(-1))
    got, fail = call_student(fn, K1, K2)
    if fail is not None:
        return fail
    if got is None:
        return Feedback(False, "the alignment is None: did you forget to return it?")
    try:
        value = float(got)
    except (TypeError, ValueError):
        return Feedback(False, f"return one number, got {type(got).__name__}")
    if abs(value - kernel_alignment(K1, K2, center=False)) < 1e-8:
        return Feedback(False, "that is the uncentered alignment: center both kernels with "
                               "H K H first")
    n = len(K1)
    H = np.eye(n) - 1.0 / n
    K1c, K2c = H @ K1 @ H, H @ K2 @ H
    if abs(value - kernel_alignment(K1c, K2, center=False)) < 1e-8 or abs(
            value - kernel_alignment(K1, K2c, center=False)) < 1e-8:
        return Feedback(False, "you centered only one of the two kernels: center both")
    if abs(value - float((K1c * K2c).sum())) < 1e-6 * max(1.0, abs(value)):
        return Feedback(False, "that is the inner product <K1c, K2c>_F: divide by "
                               "||K1c||_F ||K2c||_F to get a cosine")
    if abs(value - kernel_alignment(H @ K1, H @ K2, center=False)) < 1e-8:
        return Feedback(False, "you multiplied by H on one side only: centering is H K H")
    return check_close("the centered alignment", value, kernel_alignment(K1, K2),
                       hint="H = I - 1/N; <HK1H, HK2H>_F / (||HK1H||_F ||HK2H||_F)")


def check_center_kernel(fn) -> Feedback:
    """Check ``fn(K)`` -> :math:`HKH`, :math:`H = I - \\frac1N \\mathbf 1 \\mathbf 1^\\top`.

    The centered kernel is the Gram matrix of the features minus their mean. Names the
    usual slips: H on one side only, the grand mean or the row means alone subtracted.
    """
    rng = np.random.default_rng(2)
    A = rng.normal(size=(7, 3)) + 2.0
    K = A @ A.T + 1.0
    got, fail = call_student(fn, K.copy())
    if fail is not None:
        return fail
    n = len(K)
    H = np.eye(n) - 1.0 / n
    want = H @ K @ H
    if np.shape(got) == K.shape:
        got_a = np.asarray(got, dtype=float)
        slips = [
            (H @ K, "you multiplied by H on the left only: that centres the columns, not the "
                    "rows. Use H K H"),
            (K @ H, "you subtracted the row means only (for a symmetric K that is K H, "
                    "H on the right only): the column means must go too, H K H"),
            (K - K.mean(), "you subtracted the grand mean only: H K H subtracts the row "
                           "means and the column means and adds back the grand mean"),
            (K - K.mean(1, keepdims=True) - K.mean(0, keepdims=True),
             "almost: after removing row and column means add back the grand mean once"),
        ]
        for value, why in slips:
            if np.allclose(got_a, value, atol=1e-8):
                return Feedback(False, why)
        Phi = A - A.mean(0)
        if np.allclose(got_a, want, atol=1e-8):
            return Feedback(True, "H K H: the Gram matrix of the centred features "
                                  f"(max error against Phi_c Phi_c^T + 0: "
                                  f"{np.abs(got_a - Phi @ Phi.T).max():.1e}).")
    return check_close("the centered kernel", got, want, atol=1e-8,
                       hint="H = np.eye(N) - 1/N; return H @ K @ H")
