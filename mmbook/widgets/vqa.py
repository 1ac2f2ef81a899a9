"""Attention over an image, word by word (chapter 12): where a VQA model or a captioner looks.

An example is a :class:`TokenMaps`: an image, a sequence of tokens (the words of a
question, or the words a captioner wrote) and, for each token, a map of weights over
the :math:`G \\times G` cells of the image. Two producers build them:

* :func:`coattention_token_maps` from a :class:`~mmbook.models.vqa.CoAttentionVQA`:
  first the question's attention :math:`a^v` (all words together), then, for each word,
  the weight it adds to each cell: :math:`a^v` minus the attention without that word,
  where positive (:meth:`~mmbook.attention.CoAttention.word_effects`);
* :func:`caption_token_maps` from an
  :class:`~mmbook.models.captioning.AttentionCaptionModel`: the weights
  :math:`\\alpha_t` with which the decoder looked at the image to write word :math:`t`.

Three views, as for the other explorers (:mod:`mmbook.widgets`):
:func:`token_maps_static` (one matplotlib figure), :class:`TokenMapsExplorer` (the live
ipywidget: an example slider and a word slider) and :func:`token_maps_slider_figure`
(the kernel-free Plotly figure for the HTML book, every example and word precomputed).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from .common import control_panel, require_ipywidgets, set_int_value

TITLE_WIDTH = 80  # characters per line of a kernel-free explorer's title

__all__ = ["TokenMaps", "coattention_token_maps", "caption_token_maps", "token_maps_static",
           "TokenMapsExplorer", "token_maps_slider_figure"]


@dataclass
class TokenMaps:
    """One example of the explorer.

    Attributes:
        image: :math:`(S, S, 3)` in [0, 1].
        tokens: T labels, one per map (``"(whole question)"``, ``"red"``, ...).
        maps: :math:`(T, G, G)` non-negative weights over the cells.
        title: what the figure says about the example (question and answer, caption).
    """

    image: np.ndarray
    tokens: list
    maps: np.ndarray
    title: str

    def __post_init__(self):
        self.image = np.asarray(self.image, dtype=float)
        self.maps = np.asarray(self.maps, dtype=float)
        if self.maps.ndim != 3 or self.maps.shape[1] != self.maps.shape[2]:
            raise ValueError(f"maps must be (T, G, G), got shape {self.maps.shape}")
        if len(self.tokens) != len(self.maps):
            raise ValueError(f"tokens has {len(self.tokens)} entries but maps has "
                             f"{len(self.maps)}: one map per token")
        if self.image.ndim != 3 or self.image.shape[2] != 3:
            raise ValueError(f"image must be (S, S, 3), got shape {self.image.shape}")


def _image(images, k) -> np.ndarray:
    return images[k].permute(1, 2, 0).cpu().numpy()  # (S, S, 3)


def coattention_token_maps(model, features, ids, lengths, images, image_index, questions,
                           answers, answer_names, indices: Sequence[int]) -> list:
    """The explorer's examples for a :class:`~mmbook.models.vqa.CoAttentionVQA`.

    Args:
        model: the trained co-attention model.
        features, ids, lengths: its inputs for every test question.
        images: the scenes :math:`(n, 3, S, S)`; image_index: the scene of each question.
        questions, answers: the question texts and their true answers.
        answer_names: the answer of each output class.
        indices: the questions to show.

    Returns:
        one :class:`TokenMaps` per question: ``"(whole question)"`` (:math:`a^v`), then
        each word with the weight it adds, :math:`\\max(0, a^v - a^{v(-l)})`.
    """
    idx = torch.as_tensor(list(indices))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    maps = model.attention_maps(features[idx].to(device), ids[idx].to(device),
                                torch.as_tensor(lengths)[idx].to(device))
    model.train(was_training)
    G = model.grid_size
    from ..text import tokenize

    out = []
    for row, k in enumerate(idx.tolist()):
        words = tokenize(questions[k])
        added = maps["words"][row, :len(words)].clamp_min(0)  # (L, G*G)
        m = torch.cat([maps["question"][row][None], added])
        pred = answer_names[int(maps["probs"][row].argmax())]
        out.append(TokenMaps(_image(images, int(image_index[k])), ["(whole question)", *words],
                             m.reshape(-1, G, G).cpu().numpy(),  # (1 + L, G, G)
                             f"{questions[k]}  answer: {answers[k]}, predicted: {pred}"))
    return out


def caption_token_maps(model, features, images, vocab, indices: Sequence[int],
                       max_len: int = 40) -> list:
    """The explorer's examples for an attention captioner: its greedy caption of each
    image and, per word, the weights it looked at the image with (``<eos>`` included).
    """
    idx = torch.as_tensor(list(indices))
    device = next(model.parameters()).device
    model.eval()
    ids, alpha = model.greedy(features[idx].to(device), max_len=max_len,
                              return_attention=True)
    G = model.grid_size
    out = []
    for row, k in enumerate(idx.tolist()):
        seq = ids[row].tolist()
        T = seq.index(model.eos_index) + 1
        tokens = [vocab.itos[i] for i in seq[:T]]
        out.append(TokenMaps(_image(images, k), tokens,
                             alpha[row, :T].reshape(T, G, G).cpu().numpy(),
                             f"scene {k}: {vocab.decode(seq)}"))
    return out


def _check_example(examples, example: int, token: int) -> TokenMaps:
    if not 0 <= example < len(examples):
        raise ValueError(f"example must be in [0, {len(examples) - 1}], got {example}")
    ex = examples[example]
    if not 0 <= token < len(ex.tokens):
        raise ValueError(f"token must be in [0, {len(ex.tokens) - 1}] for example {example} "
                         f"({len(ex.tokens)} tokens), got {token}")
    return ex


def _extent(ex: TokenMaps):
    S = ex.image.shape[0]
    return (-0.5, S - 0.5, S - 0.5, -0.5)


def _draw(fig, ex: TokenMaps, token: int):
    m = ex.maps[token]
    axes = fig.subplots(1, 2)
    axes[0].imshow(ex.image, interpolation="nearest")
    axes[0].imshow(m, cmap="magma", alpha=0.6, extent=_extent(ex), interpolation="nearest")
    axes[0].set_title(f"{ex.tokens[token]!r} over the image", fontsize=10)
    im = axes[1].imshow(m, cmap="viridis", vmin=0)
    axes[1].set_title(f"weights (largest {m.max():.2f})", fontsize=10)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    for ax in axes:
        ax.set(xticks=[], yticks=[])
    fig.suptitle(ex.title, fontsize=10)
    fig.mmbook_params = {"token": token}
    return fig


def token_maps_static(examples: Sequence[TokenMaps], example: int = 0, token: int = 0,
                      figsize=(8, 3.8)):
    """One example's map for one token, over the image and alone (matplotlib)."""
    ex = _check_example(examples, example, token)
    fig = _draw(plt.figure(figsize=figsize), ex, token)
    fig.mmbook_params = {"example": example, "token": token}
    return fig


