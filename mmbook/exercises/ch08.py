"""Checkers for chapter 8 (Subspace learning)."""

from __future__ import annotations

import numpy as np
import torch

from ..subspace import CCA, scatter_penalty
from . import Feedback, call_student, check_close

__all__ = ["check_canonical_correlations", "check_scatter_penalty", "check_whiten"]


def _views(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 2))
    X = np.hstack([s, rng.normal(size=(n, 2))]) @ rng.normal(size=(4, 4))
    Y = np.hstack([0.8 * s + 0.6 * rng.normal(size=(n, 2)), rng.normal(size=(n, 1))])
    return X, Y @ rng.normal(size=(3, 3))



def _top_singular_values(M: np.ndarray, k: int) -> np.ndarray:
    return np.linalg.svd(M, compute_uv=False)[:k]


def _inv_sqrt(C: np.ndarray) -> np.ndarray:
    lam, U = np.linalg.eigh(C)
    return (U / np.sqrt(lam)) @ U.T


def _cca_slip(got, X, Y, want) -> Feedback | None:
    """Name the usual CCA slips: no whitening, squared correlations, no centering."""
    if got is None or np.shape(got) != want.shape:
        return None
    got = np.sort(np.abs(np.ravel(np.asarray(got, dtype=float))))[::-1]
    if np.allclose(got, want, atol=1e-6):
        return None
    n, k = len(X), len(want)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    C_xy = Xc.T @ Yc / (n - 1)
    if any(np.allclose(got, _top_singular_values(C_xy * f, k), rtol=1e-4)
           for f in (1.0, (n - 1) / n)):
        return Feedback(False, "those are the singular values of the cross-covariance C_xy: "
                               "without whitening they measure covariance, which grows with "
                               "the scale of the features. Whiten first: C_xx^{-1/2} C_xy "
                               "C_yy^{-1/2}.")
    if np.allclose(got, want**2, atol=1e-6):
        return Feedback(False, "those are the squared correlations rho^2 (the eigenvalues of "
                               "C_xx^{-1} C_xy C_yy^{-1} C_yx): take their square roots.")
    raw = _inv_sqrt(X.T @ X / (n - 1)) @ (X.T @ Y / (n - 1)) @ _inv_sqrt(Y.T @ Y / (n - 1))
    if np.allclose(got, _top_singular_values(raw, k), atol=1e-4):
        return Feedback(False, "X and Y were not centred: subtract each column's mean before "
                               "computing the covariances.")
    return None


def check_canonical_correlations(fn) -> Feedback:
    """Check ``fn(X, Y, k)`` -> the k largest canonical correlations, against :class:`CCA`."""
    X, Y = _views()
    got, fail = call_student(fn, X, Y, 2)
    if fail is not None:
        return fail
    want = CCA(n_components=2, reg=0.0).fit(X, Y).canonical_correlations_
    slip = _cca_slip(got, X, Y, want)
    if slip is not None:
        return slip
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
        if abs(ratio - (19.0 / 20.0) ** 2) < 1e-6:
            return Feedback(False, "you divided by N: the book's scatter matrices divide by "
                                   "N - 1")
        root = sum(float(torch.linalg.matrix_norm(Z.T @ Z / 19 - sum(W.T @ W / 19 for W in Zs)
                                                   / len(Zs))) for Z in Zs)
        if abs(float(got) - root) < 1e-6 * max(1.0, root):
            return Feedback(False, "you summed the Frobenius norms ||S_m - S_bar||_F: the "
                                   "penalty sums their squares")
    return check_close("the penalty", got, want,
                       hint="S_m = Z_m.T @ Z_m / (N - 1); S_bar is their mean; sum the "
                            "squared entries of S_m - S_bar over m")


def _view_to_whiten(seed: int = 5, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.3, -0.4, 0.2]])
    return rng.normal(size=(n, 3)) @ mix + np.array([4.0, -1.0, 2.0])


def check_whiten(fn) -> Feedback:
    """Check ``fn(X)`` -> :math:`(X - \\bar X)\\, C_{xx}^{-1/2}`, the whitened view.

    :math:`C_{xx} = \\frac{1}{n-1} X_c^\\top X_c` and :math:`C_{xx}^{-1/2} = U
    \\Lambda^{-1/2} U^\\top` (the symmetric inverse square root). The result has identity
    covariance. Names the usual slips: no centering, standardising each column (no
    decorrelation, so no whitening), :math:`C^{-1}` for :math:`C^{-1/2}`, and n for n - 1.
    """
    X = _view_to_whiten()
    got, fail = call_student(fn, X.copy())
    if fail is not None:
        return fail
    Z = np.asarray(got, dtype=float)
    if Z.shape != X.shape:
        return Feedback(False, f"the whitened view has shape {Z.shape}, expected {X.shape}: "
                               "one row per sample, one column per feature")
    n = len(X)
    Xc = X - X.mean(0)
    C = Xc.T @ Xc / (n - 1)
    want = Xc @ _inv_sqrt(C)
    if np.allclose(Z, want, atol=1e-6):
        return Feedback(True, "centred, and multiplied by C_xx^{-1/2}: its covariance is the "
                              "identity.")
    if np.allclose(Z, Xc / Xc.std(0, ddof=1), atol=1e-6) or np.allclose(
            Z, Xc / Xc.std(0), atol=1e-6):
        return Feedback(False, "you standardised each column: the variances are 1 but the "
                               "features are still correlated (off-diagonal covariances). "
                               "Whitening multiplies by C_xx^{-1/2}, which also decorrelates.")
    if np.allclose(Z, X @ _inv_sqrt(X.T @ X / (n - 1)), atol=1e-6) or np.allclose(
            Z, X @ _inv_sqrt(C), atol=1e-6):
        return Feedback(False, "X was not centred: subtract the mean of each column first.")
    if np.allclose(Z, Xc @ np.linalg.inv(C), atol=1e-6):
        return Feedback(False, "you multiplied by C_xx^{-1}: whitening needs the inverse "
                               "square root C_xx^{-1/2} = U diag(1/sqrt(lambda)) U^T.")
    if np.allclose(Z, Xc @ _inv_sqrt(Xc.T @ Xc / n), atol=1e-6):
        return Feedback(False, "you divided the covariance by n: the book uses n - 1, as "
                               "np.cov does.")
    cov = Z.T @ (Z - Z.mean(0)) / (n - 1)
    if np.allclose(cov, np.eye(3), atol=1e-6) and np.allclose(Z.mean(0), 0, atol=1e-8):
        return Feedback(False, "your result is white (identity covariance), but it is not "
                               "the symmetric whitening X_c C_xx^{-1/2} asked for (a rotation "
                               "of it, e.g. from a Cholesky factor or from U^T).")
    return check_close("the whitened view", Z, want, atol=1e-6,
                       hint="center X, C = Xc.T @ Xc / (n - 1), C^{-1/2} = U diag(lambda^"
                            "{-1/2}) U^T from np.linalg.eigh, return Xc @ C^{-1/2}")
