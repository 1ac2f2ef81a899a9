"""Attention explorer (chapter 7): watch a fusion model's attention weights move.

:func:`attention_static` draws one figure for fixed parameters (the HTML book's
fallback); :class:`AttentionExplorer` wraps the same drawing in ipywidgets controls
(example, direction, head, temperature). Both work with any model that, like
:class:`mmbook.models.LSTMAttentionFusion`, accepts ``return_attention=True`` and
``temperature=`` and exposes ``pairs``, ``num_heads`` and ``modality_names``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..plot import heatmap, show_spectrogram
from ..utils import check_positive
from .common import (
    control_panel,
    fmt_value,
    grid_slider,
    log_grid,
    require_ipywidgets,
    set_grid_value,
    set_int_value,
)

__all__ = ["AttentionExplorer", "attention_static", "explain_example", "TEMPERATURE_GRID"]

TEMPERATURE_GRID = log_grid(0.1, 10.0, per_decade=10)
"""The temperature slider's values: 10 per decade from 0.1 to 10, each equal to its label."""


def _example_inputs(dataset, index: int, device):
    """The model inputs of item ``index`` as a batch of one, and its label."""
    if not 0 <= index < len(dataset):
        raise ValueError(f"index must be in [0, {len(dataset) - 1}], got {index}")
    *inputs, label = dataset[index]
    batch = [torch.as_tensor(x).unsqueeze(0).to(device) for x in inputs]
    return batch, int(label)


def _raw_modalities(inputs) -> list:
    """The modality tensors among the inputs (lengths are 1-D integer tensors after them)."""
    return [x[0] for x in inputs if not (x.dim() == 1 and not x.is_floating_point())]


