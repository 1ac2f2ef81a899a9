"""Checkers for chapter 8 (Subspace learning)."""

from __future__ import annotations

import numpy as np
import torch

from ..subspace import CCA, scatter_penalty
from . import Feedback, call_student, check_close

__all__ = ["check_canonical_correlations", "check_scatter_penalty"]


def _views(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 2))
    X = np.hstack([s, rng.normal(size=(n, 2))]) @ rng.normal(size=(4, 4))
    Y = np.hstack([0.8 * s + 0.6 * rng.normal(size=(n, 2)), rng.normal(size=(n, 1))])
    return X, Y @ rng.normal(size=(3, 3))



def check_canonical_correlations(fn) -> Feedback:
    """Check ``fn(X, Y, k)`` -> the k largest canonical correlations, against :class:`CCA`."""
    X, Y = _views()
    got, fail = call_student(fn, X, Y, 2)
    if fail is not None:
        return fail
    want = CCA(n_components=2, reg=0.0).fit(X, Y).canonical_correlations_
    if (got is not None and np.shape(got) == want.shape
            and np.allclose(np.sort(np.abs(np.ravel(got)))[::-1], want, atol=1e-6)
            and not np.allclose(got, want, atol=1e-6)):
        return Feedback(False, "right values, wrong order or sign: return them positive, "
                               "largest first")
    return check_close("the canonical correlations", got, want, rtol=1e-5, atol=1e-6,
                       hint="center X and Y, whiten with C_xx^{-1/2} and C_yy^{-1/2}, take "
                            "the singular values of C_xx^{-1/2} C_xy C_yy^{-1/2}, largest "
                            "first")


def check_scatter_penalty(fn) -> Feedback:
    """Check ``fn(Zs)`` -> sum_m ||S_m - S_bar||_F^2 with S_m = Z_m^T Z_m / (N - 1)."""
    g = torch.Generator().manual_seed(0)
    Zs = [torch.randn(20, 3, generator=g, dtype=torch.float64) * s for s in (1.0, 2.0, 0.5)]
    got, fail = call_student(fn, Zs)
    if fail is not None:
        return fail
    want = scatter_penalty(Zs)
    if got is not None and torch.is_tensor(got) and got.numel() == 1:
        ratio = float(got) / float(want)
        if abs(ratio - 19.0**2) < 1e-3:
            return Feedback(False, "you used S_m = Z_m^T Z_m: divide by N - 1 (here the "
                                   "book's convention)")
    return check_close("the penalty", got, want,
                       hint="S_m = Z_m.T @ Z_m / (N - 1); S_bar is their mean; sum the "
                            "squared entries of S_m - S_bar over m")
