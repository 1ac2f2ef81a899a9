"""Kernel-free interactive figures: model outputs precomputed on a grid, Plotly sliders.

The HTML book has no kernel, so a live explorer cannot redraw there. Instead the model
is run once for every combination of slider values, and a Plotly figure with one slider
per parameter shows the precomputed picture of the selected combination. The page needs
only plotly.js, which the book serves itself (``_build/vendor/plotly.min.js``, copied
from the installed plotly package by ``make vendor``; no CDN).

:class:`SliderFigure` is the generic helper; :func:`attention_slider_figure` (chapter 7)
and :func:`kernel_slider_figure` (chapter 9) build the two explorers' versions, and
:func:`explorer_display` shows the live widget in Jupyter/Colab and the kernel-free
figure in the HTML book, as ONE output (one rendering per explorer).

Each slider step uses Plotly's ``"skip"`` method; a small script on the page listens to
``plotly_sliderchange``, combines the active step of every slider into a frame index
(row-major over the sliders) and redraws that frame with ``Plotly.react``. The frames
are stored once on the page as JSON (identical traces pooled); the figure's ``div``
carries ``data-mmbook-frame`` (the index of the frame shown) for the rendered-HTML test.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Callable, Sequence

import numpy as np
import torch

from .common import fmt_value

__all__ = ["SliderFigure", "attention_slider_figure", "kernel_slider_figure",
           "explorer_display", "PLOTLY_JS"]

PLOTLY_JS = "plotly.min.js"
"""The file name under which the book serves plotly.js (see ``_config.yml``)."""

_SCRIPT = """<script type="text/javascript">
(function () {
  var gd = document.getElementById(%(div)s);
  var spec = JSON.parse(document.getElementById(%(div)s + "-frames").textContent);
  if (!gd || typeof Plotly === "undefined") { return; }
  var state = spec.active.slice();
  function frame(k) {
    var f = spec.frames[k];
    return {data: f.data.map(function (i) { return spec.pool[i]; }), title: f.title};
  }
  function show() {
    var k = 0;
    for (var i = 0; i < state.length; i++) { k = k * spec.shape[i] + state[i]; }
    var f = frame(k);
    var layout = Object.assign({}, gd.layout, {title: Object.assign({}, gd.layout.title,
      {text: f.title})});
    layout.sliders = gd.layout.sliders.map(function (s, i) {
      return Object.assign({}, s, {active: state[i]}); });
    gd.setAttribute("data-mmbook-frame", String(k));
    return Plotly.react(gd, f.data, layout);
  }
  function attach() {
    if (!gd.on) { return setTimeout(attach, 50); }
    gd.setAttribute("data-mmbook-frame", String(spec.initial));
    gd.on("plotly_sliderchange", function (e) {
      var i = spec.names.indexOf(e.slider.name);
      var j = e.slider.steps.indexOf(e.step);
      if (i < 0 || j < 0 || state[i] === j) { return; }
      state[i] = j;
      show();
    });
  }
  attach();
})();
</script>"""


class SliderFigure:
    """A figure whose traces are precomputed for every combination of slider values.

    Args:
        sliders: ``[(name, values), ...]``, one slider per parameter, in that order.
        render: ``render(**{name: value}) -> (traces, title)``: the Plotly traces (dicts,
            the same number and kinds for every combination) and the figure's title.
        layout: the Plotly layout shared by every frame (axes, size, margins).
        initial: ``{name: value}`` shown first (default: each slider's first value).
        labels: ``{name: callable}`` formatting a value for its step label (default
            :func:`~mmbook.widgets.common.fmt_value` for floats, ``str`` otherwise).

    Attributes:
        shape: the number of values per slider; frames: one ``(traces, title)`` per
        combination, row-major over ``sliders``; initial_index: the frame shown first.
    """

    def __init__(self, sliders: Sequence, render: Callable, layout: dict | None = None,
                 initial: dict | None = None, labels: dict | None = None):
        self.names = [name for name, _ in sliders]
        self.values = [list(values) for _, values in sliders]
        if not self.names or any(len(v) == 0 for v in self.values):
            raise ValueError(f"sliders must be a non-empty list of (name, non-empty values), "
                             f"got {[(n, len(v)) for n, v in zip(self.names, self.values)]}")
        labels = labels or {}
        self.labels = [[(labels.get(n) or _default_label)(v) for v in vals]
                       for n, vals in zip(self.names, self.values)]
        self.shape = tuple(len(v) for v in self.values)
        self.layout = dict(layout or {})
        self.active = [0] * len(self.names)
        for name, value in (initial or {}).items():
            i = self.names.index(name)
            if value not in self.values[i]:
                raise ValueError(f"initial {name}={value!r} is not one of the slider's values "
                                 f"{self.values[i]}")
            self.active[i] = self.values[i].index(value)
        self.frames = [render(**dict(zip(self.names, combo)))
                       for combo in itertools.product(*self.values)]
        self.initial_index = int(np.ravel_multi_index(self.active, self.shape))

    def current(self) -> dict:
        """The slider values shown first, ``{name: value}``."""
        return {n: self.values[i][a] for i, (n, a) in enumerate(zip(self.names, self.active))}

    def index(self, **params) -> int:
        """The frame index of a combination of slider values."""
        pos = [self.values[i].index(params[n]) for i, n in enumerate(self.names)]
        return int(np.ravel_multi_index(pos, self.shape))

    def figure(self):
        """The plotly ``go.Figure`` showing the initial frame, one slider per parameter."""
        import plotly.graph_objects as go

        traces, title = self.frames[self.initial_index]
        # room for the sliders below the plot: 85 px each, whatever the plot's height
        margin = {"t": 60, "l": 60, "r": 20, **self.layout.get("margin", {})}
        margin["b"] = 50 + 85 * len(self.names)
        height = max(self.layout.get("height", 450), margin["t"] + margin["b"] + 300)
        plot_height = height - margin["t"] - margin["b"]
        sliders = []
        for i, name in enumerate(self.names):
            steps = [{"method": "skip", "label": lab, "args": []} for lab in self.labels[i]]
            sliders.append({"name": name, "active": self.active[i], "steps": steps,
                            "currentvalue": {"prefix": f"{name}: "}, "len": 1.0,
                            "y": -(45 + 85 * i) / plot_height, "yanchor": "top",
                            "pad": {"t": 10, "b": 4}, "font": {"size": 11}})
        layout = {**self.layout, "height": height, "margin": margin, "sliders": sliders,
                  "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 14}}}
        return go.Figure(data=[dict(t) for t in traces], layout=layout)

    def frames_json(self) -> str:
        """The frames as JSON, identical traces stored once (``pool``)."""
        pool, where, frames = [], {}, []
        for traces, title in self.frames:
            ids = []
            for t in traces:
                key = json.dumps(t, sort_keys=True, default=_jsonable)
                if key not in where:
                    where[key] = len(pool)
                    pool.append(json.loads(key))
                ids.append(where[key])
            frames.append({"data": ids, "title": title})
        return json.dumps({"names": self.names, "shape": self.shape, "active": self.active,
                           "initial": self.initial_index, "pool": pool, "frames": frames},
                          separators=(",", ":"))

    def to_html(self, div_id: str) -> str:
        """The figure as an HTML fragment; plotly.js must already be on the page."""
        fig = self.figure()
        body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           config={"responsive": True, "displayModeBar": False})
        data = self.frames_json().replace("</", "<\\/")
        store = (f'<script type="application/json" id="{html.escape(div_id)}-frames">'
                 f"{data}</script>")
        return (f'<div class="mmbook-slider-figure">{store}{body}'
                f"{_SCRIPT % {'div': json.dumps(div_id)}}</div>")

    def _repr_html_(self) -> str:
        return self.to_html(f"mmbook-{id(self):x}")


def _default_label(value) -> str:
    return fmt_value(value) if isinstance(value, float) else str(value)


def _jsonable(x):
    if isinstance(x, np.ndarray | torch.Tensor):
        return np.asarray(x).tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot store {type(x).__name__} in a frame")


def _rounded(a, decimals: int = 3) -> list:
    return np.round(np.asarray(a, dtype=float), decimals).tolist()


def attention_slider_figure(model, dataset, indices: Sequence[int], temperatures: Sequence[float],
                            heads: Sequence[int] | None = None, pair=(0, 1),
                            initial: dict | None = None) -> SliderFigure:
    """The attention explorer without a kernel: example, temperature and head sliders.

    For every example and temperature the model runs once (all heads at once); each frame
    shows the cross-modal weights :math:`\\alpha_{t,s}` of the chosen head (queries from
    modality ``pair[0]``, padding cut off) and the predicted class probabilities.

    Args:
        model, dataset: as in :func:`mmbook.widgets.attention_static`.
        indices: the examples offered; temperatures: the temperatures offered (use a grid
            such as :data:`mmbook.widgets.attention.TEMPERATURE_GRID`); heads: default all.
        pair: ``(query modality, key modality)``.
        initial: the values shown first, e.g. ``{"example": 7, "temperature": 1.0}``.

    Returns:
        a :class:`SliderFigure` (display it, or ``.to_html(div_id)``).
    """
    from .attention import _check_params, explain_example

    heads = list(range(model.num_heads)) if heads is None else list(heads)
    for h in heads:
        pair = _check_params(model, pair, h)
    m, n = pair
    names = model.modality_names
    cache = {}

    def render(example, temperature, head):
        key = (example, temperature)
        if key not in cache:
            cache[key] = explain_example(model, dataset, example, temperature)
        info = cache[key]
        att = info["attention"]
        lm = int(att["mask"][m][0].sum())
        ln = int(att["mask"][n][0].sum())
        w = att["cross"][m, n][0, head, :lm, :ln].cpu()
        probs = info["probs"].numpy()
        pred = int(np.argmax(probs))
        traces = [
            {"type": "heatmap", "z": _rounded(w), "zmin": 0, "zmax": round(float(w.max()), 3),
             "colorscale": "Viridis", "xaxis": "x", "yaxis": "y",
             "colorbar": {"x": 0.52, "len": 0.9, "thickness": 12, "title": {"text": "alpha"}},
             "hovertemplate": "s=%{x}, t=%{y}: %{z}<extra></extra>"},
            {"type": "bar", "x": list(range(len(probs))), "y": _rounded(probs),
             "marker": {"color": ["green" if c == info["label"] else "gray"
                                  for c in range(len(probs))]},
             "xaxis": "x2", "yaxis": "y2", "hovertemplate": "class %{x}: %{y}<extra></extra>"},
        ]
        title = (f"example {example} (label {info['label']}, predicted {pred}), "
                 f"head {head}, T={fmt_value(temperature)}")
        return traces, title

    layout = {"height": 480, "margin": {"t": 60, "b": 170, "l": 60, "r": 20},
              "xaxis": {"domain": [0, 0.5], "title": {"text": f"{names[n]} step s"}},
              "yaxis": {"title": {"text": f"{names[m]} step t"}, "autorange": "reversed"},
              "xaxis2": {"domain": [0.76, 1], "title": {"text": "class"}, "dtick": 1},
              "yaxis2": {"anchor": "x2", "range": [0, 1],
                         "title": {"text": "probability"}},
              "showlegend": False, "font": {"size": 12}}
    return SliderFigure([("example", list(indices)), ("temperature", list(temperatures)),
                         ("head", heads)], render, layout, initial)


def kernel_slider_figure(X, y, gammas: Sequence[float], degrees: Sequence[int],
                         name: str = "", per_class: int | None = None,
                         initial: dict | None = None) -> SliderFigure:
    """The kernel explorer without a kernel: gamma and degree sliders.

    Each frame shows two kernel matrices of ``X`` sorted by class, the RBF kernel
    (gamma) and the polynomial kernel (gamma, degree), with their label alignments
    in the title, computed as :func:`mmbook.widgets.kernels.sorted_kernel` does.

    Args:
        X: one view :math:`(N, D)` (standardised); y: labels :math:`(N,)`.
        gammas, degrees: the slider values (e.g. a part of
            :data:`mmbook.widgets.kernels.GAMMA_GRID`).
        name: the view's name for the title.
        per_class: keep the first ``per_class`` samples of each class (smaller page).
        initial: the values shown first, e.g. ``{"gamma": 0.001, "degree": 2}``.

    Returns:
        a :class:`SliderFigure`; ``figure.alignments[(kernel, gamma, degree)]`` holds
        every alignment shown.
    """
    from .kernels import sorted_kernel

    X, y = np.asarray(X), np.asarray(y)
    if per_class is not None:
        keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
        X, y = X[np.sort(keep)], y[np.sort(keep)]
    alignments = {}

    def matrix(kernel, gamma, degree):
        K, _, rho = sorted_kernel(X, y, kernel, gamma, degree)
        alignments[kernel, gamma, degree if kernel == "poly" else None] = float(rho)
        return _rounded(K), rho

    def render(gamma, degree):
        k_rbf, a_rbf = matrix("rbf", gamma, degree)
        k_poly, a_poly = matrix("poly", gamma, degree)
        traces = [{"type": "heatmap", "z": k_rbf, "colorscale": "Viridis", "showscale": False,
                   "xaxis": "x", "yaxis": "y", "hovertemplate": "%{z}<extra></extra>"},
                  {"type": "heatmap", "z": k_poly, "colorscale": "Viridis", "showscale": False,
                   "xaxis": "x2", "yaxis": "y2", "hovertemplate": "%{z}<extra></extra>"}]
        title = (f"{name} gamma={fmt_value(gamma)}, degree={degree}: alignment with labels "
                 f"rbf {a_rbf:.3f}, poly {a_poly:.3f}")
        return traces, title

    axis = {"title": {"text": "sample (sorted by class)"}, "constrain": "domain"}
    layout = {"height": 520, "margin": {"t": 60, "b": 190, "l": 60, "r": 20},
              "xaxis": {**axis, "domain": [0, 0.46]},
              "yaxis": {**axis, "autorange": "reversed", "scaleanchor": "x"},
              "xaxis2": {**axis, "domain": [0.54, 1]},
              "yaxis2": {**axis, "anchor": "x2", "autorange": "reversed", "scaleanchor": "x2"},
              "annotations": [
                  {"text": "RBF (gamma)", "x": 0.23, "y": 1.02, "xref": "paper",
                   "yref": "paper", "showarrow": False, "yanchor": "bottom"},
                  {"text": "polynomial (gamma, degree)", "x": 0.77, "y": 1.02,
                   "xref": "paper", "yref": "paper", "showarrow": False, "yanchor": "bottom"}],
              "font": {"size": 12}}
    fig = SliderFigure([("gamma", list(map(float, gammas))), ("degree", list(degrees))],
                       render, layout, initial)
    fig.alignments = alignments
    return fig


class _OneOutput:
    """The live widget for a kernel, the kernel-free figure for the HTML book: one output."""

    def __init__(self, widget, static_html: str):
        self.widget, self.static_html = widget, static_html

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/html"] = self.static_html
        return bundle


def explorer_display(explorer, static: SliderFigure, div_id: str):
    """One output for an explorer: the live widget and its kernel-free version.

    Jupyter, JupyterLab and Colab render the widget view of the bundle; the HTML book
    (``nb_mime_priority_overrides`` in ``_config.yml`` puts ``text/html`` first) renders
    the precomputed Plotly figure. Either way the page shows the explorer once.
    """
    return _OneOutput(explorer.widget, static.to_html(div_id))
