"""mmbook.kernels against scikit-learn: kernels, centering, alignment, Nyström, kernel CCA, MKL."""

import numpy as np
import pytest
import torch
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics import pairwise as skp
from sklearn.preprocessing import KernelCenterer, LabelBinarizer
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import check_estimator
from torch.testing import assert_close

from mmbook import kernels as K
from mmbook.subspace import CCA


def _data(seed, n=30, m=20, d=7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name, params", [
    ("linear_kernel", {}),
    ("polynomial_kernel", {}),
    ("polynomial_kernel", {"degree": 2, "gamma": 0.3, "coef0": 0.5}),
    ("polynomial_kernel", {"degree": 4, "gamma": 0.05, "coef0": 2.0}),
    ("rbf_kernel", {}),
    ("rbf_kernel", {"gamma": 0.01}),
    ("rbf_kernel", {"gamma": 1.7}),
])
def test_kernels_equal_sklearn(seed, name, params):
    X, Y = _data(seed)
    ours, ref = getattr(K, name), getattr(skp, name)
    got = ours(X, Y, **params)
    assert isinstance(got, np.ndarray)
    assert_close(got, ref(X, Y, **params))
    assert_close(ours(X, **params), ref(X, **params))  # Y=None: K(X, X)


@pytest.mark.parametrize("name", ["linear_kernel", "polynomial_kernel", "rbf_kernel"])
def test_tensor_in_tensor_out(name):
    X, Y = _data(0)
    Xt, Yt = torch.from_numpy(X).float(), torch.from_numpy(Y).float()
    got = getattr(K, name)(Xt, Yt)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert got.device == Xt.device
    assert_close(got, torch.from_numpy(getattr(skp, name)(X, Y)).float(), rtol=1e-4, atol=1e-5)


def test_rbf_diagonal_is_exactly_one():
    X, _ = _data(1)
    np.testing.assert_array_equal(np.diag(K.rbf_kernel(X * 1e3)), 1.0)


def test_center_kernel_equals_kernel_centerer():
    X, _ = _data(2)
    Kx = skp.rbf_kernel(X, gamma=0.2)
    assert_close(K.center_kernel(Kx), KernelCenterer().fit_transform(Kx))


def test_kernel_alignment_against_formula():
    X, Y = _data(3, n=25, m=25)
    K1, K2 = skp.rbf_kernel(X), skp.linear_kernel(Y)
    H = np.eye(25) - 1 / 25
    A, B = H @ K1 @ H, H @ K2 @ H
    want = np.sum(A * B) / np.sqrt(np.sum(A * A) * np.sum(B * B))
    assert K.kernel_alignment(K1, K2) == pytest.approx(want, rel=1e-10)
    raw = np.sum(K1 * K2) / np.sqrt(np.sum(K1 * K1) * np.sum(K2 * K2))
    assert K.kernel_alignment(K1, K2, center=False) == pytest.approx(raw, rel=1e-10)
    assert K.kernel_alignment(K1, 3.0 * K1) == pytest.approx(1.0)


def test_label_kernel_is_one_hot_gram():
    y = np.array([0, 2, 1, 2, 0, 1, 1])
    Y = LabelBinarizer().fit_transform(y)
    assert_close(K.label_kernel(y), (Y @ Y.T).astype(np.float64))


def test_nystroem_features_match_sklearn():
    X, _ = _data(4, n=60)
    ny = Nystroem(kernel="rbf", gamma=0.3, n_components=20, random_state=0).fit(X)
    Phi = K.nystroem_features(X, ny.components_, kernel="rbf", gamma=0.3)
    ref = ny.transform(X)
    assert_close(Phi @ Phi.T, ref @ ref.T, rtol=1e-6, atol=1e-8)


def _two_views(seed=0, n=400, rho=(0.9, 0.6, 0.3)):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, len(rho)))
    t = s * np.array(rho) + rng.normal(size=s.shape) * np.sqrt(1 - np.array(rho) ** 2)
    X = np.hstack([s, rng.normal(size=(n, 2))]) @ rng.normal(size=(5, 5))
    Y = np.hstack([t, rng.normal(size=(n, 1))]) @ rng.normal(size=(4, 4))
    return X, Y


def test_linear_kernel_cca_equals_cca():
    X, Y = _two_views()
    lin = CCA(n_components=3, reg=1e-3).fit(X, Y)
    kcca = K.KernelCCA(n_components=3, kernel="linear", reg=1e-3).fit(X, Y)
    assert_close(kcca.canonical_correlations_, lin.canonical_correlations_, rtol=1e-8, atol=1e-10)
    Zk, Zl = kcca.transform(X[:50]), lin.transform(X[:50])
    signs = np.sign(np.sum(Zk * Zl, 0))
    assert_close(Zk * signs, Zl, rtol=1e-6, atol=1e-8)


