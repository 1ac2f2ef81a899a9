"""mmbook.kernels against scikit-learn: kernels, centering, alignment, Nyström, kernel CCA, MKL."""

import numpy as np
import pytest
import torch
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics import pairwise as skp
from sklearn.preprocessing import KernelCenterer, LabelBinarizer
from sklearn.svm import SVC
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
    assert_close(Phi, ref, rtol=1e-6, atol=1e-8)  # the same symmetric map, no sign choice


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
    assert_close(Zk, Zl, rtol=1e-6, atol=1e-8)  # one sign rule: the same signs too


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
     r"n_components must be <= 2, the rank of the centered kernel features"),
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


# ---------------------------------------------------------------- issue 11: kinds of fault
def test_issue_example_rbf_float32_far_from_origin():
    """Issue 11.1: three float32 points near 10000, gamma=1: scikit-learn's values."""
    x = np.array([[10000.0], [10001.0], [10000.5]], dtype=np.float32)
    want = skp.rbf_kernel(x, gamma=1.0)
    got = K.rbf_kernel(x, gamma=1.0)
    assert got.dtype == np.float32
    assert_close(got, want)
    assert got[0, 1] == pytest.approx(np.exp(-1.0), rel=1e-6)
    assert_close(K.rbf_kernel(torch.from_numpy(x), gamma=1.0), torch.from_numpy(want))


def _offset(seed=0, n=40, m=30, d=5, offset=1e4):
    X, Y = _data(seed, n, m, d)
    return (X + offset).astype(np.float32), (Y * 0.5 + offset).astype(np.float32)


