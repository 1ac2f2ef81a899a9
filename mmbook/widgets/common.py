"""Shared plumbing for the widgets: optional ipywidgets, Colab's widget manager."""

from __future__ import annotations

import importlib.util

__all__ = ["has_ipywidgets", "require_ipywidgets", "enable_colab_widgets"]


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
