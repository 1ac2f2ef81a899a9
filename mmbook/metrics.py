"""Evaluation metrics of the book's tasks, one block per task."""

from __future__ import annotations

import numpy as np

from .utils import check_finite, to_numpy

__all__ = [
    "sentiment_mae", "sentiment_pearson", "sentiment_binary", "sentiment_acc7",
    "sentiment_report", "SENTIMENT_CONVENTIONS",
]


# --- sentiment
# CMU-MOSI's protocol (Zadeh et al., 2016): a score in [-3, 3] per utterance, evaluated as
# a regression (MAE, Pearson r), as a binary task (Acc-2, F1) and as a 7-class task
# (Acc-7). The literature uses two binary conventions, and papers often do not say which:
# "non-negative" (negative < 0 against non-negative >= 0, all items) and "non-zero"
# (negative < 0 against positive > 0, items whose true score is exactly 0 removed).

SENTIMENT_CONVENTIONS = ("non-negative", "non-zero")


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(to_numpy(pred), dtype=np.float64)
    y = np.asarray(to_numpy(target), dtype=np.float64)
    if p.ndim != 1 or y.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"pred and target must be 1-D of the same length (N,), got shapes "
                         f"{p.shape} and {y.shape}")
    if p.size == 0:
        raise ValueError("pred and target are empty")
    check_finite(p, "pred"), check_finite(y, "target")
    return p, y


def sentiment_mae(pred, target) -> float:
    r"""Mean absolute error, :math:`\frac1N \sum_i |\hat y_i - y_i|`.

    Examples:
        >>> sentiment_mae([1.0, -2.0], [0.5, -3.0])
        0.75
    """
    p, y = _pair(pred, target)
    return float(np.abs(p - y).mean())


def sentiment_pearson(pred, target) -> float:
    r"""Pearson correlation :math:`r = \frac{\sum (\hat y_i - \bar{\hat y})(y_i - \bar y)}
    {\sqrt{\sum (\hat y_i - \bar{\hat y})^2 \sum (y_i - \bar y)^2}}`; NaN if either is
    constant (a model that predicts one value has no correlation to report).

    Examples:
        >>> round(sentiment_pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]), 4)
        0.9934
    """
    p, y = _pair(pred, target)
    dp, dy = p - p.mean(), y - y.mean()
    denom = np.sqrt((dp ** 2).sum() * (dy ** 2).sum())
    return float((dp * dy).sum() / denom) if denom > 0 else float("nan")


def _binary(p, y, convention: str):
    if convention == "non-negative":
        return p >= 0, y >= 0
    if convention == "non-zero":
        keep = y != 0
        return p[keep] > 0, y[keep] > 0
    raise ValueError(f"convention must be one of {SENTIMENT_CONVENTIONS}, got {convention!r}")


def sentiment_binary(pred, target, convention: str = "non-negative") -> dict:
    """Binary accuracy and F1 (weighted over the two classes, as MOSI papers report it).

    Args:
        pred, target: ``(N,)`` scores.
        convention: ``"non-negative"``: negative (< 0) vs non-negative (>= 0), all items;
            ``"non-zero"``: negative (< 0) vs positive (> 0), items with target 0 removed
            (a prediction of exactly 0 then counts as negative).

    Returns:
        ``{"acc2": ..., "f1": ..., "n": items scored}``.

    Examples:
        >>> sentiment_binary([0.5, -1.0, 0.2], [1.0, -2.0, 0.0])["acc2"]
        1.0
        >>> sentiment_binary([0.5, -1.0, -0.2], [1.0, -2.0, 0.0], "non-zero")["n"]
        2
    """
    p, y = _pair(pred, target)
    bp, by = _binary(p, y, convention)
    if by.size == 0:
        raise ValueError("no item left to score: every target is 0 under 'non-zero'")
    return {"acc2": float((bp == by).mean()), "f1": _weighted_f1(bp, by), "n": int(by.size)}


def _weighted_f1(bp: np.ndarray, by: np.ndarray) -> float:
    """F1 of each class, averaged with the classes' support as weights."""
    f1s, weights = [], []
    for c in (False, True):
        tp = np.sum((bp == c) & (by == c))
        fp, fn = np.sum((bp == c) & (by != c)), np.sum((bp != c) & (by == c))
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
        weights.append(np.sum(by == c))
    return float(np.dot(f1s, weights) / np.sum(weights))


def sentiment_acc7(pred, target) -> float:
    """7-class accuracy: both scores rounded to the nearest integer and clipped to [-3, 3].

    (``np.round`` rounds halves to even, as the MOSI evaluation code does.)

    Examples:
        >>> sentiment_acc7([2.6, -0.4, 5.0], [3.0, 0.0, 2.6])
        1.0
    """
    p, y = _pair(pred, target)
    return float((np.clip(np.round(p), -3, 3) == np.clip(np.round(y), -3, 3)).mean())


def sentiment_report(pred, target) -> dict:
    """Every MOSI metric at once: MAE, Corr, Acc-2 and F1 under both conventions, Acc-7.

    Examples:
        >>> sorted(sentiment_report([1.0, -1.0, 0.5], [2.0, -0.5, 1.0]))
        ['acc2', 'acc2_nonzero', 'acc7', 'corr', 'f1', 'f1_nonzero', 'mae']
    """
    nonneg = sentiment_binary(pred, target, "non-negative")
    y = np.asarray(to_numpy(target))
    nonzero = (sentiment_binary(pred, target, "non-zero") if np.any(y != 0)
               else {"acc2": float("nan"), "f1": float("nan")})
    return {"mae": sentiment_mae(pred, target), "corr": sentiment_pearson(pred, target),
            "acc2": nonneg["acc2"], "f1": nonneg["f1"], "acc2_nonzero": nonzero["acc2"],
            "f1_nonzero": nonzero["f1"], "acc7": sentiment_acc7(pred, target)}
