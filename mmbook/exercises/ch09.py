"""Checkers for chapter 9 (Kernel methods)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics.pairwise import rbf_kernel

from ..kernels import kernel_alignment
from . import Feedback, call_student, check_close

__all__ = ["check_rbf_kernel", "check_centered_alignment"]



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
    return check_close("the centered alignment", value, kernel_alignment(K1, K2),
                       hint="H = I - 1/N; <HK1H, HK2H>_F / (||HK1H||_F ||HK2H||_F)")
