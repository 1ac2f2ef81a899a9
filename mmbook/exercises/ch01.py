"""Checkers for chapter 1 (Introduction)."""

from __future__ import annotations

import torch

from . import Feedback, call_student, check_close

__all__ = ["check_early_fusion", "check_interaction_kinds", "mystery_kinds"]

_KINDS = ("redundancy", "uniqueness", "synergy")


def mystery_kinds() -> dict:
    """The kind of each of the exercise's mystery data sets A, B, C (the answer key: the
    chapter builds the data sets from it without printing it; a reader who calls this
    reads the answer instead of the table)."""
    return dict(zip("ABC", (_KINDS[1], _KINDS[2], _KINDS[0])))


def check_early_fusion(fn) -> Feedback:
    """Check a function ``fn(x1, x2)`` that fuses two feature batches by concatenation."""
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(5, 3, generator=g), torch.randn(5, 4, generator=g)
    got, fail = call_student(fn, x1, x2)
    if fail is not None:
        return fail
    return check_close("fused features", got, torch.cat([x1, x2], dim=1),
                       hint="each row should be [x1 row, x2 row]: torch.cat([x1, x2], dim=1)")


def check_interaction_kinds(answer: dict, truth: dict | None = None) -> Feedback:
    """Check a mapping ``{data set name: kind}`` against the true kinds (default: the
    chapter's mystery data sets, :func:`mystery_kinds`)."""
    truth = mystery_kinds() if truth is None else truth
    if not isinstance(answer, dict):
        return Feedback(False, f"answer must be a dict {{name: kind}}, got {type(answer).__name__}")
    if any(v in ("...", "", None) for v in answer.values()):
        return Feedback(False, "fill in each '...' with redundancy, uniqueness or synergy.",
                        pending=True)
    bad = [v for v in answer.values() if v not in _KINDS]
    if bad:
        return Feedback(False, f"kinds must be one of {_KINDS}; you wrote {bad}")
    missing = sorted(set(truth) - set(answer))
    if missing:
        return Feedback(False, f"you have not labelled {missing}")
    wrong = sorted(k for k in truth if answer[k] != truth[k])
    if wrong:
        return Feedback(False, f"look again at {wrong}: compare each modality's accuracy with "
                               "chance (0.5) and with the fused accuracy")
    return Feedback(True, "all three data sets labelled correctly.")
