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
    ax.set(xlabel=f"frame (one every {hop_ms:g} ms)", ylabel="frequency band", title=title)
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


# ----------------------------------------------------------------------------- chapter 14
def conditional_samples(panels: Mapping[str, tuple], *, reference=None, class_names=None,
                        size: float = 3.0, lim=None):
    """2-D samples coloured by their class, one panel per generator (real data first).

    Args:
        panels: ``{title: (x, labels)}``, x ``(N, 2)`` points and labels ``(N,)`` classes.
        reference: ``(x, labels)`` of the real data, drawn in light grey behind every panel
            whose title is not the first (where a generator's samples should lie).
        class_names: a name per class for the legend (default the class numbers).
        size: width and height of each panel in inches.
        lim: ``(low, high)`` for both axes (default: the extent of all the points).

    Returns:
        the matplotlib figure.
    """
    items = [(title, _np(x), _np(y)) for title, (x, y) in panels.items()]
    for title, x, y in items:
        if x.ndim != 2 or x.shape[1] != 2 or y.shape != (len(x),):
            raise ValueError(f"panels[{title!r}] must be (x (N, 2), labels (N,)), got shapes "
                             f"{x.shape} and {y.shape}")
    classes = np.unique(np.concatenate([y for _, _, y in items]))
    names = class_names or [str(c) for c in classes]
    if lim is None:
        every = np.concatenate([x for _, x, _ in items])
        pad = 0.05 * np.ptp(every)
        lim = (every.min() - pad, every.max() + pad)
    fig, axes = plt.subplots(1, len(items), figsize=(size * len(items), size + 0.4),
                             sharex=True, sharey=True, squeeze=False)
    for j, (ax, (title, x, y)) in enumerate(zip(axes[0], items)):
        if reference is not None and j > 0:
            ax.scatter(*_np(reference[0]).T, s=3, c="0.85", lw=0)
        for k, c in enumerate(classes):
            ax.scatter(*x[y == c].T, s=4, color=f"C{k}", lw=0, alpha=0.7,
                       label=names[k] if j == 0 else None)
        ax.set(title=title, xlim=lim, ylim=lim, aspect="equal", xticks=[], yticks=[])
    fig.legend(loc="lower center", ncol=len(classes), fontsize=9, frameon=False,
               markerscale=3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


__all__ += ["conditional_samples"]


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


# ============================================================================ concept diagrams
# The book's key pictures, drawn from boxes and arrows. Every diagram is at most 8 inches
# wide with text of at least 11 pt, so that at the book's column width (about 700 px at a
# 1280 px window) its text stays above 10 px; `diagram_text_problems` checks that every
# label lies inside its box and inside the figure.

_DIAGRAM_WIDTH = 8.0  # inches
_FONT = 11.5  # points
_COLORS = {"input": "#eeeeee", "encoder": "#cfe2f3", "fuse": "#fce5cd", "head": "#d9ead3",
           "gate": "#f4cccc", "op": "#ffffff"}

__all__ += ["fusion_levels_diagram", "lstm_cell_diagram", "qkv_attention_diagram",
            "tensor_fusion_diagram", "cca_diagram", "diagram_text_problems"]


def _canvas(height: float, xlim=(0, 16), ylim=None):
    fig, ax = plt.subplots(figsize=(_DIAGRAM_WIDTH, height))
    ylim = ylim or (0, 16 * height / _DIAGRAM_WIDTH)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.axis("off")
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.99)
    return fig, ax


def _box(ax, x, y, text, kind="encoder", w=2.4, h=0.9, fontsize=_FONT, round_=True):
    """A labelled box centred at (x, y); its label is registered for the overflow check."""
    from matplotlib.patches import FancyBboxPatch

    style = "round,pad=0.05" if round_ else "square,pad=0.02"
    patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style, fc=_COLORS[kind],
                           ec="#333333", lw=1.0)
    ax.add_patch(patch)
    label = ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    label._mmbook_box = patch  # noqa: SLF001 (read by diagram_text_problems)
    return patch


