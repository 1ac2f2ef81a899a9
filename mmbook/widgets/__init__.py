"""Interactive explorers (ipywidgets, imported lazily) with static matplotlib fallbacks.

Every explorer has a ``static`` counterpart that draws the same picture for fixed
parameters, so the HTML book shows something meaningful without a kernel.
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
}
__all__ = ["enable_colab_widgets", "has_ipywidgets", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'mmbook.widgets' has no attribute {name!r}")
