"""Kernel explorer (chapter 9): a view's kernel matrix, sorted by class, as a parameter moves.

:func:`kernel_static` draws one figure for fixed parameters (the HTML book's fallback);
:class:`KernelExplorer` wraps the same drawing in ipywidgets controls (view, kernel,
gamma, degree). The title shows the kernel's centered alignment with the label kernel
:math:`K_y = YY^\\top`: how well the kernel's notion of similarity matches "same digit".
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..kernels import KERNELS, kernel_alignment, label_kernel, pairwise_kernel
from ..plot import heatmap
from .common import control_panel, require_ipywidgets

__all__ = ["KernelExplorer", "kernel_static", "sorted_kernel"]


def sorted_kernel(X, y, kernel: str = "rbf", gamma=None, degree: int = 3) -> tuple:
    """The kernel matrix of ``X`` with rows sorted by class, and its alignment with ``y``.

    Shape:
        - X: :math:`(N, D)`, y: :math:`(N,)`; returns ``K (N, N)``, ``y_sorted (N,)``, a float.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (N, D) and y (N,), got shapes {X.shape} and {y.shape}")
    order = np.argsort(y, kind="stable")
    K = pairwise_kernel(X[order], kernel=kernel, gamma=gamma, degree=degree)
    return K, y[order], kernel_alignment(K, label_kernel(y[order]))


def _draw(ax, X, y, kernel: str, gamma, degree: int, name: str = "") -> float:
    K, ys, rho = sorted_kernel(X, y, kernel, gamma, degree)
    g = 1.0 / X.shape[1] if gamma is None else gamma
    par = {"linear": "", "rbf": f", gamma={g:.3g}", "poly": f", gamma={g:.3g}, d={degree}"}
    heatmap(K, ax, title=f"{name} {kernel}{par[kernel]}\nalignment with labels {rho:.3f}",
            xlabel="sample (sorted by class)", ylabel="sample (sorted by class)")
    edges = np.flatnonzero(np.diff(ys)) + 0.5
    for e in edges:
        ax.axhline(e, color="w", lw=0.4)
        ax.axvline(e, color="w", lw=0.4)
    return rho


def kernel_static(X, y, kernel: str = "rbf", gammas=(None,), degree: int = 3, name: str = ""):
    """One panel per gamma: the kernel matrix sorted by class and its label alignment.

    Args:
        X: one view, :math:`(N, D)` (standardise it first); y: labels :math:`(N,)`.
        kernel: ``"linear"``, ``"poly"`` or ``"rbf"``.
        gammas: the gamma of each panel (``None``: :math:`1/D`).
        degree: polynomial degree.
        name: the view's name, for the titles.

    Returns:
        the figure; ``fig.alignments`` holds one alignment per panel.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
    fig, axes = plt.subplots(1, len(gammas), figsize=(3.6 * len(gammas), 3.3), squeeze=False)
    fig.alignments = [_draw(ax, X, y, kernel, g, degree, name) for ax, g in zip(axes[0], gammas)]
    fig.tight_layout()
    return fig


class KernelExplorer:
    """Sliders for gamma and degree, dropdowns for kernel and view; redraws the kernel matrix.

    Args:
        views: ``{name: X}`` of views with the same rows (standardised), :math:`(N, D_m)`.
        y: labels :math:`(N,)`.
        view, kernel, gamma, degree: the starting values (``gamma=None``: :math:`1/D`).

    ``update(**params)`` changes any of ``view``, ``kernel``, ``gamma``, ``degree`` and
    redraws; it works headless (tests) and returns the label alignment.
    """

    _NAMES = ("view", "kernel", "gamma", "degree")

    def __init__(self, views, y, view=None, kernel: str = "rbf", gamma=None, degree: int = 3):
        self.views = {k: np.asarray(v) for k, v in dict(views).items()}
        self.y = np.asarray(y)
        rows = {v.shape[0] for v in self.views.values()}
        if not self.views or rows != {self.y.shape[0]}:
            raise ValueError(f"views must be a non-empty dict of arrays with {self.y.shape[0]} "
                             f"rows (as y), got row counts {sorted(rows)}")
        view = view or next(iter(self.views))
        gamma = 1.0 / self.views[view].shape[1] if gamma is None else gamma
        self.params = self._validated({"view": view, "kernel": kernel, "gamma": gamma,
                                       "degree": degree}, check_all=True)
        self._build_widgets()
        self.alignment = self.update()

    def _validated(self, params: dict, check_all: bool = False) -> dict:
        unknown = set(params) - set(self._NAMES)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; use {list(self._NAMES)}")
        p = dict(params) if check_all else {**self.params, **params}
        if p["view"] not in self.views:
            raise ValueError(f"view must be one of {list(self.views)}, got {p['view']!r}")
        if p["kernel"] not in KERNELS:
            raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {p['kernel']!r}")
        if not p["gamma"] > 0 or int(p["degree"]) < 1:
            raise ValueError(f"gamma must be > 0 and degree >= 1, got {p['gamma']!r}, "
                             f"{p['degree']!r}")
        return p

    def _build_widgets(self) -> None:
        w = require_ipywidgets()
        p = self.params
        self.controls = {
            "view": w.Dropdown(options=list(self.views), value=p["view"], description="view"),
            "kernel": w.Dropdown(options=list(KERNELS), value=p["kernel"], description="kernel"),
            "gamma": w.FloatLogSlider(value=p["gamma"], base=10, min=-4, max=1, step=0.1,
                                      description="gamma"),
            "degree": w.IntSlider(value=p["degree"], min=1, max=6, description="degree"),
        }
        self.output, self.widget = control_panel(
            self.controls, [("view", "kernel"), ("gamma", "degree")], self._on_change)

    def _on_change(self, name: str):
        def callback(change) -> None:
            if self.params[name] != change["new"]:
                self.update(**{name: change["new"]})
        return callback

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def update(self, **params) -> float:
        """Change any of view, kernel, gamma, degree; redraw; return the label alignment."""
        self.params = self._validated(params)
        for name, c in self.controls.items():
            if c.value != self.params[name]:
                c.value = self.params[name]
        p = self.params
        self.output.clear_output(wait=True)
        with self.output:
            fig, ax = plt.subplots(figsize=(4.2, 3.6))
            self.alignment = _draw(ax, self.views[p["view"]], self.y, p["kernel"], p["gamma"],
                                   int(p["degree"]), p["view"])
            plt.show()
        plt.close(fig)
        return self.alignment