@torch.no_grad()
def explain_example(model, dataset, index: int = 0, temperature: float = 1.0) -> dict:
    """Run ``model`` on one example and collect what the figure shows.

    Returns:
        a dict with ``probs (C,)``, ``label``, ``attention`` (the model's weights for a
        batch of one) and ``raw`` (the modality tensors of the example).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    device = next(model.parameters()).device
    inputs, label = _example_inputs(dataset, index, device)
    was_training = model.training
    model.eval()
    logits, attention = model(*inputs, return_attention=True, temperature=temperature)
    model.train(was_training)
    return {"probs": torch.softmax(logits[0], -1).cpu(), "label": label, "index": index,
            "attention": attention, "raw": [r.cpu() for r in _raw_modalities(inputs)]}


def _check_params(model, pair, head) -> tuple:
    pairs = [tuple(p) for p in model.pairs]
    if tuple(pair) not in pairs:
        raise ValueError(f"pair must be one of {pairs} (query modality, key modality), got {pair}")
    if not 0 <= head < model.num_heads:
        raise ValueError(f"head must be in [0, {model.num_heads - 1}], got {head}")
    return tuple(pair)


def _show_raw(ax, raw, name: str, length=None):
    if raw.dim() == 3:  # an image (C, H, W)
        ax.imshow(raw[0].numpy(), cmap="gray")
        ax.set(title=name, xticks=[], yticks=[])
    else:  # a sequence (T, F)
        show_spectrogram(raw, ax, length=length, title=name)


def _draw(fig, info: dict, model, pair, head: int, temperature: float):
    m, n = pair
    names = model.modality_names
    att = info["attention"]
    w = att["cross"][m, n][0, head]  # (T_m, T_n)
    mask_m, mask_n = att["mask"][m][0], att["mask"][n][0]
    lm, ln = int(mask_m.sum()), int(mask_n.sum())
    gs = fig.add_gridspec(2, 3, width_ratios=[1, 1.6, 1.1])
    raws = info["raw"]
    shown = [(m, "queries", lm, mask_m.numel()), (n, "keys", ln, mask_n.numel())]
    shown.sort(key=lambda item: raws[item[0]].dim() != 3)  # an image in the small panel
    for slot, (k, role, length, total) in zip((gs[0, 0], gs[0, 1:]), shown):
        _show_raw(fig.add_subplot(slot), raws[k], f"{names[k]} ({role})",
                  length=length if length < total else None)
    ax = fig.add_subplot(gs[1, 0])
    heatmap(w[:lm], ax, xlabel=f"{names[n]} step s", ylabel=f"{names[m]} step t",
            title=f"alpha[t, s], head {head}, T={fmt_value(temperature)}", vmin=0)
    ax = fig.add_subplot(gs[1, 1])
    beta = att["modality"][m][0, :lm]  # (T_m, M)
    for k in range(beta.shape[-1]):
        label = f"own state ({names[k]})" if k == m else f"context from {names[k]}"
        ax.plot(beta[:, k].numpy(), label=label)
    ax.set(ylim=(-0.02, 1.02), xlabel=f"{names[m]} step t", ylabel="beta",
           title=f"modality weights of {names[m]}")
    ax.legend(fontsize=7, loc="best")
    ax = fig.add_subplot(gs[1, 2])
    probs = info["probs"].numpy()
    colours = ["tab:green" if c == info["label"] else "tab:gray" for c in range(len(probs))]
    ax.bar(range(len(probs)), probs, color=colours)
    ax.set(ylim=(0, 1), xticks=range(len(probs)), xlabel="class", ylabel="probability",
           title=f"label {info['label']}, predicted {int(np.argmax(probs))}")
    fig.tight_layout()
    fig.mmbook_params = {"index": info["index"], "pair": tuple(pair), "head": head,
                         "temperature": temperature}
    return fig


def attention_static(model, dataset, index: int = 0, pair=(0, 1), head: int = 0,
                     temperature: float = 1.0, figsize=(11, 6)):
    """Draw the explorer's figure for fixed parameters (no widgets needed).

    Panels: the two modalities of example ``index``; the cross-modal weights
    :math:`\\alpha_{t,s}` of head ``head`` where modality ``pair[0]`` (queries) reads
    modality ``pair[1]`` (keys) (padded query steps cut off; padded keys have weight 0);
    the modality weights
    :math:`\\beta_t` of the query modality; the predicted class probabilities.

    Args:
        model: e.g. a trained :class:`mmbook.models.LSTMAttentionFusion`.
        dataset: items ``(*inputs, label)`` as in :class:`mmbook.data.AVDigits`.
        index: which example.
        pair: ``(query modality, key modality)``.
        head: which attention head.
        temperature: divides every softmax's scores (1 = the trained model).

    Returns:
        the matplotlib figure.
    """
    pair = _check_params(model, pair, head)
    info = explain_example(model, dataset, index, temperature)
    return _draw(plt.figure(figsize=figsize), info, model, pair, head, temperature)


class AttentionExplorer:
    """Sliders and menus over :func:`attention_static`: example, direction, head, temperature.

    Display it in a notebook (``AttentionExplorer(model, test_set)`` as the last line of a
    cell). Every control calls :meth:`update`, which tests (and readers without a
    browser) can call directly: ``explorer.update(index=3, temperature=0.5)``. In Colab,
    call :func:`mmbook.widgets.enable_colab_widgets` first.

    Args:
        model, dataset: as in :func:`attention_static`.
        index, pair, head, temperature: the starting parameters.
        max_index: the largest example index offered (default ``len(dataset) - 1``).

    The controls always show the drawn parameters. A value the model accepts but a
    control does not offer widens the control: ``temperature=0.02`` (or 100) becomes one
    more option of the temperature slider (whose values are :data:`TEMPERATURE_GRID`,
    labelled as the figure's title prints them), an ``index`` above ``max_index`` but
    inside the dataset raises the example slider's maximum. A value outside the model's
    domain (temperature <= 0, an index outside the dataset, a head or direction the model
    lacks) raises a ValueError naming the allowed range.

    Attributes:
        params: the current parameters.
        figure: the last figure drawn (``figure.mmbook_params``: its parameters).
        info: what the model returned for the current example (see
            :func:`explain_example`).
    """

    _NAMES = ("index", "pair", "head", "temperature")

    def __init__(self, model, dataset, index: int = 0, pair=(0, 1), head: int = 0,
                 temperature: float = 1.0, max_index: int | None = None, figsize=(11, 6)):
        self.model, self.dataset, self.figsize = model, dataset, figsize
        self.max_index = len(dataset) - 1 if max_index is None else int(max_index)
        self.max_index = max(self.max_index, int(index))
        self.params = {}
        self.params = self._validated({"index": index, "pair": tuple(pair), "head": head,
                                       "temperature": temperature})
        self.figure, self.info = None, None
        self._syncing = False
        self._build_widgets()
        self.update()

    # -- widgets
    def _build_widgets(self) -> None:
        w = require_ipywidgets()
        names = self.model.modality_names
        options = [(f"{names[m]} reads {names[n]}", (m, n)) for m, n in self.model.pairs]
        self.controls = {
            "index": w.IntSlider(value=self.params["index"], min=0, max=self.max_index,
                                 description="example"),
            "pair": w.Dropdown(options=options, value=self.params["pair"],
                               description="direction"),
            "head": w.IntSlider(value=self.params["head"], min=0,
                                max=max(self.model.num_heads - 1, 0), description="head",
                                disabled=self.model.num_heads == 1),
            "temperature": grid_slider(TEMPERATURE_GRID, self.params["temperature"],
                                       "temperature"),
        }
        self.output, self.widget = control_panel(
            self.controls, [("index", "pair"), ("head", "temperature")], self._on_change)

    def _on_change(self, name: str):
        def callback(change) -> None:
            if not self._syncing:
                self.update(**{name: change["new"]})
        return callback

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # -- state
    def _validated(self, params: dict) -> dict:
        unknown = set(params) - set(self._NAMES)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; expected {self._NAMES}")
        new = {**self.params, **params}
        new["pair"] = _check_params(self.model, new["pair"], int(new["head"]))
        last = len(self.dataset) - 1
        if not 0 <= int(new["index"]) <= last:
            raise ValueError(f"index must be in [0, {last}] (the dataset), got {new['index']}")
        temperature = check_positive(new["temperature"],
                                     "temperature (allowed: any finite temperature > 0)")
        return {"index": int(new["index"]), "pair": new["pair"], "head": int(new["head"]),
                "temperature": temperature}

    def update(self, **params):
        """Change any of ``index``, ``pair``, ``head``, ``temperature`` and redraw.

        Returns:
            the new figure.
        """
        self.params = self._validated(params)
        self._sync_controls()
        p = self.params
        self.info = explain_example(self.model, self.dataset, p["index"], p["temperature"])
        if self.figure is not None:
            plt.close(self.figure)
        fig = plt.figure(figsize=self.figsize)
        self.figure = _draw(fig, self.info, self.model, p["pair"], p["head"], p["temperature"])
        plt.close(fig)  # shown through the Output widget only, not twice
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            display(fig)
        return fig

    def _sync_controls(self) -> None:
        self._syncing = True
        try:
            for name, control in self.controls.items():
                if name == "temperature":
                    set_grid_value(control, self.params[name])
                elif name == "index":
                    set_int_value(control, self.params[name])
                    self.max_index = control.max
                elif control.value != self.params[name]:
                    control.value = self.params[name]
        finally:
            self._syncing = False

    def cross_weights(self) -> torch.Tensor:
        """The displayed weights :math:`\\alpha_{t,s}` (query steps x key steps, no padding)."""
        m, n = self.params["pair"]
        att = self.info["attention"]
        lm, ln = int(att["mask"][m][0].sum()), int(att["mask"][n][0].sum())
        return att["cross"][m, n][0, self.params["head"], :lm, :ln]
