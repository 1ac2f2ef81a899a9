"""Automatic checkers for the book's exercises, one module per chapter (``ch01`` ...).

A checker returns a :class:`Feedback`: it renders green when the answer is right, red
when it is wrong (saying what is wrong), and neutral grey while no answer has been given
yet (a starter cell that still returns ``None``); it is truthy only when the answer is
right, so a test can ``assert check(...)``.

**Writing a checker so that the grader can use it** (``python -m mmbook.grade``, see
:mod:`mmbook.exercises.grading` for why): call the student's function only through
:func:`call_student` (a probe function passed in its place computes anything more, such as
a gradient); be deterministic, with random inputs from generators seeded with constants
(``torch.Generator().manual_seed(k)``, ``torch.manual_seed(k)``,
``numpy.random.default_rng(k)``: the grader shifts these seeds for its hidden inputs); in
the starter cell's call, write the fixed arguments as literals (``n=28``) and the
student's answers as names. Messages name the mistake and never print the expected value.
Then a new checker is graded with no change to the grader.
"""

from __future__ import annotations

import contextvars
import importlib

import torch

__all__ = ["Feedback", "call_student", "check_close", "check_equal", "pending",
           "shape_error_hint"]


class Feedback:
    """The verdict of a checker: ``passed`` and a message that says what is wrong.

    ``pending=True`` marks "no answer yet" (the starter cell as given): it is not a
    wrong answer, so it renders neutrally instead of in red.
    """

    def __init__(self, passed: bool, message: str, pending: bool = False, error=None):
        self.passed = bool(passed) and not pending
        self.pending = bool(pending)
        self.message = message
        self.error = error  # the exception the reader's code raised, if any

    def __bool__(self) -> bool:
        return self.passed

    @property
    def state(self) -> str:
        """``"correct"``, ``"wrong"`` or ``"pending"``."""
        return "pending" if self.pending else ("correct" if self.passed else "wrong")

    _STYLE = {  # state -> (colour, mark, heading)
        "correct": ("#1a7f37", "&#10004;", "Correct!"),
        "wrong": ("#cf222e", "&#10008;", "Not yet:"),
        "pending": ("#57606a", "&#9998;", "Your turn:"),
    }

    def __repr__(self) -> str:
        return self._STYLE[self.state][2] + " " + self.message

    def _repr_html_(self) -> str:
        import html

        colour, mark, head = self._STYLE[self.state]
        return (f'<div class="mmbook-feedback mmbook-feedback-{self.state}" '
                f'style="border-left:4px solid {colour};padding:4px 8px">'
                f'<b style="color:{colour}">{mark} {head}</b> {html.escape(self.message)}</div>')


def pending(what: str = "your answer") -> Feedback:
    """The neutral verdict for an exercise not attempted yet (``None`` as given)."""
    return Feedback(False, f"{what} is still None: write your answer, then run the cell "
                           "again.", pending=True)


# The grader's session (mmbook.exercises.grading): None in the book; a recorder in the
# student's kernel while grading; a replayer in the grader's own process.
_SESSION: contextvars.ContextVar = contextvars.ContextVar("mmbook_grading", default=None)


# what torch and numpy say on a broadcasting mistake
_BROADCAST = ("must match the size of tensor", "size mismatch", "shape mismatch",
              "cannot be broadcast", "operands could not be broadcast", "The expanded size")


def _shape_hint(message: str) -> str:
    """A hint for the usual cause of a broadcasting error in a reader's code."""
    if not any(words in message for words in _BROADCAST):
        return ""
    return (". A reduction over one axis (sum, mean, max, logsumexp) without "
            "keepdim=True drops that axis: (N, C).sum(dim=1) has shape (N,), which does "
            "not broadcast against (N, C); keepdim=True keeps it as (N, 1)")


def call_student(fn, *args, name: str = "your function"):
    """Call the reader's function on ``args``.

    Checkers call the student's function through here only: the grader records these
    calls in the student's kernel and replays them in its own process.

    Returns:
        ``(result, None)``, or ``(None, Feedback)`` saying what it raised (a checker
        reports the reader's exception instead of crashing the notebook; a broadcasting
        error gets the usual cause, a reduction without ``keepdim``), or a pending
        Feedback when it returned ``None`` (the starter as given).
    """
    session, raised = _SESSION.get(), None
    if session is not None and session.replaying:
        kind, out = session.replay(args)
    else:
        entry = session.begin(args) if session is not None else None
        try:
            kind, out = "value", fn(*args)
        except Exception as err:  # the reader's code raised: say what
            kind, out, raised = "raised", f"{type(err).__name__}: {err}", err
        if entry is not None:
            session.end(entry, kind, out)
    if kind == "raised":  # replayed: the exception rebuilt from its recorded text
        error = raised if raised is not None else _rebuilt_exception(out)
        return None, Feedback(False, f"{name} raised {out}{_shape_hint(out)}", error=error)
    if out is None:  # the starter as given (or a forgotten return): not a wrong answer yet
        return None, Feedback(False, f"{name} returned None: write its body (and return "
                                     "the result), then run the cell again.", pending=True)
    return out, None


def shape_error_hint(fail: Feedback, hint: str) -> Feedback:
    """A checker's verdict when the reader's code raised: a broadcasting error gets ``hint``.

    A reduction that drops its dimension (``x.sum(1)`` where ``x.sum(1, keepdim=True)``
    was meant) or a mask indexed as ``(N,)`` instead of ``(N, 1)`` fails with torch's
    broadcasting ``RuntimeError``, which names sizes but not the mistake; the checker,
    which knows its exercise, names it. Any other failure is returned unchanged.

    Examples:
        >>> _, fail = call_student(lambda x: x / x.sum(1), torch.ones(3, 2))
        >>> print(shape_error_hint(fail, "keep the summed dimension: keepdim=True").message)
        ... # doctest: +ELLIPSIS
        your function has a shape mistake (RuntimeError: The size of tensor a (2) must ...
    """
    err = fail.error
    if not isinstance(err, RuntimeError) or not any(s in str(err) for s in _BROADCAST):
        return fail
    return Feedback(False, f"{fail.message.split(' raised ')[0]} has a shape mistake "
                           f"({type(err).__name__}: {err}). {hint}", error=err)


def _rebuilt_exception(text: str) -> Exception:
    """``"RuntimeError: msg"`` (what the grader recorded) back as ``RuntimeError("msg")``; an
    exception type that is not a builtin comes back as ``Exception(text)``."""
    import builtins

    kind, _, message = text.partition(": ")
    cls = getattr(builtins, kind, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(message)
    return Exception(text)


def check_equal(name: str, got, expected, hint: str = "") -> Feedback:
    """Exact comparison of plain values (ints, strings, tuples); the message says what the
    answer is, never what it should be."""
    if got == expected:
        return Feedback(True, f"{name} = {got!r}.")
    return Feedback(False, f"{name} is not {got!r}. {hint}".strip())


def check_close(name: str, got, expected, *, rtol: float = 1e-4, atol: float = 1e-5,
                hint: str = "") -> Feedback:
    """Compare a tensor answer with the reference: shape first, then values."""
    if got is None:
        return pending(name)
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
