"""Small helpers every chapter uses: device choice, seeding, showing source, shape checks."""

from __future__ import annotations

import inspect
import os
import random
import textwrap
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["get_device", "set_seed", "show_source", "check_shape"]


def get_device() -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    Set the environment variable ``MMBOOK_DEVICE`` (e.g. ``cpu``) to override.
    """
    forced = os.environ.get("MMBOOK_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and torch (and every CUDA device when present)."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the global state readers use)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)



def show_source(obj) -> object:
    """Show the source code of a function, class or method, syntax-highlighted.

    In a notebook (and so in the HTML book) this returns an object that renders as
    highlighted HTML, with a plain-text fallback; outside a notebook, print it.

    Args:
        obj: a function, class, method or module.

    Returns:
        an object with ``_repr_html_`` and ``__repr__`` showing the source.
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source: cannot get the source of {obj!r}: {err}") from None
    return _Source(textwrap.dedent(source))


class _Source:
    """Source code that renders highlighted in Jupyter and as text elsewhere."""

    def __init__(self, code: str):
        self.code = code

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        formatter = HtmlFormatter(noclasses=True, style="default")
        return highlight(self.code, PythonLexer(), formatter)

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}\n```"

    def __repr__(self) -> str:
        return self.code


def _fmt(shape) -> str:
    shape = tuple(shape)
    return str(shape).replace("'", "") if len(shape) != 1 else f"({shape[0]},)"


def check_shape(tensor, expected: Sequence, name: str = "input") -> None:
    """Raise a clear ``ValueError`` unless ``tensor`` has the expected shape.

    Args:
        tensor: a ``torch.Tensor`` or ``numpy.ndarray``.
        expected: the expected shape; each entry is an int, ``None`` (any size) or a
            string naming a dimension (``"N"``): entries that share a name must be equal.
        name: the argument's name, used in the message.

    Raises:
        ValueError: naming the argument, the shape received and the shape expected.
    """
    if not hasattr(tensor, "shape"):
        raise TypeError(f"{name} must be a tensor or array, got {type(tensor).__name__}")
    shape = tuple(tensor.shape)
    want = _fmt("?" if e is None else e for e in expected)
    if len(shape) != len(expected):
        raise ValueError(
            f"{name} must have {len(expected)} dimensions {want}, got shape {_fmt(shape)}"
        )
    bound: dict[str, int] = {}
    for axis, (got, exp) in enumerate(zip(shape, expected)):
        if exp is None:
            continue
        if isinstance(exp, str):
            if exp in bound and bound[exp] != got:
                raise ValueError(
                    f"{name} has shape {_fmt(shape)} but expected {want}: dimension "
                    f"{exp} is {bound[exp]} at one axis and {got} at axis {axis}"
                )
            bound[exp] = got
        elif got != exp:
            raise ValueError(
                f"{name} has shape {_fmt(shape)} but expected {want} (axis {axis} "
                f"should be {exp}, got {got})"
            )

