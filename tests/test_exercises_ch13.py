"""Chapter 13 checkers: right answers pass, each likely mistake gets its diagnosis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbook.exercises import ch13
from mmbook.metrics import sentiment_acc7, sentiment_binary


def test_check_acc2_nonzero_diagnoses():
    assert ch13.check_acc2_nonzero(lambda p, y: sentiment_binary(p, y, "non-zero")["acc2"])
    fb = ch13.check_acc2_nonzero(lambda p, y: np.mean((p >= 0) == (y >= 0)))
    assert not fb and "non-negative convention" in fb.message
    fb = ch13.check_acc2_nonzero(lambda p, y: np.mean((p[p != 0] > 0) == (y[p != 0] > 0)))
    assert not fb and "*prediction*" in fb.message
    fb = ch13.check_acc2_nonzero(lambda p, y: np.mean((p[y != 0] >= 0) == (y[y != 0] > 0)))
    assert not fb and "exactly 0 counts as negative" in fb.message
    fb = ch13.check_acc2_nonzero(lambda p, y: 100 * sentiment_binary(p, y, "non-zero")["acc2"])
    assert not fb and "percentage" in fb.message
    both = lambda p, y: (y != 0) & (p != 0)  # noqa: E731
    fb = ch13.check_acc2_nonzero(lambda p, y: np.mean((p[both(p, y)] > 0) == (y[both(p, y)] > 0)))
    assert not fb and "also dropped" in fb.message
    fb = ch13.check_acc2_nonzero(lambda p, y: None)  # not written yet: pending, not wrong
    assert not fb and fb.pending and "returned None" in fb.message
    fb = ch13.check_acc2_nonzero(lambda p, y: 1 / 0)
    assert not fb and "ZeroDivisionError" in fb.message


def test_checker_cases_look_like_predictions():
    """The cases are correlated with the targets: on independent scores any two binnings
    score about 1/7 and can agree by chance (the equal-width slip used to pass)."""
    pred, target = ch13._cases()
    assert np.corrcoef(pred, target)[0, 1] > 0.8
    assert sentiment_acc7(pred, target) > 0.4


def _equal_width_floor(p, y):
    classes = lambda x: np.clip(np.floor((np.clip(x, -3, 3) + 3) / 6 * 7), 0, 6)  # noqa: E731
    return float(np.mean(classes(p) == classes(y)))


def _equal_width_digitize(p, y):
    edges = np.linspace(-3, 3, 8)[1:-1]
    return float(np.mean(np.digitize(p, edges) == np.digitize(y, edges)))


def _equal_width_pandas(p, y):
    cut = lambda x: pd.cut(np.clip(x, -3, 3), np.linspace(-3, 3, 8), labels=False,  # noqa: E731
                           include_lowest=True)
    return float(np.mean(cut(p) == cut(y)))


def _half_up(p, y):
    classes = lambda x: np.clip(np.floor(x + 0.5), -3, 3)  # noqa: E731
    return float(np.mean(classes(p) == classes(y)))


SLIPS_ACC7 = {
    "clip": lambda p, y: np.mean(np.round(p) == np.round(y)),
    "truncate": lambda p, y: np.mean(np.clip(p.astype(int), -3, 3)
                                     == np.clip(y.astype(int), -3, 3)),
    "round the target": lambda p, y: np.mean(np.clip(np.round(p), -3, 3) == y),
    "halves up": _half_up,
    "equal width": _equal_width_floor,
}


def test_check_acc7_diagnoses():
    assert ch13.check_acc7(sentiment_acc7)
    for words, fn in SLIPS_ACC7.items():
        fb = ch13.check_acc7(fn)
        assert not fb and words in fb.message, (words, fb)
    for fn in (_equal_width_digitize, _equal_width_pandas):
        fb = ch13.check_acc7(fn)
        assert not fb and "equal width" in fb.message, (fn.__name__, fb)
    assert "expected" not in ch13.check_acc7(lambda p, y: 0.5).message  # no answer given away
    assert ch13.check_acc7(lambda p, y: None).pending


def test_acc7_slips_score_differently_on_the_cases():
    """Each slip gives another value than the right answer on the checker's data, so a
    diagnosis is never a coincidence of scores."""
    pred, target = ch13._cases()
    values = [sentiment_acc7(pred, target)] + [float(f(pred, target)) for f in SLIPS_ACC7.values()]
    assert len(set(np.round(values, 6))) == len(values), values


def _by_speaker(speakers, frac, seed):
    rng = np.random.default_rng(seed)
    ids = rng.permutation(np.unique(speakers))
    return np.isin(speakers, ids[:round(frac * len(ids))])


def _legacy_seeded(speakers, frac, seed):  # numpy's legacy generator, seeded: fine too
    ids = np.random.RandomState(seed).permutation(np.unique(speakers))
    return np.isin(speakers, ids[:round(frac * len(ids))])


def test_check_speaker_split_diagnoses():
    assert ch13.check_speaker_split(_by_speaker)
    assert ch13.check_speaker_split(_legacy_seeded)
    fb = ch13.check_speaker_split(lambda s, f, seed: np.random.default_rng(seed).random(len(s)) < f)
    assert not fb and "split the *speakers*" in fb.message
    fb = ch13.check_speaker_split(lambda s, f, seed: np.zeros(len(s), dtype=bool))
    assert not fb and "empty" in fb.message
    fb = ch13.check_speaker_split(lambda s, f, seed: (s < 15).astype(int))
    assert not fb and "bool mask" in fb.message
    fb = ch13.check_speaker_split(lambda s, f, seed: s < 15)
    assert not fb and "about 5" in fb.message


@pytest.mark.parametrize("split", [
    lambda s, f, seed: _by_speaker(s, f, 0),  # a fixed seed
    lambda s, f, seed: np.isin(s, np.unique(s)[:round(f * len(np.unique(s)))]),  # first ids
])
def test_check_speaker_split_ignoring_the_seed_fails(split):
    fb = ch13.check_speaker_split(split)
    assert not fb and "ignores `seed`" in fb.message


def test_check_speaker_split_unreproducible_fails():
    rng = np.random.default_rng(99)  # one generator for every call: not a function of seed
    fb = ch13.check_speaker_split(lambda s, f, seed: _by_speaker(s, f, int(rng.integers(1e9))))
    assert not fb and "same seed gave different splits" in fb.message
