"""Shared plumbing for the widgets: optional ipywidgets, Colab's widget manager."""

from __future__ import annotations

import importlib.util

__all__ = ["has_ipywidgets", "require_ipywidgets", "enable_colab_widgets", "control_panel"]


def has_ipywidgets() -> bool:
    """True when ipywidgets can be imported."""
    return importlib.util.find_spec("ipywidgets") is not None


def require_ipywidgets():
    """Import and return ipywidgets, or raise an ImportError that says how to get it."""
    if not has_ipywidgets():
        raise ImportError("the interactive explorers need ipywidgets: pip install 'ipywidgets>=8'"
                          " (the static figures work without it)")
    import ipywidgets

    return ipywidgets


def enable_colab_widgets() -> bool:
    """Turn on Colab's custom widget manager (ipywidgets 8 needs it); no-op elsewhere.

    Returns:
        True when running in Colab and the manager was enabled.
    """
    import sys

    if "google.colab" not in sys.modules:
        return False
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    return True


def control_panel(controls: dict, rows, on_change):
    """Wire each control to ``on_change(name)`` and lay the controls out in rows.

    Args:
        controls: ``{name: ipywidget}``.
        rows: sequences of control names, one per row of the panel.
        on_change: ``on_change(name)`` returns the observer for that control's value.

    Returns:
        ``(output, widget)``: the ``Output`` area the figure is drawn into, and the panel
        (the rows of controls above the output).
    """
    w = require_ipywidgets()
    for name, control in controls.items():
        control.observe(on_change(name), names="value")
    output = w.Output()
    widget = w.VBox([w.HBox([controls[name] for name in row]) for row in rows] + [output])
    return output, widget
