"""Automatic checkers for the book's exercises, one module per chapter (``ch01`` ...).

A checker returns a :class:`Feedback`: it renders green or red in a notebook, says what
is wrong when something is, and is truthy only when the answer is right, so a test can
``assert check(...)``.
"""

from __future__ import annotations

import importlib

import torch

__all__ = ["Feedback", "call_student", "check_close", "check_equal"]


class Feedback:
    """The verdict of a checker: ``passed`` and a message that says what is wrong."""

    def __init__(self, passed: bool, message: str):
        self.passed = bool(passed)
        self.message = message

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return ("Correct! " if self.passed else "Not yet: ") + self.message

    def _repr_html_(self) -> str:
        import html

        colour, mark = ("#1a7f37", "&#10004;") if self.passed else ("#cf222e", "&#10008;")
        head = "Correct!" if self.passed else "Not yet:"
        return (f'<div style="border-left:4px solid {colour};padding:4px 8px">'
                f'<b style="color:{colour}">{mark} {head}</b> {html.escape(self.message)}</div>')


def call_student(fn, *args, name: str = "your function"):
    """Call the reader's function on ``args``.

    Returns:
        ``(result, None)``, or ``(None, Feedback)`` saying what it raised: a checker
        reports the reader's exception instead of crashing the notebook.
    """
    try:
        return fn(*args), None
    except Exception as err:  # the reader's code raised: say what
        return None, Feedback(False, f"{name} raised {type(err).__name__}: {err}")


def check_equal(name: str, got, expected, hint: str = "") -> Feedback:
    """Exact comparison of plain values (ints, strings, tuples)."""
    if got == expected:
        return Feedback(True, f"{name} = {got!r}.")
    return Feedback(False, f"{name} should be {expected!r}, you gave {got!r}. {hint}".strip())


def check_close(name: str, got, expected, *, rtol: float = 1e-4, atol: float = 1e-5,
                hint: str = "") -> Feedback:
    """Compare a tensor answer with the reference: shape first, then values."""
    if got is None:
        return Feedback(False, f"{name} is None: did you forget to return it?")
    got_t, exp_t = torch.as_tensor(got), torch.as_tensor(expected)
    if got_t.shape != exp_t.shape:
        return Feedback(False, f"{name} has shape {tuple(got_t.shape)}, expected "
                               f"{tuple(exp_t.shape)}. {hint}".strip())
    got_t, exp_t = got_t.to(torch.float64), exp_t.to(torch.float64)
    if torch.allclose(got_t, exp_t, rtol=rtol, atol=atol):
        return Feedback(True, f"{name} matches the reference.")
    err = (got_t - exp_t).abs().max().item()
    return Feedback(False, f"{name} has the right shape but differs from the reference "
                           f"(largest difference {err:.3g}). {hint}".strip())


def __getattr__(name):
    if name.startswith("ch") and name[2:].isdigit():
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'mmbook.exercises' has no attribute {name!r}")
