"""Evaluation metrics of the book's tasks, grouped in blocks by task.

* retrieval (chapter 11): :func:`recall_at_k`, :func:`mean_average_precision`,
  :func:`median_rank`, from a ``(Q, G)`` similarity matrix (queries x gallery) and a
  bool relevance matrix; :func:`relevance_from_labels`, :func:`first_relevant_rank`,
  :func:`in_batch_hits`;
* sentiment (chapter 13): MAE, Pearson correlation, binary accuracy and F1 under both
  MOSI conventions, 7-class accuracy.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .utils import (
    check_choice,
    check_finite,
    check_positive_int,
    check_shape,
    to_numpy,
    to_tensor,
)

__all__ = [
    "recall_at_k", "mean_average_precision", "median_rank", "first_relevant_rank",
    "relevance_from_labels", "in_batch_hits",
    "sentiment_mae", "sentiment_pearson", "sentiment_binary", "sentiment_acc7",
    "sentiment_report", "SENTIMENT_CONVENTIONS",
]


# --- retrieval
# Tie rule (every retrieval metric here): a relevant gallery item whose score equals that
# of an irrelevant one is ranked AFTER it (pessimistic). A constant similarity therefore
# scores as badly as possible instead of as well as possible, and the numbers do not
# depend on the order of the gallery.
def _similarity(similarity) -> torch.Tensor:
    s = to_tensor(similarity, "similarity", ndim=2)  # refuses NaN / inf, naming it
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"similarity must have at least one query and one gallery item, "
                         f"got shape {tuple(s.shape)}")
    return s.to(torch.float64)


def _relevant(relevant, s: torch.Tensor) -> torch.Tensor:
    q, g = s.shape
    if relevant is None:
        if q != g:
            raise ValueError(f"relevant=None means 'query i matches gallery item i' and needs a "
                             f"square similarity, got shape {(q, g)}: pass a bool (Q, G) "
                             f"relevance matrix")
        return torch.eye(q, dtype=torch.bool, device=s.device)
    r = to_tensor(relevant, "relevant", device=s.device)
    if r.dtype != torch.bool:
        raise ValueError(f"relevant must be a bool matrix (True = relevant), got dtype {r.dtype}")
    check_shape(r, (q, g), "relevant")
    none = (~r.any(1)).nonzero().flatten()
    if len(none):
        raise ValueError(f"{len(none)} queries have no relevant gallery item (first: query "
                         f"{int(none[0])}); recall and precision are undefined for them: drop "
                         f"those rows")
    return r.to(s.device)


def relevance_from_labels(query_labels, gallery_labels) -> torch.Tensor:
    """Class-level relevance: gallery item j is relevant to query i when their labels agree.

    Shape:
        - query_labels: :math:`(Q,)`, gallery_labels: :math:`(G,)`
        - output: :math:`(Q, G)` bool

    Examples:
        >>> relevance_from_labels([0, 1], [1, 0, 1])
        tensor([[False,  True, False],
                [ True, False,  True]])
    """
    a = to_tensor(query_labels, "query_labels", ndim=1)
    b = to_tensor(gallery_labels, "gallery_labels", ndim=1, device=a.device)
    return a[:, None] == b[None, :]  # (Q, G)


def first_relevant_rank(similarity, relevant=None) -> torch.Tensor:
    r"""Rank (1 = top) of the first relevant gallery item of each query.

    .. math:: r_q = 1 + \#\{\, j \text{ irrelevant} : s_{qj} \ge \max_{i \text{ relevant}}
        s_{qi} \,\}

    (ties against the relevant item, see the module's tie rule).

    Args:
        similarity: :math:`s`, higher = more similar (a tensor or array).
        relevant: bool relevance; default the diagonal (query i matches item i).

    Shape:
        - similarity, relevant: :math:`(Q, G)`
        - output: :math:`(Q,)` int64, in :math:`[1, G]`

    Examples:
        >>> first_relevant_rank(torch.tensor([[0.9, 0.1], [0.5, 0.5]]))
        tensor([1, 2])
    """
    s = _similarity(similarity)
    r = _relevant(relevant, s)
    best = s.masked_fill(~r, -torch.inf).amax(1, keepdim=True)  # (Q, 1)
    return 1 + ((s >= best) & ~r).sum(1)  # (Q,)


def recall_at_k(similarity, k: int, relevant=None) -> float:
    r"""Recall@k: the fraction of queries with a relevant item among their k best-scored.

    .. math:: \mathrm{R@}k = \frac1Q \sum_{q=1}^{Q} [\, r_q \le k \,]

    with :math:`r_q` from :func:`first_relevant_rank` (ties against the relevant item).
    With one relevant item per query this is scikit-learn's ``top_k_accuracy_score``;
    with any number it is torchmetrics' ``RetrievalHitRate`` averaged over queries, and
    open_clip's ``R@k`` (``np.mean(preds < k)`` in ``get_clip_metrics``, ranks from 0).
    A random ranking scores :math:`k/G` in expectation.

    A k larger than the gallery is handled as those libraries do: the top k is the whole
    gallery, so every query scores 1 (for any ranking, which is why a warning says so,
    as scikit-learn's does).

    Args:
        similarity: :math:`(Q, G)` scores, higher = more similar.
        k: how many top items to look at, an int :math:`\ge 1` (:math:`k \ge G` gives 1).
        relevant: bool :math:`(Q, G)`; default the diagonal (instance retrieval). Every
            query needs at least one relevant item.

    Raises:
        ValueError: NaN/inf in ``similarity``, ``k`` not a positive int, a relevance
            matrix of the wrong shape or dtype, or a query without any relevant item.

    Warns:
        UserWarning: ``k`` is larger than the gallery (the result, 1, says nothing).

    Examples:
        >>> s = torch.tensor([[0.9, 0.5, 0.1], [0.8, 0.7, 0.2], [0.3, 0.6, 0.1]])
        >>> recall_at_k(s, 1), recall_at_k(s, 2)  # ranks of the diagonal: 1, 2, 3
        (0.3333333333333333, 0.6666666666666666)
    """
    s = _similarity(similarity)
    k = check_positive_int(k, "k")
    if k > s.shape[1]:
        warnings.warn(f"k = {k} is larger than the gallery (G = {s.shape[1]} items): the top "
                      f"k is the whole gallery and recall@k is 1 for any ranking (as in "
                      f"open_clip, torchmetrics and scikit-learn)", UserWarning, stacklevel=2)
    return (first_relevant_rank(s, relevant) <= k).double().mean().item()


def median_rank(similarity, relevant=None, convention: str = "numpy") -> float:
    r"""Median over queries of the rank of the first relevant item (1 = perfect).

    .. math::
        \mathrm{MedR} = \operatorname{median}_q\, r_q \quad (\texttt{"numpy"}), \qquad
        \mathrm{MedR} = \big\lfloor \operatorname{median}_q\, (r_q - 1) \big\rfloor + 1
        \quad (\texttt{"floor"})

    with :math:`r_q` from :func:`first_relevant_rank`. The two differ only for an even
    number of queries whose two middle ranks differ: ``"numpy"`` (``numpy.median``)
    takes their mean, e.g. 2.5; ``"floor"``, the convention of the retrieval papers'
    evaluation code (VSE++, Faghri et al. 2018, ``evaluation.py``: ``np.floor(np.median
    (ranks)) + 1`` on 0-based ranks; the same line in open_clip's ``get_clip_metrics``,
    which reports CLIP-style models' ``median_rank``), rounds down to a whole rank: 2.
    Compare with published MedR using ``"floor"``. A random ranking with one relevant
    item scores about G/2.

    Args:
        similarity: :math:`(Q, G)` scores, higher = more similar.
        relevant: bool :math:`(Q, G)`; default the diagonal.
        convention: ``"numpy"`` (default) or ``"floor"`` (the papers').

    Raises:
        ValueError: as :func:`recall_at_k`, or an unknown ``convention``.

    Examples:
        >>> s = torch.tensor([[0.9, 0.5, 0.1], [0.8, 0.7, 0.2], [0.3, 0.6, 0.1]])
        >>> median_rank(s)  # ranks 1, 2, 3
        2.0
        >>> median_rank(s[:2, :2]), median_rank(s[:2, :2], convention="floor")  # ranks 1, 2
        (1.5, 1.0)
    """
    check_choice(convention, ("numpy", "floor"), "convention")
    ranks = first_relevant_rank(similarity, relevant).cpu().numpy()
    if convention == "floor":
        return float(np.floor(np.median(ranks - 1)) + 1)
    return float(np.median(ranks))


def _average_precision(s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """AP of each row; ties ranked with the irrelevant items first."""
    order = torch.sort(r.to(torch.int8), dim=1, stable=True).indices  # irrelevant first
    s_o = torch.gather(s, 1, order)
    by_score = torch.sort(s_o, dim=1, descending=True, stable=True).indices
    hits = torch.gather(r, 1, torch.gather(order, 1, by_score)).double()  # (Q, G) in rank order
    ranks = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=torch.float64)
    precision = hits.cumsum(1) / ranks  # precision@rank
    return (precision * hits).sum(1) / hits.sum(1)  # (Q,)


def mean_average_precision(similarity, relevant=None) -> float:
    r"""Mean average precision over queries.

    .. math:: \mathrm{AP}_q = \frac{1}{|R_q|} \sum_{j \in R_q} P_q@\mathrm{rank}_q(j),
        \qquad \mathrm{mAP} = \frac1Q \sum_q \mathrm{AP}_q

    where :math:`R_q` is the set of relevant items of query q and :math:`P_q@n` the
    fraction of relevant items among its top n. Without ties this equals the mean of
    scikit-learn's ``average_precision_score(relevant[q], similarity[q])``; with ties
    we rank the relevant item after the irrelevant ones it ties with (scikit-learn
    instead counts a tied group as one threshold), so a constant score gets the lowest AP.

    Args:
        similarity: :math:`(Q, G)` scores, higher = more similar.
        relevant: bool :math:`(Q, G)`; default the diagonal (then AP = 1 / rank).

    Raises:
        ValueError: as :func:`recall_at_k`.

    Examples:
        >>> s = torch.tensor([[0.9, 0.8, 0.1]])
        >>> mean_average_precision(s, torch.tensor([[True, False, True]]))  # (1/1 + 2/3) / 2
        0.8333333333333333
    """
    s = _similarity(similarity)
    r = _relevant(relevant, s)
    return _average_precision(s, r).mean().item()


def in_batch_hits(logits: torch.Tensor, target=None) -> float:
    """How many rows of a square logit matrix score their own column highest.

    The accuracy of a contrastive batch (pick the matching item among the N in the
    batch); pass it as ``Trainer(..., accuracy_fn=in_batch_hits)``. ``target`` is
    ignored, as in :func:`mmbook.losses.clip_loss`. Ties count as misses unless the
    diagonal is the first maximum.

    Shape:
        - logits: :math:`(N, N)`
        - output: a count in [0, N]

    Examples:
        >>> in_batch_hits(torch.tensor([[2.0, 1.0], [3.0, 0.0]]))
        1.0
    """
    check_shape(logits, ("N", "N"), "logits")
    idx = torch.arange(logits.shape[0], device=logits.device)
    return float((logits.argmax(1) == idx).sum().item())


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
