"""Shared plumbing for the widgets: optional ipywidgets, Colab's widget manager."""

from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["has_ipywidgets", "require_ipywidgets", "enable_colab_widgets", "control_panel",
           "fmt_value", "log_grid", "with_value", "grid_slider", "set_grid_value", "set_int_value",
           "shown_label"]


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


# -- parameter grids shared by the live explorers and their kernel-free versions
#
# The rule for a requested value (constructor or ``update``) that a control does not
# offer: a value the model accepts widens the control to include it (an integer
# slider's ``max`` grows; a log-grid slider gets the value as one more option); a value
# outside the model's domain is refused with a ValueError naming the allowed range.
# So the drawn parameters always equal what the controls show.


def fmt_value(value: float) -> str:
    """The one text form of a continuous parameter, in slider labels and figure titles."""
    return f"{float(value):.3g}"


def log_grid(low: float, high: float, per_decade: int = 10) -> list:
    """Log-spaced values from ``low`` to ``high``, rounded to 3 significant digits.

    Rounding makes each value equal to its printed form (:func:`fmt_value`), so a slider
    label and a figure title never disagree.

    Examples:
        >>> log_grid(0.1, 1, per_decade=4)
        [0.1, 0.178, 0.316, 0.562, 1.0]
    """
    lo, hi = np.log10(low), np.log10(high)
    n = int(round((hi - lo) * per_decade))
    return [float(fmt_value(v)) for v in np.logspace(lo, hi, n + 1)]


def with_value(grid, value: float) -> list:
    """The sorted grid with ``value`` added when it is not already one of its points."""
    value = float(value)
    return sorted(set(map(float, grid)) | {value})


def grid_slider(grid, value: float, description: str):
    """A SelectionSlider over ``grid`` (plus ``value``) whose labels are :func:`fmt_value`."""
    w = require_ipywidgets()
    values = with_value(grid, value)
    return w.SelectionSlider(options=[(fmt_value(v), v) for v in values], value=float(value),
                             description=description, continuous_update=False)


def set_grid_value(slider, value: float) -> None:
    """Select ``value`` on a :func:`grid_slider`, adding it as an option if it is new."""
    value = float(value)
    values = [v for _, v in slider.options]
    if value not in values:
        slider.options = [(fmt_value(v), v) for v in with_value(values, value)]
    if slider.value != value:
        slider.value = value


def set_int_value(slider, value: int) -> None:
    """Set an IntSlider to ``value``, widening its range first when needed."""
    value = int(value)
    if value > slider.max:
        slider.max = value
    if value < slider.min:
        slider.min = value
    if slider.value != value:
        slider.value = value


def shown_label(slider) -> str:
    """The text a selection slider shows in the browser: its option label at ``index``."""
    return slider._options_labels[slider.index]
