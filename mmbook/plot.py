"""Plots and tables used across the chapters (matplotlib only; no display side effects)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["heatmap", "learning_curves", "bar_accuracies", "ResultsTable", "show_spectrogram",
           "show_images", "plot_cost_growth", "plot_tradeoff"]


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def heatmap(values, ax=None, *, xlabel: str = "", ylabel: str = "", title: str = "",
            cmap: str = "viridis", vmin=None, vmax=None, colorbar: bool = True,
            annotate: bool = False, xticklabels=None, yticklabels=None):
    """Draw a 2-D array (attention weights, a kernel matrix) as a heatmap.

    Shape:
        - values: :math:`(R, C)`
    """
    a = _np(values)
    if a.ndim != 2:
        raise ValueError(f"values must be 2-D (R, C), got shape {a.shape}")
    ax = ax or plt.subplots(figsize=(4, 3.5))[1]
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if xticklabels is not None:
        ax.set_xticks(range(len(xticklabels)), xticklabels)
    if yticklabels is not None:
        ax.set_yticks(range(len(yticklabels)), yticklabels)
    if annotate:
        for (i, j), v in np.ndenumerate(a):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="w")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def learning_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], key: str = "train_loss",
                    ax=None, *, xlabel: str = "epoch", ylabel=None, title: str = "", logy=False):
    """Plot one metric of several training histories on one axis."""
    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for name, hist in histories.items():
        if key not in hist:
            raise KeyError(f"history {name!r} has no {key!r}; it has {sorted(hist)}")
        ys = list(hist[key])
        ax.plot(range(1, len(ys) + 1), ys, label=name, marker="o" if len(ys) < 30 else None)
    ax.set(xlabel=xlabel, ylabel=ylabel or key, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def bar_accuracies(accuracies: Mapping[str, float], ax=None, *, chance=None, title: str = "",
                   ylabel: str = "test accuracy"):
    """Bar chart of accuracies by method, with an optional chance line."""
    ax = ax or plt.subplots(figsize=(max(4, 0.9 * len(accuracies)), 3.5))[1]
    names, vals = list(accuracies), [float(v) for v in accuracies.values()]
    bars = ax.bar(names, vals, color=plt.cm.tab10(np.arange(len(names)) % 10))
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label="chance")
        ax.legend(loc="lower right")
    ax.set(ylim=(0, 1.05), ylabel=ylabel, title=title)
    ax.tick_params(axis="x", rotation=30)
    return ax


def show_spectrogram(spec, ax=None, *, length=None, title: str = "", hop_ms: float = 25.0):
    """Show a ``(T, F)`` spectrogram with time on the x axis; mark ``length`` if given."""
    s = _np(spec)
    if s.ndim != 2:
        raise ValueError(f"spec must be 2-D (T, F), got shape {s.shape}")
    ax = ax or plt.subplots(figsize=(4, 2.5))[1]
    ax.imshow(s.T, origin="lower", aspect="auto", cmap="magma")
    if length is not None:
        ax.axvline(float(length) - 0.5, color="c", ls="--", lw=1)
    ax.set(xlabel=f"frame ({hop_ms:g} ms)", ylabel="frequency bin", title=title)
    return ax


def show_images(images, labels=None, *, ncols: int = 8, title: str = "", cmap: str = "gray"):
    """Grid of ``(N, 1, H, W)`` or ``(N, H, W)`` images; returns the figure."""
    a = _np(images)
    a = a[:, 0] if a.ndim == 4 else a
    if a.ndim != 3:
        raise ValueError(f"images must be (N, 1, H, W) or (N, H, W), got shape {_np(images).shape}")
    n = len(a)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.3 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(a[k], cmap=cmap)
            if labels is not None:
                ax.set_title(str(_np(labels)[k]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class ResultsTable:
    """A small results table that renders as HTML in notebooks and as text elsewhere.

    Args:
        rows: a list of dicts (one per method) sharing the same keys.
        floatfmt: format for float cells.
    """

    def __init__(self, rows: Sequence[Mapping], floatfmt: str = "{:.3f}"):
        if not rows:
            raise ValueError("rows must be a non-empty list of dicts")
        self.rows = [dict(r) for r in rows]
        self.columns = list(self.rows[0])
        self.floatfmt = floatfmt

    def _cell(self, v) -> str:
        return self.floatfmt.format(v) if isinstance(v, (float, np.floating)) else str(v)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(self._cell(r.get(c, '')))}</td>"
                                        for c in self.columns) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[self._cell(r.get(c, "")) for c in self.columns]
                                                    for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = ["  ".join(s.ljust(w) for s, w in zip(row, widths)) for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def column(self, name: str) -> list:
        """The values of one column, in row order."""
        return [r[name] for r in self.rows]


# ----------------------------------------------------------------------------- chapter 10
def missing_rate_curves(results: Mapping, rates: Sequence[float], *, panels: Sequence[str],
                        series: Sequence[str], modalities: Sequence[str] = ("audio", "image"),
                        chance=None, figsize=(12, 5.2)):
    """Accuracy against the fraction of test samples that lose a modality (chapter 10).

    Args:
        results: ``results[panel, serie, modality]`` = array ``(S, len(rates))`` of
            accuracies over S seeds; the mean is drawn, the band is min to max.
        rates: the missing rates (x axis).
        panels: one column of panels each (e.g. the fusion methods).
        series: one line each (e.g. the strategies).
        modalities: one row of panels each: which modality goes missing.
        chance: a dotted horizontal line, if given.

    Returns:
        the matplotlib figure.
    """
    x = np.asarray(rates) * 100
    fig, axes = plt.subplots(len(modalities), len(panels), figsize=figsize, sharex=True,
                             sharey=True, squeeze=False)
    for i, mod in enumerate(modalities):
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            for k, serie in enumerate(series):
                if (panel, serie, mod) not in results:
                    continue
                acc = np.asarray(results[panel, serie, mod], dtype=float)  # (S, R)
                ax.plot(x, acc.mean(0), marker="o", ms=3, color=f"C{k}", label=serie)
                ax.fill_between(x, acc.min(0), acc.max(0), color=f"C{k}", alpha=0.15, lw=0)
            if chance is not None:
                ax.axhline(chance, color="k", ls=":", lw=0.8)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(panel, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{mod} missing\ntest accuracy", fontsize=10)
            if i == len(modalities) - 1:
                ax.set_xlabel("% of test samples", fontsize=10)
            ax.tick_params(labelsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(series), fontsize=10,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


__all__ += ["missing_rate_curves"]


# ----------------------------------------------------------------------------- chapter 15
def plot_cost_growth(growth: Mapping[str, Sequence]):
    """Parameters of tensor vs low-rank fusion as M (left) and D (right) grow: measured
    points over closed-form lines, log scale.

    Args:
        growth: ``{"M": rows, "D": rows}``, each row ``(x, tensor_measured,
            tensor_closed_form, low_rank_measured, low_rank_closed_form)``, the four being
            dicts with a ``"params"`` entry.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    labels = {"M": "number of modalities M (D = 32)", "D": "features per modality D (M = 3)"}
    for ax, key in zip(axes, ("M", "D")):
        rows = growth[key]
        x = [r[0] for r in rows]
        for meas, form, name, colour in ((1, 2, "tensor", "tab:red"),
                                         (3, 4, "low-rank R=4", "tab:blue")):
            ax.plot(x, [r[form]["params"] for r in rows], "-", color=colour, lw=1.5,
                    label=f"{name}: closed form")
            ax.plot(x, [r[meas]["params"] for r in rows], "o", color=colour, ms=5,
                    label=f"{name}: measured")
        ax.set(yscale="log", xlabel=labels[key], xticks=x)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("parameters (fusion + head)")
    axes[0].legend(fontsize=9, frameon=False)
    fig.tight_layout()
    return fig


