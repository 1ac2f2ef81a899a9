"""Kernels, kernel matrices, kernel alignment, kernel CCA and multiple-kernel fusion.

All functions compute with torch. **NumPy in, NumPy out; tensors in, tensors out**:
NumPy input is moved to :func:`mmbook.utils.get_device` (CPU when float64 is not
supported there) and the result comes back as a NumPy array of the input's floating
dtype; tensor input stays on its device and keeps its dtype. Integer input is
converted to float64, as :mod:`sklearn.metrics.pairwise` does.

Shape legend: N rows of ``X``, N' rows of ``Y``, D features (the same in ``X`` and ``Y``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .utils import get_device

__all__ = ["linear_kernel", "polynomial_kernel", "rbf_kernel", "pairwise_kernel", "KERNELS",
           "center_kernel", "kernel_alignment", "label_kernel", "alignment_weights",
           "combine_kernels", "nystroem_features", "KernelCCA", "MultipleKernelFusion"]


# ---------------------------------------------------------------- conversions
def _device_for(dtype: torch.dtype) -> torch.device:
    device = get_device()
    if device.type == "mps" and dtype == torch.float64:
        return torch.device("cpu")
    return device


def _to_torch(x, name: str) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)``; the tensor is 2-D and floating."""
    was_numpy = not isinstance(x, torch.Tensor)
    if was_numpy:
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
        if not np.issubdtype(arr.dtype, np.floating) or arr.dtype == np.float16:
            arr = arr.astype(np.float64)
        arr = np.ascontiguousarray(arr) if arr.flags.writeable else arr.copy()
        t = torch.from_numpy(arr)
        t = t.to(_device_for(t.dtype))
    else:
        t = x if x.is_floating_point() else x.to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    return t, was_numpy


def _back(t: torch.Tensor, was_numpy: bool):
    return t.detach().cpu().numpy() if was_numpy else t


def _pair(X, Y):
    """Validate ``X`` (N, D) and ``Y`` (N', D) (``Y=None`` means ``Y = X``)."""
    Xt, was_numpy = _to_torch(X, "X")
    if Y is None:
        return Xt, Xt, was_numpy, True
    Yt, _ = _to_torch(Y, "Y")
    if Yt.shape[1] != Xt.shape[1]:
        raise ValueError(f"X and Y must have the same number of features: X has shape "
                         f"{tuple(Xt.shape)}, Y has shape {tuple(Yt.shape)} (expected "
                         f"(N', {Xt.shape[1]}))")
    dtype = torch.promote_types(Xt.dtype, Yt.dtype)
    return Xt.to(dtype), Yt.to(dtype=dtype, device=Xt.device), was_numpy, False


def _gamma(gamma, n_features: int) -> float:
    if gamma is None:
        return 1.0 / n_features
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma!r}")
    return float(gamma)


# ---------------------------------------------------------------- the kernels
def linear_kernel(X, Y=None):
    r"""Linear kernel :math:`k(x, y) = x^\top y`, i.e. :math:`K = X Y^\top`.

    Same result as :func:`sklearn.metrics.pairwise.linear_kernel`.

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`
    """
    Xt, Yt, was_numpy, _ = _pair(X, Y)
    return _back(Xt @ Yt.T, was_numpy)


def polynomial_kernel(X, Y=None, degree: int = 3, gamma=None, coef0: float = 1):
    r"""Polynomial kernel :math:`k(x, y) = (\gamma\, x^\top y + c_0)^d`.

    Defaults as in :func:`sklearn.metrics.pairwise.polynomial_kernel`: ``gamma=None``
    means :math:`1/D`, ``coef0=1``, ``degree=3``.

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`
    """
    Xt, Yt, was_numpy, _ = _pair(X, Y)
    g = _gamma(gamma, Xt.shape[1])
    return _back((g * (Xt @ Yt.T) + coef0) ** degree, was_numpy)


def squared_distances(Xt: torch.Tensor, Yt: torch.Tensor, same: bool) -> torch.Tensor:
    r""":math:`\|x_i - y_j\|^2 = \|x_i\|^2 - 2 x_i^\top y_j + \|y_j\|^2`, clamped at 0."""
    x2 = (Xt * Xt).sum(1, keepdim=True)  # (N, 1)
    y2 = x2.T if same else (Yt * Yt).sum(1)[None, :]  # (1, N')
    d2 = torch.addmm(x2, Xt, Yt.T, alpha=-2).add_(y2).clamp_min_(0)  # (N, N'), one pass each
    if same:
        d2.fill_diagonal_(0)
    return d2