class TokenMapsExplorer:
    """Sliders over :func:`token_maps_static`: which example, which word.

    ``update(example=..., token=...)`` redraws (tests and readers without a browser can
    call it); moving to an example with fewer tokens keeps the token if it exists there,
    else shows the first. Out-of-range values raise a ValueError naming the range.

    Attributes:
        params: ``{"example", "token"}`` drawn; figure: the last figure.
    """

    def __init__(self, examples: Sequence[TokenMaps], example: int = 0, token: int = 0,
                 figsize=(8, 3.8)):
        self.examples, self.figsize = list(examples), figsize
        _check_example(self.examples, example, token)
        self.params = {"example": int(example), "token": int(token)}
        self.figure, self._syncing = None, False
        w = require_ipywidgets()
        self.controls = {
            "example": w.IntSlider(value=example, min=0, max=len(self.examples) - 1,
                                   description="example"),
            "token": w.SelectionSlider(options=self._options(example), value=token,
                                       description="word", continuous_update=False),
        }
        self.output, self.widget = control_panel(self.controls, [("example", "token")],
                                                 self._on_change)
        self.update()

    def _options(self, example: int) -> list:
        return [(f"{t}: {tok}", t) for t, tok in enumerate(self.examples[example].tokens)]

    def _on_change(self, name: str):
        def callback(change) -> None:
            if not self._syncing and change["new"] != self.params[name]:
                self.update(**{name: change["new"]})
        return callback

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def update(self, **params):
        """Change ``example`` and/or ``token`` and redraw; returns the figure."""
        unknown = set(params) - {"example", "token"}
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; use example, token")
        example = int(params.get("example", self.params["example"]))
        token = params.get("token")
        if token is None:  # a new example: keep the word position if it exists there
            token = self.params["token"]
            if not 0 <= example < len(self.examples) or token >= len(self.examples[example]
                                                                     .tokens):
                token = 0
        _check_example(self.examples, example, int(token))
        self.params = {"example": example, "token": int(token)}
        self._sync()
        if self.figure is not None:
            plt.close(self.figure)
        fig = token_maps_static(self.examples, example, int(token), self.figsize)
        plt.close(fig)  # shown through the Output widget only
        self.figure = fig
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            display(fig)
        return fig

    def _sync(self) -> None:
        self._syncing = True
        try:
            set_int_value(self.controls["example"], self.params["example"])
            slider = self.controls["token"]
            options = self._options(self.params["example"])
            if [v for _, v in slider.options] != [v for _, v in options] or \
                    list(slider.options) != options:
                slider.options = options
            slider.value = self.params["token"]
        finally:
            self._syncing = False

    def shown_map(self) -> np.ndarray:
        """The drawn map, :math:`(G, G)`."""
        return self.examples[self.params["example"]].maps[self.params["token"]]