def _arrow(ax, a, b, color="#333333", style="-|>", ls="-", rad=0.0, lw=1.2):
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle=style, color=color, lw=lw, ls=ls,
                                                    shrinkA=2, shrinkB=2,
                                                    connectionstyle=f"arc3,rad={rad}"))


def _label(ax, x, y, text, fontsize=_FONT, **kw):
    return ax.text(x, y, text, fontsize=fontsize, **kw)


def diagram_text_problems(fig, column_px: float = 700.0, min_px: float = 10.0) -> list:
    """Readability problems of a figure shown at ``column_px`` wide: a list of strings.

    Checks that every visible text is at least ``min_px`` pixels tall at that width, lies
    inside the figure, and (for box labels drawn by these diagrams) inside its box.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    scale = column_px / fig_box.width  # displayed pixels per rendered pixel
    problems = []
    for text in fig.findobj(lambda o: hasattr(o, "get_text") and hasattr(o, "get_fontsize")):
        if not text.get_visible() or not text.get_text().strip():
            continue
        px = text.get_fontsize() * fig.dpi / 72 * scale
        if px < min_px:
            problems.append(f"{text.get_text()!r}: {px:.1f} px < {min_px} px")
        ext = text.get_window_extent(renderer)
        if (ext.x0 < fig_box.x0 - 1 or ext.x1 > fig_box.x1 + 1 or ext.y0 < fig_box.y0 - 1
                or ext.y1 > fig_box.y1 + 1):
            problems.append(f"{text.get_text()!r} leaves the figure")
        box = getattr(text, "_mmbook_box", None)
        if box is not None:
            bb = box.get_window_extent(renderer)
            if ext.x0 < bb.x0 or ext.x1 > bb.x1 or ext.y0 < bb.y0 or ext.y1 > bb.y1:
                problems.append(f"{text.get_text()!r} overflows its box")
    return problems


def fusion_levels_diagram():
    """Feature-level, decision-level and model-level fusion, one row each."""
    fig, ax = _canvas(6.6)
    rows = {"feature level (early fusion)": 11.3, "decision level (late fusion)": 6.9,
            "model level": 2.6}
    for title, y0 in rows.items():
        _label(ax, 0.2, y0 + 1.45, title, fontsize=_FONT + 1, weight="bold")
        for dy, name in ((0.8, r"$x_1$ image"), (-0.8, r"$x_2$ audio")):
            _box(ax, 1.4, y0 + dy, name, "input", w=2.3, h=0.8)
    y = rows["feature level (early fusion)"]
    for dy, m in ((0.8, 1), (-0.8, 2)):
        _box(ax, 4.6, y + dy, f"encoder $f_{m}$", "encoder", w=2.4, h=0.8)
        _arrow(ax, (2.6, y + dy), (3.4, y + dy))
        _arrow(ax, (5.8, y + dy), (7.0, y + 0.15 * dy))
    _box(ax, 8.3, y, r"concat $[z_1; z_2]$", "fuse", w=2.6, h=0.9)
    _box(ax, 11.5, y, r"classifier $g$", "head", w=2.4, h=0.9)
    _box(ax, 14.3, y, r"$\hat y$", "input", w=1.0, h=0.8)
    _arrow(ax, (9.6, y), (10.3, y))
    _arrow(ax, (12.7, y), (13.8, y))
    y = rows["decision level (late fusion)"]
    for dy, m in ((0.8, 1), (-0.8, 2)):
        _box(ax, 4.6, y + dy, f"$f_{m}$, classifier $g_{m}$", "encoder", w=3.0, h=0.8)
        _box(ax, 7.9, y + dy, f"$p_{m}$", "head", w=1.0, h=0.8)
        _arrow(ax, (2.6, y + dy), (3.1, y + dy))
        _arrow(ax, (6.1, y + dy), (7.4, y + dy))
        _arrow(ax, (8.4, y + dy), (9.9, y + 0.15 * dy))
    _box(ax, 11.5, y, r"$\sum_m \beta_m p_m$", "fuse", w=3.0, h=0.9)
    _box(ax, 14.3, y, r"$\hat y$", "input", w=1.0, h=0.8)
    _arrow(ax, (13.0, y), (13.8, y))
    y = rows["model level"]
    for dy, name in ((0.8, "image layers"), (-0.8, "audio layers")):
        _box(ax, 4.3, y + dy, name, "encoder", w=2.6, h=0.8)
        _box(ax, 8.3, y + dy, name.replace("layers", "layers 2"), "encoder", w=2.8, h=0.8)
        _arrow(ax, (2.6, y + dy), (3.0, y + dy))
        _arrow(ax, (5.6, y + dy), (6.9, y + dy))
        _arrow(ax, (9.7, y + dy), (10.4, y + 0.15 * dy))
    _arrow(ax, (5.9, y + 0.55), (6.6, y - 0.55), color="C3", lw=1.6)
    _arrow(ax, (5.9, y - 0.55), (6.6, y + 0.55), color="C3", lw=1.6)
    _label(ax, 6.25, y - 1.75, "cross-modal attention:\nthe encoders read each other",
           ha="center", va="center", color="C3")
    _box(ax, 11.5, y, "head", "head", w=2.0, h=0.9)
    _box(ax, 14.3, y, r"$\hat y$", "input", w=1.0, h=0.8)
    _arrow(ax, (12.5, y), (13.8, y))
    return fig


def lstm_cell_diagram():
    """One LSTM step: the cell state line, the four gates and the output."""
    fig, ax = _canvas(4.6)
    top, mid, bot = 7.6, 4.6, 1.3
    _label(ax, 0.2, top, r"$c_{t-1}$", va="center")
    _label(ax, 14.9, top, r"$c_t$", va="center")
    _label(ax, 0.2, bot, r"$h_{t-1}$", va="center")
    _label(ax, 14.9, bot + 1.2, r"$h_t$", va="center")
    ax.plot([1.2, 14.7], [top, top], color="#333333", lw=2)
    _label(ax, 2.2, bot - 1.0, r"$x_t$", va="center", ha="center")
    ax.plot([1.3, 2.2, 2.2, 12.6], [bot, bot, bot, bot], color="#333333", lw=1.2)
    _arrow(ax, (2.2, bot - 0.65), (2.2, bot - 0.05))
    gates = [("f", r"$\sigma$", 3.4, "forget $f_t$"), ("i", r"$\sigma$", 5.6, "input $i_t$"),
             ("g", r"$\tanh$", 8.2, "candidate $g_t$"), ("o", r"$\sigma$", 10.6, "output $o_t$")]
    for _, act, x, name in gates:
        _box(ax, x, mid - 0.9, act, "gate", w=1.3, h=0.8)
        _arrow(ax, (x, bot), (x, mid - 1.35))
        _label(ax, x + 0.12, bot + 0.75, name, va="center", ha="left", fontsize=_FONT - 0.5)
    mult_f = _box(ax, 3.4, top, r"$\odot$", "op", w=0.75, h=0.75)
    _arrow(ax, (3.4, mid - 0.45), (3.4, top - 0.45))
    _box(ax, 7.1, top, r"$+$", "op", w=0.75, h=0.75)
    _box(ax, 7.1, mid + 1.5, r"$\odot$", "op", w=0.75, h=0.75)
    _arrow(ax, (5.6, mid - 0.45), (6.8, mid + 1.15))
    _arrow(ax, (8.2, mid - 0.45), (7.4, mid + 1.15))
    _arrow(ax, (7.1, mid + 1.9), (7.1, top - 0.4))
    _box(ax, 12.6, mid + 1.3, r"$\tanh$", "gate", w=1.3, h=0.8)
    _arrow(ax, (12.6, top), (12.6, mid + 1.75))
    _box(ax, 12.6, mid - 0.9, r"$\odot$", "op", w=0.75, h=0.75)
    _arrow(ax, (12.6, mid + 0.85), (12.6, mid - 0.5))
    _arrow(ax, (11.3, mid - 0.9), (12.2, mid - 0.9))
    _arrow(ax, (12.6, mid - 1.3), (14.7, bot + 1.2), rad=0.2)
    del mult_f
    _label(ax, 8.0, 0.15, r"every gate reads $[h_{t-1}; x_t]$:  "
           r"$\sigma(W_{x\ast} x_t + W_{h\ast} h_{t-1} + b_\ast)$", ha="center",
           fontsize=_FONT - 0.5)
    _label(ax, 8.6, top + 0.45, r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$", ha="left",
           fontsize=_FONT - 0.5)
    return fig


def qkv_attention_diagram():
    """Scaled dot-product attention: queries from one modality, keys and values from another."""
    fig, ax = _canvas(3.9)
    _box(ax, 1.6, 6.0, "$H_m$: states of\nmodality $m$", "input", w=3.0, h=1.3)
    _box(ax, 1.6, 1.9, "$H_n$: states of\nmodality $n$", "input", w=3.0, h=1.3)
    _box(ax, 5.0, 6.0, r"$Q = H_m W^Q$", "encoder", w=2.8, h=0.9)
    _box(ax, 5.0, 3.0, r"$K = H_n W^K$", "encoder", w=2.8, h=0.9)
    _box(ax, 5.0, 0.9, r"$V = H_n W^V$", "encoder", w=2.8, h=0.9)
    _arrow(ax, (3.1, 6.0), (3.6, 6.0))
    _arrow(ax, (3.1, 2.2), (3.6, 2.9))
    _arrow(ax, (3.1, 1.6), (3.6, 1.0))
    _box(ax, 9.2, 4.5, r"$A = \mathrm{softmax}(QK^\top / \sqrt{d_k})$", "fuse", w=4.4,
         h=1.0)
    _label(ax, 9.2, 3.35, "one row per query, sums to 1;\npadded keys masked to 0",
           ha="center", va="top", fontsize=_FONT - 0.5)
    _arrow(ax, (6.4, 6.0), (7.3, 4.9))
    _arrow(ax, (6.4, 3.0), (7.3, 4.1))
    _box(ax, 13.9, 2.4, r"$Z = A V$", "head", w=2.2, h=0.9)
    _arrow(ax, (11.2, 4.3), (12.8, 2.7))
    _arrow(ax, (6.4, 0.9), (12.8, 2.2))
    return fig


def _cube(ax, x0, y0, size, depth, color="#fce5cd"):
    from matplotlib.patches import Polygon

    dx, dy = depth * 0.7, depth * 0.5
    front = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size)]
    top = [(x0, y0 + size), (x0 + size, y0 + size), (x0 + size + dx, y0 + size + dy),
           (x0 + dx, y0 + size + dy)]
    side = [(x0 + size, y0), (x0 + size + dx, y0 + dy), (x0 + size + dx, y0 + size + dy),
            (x0 + size, y0 + size)]
    for poly, shade in ((front, 1.0), (top, 0.9), (side, 0.8)):
        ax.add_patch(Polygon(poly, closed=True, fc=color, ec="#333333", lw=1.0, alpha=shade))
    return dx, dy


def tensor_fusion_diagram():
    """Tensor fusion as a cube of all products, and its low-rank factorisation."""
    fig, ax = _canvas(4.4)
    x0, y0, s = 1.8, 1.6, 3.2
    dx, dy = _cube(ax, x0, y0, s, 2.0)
    _label(ax, x0 + s / 2, y0 - 0.55, r"$[z_1; 1] \in \mathbb{R}^{D_1+1}$", ha="center",
           va="top")
    _label(ax, x0 - 0.25, y0 + s / 2, r"$[z_2; 1]$", ha="right", va="center")
    _label(ax, x0 + s + dx / 2 + 0.2, y0 + dy / 2 - 0.2, r"$[z_3; 1]$", ha="left", va="top")
    _label(ax, x0 + s / 2 + dx / 2, y0 + s + dy + 0.25,
           r"$\mathcal{Z} = \bigotimes_m [z_m; 1]$", ha="center", va="bottom")
    _label(ax, x0 + s / 2, y0 + s / 2, "every product\n" r"$z_{1i} z_{2j} z_{3k}$",
           ha="center", va="center", fontsize=_FONT - 0.5)
    _arrow(ax, (6.9, 3.7), (8.4, 3.7))
    _label(ax, 7.65, 3.95, "linear\nlayer", ha="center", va="bottom", fontsize=_FONT - 0.5)
    _label(ax, 12.2, 6.6, r"weight $\mathcal{W} \approx \sum_{i=1}^{R} "
           r"W_1^{(i)} \otimes W_2^{(i)} \otimes W_3^{(i)}$", ha="center", va="center")
    for k, y in enumerate((5.0, 3.7, 2.4)):
        _box(ax, 10.0, y, f"$[z_{k + 1}; 1]^\\top W_{k + 1}^{{(i)}}$", "encoder", w=2.9, h=0.9)
        _arrow(ax, (11.5, y), (12.4, 3.7 + (y - 3.7) * 0.2))
    _box(ax, 13.2, 3.7, r"$\odot$", "op", w=0.8, h=0.8)
    _arrow(ax, (13.6, 3.7), (14.2, 3.7))
    _label(ax, 14.3, 3.7, r"$\sum_i \to h$", va="center")
    _label(ax, 12.2, 1.1, r"never forms $\mathcal{Z}$: $R \sum_m (D_m+1) E$ weights"
           "\ninstead of " r"$\prod_m (D_m+1)\, E$", ha="center", va="center",
           fontsize=_FONT - 0.5)
    return fig


def cca_diagram(seed: int = 0, n: int = 150):
    """CCA: each view projected on its own direction; the projections meet in one space."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)  # the shared signal
    X = np.c_[s + 0.3 * rng.normal(size=n), 0.8 * rng.normal(size=n)] @ np.array(
        [[0.8, 0.6], [-0.6, 0.8]])
    Y = np.c_[0.7 * rng.normal(size=n), -s + 0.3 * rng.normal(size=n)] @ np.array(
        [[0.9, -0.4], [0.4, 0.9]])
    from sklearn.cross_decomposition import CCA as _SkCCA

    cca = _SkCCA(n_components=1).fit(X, Y)
    u, v = (t.ravel() for t in cca.transform(X, Y))
    wx, wy = cca.x_rotations_[:, 0], cca.y_rotations_[:, 0]
    fig, axes = plt.subplots(1, 3, figsize=(_DIAGRAM_WIDTH, 3.0))
    colors = plt.cm.coolwarm((s - s.min()) / np.ptp(s))
    for ax, Z, w, title in ((axes[0], X, wx, r"view $X$"), (axes[2], Y, wy, r"view $Y$")):
        Zc = Z - Z.mean(0)
        ax.scatter(Zc[:, 0], Zc[:, 1], c=colors, s=9)
        d = 2.5 * w / np.linalg.norm(w)
        ax.annotate("", xy=d, xytext=-d, arrowprops=dict(arrowstyle="-|>", lw=2, color="k"))
        ax.set_title(title, fontsize=_FONT)
        ax.set(aspect="equal", xticks=[], yticks=[])
    axes[0].text(0.03, 0.03, r"$u = X w_x$", transform=axes[0].transAxes, fontsize=_FONT)
    axes[2].text(0.03, 0.03, r"$v = Y w_y$", transform=axes[2].transAxes, fontsize=_FONT)
    axes[1].scatter(u, v, c=colors, s=9)
    rho = np.corrcoef(u, v)[0, 1]
    axes[1].set_title(f"shared space: corr = {rho:.2f}", fontsize=_FONT)
    axes[1].set_xlabel(r"$u$", fontsize=_FONT)
    axes[1].set_ylabel(r"$v$", fontsize=_FONT)
    axes[1].set(xticks=[], yticks=[])
    fig.tight_layout()
    return fig
