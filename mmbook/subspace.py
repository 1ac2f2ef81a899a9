r"""Shared subspaces for M views: the seeds' scatter-alignment objective, CCA, generalised CCA.

Every view :math:`X_m \in \mathbb{R}^{N \times D_m}` is projected by :math:`P_m \in
\mathbb{R}^{D_m \times k}` to :math:`Z_m = X_m P_m` in a shared k-dimensional space.

The estimators follow scikit-learn's conventions (``__init__`` only stores arguments,
``fit`` validates and returns ``self``, learned attributes end in ``_``) and compute
with torch: tensors stay on their device; NumPy input is computed on
:func:`mmbook.utils.get_device` and comes back as NumPy. Linear algebra runs in float64
(float32 on Apple MPS, which has no float64). Learned attributes have the kind of the
fitted input (NumPy arrays or tensors).

Shape legend: N samples, M views, D_m features of view m, k components.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from .utils import get_device

__all__ = ["CCA", "MultiviewCCA", "SharedSubspace", "whitener", "scatter_penalty",
           "disagreement"]


# ---------------------------------------------------------------- helpers
def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _tensor(x, name: str, device=None) -> torch.Tensor:
    """A 2-D float64 tensor (float32 on MPS) on ``device`` (default: x's, or get_device())."""
    if isinstance(x, torch.Tensor):
        device = device or x.device
        t = x.detach()
    else:
        arr = np.asarray(x)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
        device = device or get_device()
        t = torch.from_numpy(np.array(arr, dtype=np.float64, order="C"))  # a writable copy
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinity")
    device = torch.device(device)
    return t.to(device=device, dtype=_work_dtype(device))


def _out(t: torch.Tensor, like):
    """``t`` as NumPy (for NumPy ``like``) or as a tensor of ``like``'s dtype."""
    if isinstance(like, torch.Tensor):
        return t.to(like.dtype if like.is_floating_point() else t.dtype)
    return t.detach().cpu().numpy()


def _views(views, name: str = "views", min_views: int = 2, device=None) -> list[torch.Tensor]:
    """Validate a list of M >= min_views views with equal row counts; return tensors."""
    if isinstance(views, (np.ndarray, torch.Tensor)) or not hasattr(views, "__len__"):
        raise ValueError(f"{name} must be a list of M >= {min_views} arrays (N, D_m), got "
                         f"{type(views).__name__}")
    if len(views) < min_views:
        raise ValueError(f"{name} must hold at least {min_views} views, got {len(views)}")
    first = views[0]
    device = device or (first.device if isinstance(first, torch.Tensor) else get_device())
    ts = [_tensor(v, f"{name}[{m}]", device) for m, v in enumerate(views)]
    rows = [t.shape[0] for t in ts]
    if len(set(rows)) != 1:
        shapes = [tuple(t.shape) for t in ts]
        raise ValueError(f"all {name} must have the same number of rows N (aligned samples), "
                         f"got shapes {shapes}")
    if rows[0] < 2:
        raise ValueError(f"{name} need at least 2 samples, got {rows[0]}")
    return ts


def whitener(C: torch.Tensor, reg: float = 0.0) -> torch.Tensor:
    r"""Symmetric inverse square root :math:`W = (C + \mathrm{reg}\, I)^{-1/2}`.

    So that :math:`W (C + \mathrm{reg}\, I) W = I`: multiplying by W whitens.

    Shape:
        - C: :math:`(D, D)` symmetric positive semi-definite; output :math:`(D, D)`
    """
    eye = torch.eye(C.shape[0], dtype=C.dtype, device=C.device)
    lam, U = torch.linalg.eigh(C + reg * eye)
    lam = lam.clamp_min(lam.max() * 1e-12)
    return (U * lam.rsqrt()) @ U.T


def _cov(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    return A.T @ B / (A.shape[0] - 1)


def _check_k(n_components, k_max: int, why: str) -> int:
    if (not isinstance(n_components, (int, np.integer)) or isinstance(n_components, bool)
            or not 1 <= n_components <= k_max):
        raise ValueError(f"n_components must be an int in [1, {k_max}] ({why}), got "
                         f"{n_components!r}")
    return int(n_components)


def _fix_signs(Wx: torch.Tensor, *others: torch.Tensor):
    """Flip each component so that the largest |entry| of Wx's column is positive."""
    idx = Wx.abs().argmax(0)
    s = torch.sign(Wx[idx, torch.arange(Wx.shape[1], device=Wx.device)])
    s[s == 0] = 1
    return (Wx * s, *(W * s for W in others))


# ---------------------------------------------------------------- CCA
class CCA(TransformerMixin, BaseEstimator):
    r"""Canonical correlation analysis of two views, in closed form (whitening + SVD).

    With centered views and regularised covariances
    :math:`C_{xx} = \tfrac{1}{N-1}X^\top X + \mathrm{reg}\,I`,
    :math:`C_{yy} = \tfrac{1}{N-1}Y^\top Y + \mathrm{reg}\,I`,
    :math:`C_{xy} = \tfrac{1}{N-1}X^\top Y`:

    .. math::
        T = C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2} = U \Sigma V^\top, \qquad
        W_x = C_{xx}^{-1/2} U_{:k}, \quad W_y = C_{yy}^{-1/2} V_{:k},

    and the canonical correlations are the singular values :math:`\sigma_1 \ge \dots \ge
    \sigma_k`. ``reg`` is an absolute ridge: standardise the views first.

    Args:
        n_components: number of canonical pairs, :math:`1 \le k \le \min(D_x, D_y)`.
        reg: ridge added to both covariance matrices (0 gives plain CCA).

    Attributes:
        x_weights_, y_weights_: :math:`(D_x, k)`, :math:`(D_y, k)`.
        canonical_correlations_: :math:`(k,)`, descending.
        x_mean_, y_mean_: the views' means.

    Shape:
        - X: :math:`(N, D_x)`, Y: :math:`(N, D_y)` (a 1-D Y is a single column)
        - transform: :math:`(N, k)` for X, and for Y when given.
    """

    def __init__(self, n_components: int = 2, reg: float = 1e-4):
        self.n_components = n_components
        self.reg = reg

    def _check_fit(self, X, Y):  # noqa: N803 (Y is a view)
        if not (isinstance(self.reg, (int, float)) and self.reg >= 0):
            raise ValueError(f"reg must be a non-negative number, got {self.reg!r}")
        if isinstance(X, torch.Tensor):
            Y = Y[:, None] if isinstance(Y, torch.Tensor) and Y.ndim == 1 else Y
            Xt, Yt = _views([X, Y], "views [X, Y]")
            self.n_features_in_ = Xt.shape[1]
            return Xt, Yt
        if Y is None:
            raise ValueError("CCA.fit needs two views: fit(X, Y)")
        X, Y = validate_data(self, X, Y, multi_output=True, y_numeric=True,
                             ensure_min_samples=2, dtype=[np.float64, np.float32])
        Y = Y[:, None] if Y.ndim == 1 else Y
        return _views([X, Y], "views [X, Y]")

    def fit(self, X, y):
        """Learn the canonical directions of two aligned views X and y (the second view)."""
        Xt, Yt = self._check_fit(X, y)
        k = _check_k(self.n_components, min(Xt.shape[1], Yt.shape[1]),
                     f"at most min(D_x, D_y) = min({Xt.shape[1]}, {Yt.shape[1]})")
        mx, my = Xt.mean(0), Yt.mean(0)
        Xc, Yc = Xt - mx, Yt - my
        Wxx = whitener(_cov(Xc, Xc), self.reg)  # C_xx^{-1/2}
        Wyy = whitener(_cov(Yc, Yc), self.reg)  # C_yy^{-1/2}
        T = Wxx @ _cov(Xc, Yc) @ Wyy
        U, s, Vh = torch.linalg.svd(T, full_matrices=False)
        Wx, Wy = _fix_signs(Wxx @ U[:, :k], Wyy @ Vh[:k].T)
        self.x_weights_, self.y_weights_ = _out(Wx, X), _out(Wy, X)
        self.x_mean_, self.y_mean_ = _out(mx, X), _out(my, X)
        self.canonical_correlations_ = _out(s[:k], X)
        return self

    def transform(self, X, y=None):
        """Canonical variates :math:`(X - \\bar x) W_x` (and :math:`(y - \\bar y) W_y` if given)."""
        check_is_fitted(self, "x_weights_")
        Zx = self._project(X, self.x_mean_, self.x_weights_, "X", reset=True)
        if y is None:
            return Zx
        if not isinstance(y, torch.Tensor):
            y = check_array(y, ensure_2d=False, dtype=[np.float64, np.float32])
        y = y[:, None] if y.ndim == 1 else y
        return Zx, self._project(y, self.y_mean_, self.y_weights_, "y", reset=False)

    def _project(self, A, mean, W, name: str, reset: bool):
        if reset and not isinstance(A, torch.Tensor):
            A = validate_data(self, A, reset=False, dtype=[np.float64, np.float32])
        At = _tensor(A, name)
        Wt = torch.as_tensor(W, device=At.device, dtype=At.dtype)
        if At.shape[1] != Wt.shape[0]:
            raise ValueError(f"{name} must have shape (N, {Wt.shape[0]}) as in fit, got "
                             f"{tuple(At.shape)}")
        return _out((At - torch.as_tensor(mean, device=At.device, dtype=At.dtype)) @ Wt, A)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y)`` then ``transform(X, y)``."""
        return self.fit(X, y).transform(X, y)


# ---------------------------------------------------------------- generalised CCA
class MultiviewCCA(TransformerMixin, BaseEstimator):
    r"""Generalised CCA of M >= 2 views (MAXVAR), via the eigenproblem of a block matrix.

    Whiten each centered view, :math:`\tilde X_m = X_m C_{mm}^{-1/2}` (ridge ``reg``), and
    form the block matrix of whitened cross-covariances with identity diagonal blocks,
    :math:`R_{ml} = C_{mm}^{-1/2} C_{ml} C_{ll}^{-1/2}`, :math:`R_{mm} = I`. Its top
    eigenvectors :math:`v = [v_1; \dots; v_M]` give the projections
    :math:`P_m = C_{mm}^{-1/2} v_m` (columns scaled to unit variance of :math:`Z_m`), and
    :math:`G \propto \sum_m \tilde X_m v_m` is the shared representation that maximises
    :math:`\sum_m \|\Pi_m G\|_F^2` (Kettenring, 1971). For M = 2 the eigenvalues are
    :math:`1 \pm \rho_i`: the canonical correlations of :class:`CCA`.

    Args:
        n_components: k, at most :math:`\min_m D_m`.
        reg: ridge added to each view's covariance.

    Attributes:
        weights_: list of M matrices :math:`(D_m, k)`; means_: list of M means;
        eigenvalues_: :math:`(k,)`, descending (between 1 and M).

    Shape:
        - views: list of M arrays :math:`(N, D_m)`; transform: list of M arrays :math:`(N, k)`.
    """

    def __init__(self, n_components: int = 2, reg: float = 1e-4):
        self.n_components = n_components
        self.reg = reg

    def fit(self, views, y=None):
        """Learn one projection per view; returns ``self``."""
        Xs = _views(views)
        dims = [X.shape[1] for X in Xs]
        k = _check_k(self.n_components, min(dims), f"at most min D_m = min({dims})")
        means = [X.mean(0) for X in Xs]
        Xc = [X - mu for X, mu in zip(Xs, means)]
        W = [whitener(_cov(A, A), self.reg) for A in Xc]
        blocks = [[torch.eye(dims[m], dtype=Xc[m].dtype, device=Xc[m].device) if m == l
                   else W[m] @ _cov(Xc[m], Xc[l]) @ W[l] for l in range(len(Xs))]
                  for m in range(len(Xs))]
        R = torch.cat([torch.cat(row, 1) for row in blocks], 0)  # (sum D_m, sum D_m)
        lam, V = torch.linalg.eigh(R)
        lam, V = lam.flip(0)[:k], V.flip(1)[:, :k]
        parts = torch.split(V, dims, 0)  # v_m: (D_m, k)
        P = [Wm @ (v / v.norm(dim=0, keepdim=True).clamp_min(1e-12)) for Wm, v in zip(W, parts)]
        P = list(_fix_signs(*P))
        like = views[0]
        self.weights_ = [_out(p, like) for p in P]
        self.means_ = [_out(mu, like) for mu in means]
        self.eigenvalues_ = _out(lam, like)
        self.n_views_ = len(Xs)
        return self

    def transform(self, views):
        """Per-view shared coordinates :math:`Z_m = (X_m - \\mu_m) P_m`: list of (N, k)."""
        check_is_fitted(self, "weights_")
        return _project_views(self, views, self.weights_)


def _project_views(est, views, weights):
    Xs = _views(views, min_views=1)
    if len(Xs) != est.n_views_:
        raise ValueError(f"views must hold {est.n_views_} views as in fit, got {len(Xs)}")
    out = []
    for m, (X, W, mu) in enumerate(zip(Xs, weights, est.means_)):
        Wt = torch.as_tensor(W, device=X.device, dtype=X.dtype)
        if X.shape[1] != Wt.shape[0]:
            raise ValueError(f"views[{m}] must have shape (N, {Wt.shape[0]}) as in fit, got "
                             f"{tuple(X.shape)}")
        out.append(_out((X - torch.as_tensor(mu, device=X.device, dtype=X.dtype)) @ Wt,
                        views[m]))
    return out


# ---------------------------------------------------------------- the seeds' objective
def scatter_penalty(Zs) -> torch.Tensor:
    r"""The seeds' penalty :math:`\sum_m \|S_m - \bar S\|_F^2`, :math:`S_m = Z_m^\top Z_m/(N-1)`.

    (The seed writes :math:`S_m = Z_m^\top Z_m`; dividing by :math:`N-1` only rescales
    :math:`\lambda` and makes :math:`S_m` a covariance.)

    Shape:
        - Zs: list of M tensors :math:`(N, k)`; output: scalar
    """
    S = torch.stack([_cov(Z, Z) for Z in Zs])  # (M, k, k)
    return ((S - S.mean(0)) ** 2).sum()


def disagreement(Zs) -> torch.Tensor:
    r"""The task loss: disagreement between the views' shared coordinates.

    .. math::
        \mathcal L = \frac{1}{M}\sum_m \frac{1}{N-1}\|Z_m - \bar Z\|_F^2,
        \qquad \bar Z = \frac1M\sum_m Z_m.

    Small when the views land on the same point for the same sample ("similar
    representations in the shared space").

    Shape:
        - Zs: list of M tensors :math:`(N, k)`; output: scalar
    """
    Z = torch.stack(Zs)  # (M, N, k)
    return ((Z - Z.mean(0)) ** 2).sum() / (Z.shape[0] * (Z.shape[1] - 1))


class _Projection(nn.Module):
    """One view's projection :math:`\\tilde P_m` (D_m, k): free, or with orthonormal columns."""

    def __init__(self, init: torch.Tensor, orthonormal: bool):
        super().__init__()
        self.lin = nn.Linear(init.shape[1], init.shape[0], bias=False)  # weight (D_m, k)
        self.lin.to(dtype=init.dtype, device=init.device)
        with torch.no_grad():
            if orthonormal:
                nn.utils.parametrizations.orthogonal(self.lin, "weight")
                self.lin.weight = init  # right inverse of the parametrization
            else:
                self.lin.weight.copy_(init)

    def forward(self) -> torch.Tensor:
        return self.lin.weight


class SharedSubspace(TransformerMixin, BaseEstimator):
    r"""The seeds' shared subspace, :math:`\min_P \mathcal L + \lambda \sum_m \|S_m - \bar S\|_F^2`.

    Each centered view is first whitened, :math:`\tilde X_m = X_m C_m^{-1/2}` (ridge
    ``reg``), and projected by :math:`\tilde P_m`: :math:`Z_m = \tilde X_m \tilde P_m =
    X_m P_m` with :math:`P_m = C_m^{-1/2}\tilde P_m`. The task loss :math:`\mathcal L` is
    :func:`disagreement` and the penalty :func:`scatter_penalty`; both are optimised by
    gradient descent (SGD with momentum).

    * ``constraint=None``: :math:`\tilde P_m` is free. Both terms are non-negative and
      vanish at :math:`P_m = 0`, so gradient descent **collapses** to the trivial
      solution :math:`Z_m = 0`.
    * ``constraint="orthonormal"``: :math:`\tilde P_m^\top \tilde P_m = I`
      (``torch.nn.utils.parametrizations.orthogonal``), i.e. :math:`P_m^\top C_m P_m = I`:
      each :math:`Z_m` has unit, uncorrelated coordinates. The penalty is then ~0 by
      construction and minimising :math:`\mathcal L` maximises the summed correlations
      between views: for M = 2 it reaches :math:`\sum_i \rho_i` of :class:`CCA`.

    Args:
        n_components: k, at most :math:`\min_m D_m`.
        lam: weight :math:`\lambda` of the penalty.
        constraint: ``"orthonormal"`` or ``None``.
        reg: ridge of the whitening.
        max_iter, lr, momentum: gradient-descent settings.
        random_state: seed of the (orthonormal) initial :math:`\tilde P_m`.

    Attributes:
        projections_: list of M :math:`(D_m, k)` matrices :math:`P_m` (original coordinates);
        means_; loss_curve_, task_loss_curve_, penalty_curve_, norm_curve_
        (:math:`\sum_m\|\tilde P_m\|_F` per iteration); n_iter_.

    Shape:
        - views: list of M arrays :math:`(N, D_m)`; transform: list of M arrays :math:`(N, k)`.
    """

    def __init__(self, n_components: int = 2, lam: float = 1.0, constraint="orthonormal",
                 reg: float = 1e-3, max_iter: int = 300, lr: float = 0.5,
                 momentum: float = 0.9, random_state=0):
        self.n_components = n_components
        self.lam = lam
        self.constraint = constraint
        self.reg = reg
        self.max_iter = max_iter
        self.lr = lr
        self.momentum = momentum
        self.random_state = random_state

    def _check_params(self):
        if self.constraint not in (None, "orthonormal"):
            raise ValueError(f"constraint must be 'orthonormal' or None, got {self.constraint!r}")
        for name in ("lam", "reg", "lr"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")

    def _init(self, dims, ref: torch.Tensor) -> nn.ModuleList:
        gen = torch.Generator().manual_seed(int(self.random_state or 0))
        mods = []
        for d in dims:
            Q, _ = torch.linalg.qr(torch.randn(d, self.n_components, generator=gen,
                                               dtype=torch.float64))
            mods.append(_Projection(Q.to(dtype=ref.dtype, device=ref.device),
                                    self.constraint == "orthonormal"))
        return nn.ModuleList(mods)

    def fit(self, views, y=None):
        """Run gradient descent on the objective; returns ``self``."""
        self._check_params()
        Xs = _views(views)
        dims = [X.shape[1] for X in Xs]
        _check_k(self.n_components, min(dims), f"at most min D_m = min({dims})")
        means = [X.mean(0) for X in Xs]
        W = [whitener(_cov(X - mu, X - mu), self.reg) for X, mu in zip(Xs, means)]
        Xw = [(X - mu) @ Wm for X, mu, Wm in zip(Xs, means, W)]  # whitened views (N, D_m)
        proj = self._init(dims, Xs[0])
        opt = torch.optim.SGD(proj.parameters(), lr=self.lr, momentum=self.momentum)
        curves = {"loss": [], "task": [], "penalty": [], "norm": []}
        for _ in range(self.max_iter):
            Ps = [p() for p in proj]
            Zs = [X @ P for X, P in zip(Xw, Ps)]  # (N, k) each
            task, pen = disagreement(Zs), scatter_penalty(Zs)
            loss = task + self.lam * pen
            opt.zero_grad()
            loss.backward()
            opt.step()
            for key, v in zip(curves, (loss, task, pen, sum(P.norm() for P in Ps))):
                curves[key].append(float(v.detach()))
        with torch.no_grad():
            P = [Wm @ p() for Wm, p in zip(W, proj)]
        like = views[0]
        self.projections_ = [_out(p.detach(), like) for p in P]
        self.means_ = [_out(mu, like) for mu in means]
        self.loss_curve_, self.task_loss_curve_ = curves["loss"], curves["task"]
        self.penalty_curve_, self.norm_curve_ = curves["penalty"], curves["norm"]
        self.n_iter_ = self.max_iter
        self.n_views_ = len(Xs)
        return self

    def transform(self, views):
        """Per-view shared coordinates :math:`Z_m = (X_m - \\mu_m) P_m`: list of (N, k)."""
        check_is_fitted(self, "projections_")
        return _project_views(self, views, self.projections_)
