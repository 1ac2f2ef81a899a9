"""Interactive explorers (ipywidgets, imported lazily), their kernel-free versions and
static matplotlib figures.

Every explorer exists three ways: the live widget (``AttentionExplorer``,
``KernelExplorer``, ``TokenMapsExplorer``) for Jupyter and Colab; a kernel-free Plotly
figure whose frames are precomputed on a grid of slider values
(``attention_slider_figure``, ``kernel_slider_figure``, ``token_maps_slider_figure``,
:mod:`mmbook.widgets.static`) for the HTML book; and a static matplotlib figure for fixed
parameters (``attention_static``, ``kernel_static``, ``token_maps_static``).
``explorer_display(explorer, static, div_id)`` shows the first two as one output, so a
page renders each explorer once.

Rule for requested values (both explorers): a value the model accepts but a control does
not offer widens the control (a slider's maximum grows, a log-grid slider gains the value
as an option, labelled exactly as the figure's title prints it); a value outside the
model's domain is refused with a ValueError naming the allowed range. The drawn
parameters therefore always equal what the controls show.
"""

import importlib

from .common import enable_colab_widgets, has_ipywidgets

_LAZY = {
    "AttentionExplorer": "attention",
    "attention_static": "attention",
    "KernelExplorer": "kernels",
    "kernel_static": "kernels",
    "SliderFigure": "static",
    "attention_slider_figure": "static",
    "kernel_slider_figure": "static",
    "explorer_display": "static",
    "TokenMapsExplorer": "vqa",
    "token_maps_static": "vqa",
    "token_maps_slider_figure": "vqa",
    "coattention_token_maps": "vqa",
    "caption_token_maps": "vqa",
}
__all__ = ["enable_colab_widgets", "has_ipywidgets", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mmbook.widgets' has no attribute {name!r}")
