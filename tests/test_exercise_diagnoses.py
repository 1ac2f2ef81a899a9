"""Each checker names the likely mistakes of its exercise; the starter state is neutral.

Every wrong answer below is written the way a student would write it, and the test asserts
both that the checker rejects it and that the message names that mistake.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbook.exercises import Feedback, call_student, ch02, ch04, ch06, ch07, ch08, ch09, pending


# --------------------------------------------------------------------------- pending state
def test_pending_is_neither_correct_nor_red():
    fb = pending("answer")
    assert not fb and fb.pending and fb.state == "pending"
    html = fb._repr_html_()
    assert "#cf222e" not in html and "mmbook-feedback-pending" in html
    assert repr(fb).startswith("Your turn:")
    wrong = Feedback(False, "no")
    assert wrong.state == "wrong" and "#cf222e" in wrong._repr_html_()
    assert Feedback(True, "yes").state == "correct"


def test_a_function_returning_none_is_pending_not_wrong():
    out, fb = call_student(lambda x: None, 1)
    assert out is None and fb.pending and not fb


@pytest.mark.parametrize("check", [
    lambda: ch02.check_masked_mean(lambda x, lengths: None),
    lambda: ch02.check_standardise(lambda a, b: None),
    lambda: ch02.check_components_for_variance(lambda x, share: None),
    lambda: ch04.check_output_size(None, n=28, kernel=5, stride=2, padding=1),
    lambda: ch04.check_conv_parameters(None, 16, 32, 3),
    lambda: ch06.check_tensor_fusion_parameters(None),
    lambda: ch06.check_low_rank_parameters(None),
    lambda: ch07.check_removed_modality(None, torch.tensor([0.2, 0.3, 0.5]), removed=0),
    lambda: ch08.check_whiten(lambda X: None),
    lambda: ch09.check_center_kernel(lambda K: None),
], ids=lambda f: "")
def test_starters_render_pending(check):
    fb = check()
    assert fb.pending and not fb, repr(fb)


# --------------------------------------------------------------------------- chapter 2
def _masked_mean(mask_fn):
    def f(x, lengths):
        t = torch.arange(x.shape[1])
        m = mask_fn(t[None, :], lengths[:, None]).float()
        return (x * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
    return f


def test_ch02_masked_mean_off_by_one():
    fb = ch02.check_masked_mean(_masked_mean(lambda t, n: t <= n))
    assert not fb and "off by one" in fb.message and "t <= T_n" in fb.message
    assert ch02.check_masked_mean(_masked_mean(lambda t, n: t < n))


def test_ch02_standardise_pooled_statistics():
    def pooled(a, b):
        both = torch.cat([a, b])
        mu, sd = both.mean(0), both.std(0)
        return (a - mu) / sd, (b - mu) / sd
    fb = ch02.check_standardise(pooled)
    assert not fb and "pooled" in fb.message


def test_ch02_standardise_variance_for_std():
    fb = ch02.check_standardise(lambda a, b: ((a - a.mean(0)) / a.var(0),
                                              (b - a.mean(0)) / a.var(0)))
    assert not fb and "sigma^2" in fb.message


def test_ch02_components_for_variance():
    ref = ch02.components_for_variance
    assert ch02.check_components_for_variance(ref)

    def sigma_not_squared(x, share):
        s = torch.linalg.svdvals(x - x.mean(0))
        return int((torch.cumsum(s, 0) / s.sum() < share).sum()) + 1

    def not_centred(x, share):
        s = torch.linalg.svdvals(x) ** 2
        return int((torch.cumsum(s, 0) / s.sum() < share).sum()) + 1

    def off_by_one(x, share):
        return ref(x, share) - 1

    for fn, words in ((sigma_not_squared, "square them"), (not_centred, "not centred"),
                      (off_by_one, "off by one")):
        fb = ch02.check_components_for_variance(fn)
        assert not fb and words in fb.message, (fn.__name__, fb)
    # the three slips give three different answers on the checker's data
    x = ch02._spectrum_views()
    values = {f(x, 0.8) for f in (ref, sigma_not_squared, not_centred, off_by_one)}
    assert len(values) == 4


# --------------------------------------------------------------------------- chapter 4
def test_ch04_output_size_padding_ignored_is_named():
    # n=28, k=5, s=2, p=1: ignoring the padding and forgetting the + 1 both give 12
    fb = ch04.check_output_size(12, n=28, kernel=5, stride=2, padding=1)
    assert not fb and "padding was left out" in fb.message and "+ 1 is missing" in fb.message


def test_ch04_output_size_each_slip():
    n, k, s, p = 21, 5, 2, 3  # expected (21 + 6 - 5) // 2 + 1 = 12
    assert ch04.check_output_size(12, n, k, s, p)
    cases = {(n - k) // s + 1: "padding was left out",
             (n + p - k) // s + 1: "both sides",
             (n + 2 * p - k) // s: "+ 1 is missing",
             n - k + 1: "stride and the padding"}
    assert len(cases) == 4
    for answer, words in cases.items():
        fb = ch04.check_output_size(answer, n, k, s, p)
        assert not fb and words in fb.message, (answer, fb)
    fb = ch04.check_output_size((28 + 2 - 5) / 2 + 1, 28, 5, 2, 1)  # 13.5
    assert not fb and "round down" in fb.message


def test_ch04_floats_are_not_counts():
    fb = ch04.check_conv_parameters(4640.0, 16, 32, 3)
    assert not fb and "float" in fb.message
    assert ch04.check_conv_parameters(4640, 16, 32, 3)
    fb = ch04.check_output_size(13.0, n=28, kernel=5, stride=2, padding=1)
    assert not fb and "float" in fb.message


# --------------------------------------------------------------------------- chapter 8
def _cca_inputs():
    return ch08._views()


def test_ch08_cca_no_whitening_and_squares():
    def no_whitening(X, Y, k):
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)
        return np.linalg.svd(Xc.T @ Yc / (len(X) - 1), compute_uv=False)[:k]

    def squared(X, Y, k):
        from mmbook.subspace import CCA
        return CCA(n_components=k, reg=0.0).fit(X, Y).canonical_correlations_ ** 2

    fb = ch08.check_canonical_correlations(no_whitening)
    assert not fb and "Whiten" in fb.message
    fb = ch08.check_canonical_correlations(squared)
    assert not fb and "squared" in fb.message


def test_ch08_scatter_penalty_divides_by_n():
    def by_n(Zs):
        S = [Z.T @ Z / len(Z) for Z in Zs]
        S_bar = sum(S) / len(S)
        return sum(((s - S_bar) ** 2).sum() for s in S)
    fb = ch08.check_scatter_penalty(by_n)
    assert not fb and "N - 1" in fb.message


def _inv_sqrt(C):
    lam, U = np.linalg.eigh(C)
    return (U / np.sqrt(lam)) @ U.T


def test_ch08_whiten():
    def right(X):
        Xc = X - X.mean(0)
        return Xc @ _inv_sqrt(np.cov(Xc, rowvar=False))

    assert ch08.check_whiten(right)
    slips = {
        "standardised": lambda X: (X - X.mean(0)) / X.std(0, ddof=1),
        "not centred": lambda X: X @ _inv_sqrt(np.cov(X, rowvar=False)),
        "C_xx^{-1}:": lambda X: (X - X.mean(0)) @ np.linalg.inv(np.cov(X, rowvar=False)),
        "divided the covariance by n": lambda X: (X - X.mean(0)) @ _inv_sqrt(
            np.cov(X, rowvar=False, bias=True)),
    }
    for words, fn in slips.items():
        fb = ch08.check_whiten(fn)
        assert not fb and words in fb.message, (words, fb)

    def cholesky(X):
        Xc = X - X.mean(0)
        L = np.linalg.cholesky(np.cov(Xc, rowvar=False))
        return Xc @ np.linalg.inv(L).T
    fb = ch08.check_whiten(cholesky)
    assert not fb and "rotation" in fb.message


# --------------------------------------------------------------------------- chapter 9
def test_ch09_rbf_sigma_for_sigma_squared():
    def sigma_not_squared(X, Y, sigma):
        return np.exp(-((X[:, None] - Y[None]) ** 2).sum(-1) / (2 * sigma))

    def distance_not_squared(X, Y, sigma):
        return np.exp(-np.sqrt(((X[:, None] - Y[None]) ** 2).sum(-1)) / (2 * sigma**2))

    fb = ch09.check_rbf_kernel(sigma_not_squared)
    assert not fb and "2 sigma^2" in fb.message and "divided by 2 sigma" in fb.message
    fb = ch09.check_rbf_kernel(distance_not_squared)
    assert not fb and "square" in fb.message


def test_ch09_alignment_one_kernel_centered():
    def one_side(K1, K2):
        n = len(K1)
        H = np.eye(n) - 1.0 / n
        A = H @ K1 @ H
        return float((A * K2).sum() / np.linalg.norm(A) / np.linalg.norm(K2))
    fb = ch09.check_centered_alignment(one_side)
    assert not fb and "only one" in fb.message


def test_ch09_center_kernel():
    def right(K):
        H = np.eye(len(K)) - 1.0 / len(K)
        return H @ K @ H
    assert ch09.check_center_kernel(right)
    slips = {
        "left only": lambda K: (np.eye(len(K)) - 1.0 / len(K)) @ K,
        "grand mean only": lambda K: K - K.mean(),
        "row means only": lambda K: K - K.mean(1, keepdims=True),
    }
    for words, fn in slips.items():
        fb = ch09.check_center_kernel(fn)
        assert not fb and words in fb.message, (words, fb)


def test_starters_that_return_placeholders_are_pending():
    from mmbook.exercises import ch05

    def my_conv(x, w):  # chapter 4's starter: the right shape, all zeros
        K, L = w.shape
        return torch.zeros(x.shape[0] - K + 1, x.shape[1] - L + 1)

    assert ch04.check_conv_single(my_conv).pending
    assert ch05.check_momentum_step(lambda theta, grad, buf, lr, mu: (theta, buf)).pending
    wrong = ch05.check_momentum_step(lambda theta, grad, buf, lr, mu: (theta - lr * grad, grad))
    assert not wrong and not wrong.pending  # plain SGD is a wrong answer, not a pending one