@pytest.mark.parametrize("offset", [0.0, 1e4, -3e5])
def test_squared_distances_far_from_origin_equal_sklearn(offset):
    X, Y = _offset(offset=offset)
    for A, B in ((X, Y), (X, None)):
        got = K.squared_distances(A, B)
        want = skp.euclidean_distances(A, B, squared=True)
        assert got.dtype == np.float32
        assert_close(got, want, rtol=1e-5, atol=1e-4)
    exact = ((X.astype(np.float64)[:, None] - Y.astype(np.float64)[None]) ** 2).sum(-1)
    assert_close(K.squared_distances(X, Y), exact.astype(np.float32), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("offset", [1e4, -3e5])
def test_everything_built_on_distances_is_right_far_from_origin(offset):
    X, Y = _offset(offset=offset)
    X64 = X.astype(np.float64)
    assert_close(K.rbf_kernel(X, Y, gamma=0.2), skp.rbf_kernel(X, Y, gamma=0.2),
                 rtol=1e-5, atol=1e-6)
    assert_close(K.pairwise_kernel(X, kernel="rbf", gamma=0.2), skp.rbf_kernel(X, gamma=0.2),
                 rtol=1e-5, atol=1e-6)
    Phi = K.nystroem_features(X, X[:20], kernel="rbf", gamma=0.2)
    ref = Nystroem(kernel="rbf", gamma=0.2, n_components=20).fit(X64[:20]).transform(X64)
    assert_close(Phi @ Phi.T, (ref @ ref.T).astype(np.float32), rtol=1e-4, atol=1e-4)
    y = np.arange(len(X)) % 2
    Kx = K.rbf_kernel(X, gamma=0.2)
    assert K.kernel_alignment(Kx, K.label_kernel(y)) == pytest.approx(
        K.kernel_alignment(skp.rbf_kernel(X64, gamma=0.2), K.label_kernel(y)), rel=1e-5)


def test_centering_and_alignment_of_large_float32_kernels():
    """Centering subtracts means of large entries: done in float64 for float32 input."""
    X, _ = _offset(offset=300.0)
    K64 = skp.linear_kernel(X.astype(np.float64))  # entries ~ 5 * 300^2
    K32 = K64.astype(np.float32)
    want = KernelCenterer().fit_transform(K32.astype(np.float64))
    got = K.center_kernel(K32)
    assert got.dtype == np.float32
    assert_close(got, want.astype(np.float32), rtol=1e-4, atol=1e-3)
    L = skp.rbf_kernel(X.astype(np.float64), gamma=0.1)
    assert K.kernel_alignment(K32, L) == pytest.approx(
        K.kernel_alignment(K32.astype(np.float64), L), rel=1e-6)


def test_kernel_estimators_far_from_origin():
    """KernelCCA and MultipleKernelFusion on float32 data near 1e4 equal the same fits on
    the same points in float64 (and an SVC on scikit-learn's kernels)."""
    X, Y = _two_views(n=120)
    X32, Y32 = (X + 1e4).astype(np.float32), (Y - 1e4).astype(np.float32)
    a = K.KernelCCA(n_components=2, gamma=0.1).fit(X32, Y32)
    b = K.KernelCCA(n_components=2, gamma=0.1).fit(X32.astype(np.float64),
                                                   Y32.astype(np.float64))
    assert_close(a.canonical_correlations_, b.canonical_correlations_, rtol=1e-6, atol=1e-8)
    y = (X[:, 0] > 0).astype(int)
    views = [X32, Y32]
    mkf = K.MultipleKernelFusion(gamma=0.1).fit(views, y)
    Ks = [skp.rbf_kernel(v, gamma=0.1) for v in views]
    fused = sum(w * k for w, k in zip(mkf.weights_, Ks))
    np.testing.assert_array_equal(mkf.predict(views), SVC(kernel="precomputed").fit(
        fused, y).predict(fused))


@pytest.mark.parametrize("call, name", [
    (lambda A, B: K.linear_kernel(A, B), "X"),
    (lambda A, B: K.linear_kernel(B, A), "Y"),
    (lambda A, B: K.polynomial_kernel(A), "X"),
    (lambda A, B: K.rbf_kernel(A, B), "X"),
    (lambda A, B: K.rbf_kernel(B, A), "Y"),
    (lambda A, B: K.squared_distances(B, A), "Y"),
    (lambda A, B: K.pairwise_kernel(A, kernel="rbf"), "X"),
    (lambda A, B: K.center_kernel(A[:, :3][:3]), "K"),
    (lambda A, B: K.kernel_alignment(A[:3, :3], np.eye(3)), "K1"),
    (lambda A, B: K.kernel_alignment(np.eye(3), A[:3, :3]), "K2"),
    (lambda A, B: K.label_kernel(A[:, 0]), "y"),
    (lambda A, B: K.alignment_weights([np.eye(30), A[:30, :30]], np.arange(30) % 2),
     r"kernels\[1\]"),
    (lambda A, B: K.combine_kernels([np.eye(3), A[:3, :3]], [0.5, 0.5]), r"kernels\[1\]"),
    (lambda A, B: K.combine_kernels([np.eye(3)], A[0, :1]), "weights"),
    (lambda A, B: K.nystroem_features(A, B[:5]), "X"),
    (lambda A, B: K.nystroem_features(B, A[:5]), "landmarks"),
    (lambda A, B: K.KernelCCA(n_components=1).fit(torch.from_numpy(A), B), "X"),
    (lambda A, B: K.KernelCCA(n_components=1).fit(torch.from_numpy(B), A), "y"),
    (lambda A, B: K.KernelCCA(n_components=1).fit(A, B), "X"),
    (lambda A, B: K.KernelCCA(n_components=1).fit(B, B).transform(A), "X"),
    (lambda A, B: K.KernelCCA(n_components=1).fit(B, B).transform(B, A), "y"),
])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_rejected_naming_the_argument(call, name, bad):
    A, B = _data(7, n=30, m=30)
    A[0, 0] = bad  # A is the dirty one in every call
    with pytest.raises(ValueError, match=rf"(^|Input ){name} (holds|contains)"):
        call(A, B)


def test_issue_example_string_labels():
    """Issue 11.6: string labels; predict returns them, as an SVC on the same kernel does."""
    rng = np.random.default_rng(8)
    names = np.array(["cat", "dog", "emu"])
    y = names[rng.integers(0, 3, size=60)]
    code = np.searchsorted(names, y)
    views = [rng.normal(size=(60, 4)) + code[:, None] * s for s in (1.0, 0.4)]
    mkf = K.MultipleKernelFusion().fit(views, y)
    np.testing.assert_array_equal(mkf.classes_, names)
    fused = sum(w * skp.rbf_kernel(v) for w, v in zip(mkf.weights_, views))
    want = SVC(kernel="precomputed").fit(fused, y).predict(fused)
    got = mkf.predict(views)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == y.dtype and set(got) <= set(names)
    assert mkf.score(views, y) == pytest.approx(np.mean(want == y))
    assert_close(K.label_kernel(y), K.label_kernel(code))


def test_class_with_a_single_member_and_a_single_class():
    rng = np.random.default_rng(9)
    y = np.array([0] * 15 + [1] * 14 + [7])  # class 7 has one member
    views = [rng.normal(size=(30, 3)) + y[:, None] * 0.3, rng.normal(size=(30, 2))]
    mkf = K.MultipleKernelFusion(weights="uniform").fit(views, y)
    fused = sum(0.5 * skp.rbf_kernel(v) for v in views)
    svc = SVC(kernel="precomputed").fit(fused, y)
    np.testing.assert_array_equal(mkf.predict(views), svc.predict(fused))
    assert_close(mkf.decision_function(views), svc.decision_function(fused))
    with pytest.raises(ValueError, match="at least 2 classes.*got only 'a'"):
        K.MultipleKernelFusion().fit(views, np.array(["a"] * 30))
    with pytest.raises(ValueError, match="Unknown label type"):
        K.MultipleKernelFusion().fit(views, rng.normal(size=30))


def test_issue_example_polynomial_degree_domain():
    """Issue 11.9: degree=-1 is refused, as scikit-learn refuses it."""
    X, _ = _data(0)
    with pytest.raises(ValueError):
        skp.polynomial_kernel(X, degree=-1)
    with pytest.raises(ValueError, match="degree must be a positive int, got -1"):
        K.polynomial_kernel(X, degree=-1)
    est = K.KernelCCA(kernel="poly", degree=-1)  # constructing does not check ...
    with pytest.raises(ValueError, match="degree must be a positive int, got -1"):
        est.fit(X, X[:, :2])  # ... fit does


@pytest.mark.parametrize("call, match", [
    (lambda X: K.polynomial_kernel(X, degree=0), "degree must be a positive int"),
    (lambda X: K.polynomial_kernel(X, degree=2.5), "degree must be a positive int"),
    (lambda X: K.polynomial_kernel(X, gamma=0.0), "gamma must be a finite number > 0"),
    (lambda X: K.polynomial_kernel(X, coef0=-1.0), "coef0 must be a finite number >= 0"),
    (lambda X: K.rbf_kernel(X, gamma=-1.0), "gamma must be a finite number > 0"),
    (lambda X: K.rbf_kernel(X, gamma=float("nan")), "gamma must be a finite number > 0"),
    (lambda X: K.pairwise_kernel(X, kernel="poly", degree=-2), "degree must be a positive"),
    (lambda X: K.kernel_alignment(np.eye(3), np.eye(3), center="yes"), "center must be one"),
    (lambda X: K.combine_kernels([np.eye(2), np.eye(2)], [1.0, -0.5]), "weights must be >= 0"),
    (lambda X: K.KernelCCA(reg=0.0).fit(X, X), "reg must be a finite number > 0"),
    (lambda X: K.KernelCCA(gamma=0.0).fit(X, X), "gamma must be a finite number > 0"),
    (lambda X: K.KernelCCA(coef0=-1.0, kernel="poly").fit(X, X), "coef0 must be"),
    (lambda X: K.KernelCCA(n_components=0).fit(X, X), "n_components must be a positive int"),
    (lambda X: K.KernelCCA(approx="exact").fit(X, X), "approx must be one of"),
    (lambda X: K.KernelCCA(approx="nystroem", n_landmarks=31).fit(X, X),
     "n_landmarks must be <= the number of samples N = 30"),
    (lambda X: K.KernelCCA(n_landmarks=0).fit(X, X), "n_landmarks must be a positive int"),
    (lambda X: K.KernelCCA(random_state=-1).fit(X, X), "random_state must be an int >= 0"),
    (lambda X: K.MultipleKernelFusion(C=0.0).fit([X, X], np.arange(30) % 2), "C must be"),
    (lambda X: K.MultipleKernelFusion(degree=0, kernel="poly").fit([X, X], np.arange(30) % 2),
     "degree must be a positive int"),
    (lambda X: K.MultipleKernelFusion(kernel="cosine").fit([X, X], np.arange(30) % 2),
     "kernel must be one of"),
    (lambda X: K.MultipleKernelFusion(weights="best").fit([X, X], np.arange(30) % 2),
     "weights must be one of"),
    (lambda X: K.MultipleKernelFusion(weights=[1.0, -1.0]).fit([X, X], np.arange(30) % 2),
     "weights must be 'alignment', 'uniform' or 2 numbers >= 0"),
    (lambda X: K.MultipleKernelFusion(weights=[1.0]).fit([X, X], np.arange(30) % 2),
     "weights must be 'alignment', 'uniform' or 2 numbers >= 0"),
])
def test_parameters_outside_their_domain(call, match):
    X, _ = _data(1, n=30)
    with pytest.raises(ValueError, match=match):
        call(X)


def test_kernel_cca_components_limited_by_the_rank():
    X, Y = _two_views(n=80)
    low = X[:, :2] @ np.ones((2, 5))  # 5 columns of rank 1
    K.KernelCCA(n_components=1, kernel="linear").fit(low, Y)
    with pytest.raises(ValueError, match=r"n_components must be <= 1, .*\(X: 1, y: 4\)"):
        K.KernelCCA(n_components=2, kernel="linear").fit(low, Y)