def plot_tradeoff(points: Mapping[str, Sequence[float]]):
    """Accuracy against latency (left) and size (right) for compressed models.

    Args:
        points: ``{name: (latency_ms, size_kB, accuracy)}``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, idx, label in ((axes[0], 0, "latency, one sample, 1 thread (ms)"),
                           (axes[1], 1, "size on disk (kB)")):
        for name, p in points.items():
            ax.plot(p[idx], p[2], "o", ms=7)
            ax.annotate(name, (p[idx], p[2]), textcoords="offset points", xytext=(6, 4),
                        fontsize=9)
        ax.set(xlabel=label)
        ax.margins(x=0.35, y=0.2)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    fig.tight_layout()
    return fig


__all__ += ["retrieval_gallery"]


def retrieval_gallery(queries, ranked_images, *, query_lengths=None, query_labels=None,
                      result_labels=None, title: str = ""):
    """One row per query: its spectrogram, then its top-k retrieved images.

    A retrieved image is framed green when its label equals the query's, red otherwise
    (when labels are given).

    Args:
        queries: ``(Q, T, F)`` spectrograms.
        ranked_images: ``(Q, k, 1, H, W)`` or ``(Q, k, H, W)``: each query's top-k images,
            best first.
        query_lengths: ``(Q,)`` valid frames, marked on the spectrograms.
        query_labels: ``(Q,)``; result_labels: ``(Q, k)``.
        title: the figure's title.

    Returns:
        the figure.
    """
    q, ims = _np(queries), _np(ranked_images)
    ims = ims[:, :, 0] if ims.ndim == 5 else ims
    if q.ndim != 3 or ims.ndim != 4 or len(q) != len(ims):
        raise ValueError(f"queries must be (Q, T, F) and ranked_images (Q, k, H, W) with the "
                         f"same Q, got {q.shape} and {_np(ranked_images).shape}")
    n_q, k = ims.shape[:2]
    fig, axes = plt.subplots(n_q, k + 1, figsize=(1.6 * (k + 2), 1.7 * n_q), squeeze=False,
                             gridspec_kw={"width_ratios": [2.2] + [1] * k})
    for i in range(n_q):
        length = None if query_lengths is None else _np(query_lengths)[i]
        label = "" if query_labels is None else f"spoken {_np(query_labels)[i]}"
        show_spectrogram(q[i], axes[i, 0], length=length, title=f"query: {label}")
        axes[i, 0].set(xlabel="", ylabel="")
        for j in range(k):
            ax = axes[i, j + 1]
            ax.imshow(ims[i, j], cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if result_labels is not None:
                got = _np(result_labels)[i, j]
                ok = query_labels is not None and got == _np(query_labels)[i]
                for side in ax.spines.values():
                    side.set(color="tab:green" if ok else "tab:red", linewidth=3)
                ax.set_title(f"#{j + 1}: {got}", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
