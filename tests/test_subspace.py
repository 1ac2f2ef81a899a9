"""mmbook.subspace: CCA against the closed form and scikit-learn; generalised CCA; the seeds'
shared-subspace objective collapsing without a constraint and working with one."""

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn import cross_decomposition
from torch.testing import assert_close

from mmbook.subspace import (
    CCA,
    MultiviewCCA,
    SharedSubspace,
    disagreement,
    scatter_penalty,
    whitener,
)

RHO = (0.9, 0.6, 0.3)


def two_views(n=3000, rho=RHO, seed=0):
    """Views built from shared latents with known canonical correlations ``rho``."""
    rng = np.random.default_rng(seed)
    r = np.array(rho)
    s = rng.normal(size=(n, len(r)))  # latents of X
    t = s * r + rng.normal(size=s.shape) * np.sqrt(1 - r**2)  # corr(s_i, t_i) = rho_i
    X = np.hstack([s, rng.normal(size=(n, 2))]) @ rng.normal(size=(5, 5))  # mixed, 5 features
    Y = np.hstack([t, rng.normal(size=(n, 1))]) @ rng.normal(size=(4, 4))  # mixed, 4 features
    return X, Y


def closed_form_correlations(X, Y):
    """sqrt of the eigenvalues of C_xy C_yy^{-1} C_yx w = rho^2 C_xx w (scipy, no whitening)."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Cxx, Cyy, Cxy = Xc.T @ Xc, Yc.T @ Yc, Xc.T @ Yc
    lam = scipy.linalg.eigh(Cxy @ np.linalg.solve(Cyy, Cxy.T), Cxx, eigvals_only=True)
    return np.sqrt(np.clip(lam[::-1], 0, None))


def test_cca_equals_closed_form_and_population():
    X, Y = two_views()
    cca = CCA(n_components=3, reg=0.0).fit(X, Y)
    assert_close(cca.canonical_correlations_, closed_form_correlations(X, Y)[:3])
    # and it recovers the correlations the data were built with (sampling error ~1/sqrt(N))
    assert_close(cca.canonical_correlations_, np.array(RHO), rtol=0, atol=0.05)


def test_cca_variates_are_whitened_and_diagonal():
    X, Y = two_views(n=500)
    cca = CCA(n_components=3, reg=0.0).fit(X, Y)
    Zx, Zy = cca.transform(X, Y)
    n = len(X)
    assert_close(Zx.T @ Zx / (n - 1), np.eye(3), atol=1e-8, rtol=0)
    assert_close(Zy.T @ Zy / (n - 1), np.eye(3), atol=1e-8, rtol=0)
    assert_close(Zx.T @ Zy / (n - 1), np.diag(cca.canonical_correlations_), atol=1e-8, rtol=0)


def test_cca_consistent_with_sklearn():
    X, Y = two_views(n=1000)
    ours = CCA(n_components=2, reg=0.0).fit(X, Y)
    sk = cross_decomposition.CCA(n_components=2, max_iter=5000, tol=1e-12).fit(X, Y)
    Sx, Sy = sk.transform(X, Y)
    sk_corr = [np.corrcoef(Sx[:, i], Sy[:, i])[0, 1] for i in range(2)]
    assert_close(ours.canonical_correlations_, np.array(sk_corr), rtol=0, atol=1e-4)
    Zx = ours.transform(X)
    for i in range(2):  # same directions, up to sign and scale
        assert abs(np.corrcoef(Zx[:, i], Sx[:, i])[0, 1]) > 1 - 1e-4


def test_cca_tensor_in_tensor_out():
    X, Y = two_views(n=200)
    Xt, Yt = torch.from_numpy(X).float(), torch.from_numpy(Y).float()
    cca = CCA(n_components=2).fit(Xt, Yt)
    assert isinstance(cca.x_weights_, torch.Tensor)
    Zx, Zy = cca.transform(Xt, Yt)
    assert isinstance(Zx, torch.Tensor) and Zx.dtype == torch.float32 and Zx.shape == (200, 2)
    ref = CCA(n_components=2).fit(X, Y)
    assert_close(cca.canonical_correlations_.double(),
                 torch.from_numpy(ref.canonical_correlations_), rtol=1e-5, atol=1e-6)


def test_multiview_cca_two_views_equals_cca():
    X, Y = two_views(n=600)
    cca = CCA(n_components=3, reg=1e-3).fit(X, Y)
    mcca = MultiviewCCA(n_components=3, reg=1e-3).fit([X, Y])
    assert_close(mcca.eigenvalues_ - 1, cca.canonical_correlations_)
    plain = CCA(n_components=3, reg=0.0).fit(X, Y)
    Z = MultiviewCCA(n_components=3, reg=0.0).fit([X, Y]).transform([X, Y])
    for i in range(3):  # unregularised: the variates' Pearson correlations are the rho_i
        assert np.corrcoef(Z[0][:, i], Z[1][:, i])[0, 1] == pytest.approx(
            plain.canonical_correlations_[i], abs=1e-6)


def test_multiview_cca_three_views():
    X, Y = two_views(n=600)
    W = X[:, :3] + np.random.default_rng(1).normal(size=(600, 3))
    mcca = MultiviewCCA(n_components=2).fit([X, Y, W])
    assert np.all(np.diff(mcca.eigenvalues_) <= 0) and np.all(mcca.eigenvalues_ <= 3 + 1e-9)
    Z = mcca.transform([X, Y, W])
    assert [z.shape for z in Z] == [(600, 2)] * 3
    for z in Z:  # unit-variance coordinates
        assert_close(z.var(0, ddof=1), np.ones(2), rtol=0, atol=1e-2)


def test_shared_subspace_collapses_without_constraint():
    X, Y = two_views(n=500)
    free = SharedSubspace(n_components=2, constraint=None, max_iter=400).fit([X, Y])
    assert free.norm_curve_[-1] < 1e-2 * free.norm_curve_[0]  # ||P|| -> ~0
    Zs = free.transform([X, Y])
    assert max(np.abs(z).max() for z in Zs) < 1e-2
    assert free.loss_curve_[-1] < 1e-4  # the objective is (trivially) minimised


def test_shared_subspace_orthonormal_does_not_collapse_and_reaches_cca():
    X, Y = two_views(n=500)
    fixed = SharedSubspace(n_components=2, constraint="orthonormal", reg=1e-8,
                           max_iter=300).fit([X, Y])
    assert_close(np.array(fixed.norm_curve_), np.full(300, 2 * np.sqrt(2)))  # ||P~_m|| = sqrt(k)
    Zx, Zy = fixed.transform([X, Y])
    n = len(X)
    assert_close(Zx.T @ Zx / (n - 1), np.eye(2), atol=1e-5, rtol=0)  # P^T C P = I
    cca = CCA(n_components=2, reg=1e-8).fit(X, Y)
    agreement = np.trace(Zx.T @ Zy) / (n - 1)
    assert agreement == pytest.approx(cca.canonical_correlations_.sum(), rel=1e-3)
    assert float(scatter_penalty([torch.from_numpy(Zx), torch.from_numpy(Zy)])) < 1e-6


@pytest.mark.parametrize("make, match", [
    (lambda X, Y: CCA().fit(X, Y[:-1]), "inconsistent numbers of samples"),
    (lambda X, Y: CCA().fit(torch.from_numpy(X), torch.from_numpy(Y[:-1])), "same number of rows"),
    (lambda X, Y: CCA(n_components=5).fit(X, Y), r"n_components must be <= 4, the smallest rank"),
    (lambda X, Y: MultiviewCCA().fit([X, Y[:-3]]), r"same number of rows.*\(97, 4\)"),
    (lambda X, Y: MultiviewCCA(n_components=6).fit([X, Y]), r"<= 4.*Xs\[1\]: 4"),
    (lambda X, Y: MultiviewCCA().fit([X]), "at least 2 views"),
    (lambda X, Y: SharedSubspace(constraint="sphere").fit([X, Y]), "constraint must be"),
    (lambda X, Y: SharedSubspace(n_components=0).fit([X, Y]), "n_components"),
    (lambda X, Y: MultiviewCCA().fit([X, Y]).transform([X[:, :2], Y]), r"Xs\[0\].*\(N, 5\)"),
])
def test_bad_inputs_raise_clear_errors(make, match):
    X, Y = two_views(n=100)
    with pytest.raises(ValueError, match=match):
        make(X, Y)


def test_chapter8_checkers():
    from mmbook.exercises import ch08

    def ccorr(X, Y, k):
        return CCA(n_components=k, reg=0.0).fit(X, Y).canonical_correlations_

    assert ch08.check_canonical_correlations(ccorr)
    assert not ch08.check_canonical_correlations(lambda X, Y, k: None)
    assert "order" in repr(ch08.check_canonical_correlations(lambda X, Y, k: ccorr(X, Y, k)[::-1]))
    assert ch08.check_scatter_penalty(scatter_penalty)
    assert not ch08.check_scatter_penalty(lambda Zs: 1 / 0)


# ---------------------------------------------------------------- issue 11: kinds of fault
def test_float32_far_from_origin_equals_float64_on_the_same_points():
    """Differences of large numbers: float32 data with a large common offset are centered
    in float64, so the fit equals the fit on the very same points given as float64."""
    X, Y = two_views(n=300)
    X32, Y32 = (X + 1e4).astype(np.float32), (Y - 3e4).astype(np.float32)
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)
    a, b = CCA(n_components=2, reg=0.0).fit(X32, Y32), CCA(n_components=2, reg=0.0).fit(X64, Y64)
    assert a.canonical_correlations_.dtype == np.float64  # attributes stay exact
    assert a.transform(X32).dtype == np.float32            # results in the input's dtype
    assert_close(a.canonical_correlations_, b.canonical_correlations_)
    sk = cross_decomposition.CCA(n_components=2, max_iter=5000, tol=1e-12).fit(X32, Y32)
    Sx, Sy = sk.transform(X32, Y32)
    sk_rho = [np.corrcoef(Sx[:, i], Sy[:, i])[0, 1] for i in range(2)]
    assert_close(a.canonical_correlations_, np.array(sk_rho), rtol=0, atol=1e-4)
    Zs32 = MultiviewCCA(n_components=2).fit([X32, Y32]).transform([X32, Y32])
    Zs64 = MultiviewCCA(n_components=2).fit([X64, Y64]).transform([X64, Y64])
    for z32, z64 in zip(Zs32, Zs64):
        assert_close(z32, z64.astype(np.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("call, name", [
    (lambda X, Y: CCA().fit(X, Y), "X"),
    (lambda X, Y: CCA().fit(Y, X), "y"),
    (lambda X, Y: CCA().fit(torch.from_numpy(X), torch.from_numpy(Y)), "X"),
    (lambda X, Y: CCA().fit(torch.from_numpy(Y), torch.from_numpy(X)), "y"),
    (lambda X, Y: CCA(n_components=1).fit(Y, Y).transform(Y, X[:, :4]), "y"),
    (lambda X, Y: whitener(torch.from_numpy(X[:5, :5])), "C"),
    (lambda X, Y: scatter_penalty([torch.from_numpy(Y), torch.from_numpy(X[:, :4])]),
     r"Zs\[1\]"),
    (lambda X, Y: disagreement([torch.from_numpy(X), torch.from_numpy(Y[:, :1])]), r"Zs\[0\]"),
])
def test_nan_rejected_naming_the_argument(call, name):
    X, Y = two_views(n=50)
    X[3, 0] = np.nan  # X is the dirty one in every call
    with pytest.raises(ValueError, match=rf"(^|Input ){name} (holds|contains)"):
        call(X, Y)


@pytest.mark.parametrize("make, match", [
    (lambda: CCA(reg=-1.0), "reg must be a finite number >= 0"),
    (lambda: CCA(n_components=1.0), "n_components must be a positive int"),
    (lambda: MultiviewCCA(reg=float("nan")), "reg must be a finite number >= 0"),
    (lambda: SharedSubspace(lr=0.0), "lr must be a finite number > 0"),
    (lambda: SharedSubspace(momentum=1.0), r"momentum must be a probability in \[0, 1\)"),
    (lambda: SharedSubspace(max_iter=0), "max_iter must be a positive int"),
    (lambda: SharedSubspace(lam=-0.1), "lam must be a finite number >= 0"),
    (lambda: SharedSubspace(random_state=-1), "random_state must be an int >= 0"),
])
def test_parameters_checked_in_fit(make, match):
    X, Y = two_views(n=50)
    est = make()  # constructing never fails (scikit-learn's rule) ...
    with pytest.raises(ValueError, match=match):  # ... fit does
        est.fit(X, Y) if isinstance(est, CCA) else est.fit([X, Y])


def test_whitener_reg_domain():
    with pytest.raises(ValueError, match="reg must be a finite number >= 0"):
        whitener(torch.eye(2), reg=-1.0)


def _rank_deficient(n=60, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, 3))
    X = np.hstack([A, A[:, :1] + A[:, 1:2]])  # 4 columns, rank 3
    return X, rng.normal(size=(n, 4)) + A[:, :1]


@pytest.mark.parametrize("fit", [
    lambda X, Y, k: CCA(n_components=k).fit(X, Y),
    lambda X, Y, k: MultiviewCCA(n_components=k).fit([X, Y]),
    lambda X, Y, k: SharedSubspace(n_components=k, max_iter=5).fit([X, Y]),
])
def test_components_limited_by_the_rank(fit):
    """More components than the data's rank: refused, naming the ranks (4 columns, rank 3;
    and N = 3 samples, whose centered rank is 2)."""
    X, Y = _rank_deficient()
    fit(X, Y, 3)  # up to the rank: fine
    with pytest.raises(ValueError, match=r"n_components must be <= 3.*: 3, .*: 4\), got 4"):
        fit(X, Y, 4)
    with pytest.raises(ValueError, match=r"n_components must be <= 2"):
        fit(X[:3], Y[:3], 3)