def _rounded(a, decimals: int = 3) -> list:
    return np.round(np.asarray(a, dtype=float), decimals).tolist()


def _blend(image: np.ndarray, m: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image with the map over it (magma colours, scaled to the map's largest weight),
    as 0-255 RGB integers :math:`(S, S, 3)`: one picture, so no layering is needed."""
    S, G = image.shape[0], m.shape[0]
    cells = np.kron(m / max(m.max(), 1e-12), np.ones((S // G, S // G)))  # (S, S)
    colours = plt.get_cmap("magma")(cells)[..., :3]
    return np.round(255 * ((1 - alpha) * image + alpha * colours)).astype(int)


def token_maps_slider_figure(examples: Sequence[TokenMaps], initial: dict | None = None,
                             example_labels: Sequence[str] | None = None):
    """The explorer without a kernel: an example slider and a word-position slider.

    Every (example, position) is precomputed; a position past an example's last token
    shows an empty map and says so. Left: the image with the map over it; right: the map
    alone, with its largest weight in the title.

    Returns:
        a :class:`~mmbook.widgets.static.SliderFigure`.
    """
    from .static import SliderFigure

    examples = list(examples)
    T = max(len(ex.tokens) for ex in examples)
    labels = list(example_labels) if example_labels is not None else [
        str(k) for k in range(len(examples))]

    def render(example, position):
        ex = examples[labels.index(example)]
        G = ex.maps.shape[1]
        inside = position < len(ex.tokens)
        m = ex.maps[position] if inside else np.zeros((G, G))
        traces = [
            {"type": "image", "z": _blend(ex.image, m).tolist(), "xaxis": "x", "yaxis": "y",
             "hoverinfo": "skip"},
            {"type": "heatmap", "z": _rounded(m), "colorscale": "Viridis", "zmin": 0,
             "xaxis": "x2", "yaxis": "y2", "colorbar": {"x": 1.0, "len": 0.9, "thickness": 12},
             "hovertemplate": "cell (%{x}, %{y}): %{z}<extra></extra>"},
        ]
        word = (f"word {position}: {ex.tokens[position]!r}, largest weight {m.max():.2f}"
                if inside else f"word {position}: past the end of this example")
        # lines the figure's width holds (a longer title would be clipped, on the page too)
        return traces, "<br>".join([*textwrap.wrap(ex.title, TITLE_WIDTH), word])

    S = examples[0].image.shape[0]
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False}
    lines = max(len(textwrap.wrap(ex.title, TITLE_WIDTH)) for ex in examples) + 1
    layout = {"height": 450 + 18 * lines, "margin": {"t": 24 + 18 * lines, "l": 20, "r": 40},
              "xaxis": {**axis, "domain": [0, 0.46], "range": [-0.5, S - 0.5]},
              "yaxis": {**axis, "range": [S - 0.5, -0.5], "scaleanchor": "x"},
              "xaxis2": {**axis, "domain": [0.54, 0.96]},
              "yaxis2": {**axis, "anchor": "x2", "autorange": "reversed", "scaleanchor": "x2"},
              "showlegend": False, "font": {"size": 12}}
    init = dict(initial or {})
    if "example" in init and not isinstance(init["example"], str):
        init["example"] = labels[init["example"]]
    return SliderFigure([("example", labels), ("position", list(range(T)))], render, layout,
                        init)
