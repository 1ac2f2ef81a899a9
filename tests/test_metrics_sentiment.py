"""Sentiment metrics (mmbook.metrics, the '--- sentiment' block) against scikit-learn/scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error

from mmbook.metrics import (
    sentiment_acc7,
    sentiment_binary,
    sentiment_mae,
    sentiment_pearson,
    sentiment_report,
)


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(-3, 3, 200) * 3) / 3
    y[:15] = 0.0
    p = y + rng.normal(0, 1.2, 200)
    p[15:20] = 0.0
    return p, y


def test_mae_and_pearson_match_references(scores):
    p, y = scores
    assert sentiment_mae(p, y) == pytest.approx(mean_absolute_error(y, p))
    assert sentiment_pearson(p, y) == pytest.approx(pearsonr(p, y)[0])
    assert sentiment_mae(torch.tensor(p), torch.tensor(y)) == pytest.approx(sentiment_mae(p, y))
    assert np.isnan(sentiment_pearson(np.ones(5), np.arange(5.0)))


def test_binary_conventions_match_sklearn(scores):
    p, y = scores
    r = sentiment_binary(p, y, "non-negative")
    assert r["acc2"] == pytest.approx(accuracy_score(y >= 0, p >= 0))
    assert r["f1"] == pytest.approx(f1_score(y >= 0, p >= 0, average="weighted"))
    assert r["n"] == 200
    keep = y != 0
    r = sentiment_binary(p, y, "non-zero")
    assert r["n"] == keep.sum()
    assert r["acc2"] == pytest.approx(accuracy_score(y[keep] > 0, p[keep] > 0))
    assert r["f1"] == pytest.approx(f1_score(y[keep] > 0, p[keep] > 0, average="weighted"))
    assert r["acc2"] != pytest.approx(sentiment_binary(p, y)["acc2"])  # they differ here


def test_acc7_rounds_and_clips(scores):
    p, y = scores
    want = accuracy_score(np.clip(np.round(y), -3, 3).astype(int),
                          np.clip(np.round(p), -3, 3).astype(int))
    assert sentiment_acc7(p, y) == pytest.approx(want)
    assert sentiment_acc7([3.7, -4.2, 2.4], [3.0, -3.0, 2.0]) == 1.0


def test_report_has_every_metric(scores):
    p, y = scores
    r = sentiment_report(p, y)
    assert r["acc2"] == sentiment_binary(p, y)["acc2"]
    assert r["f1_nonzero"] == sentiment_binary(p, y, "non-zero")["f1"]
    assert r["acc7"] == sentiment_acc7(p, y) and r["mae"] == sentiment_mae(p, y)


def test_bad_input():
    with pytest.raises(ValueError, match=r"same length \(N,\).*\(3,\) and \(2,\)"):
        sentiment_mae([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        sentiment_mae(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        sentiment_pearson([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="convention must be one of"):
        sentiment_binary([1.0], [1.0], "positive")
    with pytest.raises(ValueError, match="no item left"):
        sentiment_binary([1.0, -1.0], [0.0, 0.0], "non-zero")
    with pytest.raises(ValueError, match="empty"):
        sentiment_acc7([], [])