def rbf_kernel(X, Y=None, gamma=None):
    r"""Gaussian (RBF) kernel :math:`k(x, y) = \exp(-\gamma \|x - y\|^2)`.

    With :math:`\gamma = 1 / (2\sigma^2)` this is the seeds' :math:`\exp(-\|x-y\|^2/2\sigma^2)`.
    ``gamma=None`` means :math:`1/D`, as in :func:`sklearn.metrics.pairwise.rbf_kernel`.

    Shape:
        - X: :math:`(N, D)`, Y: :math:`(N', D)` (default ``X``)
        - output: :math:`(N, N')`
    """
    Xt, Yt, was_numpy, same = _pair(X, Y)
    g = _gamma(gamma, Xt.shape[1])
    return _back(squared_distances(Xt, Yt, same).mul_(-g).exp_(), was_numpy)  # in place


KERNELS = {"linear": linear_kernel, "poly": polynomial_kernel, "rbf": rbf_kernel}


def pairwise_kernel(X, Y=None, kernel: str = "linear", **params):
    """Dispatch to ``linear_kernel``, ``polynomial_kernel`` (``"poly"``) or ``rbf_kernel``."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
    if kernel == "linear":
        params = {}
    elif kernel == "rbf":
        params = {"gamma": params.get("gamma")}
    return KERNELS[kernel](X, Y, **params)


# ---------------------------------------------------------------- centering, alignment
def _square(K, name: str = "K") -> tuple[torch.Tensor, bool]:
    Kt, was_numpy = _to_torch(K, name)
    if Kt.shape[0] != Kt.shape[1]:
        raise ValueError(f"{name} must be a square kernel matrix (N, N), got shape "
                         f"{tuple(Kt.shape)}")
    return Kt, was_numpy


def center_kernel(K):
    r"""Center a kernel matrix in feature space: :math:`K_c = HKH`, :math:`H = I - 11^\top/N`.

    Computed without forming :math:`H`: subtract row and column means, add the grand mean.
    Same result as :class:`sklearn.preprocessing.KernelCenterer` ``fit_transform``.

    Shape:
        - K: :math:`(N, N)`; output :math:`(N, N)`
    """
    Kt, was_numpy = _square(K)
    Kc = Kt - Kt.mean(0, keepdim=True) - Kt.mean(1, keepdim=True) + Kt.mean()
    return _back(Kc, was_numpy)


def _center_test(K_new: torch.Tensor, K_fit: torch.Tensor) -> torch.Tensor:
    """Center rows ``k(x_new, X_fit)`` (N', N) with the training kernel's statistics."""
    return (K_new - K_fit.mean(0, keepdim=True) - K_new.mean(1, keepdim=True) + K_fit.mean())


def kernel_alignment(K1, K2, center: bool = True) -> float:
    r"""(Centered) kernel alignment of two kernel matrices.

    .. math::
        \rho(K_1, K_2) = \frac{\langle K_1^c, K_2^c\rangle_F}{\|K_1^c\|_F\,\|K_2^c\|_F}

    With ``center=True`` (default) the kernels are first centered, :math:`K^c = HKH`, as in
    Cortes, Mohri & Rostamizadeh (2012); ``center=False`` gives the uncentered alignment
    of Cristianini et al. (2002). The value lies in :math:`[-1, 1]` (in :math:`[0, 1]` for
    positive semi-definite kernels).

    Shape:
        - K1, K2: :math:`(N, N)`
    """
    K1t, _ = _square(K1, "K1")
    K2t, _ = _square(K2, "K2")
    if K1t.shape != K2t.shape:
        raise ValueError(f"K1 and K2 must have the same shape, got {tuple(K1t.shape)} and "
                         f"{tuple(K2t.shape)}")
    dtype = torch.promote_types(K1t.dtype, K2t.dtype)
    K1t, K2t = K1t.to(dtype), K2t.to(dtype=dtype, device=K1t.device)
    if center:
        K1t, K2t = center_kernel(K1t), center_kernel(K2t)
    num = (K1t * K2t).sum()
    den = torch.linalg.matrix_norm(K1t) * torch.linalg.matrix_norm(K2t)
    if den == 0:
        raise ValueError("kernel_alignment is undefined: a (centered) kernel is all zeros")
    return float(num / den)


def label_kernel(y):
    r"""The ideal kernel of class labels: :math:`K_y = Y Y^\top`, :math:`(K_y)_{ij} = [y_i = y_j]`.

    :math:`Y` is the one-hot matrix of ``y``; for two classes coded :math:`\pm 1` this is
    :math:`yy^\top` up to an affine map, which centering removes.

    Shape:
        - y: :math:`(N,)`; output :math:`(N, N)` (NumPy for NumPy input)
    """
    was_numpy = not isinstance(y, torch.Tensor)
    yt = torch.as_tensor(np.asarray(y)) if was_numpy else y
    if yt.ndim != 1:
        raise ValueError(f"y must be 1-D (N,), got shape {tuple(yt.shape)}")
    Ky = (yt[:, None] == yt[None, :]).to(torch.float64)
    return _back(Ky, was_numpy)


def alignment_weights(kernels, y, center: bool = True) -> np.ndarray:
    r"""Weights :math:`\mu_m \propto \max(\rho(K_m, K_y), 0)`, summing to one.

    The "align" heuristic of Cortes et al. (2012): each view's kernel is weighted by its
    centered alignment with the label kernel :math:`K_y = YY^\top`.

    Shape:
        - kernels: M matrices :math:`(N, N)`; y: :math:`(N,)`; output :math:`(M,)`
    """
    Ky = label_kernel(y)
    rho = np.array([kernel_alignment(K, _like(Ky, K), center=center) for K in kernels])
    rho = np.clip(rho, 0.0, None)
    if rho.sum() == 0:
        raise ValueError("no kernel is positively aligned with the labels")
    return rho / rho.sum()


def _like(a, ref):
    """``a`` as the same kind (tensor/array) as ``ref``."""
    if isinstance(ref, torch.Tensor):
        return torch.as_tensor(a, dtype=ref.dtype, device=ref.device)
    return np.asarray(a)


def combine_kernels(kernels, weights):
    r"""Weighted sum :math:`K = \sum_m \mu_m K_m` of M kernel matrices of one shape.

    Shape:
        - kernels: M matrices :math:`(N, N')`; weights: :math:`(M,)`; output :math:`(N, N')`
    """
    kernels = list(kernels)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(kernels),):
        raise ValueError(f"weights must have shape ({len(kernels)},) (one per kernel), got "
                         f"{weights.shape}")
    shapes = {tuple(K.shape) for K in kernels}
    if len(shapes) != 1:
        raise ValueError(f"all kernels must have the same shape, got {sorted(shapes)}")
    return sum(float(w) * K for w, K in zip(weights, kernels))


# ---------------------------------------------------------------- Nyström
def nystroem_features(X, landmarks, kernel: str = "rbf", **params):
    r"""Nyström features :math:`\Phi = K_{NL} U \Lambda^{-1/2}`, :math:`K_{LL} = U\Lambda U^\top`.

    Then :math:`\Phi\Phi^\top = K_{NL} K_{LL}^{+} K_{LN} \approx K`: an :math:`(N, L)` feature
    matrix whose inner products approximate the kernel (Williams & Seeger, 2001), the same
    map as :class:`sklearn.kernel_approximation.Nystroem`.

    Shape:
        - X: :math:`(N, D)`, landmarks: :math:`(L, D)`; output :math:`(N, L')`, L' <= L
    """
    Xt, was_numpy = _to_torch(X, "X")
    Lt, _ = _to_torch(landmarks, "landmarks")
    Lt = Lt.to(dtype=Xt.dtype, device=Xt.device)
    lam, U = torch.linalg.eigh(pairwise_kernel(Lt, kernel=kernel, **params))
    keep = lam > lam.max() * 1e-10
    K_NL = pairwise_kernel(Xt, Lt, kernel=kernel, **params)
    return _back(K_NL @ (U[:, keep] / lam[keep].sqrt()), was_numpy)


# ---------------------------------------------------------------- kernel CCA
class KernelCCA(TransformerMixin, BaseEstimator):
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

    Args:
        n_components: number of canonical pairs k.
        kernel: ``"linear"``, ``"rbf"`` or ``"poly"`` (same kernel for both views).
        gamma, degree, coef0: kernel parameters (``gamma=None``: :math:`1/D` per view).
        reg: ridge added to the feature covariances (> 0 keeps kernel CCA from the trivial
            perfect correlations of an invertible kernel).
        approx: ``None`` (exact) or ``"nystroem"``.
        n_landmarks: landmarks for Nyström (chosen at random with ``random_state``).
        random_state: seed of the landmark choice.

    Attributes:
        canonical_correlations_: :math:`(k,)` the regularised canonical correlations.
        x_weights_, y_weights_: weights of the components in feature coordinates.

    Shape:
        - X: :math:`(N, D_x)`, y (the second view): :math:`(N, D_y)`; ``transform(X, y)``
          gives :math:`(N, k)` each. As for any scikit-learn transformer,
          ``fit_transform(X, y)`` returns the projection of X only.
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

    # -- validation
    def _validate(self, X, y):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {self.kernel!r}")
        if self.approx not in (None, "nystroem"):
            raise ValueError(f"approx must be None or 'nystroem', got {self.approx!r}")
        if not self.reg > 0:
            raise ValueError(f"reg must be positive, got {self.reg!r}")
        if not isinstance(X, torch.Tensor):
            X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                                 ensure_min_samples=2, dtype=[np.float64, np.float32])
        Xt, was_numpy = _to_torch(X, "X")
        y = y if isinstance(y, torch.Tensor) else np.asarray(y)
        y = y[:, None] if y.ndim == 1 else y
        Yt, _ = _to_torch(y, "y")
        if Xt.shape[0] != Yt.shape[0]:
            raise ValueError(f"X and y (the two views) must have the same number of rows: X "
                             f"has shape {tuple(Xt.shape)}, y has shape {tuple(Yt.shape)}")
        self.n_features_in_ = Xt.shape[1]
        dtype = torch.float32 if Xt.device.type == "mps" else torch.float64
        return Xt.to(dtype), Yt.to(device=Xt.device, dtype=dtype), was_numpy

    def _params(self):
        return {"gamma": self.gamma, "degree": self.degree, "coef0": self.coef0}

    # -- features F with K ~ F F^T, centered, in the basis where F^T F is diagonal
    def _fit_view(self, X: torch.Tensor):
        n = X.shape[0]
        if self.approx is None:
            Kc = center_kernel(pairwise_kernel(X, kernel=self.kernel, **self._params()))
            lam, U = torch.linalg.eigh(Kc)
            keep = lam > lam.max() * 1e-10
            state = {"X": X, "K_fit": pairwise_kernel(X, kernel=self.kernel, **self._params()),
                     "map": U[:, keep] / lam[keep].sqrt()}
            return U[:, keep] * lam[keep].sqrt(), lam[keep], state
        if not 0 < self.n_landmarks <= n:
            raise ValueError(f"n_landmarks must be in [1, {n}] (the number of samples), got "
                             f"{self.n_landmarks!r}")
        gen = torch.Generator().manual_seed(int(self.random_state or 0))
        idx = torch.randperm(n, generator=gen)[: self.n_landmarks].to(X.device)
        Phi = nystroem_features(X, X[idx], kernel=self.kernel, **self._params())
        mean = Phi.mean(0, keepdim=True)
        U, s, Vh = torch.linalg.svd(Phi - mean, full_matrices=False)
        keep = s > s.max() * 1e-8
        state = {"landmarks": X[idx], "mean": mean, "rot": Vh[keep].T}
        return U[:, keep] * s[keep], s[keep] ** 2, state

    def _features(self, X: torch.Tensor, state) -> torch.Tensor:
        if self.approx is None:
            K_new = pairwise_kernel(X, state["X"], kernel=self.kernel, **self._params())
            return _center_test(K_new, state["K_fit"]) @ state["map"]
        Phi = nystroem_features(X, state["landmarks"], kernel=self.kernel, **self._params())
        return (Phi - state["mean"]) @ state["rot"]

    def fit(self, X, y):
        """Fit on two views X and y (the second view) with the same rows; returns ``self``."""
        Xt, Yt, _ = self._validate(X, y)
        n = Xt.shape[0]
        Fx, ex, self._state_x = self._fit_view(Xt)
        Fy, ey, self._state_y = self._fit_view(Yt)
        k_max = min(Fx.shape[1], Fy.shape[1])
        k = self.n_components
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= k_max:
            raise ValueError(f"n_components must be an int in [1, {k_max}] (the rank of the "
                             f"kernel features), got {self.n_components!r}")
        # whitening is diagonal here: F^T F = diag(e)
        wx = ((ex / (n - 1)) + self.reg).rsqrt()
        wy = ((ey / (n - 1)) + self.reg).rsqrt()
        T = wx[:, None] * (Fx.T @ Fy / (n - 1)) * wy[None, :]
        A, rho, Bh = torch.linalg.svd(T, full_matrices=False)
        k = self.n_components
        self.x_weights_ = wx[:, None] * A[:, :k]
        self.y_weights_ = wy[:, None] * Bh[:k].T
        self.canonical_correlations_ = rho[:k].detach().cpu().numpy()
        return self

    def transform(self, X, y=None):
        """Project new rows of X (and of the second view y) onto the canonical directions."""
        check_is_fitted(self, "x_weights_")
        if not isinstance(X, torch.Tensor):
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Xt, was_numpy = _to_torch(X, "X")
        w = self.x_weights_
        Zx = self._features(Xt.to(device=w.device, dtype=w.dtype), self._state_x) @ w
        if y is None:
            return _back(Zx, was_numpy)
        y = y if isinstance(y, torch.Tensor) else np.asarray(y)
        y = y[:, None] if y.ndim == 1 else y
        Yt, _ = _to_torch(y, "y")
        Zy = self._features(Yt.to(device=w.device, dtype=w.dtype), self._state_y) @ self.y_weights_
        return _back(Zx, was_numpy), _back(Zy, was_numpy)


# ---------------------------------------------------------------- multiple kernels
class MultipleKernelFusion(ClassifierMixin, BaseEstimator):
    r"""An SVM on a weighted sum of per-view kernels, :math:`K = \sum_m \mu_m K_m`.

    Each view gets its own kernel :math:`K_m = k(X_m, X_m)` (``gamma=None``: :math:`1/D_m`);
    the weights are :math:`\mu_m \propto \rho(K_m, K_y)`, the centered alignment with the
    label kernel (``weights="alignment"``, Cortes et al. 2012), or equal (``"uniform"``), or
    given as an array. The classifier is :class:`sklearn.svm.SVC` with
    ``kernel="precomputed"``.

    Args:
        kernel: ``"linear"``, ``"rbf"`` or ``"poly"``.
        gamma, degree, coef0: kernel parameters shared by the views.
        weights: ``"alignment"``, ``"uniform"`` or an array of M weights.
        C: the SVM's regularisation.

    Attributes:
        weights_: :math:`(M,)`; alignments_: :math:`(M,)` alignment of each view with labels;
        svc_: the fitted SVC; classes_.

    Shape:
        - views: a list of M arrays :math:`(N, D_m)`; y: :math:`(N,)`
    """

    def __init__(self, kernel: str = "rbf", gamma=None, degree: int = 3, coef0: float = 1,
                 weights="alignment", C: float = 1.0):
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.weights = weights
        self.C = C

    def _kernels(self, views, ref=None):
        params = {"gamma": self.gamma, "degree": self.degree, "coef0": self.coef0}
        if ref is None:
            return [np.asarray(pairwise_kernel(np.asarray(V), kernel=self.kernel, **params))
                    for V in views]
        return [np.asarray(pairwise_kernel(np.asarray(V), np.asarray(R), kernel=self.kernel,
                                           **params)) for V, R in zip(views, ref)]

    def _check_views(self, views, expected_m=None):
        if isinstance(views, (np.ndarray, torch.Tensor)) or not len(views):
            raise ValueError("views must be a non-empty list of arrays (N, D_m)")
        views = [np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)
                 for v in views]
        if expected_m is not None and len(views) != expected_m:
            raise ValueError(f"views must hold {expected_m} views (as in fit), got {len(views)}")
        rows = [v.shape[0] for v in views]
        if len(set(rows)) != 1:
            raise ValueError(f"all views must have the same number of rows, got {rows}")
        return views

    def fit(self, views, y):
        """Compute the per-view kernels and their weights, then fit the SVC."""
        from sklearn.svm import SVC

        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {self.kernel!r}")
        views = self._check_views(views)
        y = np.asarray(y)
        if y.shape != (views[0].shape[0],):
            raise ValueError(f"y must have shape ({views[0].shape[0]},), got {y.shape}")
        Ks = self._kernels(views)
        Ky = label_kernel(y)
        self.alignments_ = np.array([kernel_alignment(K, Ky) for K in Ks])
        self.weights_ = self._weights(Ks, y)
        self.views_ = views
        self.svc_ = SVC(kernel="precomputed", C=self.C).fit(combine_kernels(Ks, self.weights_), y)
        self.classes_ = self.svc_.classes_
        return self

    def _weights(self, Ks, y):
        if isinstance(self.weights, str):
            if self.weights == "alignment":
                return alignment_weights(Ks, y)
            if self.weights == "uniform":
                return np.full(len(Ks), 1.0 / len(Ks))
            raise ValueError(f"weights must be 'alignment', 'uniform' or an array, got "
                             f"{self.weights!r}")
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (len(Ks),):
            raise ValueError(f"weights must have shape ({len(Ks)},), got {w.shape}")
        return w

    def decision_function(self, views):
        check_is_fitted(self, "svc_")
        views = self._check_views(views, len(self.views_))
        return self.svc_.decision_function(combine_kernels(self._kernels(views, self.views_),
                                                           self.weights_))

    def predict(self, views):
        """Class of each row of the views: ``(N,)``."""
        check_is_fitted(self, "svc_")
        views = self._check_views(views, len(self.views_))
        return self.svc_.predict(combine_kernels(self._kernels(views, self.views_),
                                                 self.weights_))