def test_nystroem_with_all_points_equals_exact():
    X, Y = _two_views(n=120)
    kw = {"n_components": 2, "kernel": "rbf", "gamma": 0.1, "reg": 1e-2}
    exact = K.KernelCCA(**kw).fit(X, Y)
    approx = K.KernelCCA(**kw, approx="nystroem", n_landmarks=120).fit(X, Y)
    assert_close(approx.canonical_correlations_, exact.canonical_correlations_,
                 rtol=1e-5, atol=1e-6)
    Zx, Zy = exact.transform(X, Y)
    got = [np.corrcoef(Zx[:, i], Zy[:, i])[0, 1] for i in range(2)]
    assert np.all(np.diff(exact.canonical_correlations_) <= 0)
    assert np.all(np.array(got) > 0)


def test_kernel_cca_tensor_input():
    X, Y = _two_views(n=80)
    kcca = K.KernelCCA(n_components=2, kernel="poly", degree=2).fit(torch.from_numpy(X),
                                                                    torch.from_numpy(Y))
    Zx, Zy = kcca.transform(torch.from_numpy(X), torch.from_numpy(Y))
    assert isinstance(Zx, torch.Tensor) and Zx.shape == (80, 2) and Zy.shape == (80, 2)


def test_kernel_cca_passes_sklearn_estimator_checks():
    check_estimator(K.KernelCCA(n_components=1, kernel="linear"))


def test_multiple_kernel_fusion_matches_manual_svc():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=90)
    views = [rng.normal(size=(90, 4)) + y[:, None] * s for s in (1.0, 0.3)]
    mkf = K.MultipleKernelFusion(kernel="rbf").fit(views[:2], y)
    Ks = [skp.rbf_kernel(v) for v in views]
    rho = np.array([K.kernel_alignment(k, K.label_kernel(y)) for k in Ks])
    assert_close(mkf.weights_, rho / rho.sum())
    assert mkf.weights_[0] > mkf.weights_[1]  # the more separable view weighs more
    svc = SVC(kernel="precomputed").fit(sum(w * k for w, k in zip(mkf.weights_, Ks)), y)
    np.testing.assert_array_equal(mkf.predict(views), svc.predict(sum(
        w * k for w, k in zip(mkf.weights_, Ks))))


_RNG = np.random.default_rng(0)


@pytest.mark.parametrize("call, match", [
    (lambda: K.rbf_kernel(np.ones((3, 2)), np.ones((4, 5))), "same number of features"),
    (lambda: K.pairwise_kernel(np.ones((3, 2)), kernel="sigmoid"), "kernel must be one of"),
    (lambda: K.KernelCCA(kernel="cosine").fit(np.ones((5, 2)), np.ones((5, 2))),
     "kernel must be one of"),
    (lambda: K.KernelCCA(kernel="linear").fit(_RNG.random((5, 2)), _RNG.random((6, 2))),
     "inconsistent numbers of samples|same number of rows"),
    (lambda: K.KernelCCA(n_components=3, kernel="linear").fit(_RNG.random((9, 2)),
                                                              _RNG.random((9, 4))),
     r"n_components must be an int in \[1, 2\]"),
    (lambda: K.center_kernel(np.ones((3, 4))), "square"),
    (lambda: K.rbf_kernel(np.ones(3)), r"2-D \(N, D\)"),
    (lambda: K.combine_kernels([np.eye(2), np.eye(2)], [1.0]), "weights must have shape"),
])
def test_bad_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_kernel_widgets_headless():
    import matplotlib

    matplotlib.use("Agg")
    from mmbook.widgets import KernelExplorer, kernel_static

    rng = np.random.default_rng(6)
    y = np.repeat([2, 0, 1], 10)
    views = {"a": rng.normal(size=(30, 3)) + y[:, None], "b": rng.normal(size=(30, 5))}
    order = np.argsort(y, kind="stable")
    want = K.kernel_alignment(skp.rbf_kernel(views["a"][order], gamma=0.5),
                              K.label_kernel(y[order]))
    fig = kernel_static(views["a"], y, gammas=(0.5, None))
    assert fig.alignments[0] == pytest.approx(want)
    ex = KernelExplorer(views, y, kernel="rbf", gamma=0.5)
    assert ex.alignment == pytest.approx(want)
    assert ex.update(view="b", kernel="poly", degree=2) == pytest.approx(K.kernel_alignment(
        skp.polynomial_kernel(views["b"][order], degree=2, gamma=0.5), K.label_kernel(y[order])))
    assert ex.controls["view"].value == "b"
    with pytest.raises(ValueError, match="view must be one of"):
        ex.update(view="c")


def test_chapter9_checkers():
    from mmbook.exercises import ch09

    assert ch09.check_rbf_kernel(lambda X, Y, s: skp.rbf_kernel(X, Y, gamma=1 / (2 * s**2)))
    wrong = ch09.check_rbf_kernel(lambda X, Y, s: skp.rbf_kernel(X, Y, gamma=1 / s**2))
    assert "2 sigma" in repr(wrong)
    assert not ch09.check_rbf_kernel(lambda X, Y, s: None)
    assert ch09.check_centered_alignment(K.kernel_alignment)
    assert "uncentered" in repr(ch09.check_centered_alignment(
        lambda A, B: K.kernel_alignment(A, B, center=False)))
