"""mmbook.metrics, retrieval block: hand-computed cases, scikit-learn where it has the
same metric, the tie rule, and bad input."""

import contextlib

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, top_k_accuracy_score

from mmbook.metrics import (
    first_relevant_rank,
    in_batch_hits,
    mean_average_precision,
    median_rank,
    recall_at_k,
    relevance_from_labels,
)

# 3 queries x 4 gallery items; the diagonal item ranks 1, 1, 3
S = torch.tensor([[0.9, 0.2, 0.1, 0.0],
                  [0.5, 0.7, 0.3, 0.1],
                  [0.3, 0.4, 0.2, 0.1]])
DIAG = torch.eye(3, 4, dtype=torch.bool)


def test_hand_computed_instance_case():
    assert first_relevant_rank(S, DIAG).tolist() == [1, 1, 3]
    assert recall_at_k(S, 1, DIAG) == pytest.approx(2 / 3)
    assert recall_at_k(S, 2, DIAG) == pytest.approx(2 / 3)
    assert recall_at_k(S, 3, DIAG) == pytest.approx(1.0)
    assert median_rank(S, DIAG) == 1.0
    assert median_rank(S[1:], DIAG[1:]) == 2.0  # even Q: mean of the middle ranks 1 and 3
    assert mean_average_precision(S, DIAG) == pytest.approx((1 + 1 + 1 / 3) / 3)


def test_hand_computed_class_case():
    rel = torch.tensor([[False, True, False, True],   # ranks of relevant: 2, 4
                        [True, False, True, False]])  # ranks: 2, 3
    s = S[:2]
    assert first_relevant_rank(s, rel).tolist() == [2, 2]
    assert mean_average_precision(s, rel) == pytest.approx(((1 / 2 + 2 / 4) / 2
                                                            + (1 / 2 + 2 / 3) / 2) / 2)
    assert recall_at_k(s, 1, rel) == 0.0 and recall_at_k(s, 2, rel) == 1.0


def test_default_relevance_is_the_diagonal():
    s = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(5, dtype=torch.bool)
    assert recall_at_k(s, 2) == recall_at_k(s, 2, eye)
    assert mean_average_precision(s) == mean_average_precision(s, eye)
    assert median_rank(s) == median_rank(s, eye)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_recall_equals_sklearn_top_k_accuracy(k):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(40, 25))
    truth = rng.integers(0, 25, size=40)  # one relevant item per query
    rel = np.zeros((40, 25), dtype=bool)
    rel[np.arange(40), truth] = True
    ref = top_k_accuracy_score(truth, s, k=k, labels=np.arange(25))
    assert recall_at_k(s, k, rel) == pytest.approx(ref)


def test_map_equals_mean_of_sklearn_average_precision():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(30, 50))
    labels_q, labels_g = rng.integers(0, 5, 30), rng.integers(0, 5, 50)
    rel = relevance_from_labels(labels_q, labels_g).numpy()
    assert rel.any(1).all()
    ref = np.mean([average_precision_score(rel[q], s[q]) for q in range(30)])
    assert mean_average_precision(s, rel) == pytest.approx(ref)


def test_median_rank_equals_numpy_on_the_ranks():
    rng = np.random.default_rng(2)
    s = rng.normal(size=(20, 20))
    ranks = (s > s[np.arange(20), np.arange(20)][:, None]).sum(1) + 1  # by hand, no ties
    assert median_rank(s) == float(np.median(ranks))
    assert first_relevant_rank(s).numpy().tolist() == ranks.tolist()


def _open_clip_ranks(s: torch.Tensor) -> np.ndarray:
    """0-based rank of the diagonal item, as open_clip's get_clip_metrics computes it
    (src/open_clip_train/train.py): argsort descending, position of the ground truth."""
    ranking = torch.argsort(s, descending=True)
    ground_truth = torch.arange(len(s)).view(-1, 1)
    return torch.where(ranking == ground_truth)[1].numpy()


