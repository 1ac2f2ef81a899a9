"""Checkers for chapter 13 (Multimodal sentiment analysis)."""

from __future__ import annotations

import numpy as np

from ..metrics import sentiment_acc7, sentiment_binary
from . import Feedback, call_student

__all__ = ["check_acc2_nonzero", "check_acc7", "check_speaker_split"]


def _cases():
    rng = np.random.default_rng(13)
    target = np.round(rng.uniform(-3, 3, 60) * 3) / 3
    target[:8] = 0.0  # exact zeros: the two binary conventions differ on them
    pred = rng.uniform(-3.8, 3.8, 60)
    pred[8:12] = 0.0  # predictions of exactly 0
    pred[12:16] = (-3.6, 3.7, 2.5, -0.5)  # beyond the scale, and halves
    return pred, target


def _as_float(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def check_acc2_nonzero(fn) -> Feedback:
    """Check ``fn(pred, target)``: binary accuracy, negative vs positive, zeros removed."""
    pred, target = _cases()
    got, fail = call_student(fn, pred, target, name="acc2_nonzero")
    if fail is not None:
        return fail
    got = _as_float(got)
    if got is None:
        return Feedback(False, "return one number (the accuracy), e.g. a float")
    want = sentiment_binary(pred, target, "non-zero")["acc2"]
    if np.isclose(got, want):
        return Feedback(True, f"Acc-2 (non-zero) = {want:.4f}.")
    keep_pred = pred != 0
    if np.isclose(got, 100 * want):
        return Feedback(False, "return a fraction in [0, 1], not a percentage")
    both = (target != 0) & (pred != 0)
    if np.isclose(got, np.mean((pred[both] > 0) == (target[both] > 0))):
        return Feedback(False, "you also dropped the items whose *prediction* is 0; only a "
                               "true score of 0 is removed, a prediction of 0 counts as "
                               "negative")
    if np.isclose(got, sentiment_binary(pred, target, "non-negative")["acc2"]):
        return Feedback(False, "this is the non-negative convention: drop the items whose "
                               "*target* is exactly 0 first")
    if np.isclose(got, np.mean((pred[keep_pred] > 0) == (target[keep_pred] > 0))):
        return Feedback(False, "you dropped the items whose *prediction* is 0; the convention "
                               "drops those whose *target* (true score) is 0")
    keep = target != 0
    if np.isclose(got, np.mean((pred[keep] >= 0) == (target[keep] > 0))):
        return Feedback(False, "almost: on the kept items, 'positive' means pred > 0, so a "
                               "prediction of exactly 0 counts as negative")
    return Feedback(False, f"you gave {got:.4f}, not Acc-2: keep target != 0, then "
                           f"compare (pred > 0) with (target > 0)")


def check_acc7(fn) -> Feedback:
    """Check ``fn(pred, target)``: 7-class accuracy (round, clip to [-3, 3], compare)."""
    pred, target = _cases()
    got, fail = call_student(fn, pred, target, name="acc7")
    if fail is not None:
        return fail
    got = _as_float(got)
    if got is None:
        return Feedback(False, "return one number (the accuracy), e.g. a float")
    want = sentiment_acc7(pred, target)
    if np.isclose(got, want):
        return Feedback(True, f"Acc-7 = {want:.4f}.")
    # two small probes tell apart slips that can give the same accuracy on the case above
    beyond, _ = call_student(fn, np.array([3.7, 0.0]), np.array([3.0, 0.0]), name="acc7")
    half, _ = call_student(fn, np.array([2.5, 0.0]), np.array([2.0, 0.0]), name="acc7")
    if _as_float(beyond) == 1.0 and _as_float(half) == 0.5:
        return Feedback(False, "you rounded halves up (2.5 -> 3); the convention, np.round "
                               "as in MOSI's evaluation code, rounds them to even (2.5 -> 2)")
    if np.isclose(got, np.mean(np.round(pred) == np.round(target))):
        return Feedback(False, "clip the rounded scores to [-3, 3]: a prediction of 3.7 "
                               "rounds to 4, which is class 3")
    if np.isclose(got, np.mean(np.clip(np.trunc(pred), -3, 3)
                               == np.clip(np.trunc(target), -3, 3))):
        return Feedback(False, "int() and astype(int) truncate towards zero (2.9 -> 2); "
                               "round to the nearest integer with np.round")
    if np.isclose(got, np.mean(np.clip(np.round(pred), -3, 3) == target)):
        return Feedback(False, "round the target too: MOSI's scores are averages of "
                               "annotators (e.g. 1.33), not integers")
    return Feedback(False, f"you gave {got:.4f}, not Acc-7: round, clip to [-3, 3], compare")


def check_speaker_split(fn) -> Feedback:
    """Check ``fn(speakers, test_fraction, seed)`` -> bool mask of the test utterances,
    with no speaker on both sides and about ``test_fraction`` of the speakers in test."""
    rng = np.random.default_rng(5)
    speakers = rng.integers(0, 20, 400)
    got, fail = call_student(fn, speakers, 0.25, 0, name="your split")
    if fail is not None:
        return fail
    mask = np.asarray(got)
    if mask.shape != speakers.shape or mask.dtype != bool:
        return Feedback(False, f"return a bool mask of shape {speakers.shape} (True = test), "
                               f"got dtype {mask.dtype} and shape {mask.shape}")
    if not mask.any() or mask.all():
        return Feedback(False, "the test set (or the training set) is empty")
    leaked = set(speakers[mask]) & set(speakers[~mask])
    if leaked:
        return Feedback(False, f"speakers {sorted(leaked)[:5]} are in both sets: you split "
                               f"the utterances, split the *speakers* instead (np.isin)")
    n_test = len(set(speakers[mask]))
    if not 3 <= n_test <= 7:
        return Feedback(False, f"{n_test} of 20 speakers are in test; test_fraction=0.25 "
                               f"asks for about 5")
    return Feedback(True, f"{n_test} test speakers, none seen in training.")
