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
from ..utils import check_choice, check_positive, check_positive_int
from .common import (
    control_panel,
    fmt_value,
    grid_slider,
    log_grid,
    require_ipywidgets,
    set_grid_value,
    set_int_value,
)

__all__ = ["KernelExplorer", "kernel_static", "sorted_kernel", "GAMMA_GRID"]


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
    g = fmt_value(1.0 / X.shape[1] if gamma is None else gamma)
    par = {"linear": "", "rbf": f", gamma={g}", "poly": f", gamma={g}, d={degree}"}
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


GAMMA_GRID = log_grid(1e-4, 10.0, per_decade=10)
"""The gamma slider's values: 10 per decade from 1e-4 to 10, each equal to its label."""
DEGREE_RANGE = (1, 6)
"""The degree slider's range (widened when a larger degree is asked for)."""


class KernelExplorer:
    """Sliders for gamma and degree, dropdowns for kernel and view; redraws the kernel matrix.

    Args:
        views: ``{name: X}`` of views with the same rows (standardised), :math:`(N, D_m)`.
        y: labels :math:`(N,)`.
        view, kernel, gamma, degree: the starting values (``gamma=None``: :math:`1/D`).

    ``update(**params)`` changes any of ``view``, ``kernel``, ``gamma``, ``degree`` and
    redraws; it works headless (tests) and returns the label alignment.

    The controls always show the drawn parameters. A value the model accepts but a
    slider does not offer widens the slider: ``degree=8`` raises the degree slider's
    maximum to 8, and a gamma off :data:`GAMMA_GRID` (``1/D``, ``100``) becomes one more
    option of the gamma slider, labelled as the figure's title prints it
    (:func:`~mmbook.widgets.common.fmt_value`). A value outside the kernel's domain
    (gamma <= 0, degree < 1, an unknown view or kernel) raises a ValueError naming the
    allowed values.

    Attributes:
        params: the drawn parameters; figure: the last figure (``figure.mmbook_params``
            holds the parameters it was drawn with); alignment: its label alignment.
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
        check_choice(view, list(self.views), "view")
        gamma = 1.0 / self.views[view].shape[1] if gamma is None else gamma
        self.params = self._validated({"view": view, "kernel": kernel, "gamma": gamma,
                                       "degree": degree}, check_all=True)
        self.figure, self._syncing = None, False
        self._build_widgets()
        self.alignment = self.update()

    def _validated(self, params: dict, check_all: bool = False) -> dict:
        unknown = set(params) - set(self._NAMES)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}; use {list(self._NAMES)}")
        p = dict(params) if check_all else {**self.params, **params}
        check_choice(p["view"], list(self.views), "view")
        check_choice(p["kernel"], list(KERNELS), "kernel")
        return {"view": p["view"], "kernel": p["kernel"],
                "gamma": check_positive(p["gamma"], "gamma (allowed: any finite gamma > 0)"),
                "degree": check_positive_int(p["degree"], "degree (allowed: 1, 2, 3, ...)")}

    def _build_widgets(self) -> None:
        w = require_ipywidgets()
        p = self.params
        self.controls = {
            "view": w.Dropdown(options=list(self.views), value=p["view"], description="view"),
            "kernel": w.Dropdown(options=list(KERNELS), value=p["kernel"], description="kernel"),
            "gamma": grid_slider(GAMMA_GRID, p["gamma"], "gamma"),
            "degree": w.IntSlider(value=p["degree"], min=DEGREE_RANGE[0],
                                  max=max(DEGREE_RANGE[1], p["degree"]), description="degree"),
        }
        self.output, self.widget = control_panel(
            self.controls, [("view", "kernel"), ("gamma", "degree")], self._on_change)

    def _on_change(self, name: str):
        def callback(change) -> None:
            if not self._syncing and self.params[name] != change["new"]:
                self.update(**{name: change["new"]})
        return callback

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            c, p = self.controls, self.params
            for name in ("view", "kernel"):
                if c[name].value != p[name]:
                    c[name].value = p[name]
            set_grid_value(c["gamma"], p["gamma"])
            set_int_value(c["degree"], p["degree"])
        finally:
            self._syncing = False

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def update(self, **params) -> float:
        """Change any of view, kernel, gamma, degree; redraw; return the label alignment."""
        self.params = self._validated(params)
        self._sync_controls()
        p = self.params
        if self.figure is not None:
            plt.close(self.figure)
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        self.alignment = _draw(ax, self.views[p["view"]], self.y, p["kernel"], p["gamma"],
                               p["degree"], p["view"])
        fig.mmbook_params = dict(p)
        fig.tight_layout()
        plt.close(fig)  # shown through the Output widget only, never by the inline backend
        self.figure = fig
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            display(fig)
        return self.alignment