def test_median_rank_floor_convention_equals_the_papers_code():
    """open_clip / VSE++: MedR = floor(median of 0-based ranks) + 1."""
    differs = 0
    for seed in range(5):
        s = torch.from_numpy(np.random.default_rng(seed).normal(size=(20, 20)))  # no ties
        preds = _open_clip_ranks(s)
        assert median_rank(s, convention="floor") == np.floor(np.median(preds)) + 1
        assert median_rank(s, convention="numpy") == np.median(preds + 1)
        differs += median_rank(s, convention="floor") != median_rank(s)
    assert differs > 0  # an even Q with different middle ranks: the conventions differ


@pytest.mark.parametrize("k", [1, 3, 25, 40])
def test_recall_equals_torchmetrics_and_open_clip_for_any_k(k):
    """k beyond the gallery (G = 25) follows torchmetrics, open_clip and scikit-learn: the
    top k is the whole gallery, recall 1, with a warning (as scikit-learn's)."""
    tm = pytest.importorskip("torchmetrics.retrieval")
    rng = np.random.default_rng(3)
    s = torch.from_numpy(rng.normal(size=(30, 25)))  # no ties
    rel = relevance_from_labels(torch.from_numpy(rng.integers(0, 4, 30)),
                                torch.from_numpy(rng.integers(0, 4, 25)))
    keep = rel.any(1)
    s, rel = s[keep], rel[keep]
    hit_rate = tm.RetrievalHitRate(top_k=k)
    indexes = torch.arange(len(s))[:, None].expand_as(s)
    want = hit_rate(s.flatten(), rel.flatten(), indexes=indexes.flatten()).item()
    square = torch.from_numpy(rng.normal(size=(25, 25)))
    with pytest.warns(UserWarning, match="larger than the gallery") if k > 25 else \
            contextlib.nullcontext():
        assert recall_at_k(s, k, rel) == pytest.approx(want)
        assert recall_at_k(square, k) == pytest.approx(np.mean(_open_clip_ranks(square) < k))


def test_ties_are_ranked_against_the_relevant_item():
    const = torch.zeros(4, 4)
    assert first_relevant_rank(const).tolist() == [4, 4, 4, 4]
    assert recall_at_k(const, 3) == 0.0 and recall_at_k(const, 4) == 1.0
    assert median_rank(const) == 4.0
    assert mean_average_precision(const) == pytest.approx(0.25)
    # ties among relevant items do not hurt: two relevant items tied at the top
    s = torch.tensor([[1.0, 1.0, 0.0]])
    assert first_relevant_rank(s, torch.tensor([[True, True, False]])).item() == 1
    assert mean_average_precision(s, torch.tensor([[True, True, False]])) == 1.0
    # the order of the gallery does not matter
    perm = torch.tensor([2, 0, 3, 1])
    assert mean_average_precision(const[:, perm], torch.eye(4, dtype=torch.bool)[:, perm]) \
        == mean_average_precision(const)


def test_relevance_from_labels_and_in_batch_hits():
    r = relevance_from_labels(torch.tensor([1, 2]), torch.tensor([2, 1, 1]))
    assert r.tolist() == [[False, True, True], [True, False, False]]
    logits = torch.tensor([[3.0, 1.0, 0.0], [5.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    assert in_batch_hits(logits, torch.tensor([7, 7, 7])) == 2.0


@pytest.mark.parametrize("call, match", [
    (lambda: recall_at_k(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]), 1), "similarity"),
    (lambda: mean_average_precision(np.array([[np.inf, 0.0], [0.0, 1.0]])), "similarity"),
    (lambda: median_rank(S, DIAG, convention="mean"), "convention"),
    (lambda: recall_at_k(S, 0, DIAG), "k must be a positive int"),
    (lambda: recall_at_k(S, 1.5, DIAG), "k must be a positive int"),
    (lambda: recall_at_k(S, 1), "square"),
    (lambda: recall_at_k(S, 1, DIAG[:, :3]), "relevant"),
    (lambda: recall_at_k(S, 1, DIAG.T), "relevant"),
    (lambda: recall_at_k(S, 1, DIAG.float()), "bool"),
    (lambda: mean_average_precision(S, torch.zeros(3, 4, dtype=torch.bool)), "no relevant"),
    (lambda: median_rank(S, torch.tensor([[True] * 4, [False] * 4, [True] * 4])),
     "query 1"),
    (lambda: recall_at_k(torch.zeros(3), 1), "2-D"),
    (lambda: in_batch_hits(torch.zeros(2, 3)), "logits"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
