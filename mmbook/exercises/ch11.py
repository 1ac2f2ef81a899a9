"""Checkers for chapter 11 (Contrastive learning and retrieval)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..losses import info_nce
from ..metrics import recall_at_k
from . import Feedback, call_student, check_close

__all__ = ["chance_recall", "check_recall_at_k", "check_info_nce", "check_chance_recall"]


def chance_recall(gallery_size: int, n_relevant: int, k: int) -> float:
    """Expected recall@k of a random ranking: 1 - C(G - R, k) / C(G, k) (the reference)."""
    return 1.0 - math.comb(gallery_size - n_relevant, k) / math.comb(gallery_size, k)


def _similarity(seed: int = 0) -> torch.Tensor:
    return torch.randn(12, 12, generator=torch.Generator().manual_seed(seed))


def check_recall_at_k(fn) -> Feedback:
    """Check ``fn(similarity, k)``: recall@k when query i's match is gallery item i."""
    s = _similarity()
    for k in (1, 3, 5):
        got, fail = call_student(fn, s, k)
        if fail is not None:
            return fail
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Feedback(False, f"return one number (a fraction of queries), got {got!r}")
        want = recall_at_k(s, k)
        if abs(got - want) < 1e-6:
            continue
        if abs(got - recall_at_k(-s, k)) < 1e-6:
            return Feedback(False, f"for k={k} you looked at the k LEAST similar items: sort "
                                   "in descending order (higher similarity = better)")
        if abs(got - recall_at_k(s.T, k)) < 1e-6:
            return Feedback(False, f"for k={k} you ranked the columns: each ROW is a query, "
                                   "rank along dim=1")
        if abs(got - want * len(s)) < 1e-6:
            return Feedback(False, "you returned the number of hits: divide by the number "
                                   "of queries")
        if k > 1 and abs(got - recall_at_k(s, k - 1)) < 1e-6:
            return Feedback(False, f"for k={k} you got recall@{k - 1}: with 1-based ranks a "
                                   "hit is rank <= k (with 0-based positions, position < k)")
        if k < len(s) and abs(got - recall_at_k(s, k + 1)) < 1e-6:
            return Feedback(False, f"for k={k} you got recall@{k + 1}: an off-by-one, the top "
                                   "k items are positions 0 .. k-1")
        return Feedback(False, f"recall@{k} should be {want:.4f}, you gave {got:.4f}")
    return Feedback(True, "recall@1, @3 and @5 match mmbook.metrics.recall_at_k.")


def check_info_nce(fn) -> Feedback:
    """Check ``fn(z_a, z_b, tau)`` against :func:`mmbook.losses.info_nce` (symmetric)."""
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    tau = 0.2
    got, fail = call_student(fn, z_a, z_b, tau)
    if fail is not None:
        return fail
    if got is None or not torch.is_tensor(got) or got.numel() != 1:
        return Feedback(False, f"return the loss as a scalar tensor, got {got!r}")
    got, want = float(got), float(info_nce(z_a, z_b, tau))
    if abs(got - want) < 1e-5:
        return Feedback(True, "your InfoNCE matches mmbook.losses.info_nce.")
    labels = torch.arange(6)
    raw = z_a @ z_b.T
    cos = F.normalize(z_a, dim=1) @ F.normalize(z_b, dim=1).T
    mistakes = {
        "you did not L2-normalise the embeddings: use cosine similarities":
            (F.cross_entropy(raw / tau, labels) + F.cross_entropy(raw.T / tau, labels)) / 2,
        "you multiplied by the temperature: divide the similarities by tau":
            (F.cross_entropy(cos * tau, labels) + F.cross_entropy(cos.T * tau, labels)) / 2,
        "you forgot the temperature": (F.cross_entropy(cos, labels)
                                       + F.cross_entropy(cos.T, labels)) / 2,
        "only one direction: average the a->b loss (rows) and the b->a loss (columns)":
            F.cross_entropy(cos / tau, labels),
        "you summed over the batch: InfoNCE is the mean over the N pairs":
            (F.cross_entropy(cos / tau, labels, reduction="sum")
             + F.cross_entropy(cos.T / tau, labels, reduction="sum")) / 2,
    }
    for message, value in mistakes.items():
        if abs(got - float(value)) < 1e-5:
            return Feedback(False, message)
    return check_close("the loss", got, want,
                       hint="logits = cos / tau, target = arange(N), cross-entropy both ways")


def check_chance_recall(fn) -> Feedback:
    """Check ``fn(G, R, k)``: the expected recall@k of a random ranking with R relevant items."""
    cases = [(1000, 100, 5), (500, 1, 10), (20, 4, 3)]
    for G, R, k in cases:
        got, fail = call_student(fn, G, R, k)
        if fail is not None:
            return fail
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Feedback(False, f"return a probability, got {got!r}")
        want = chance_recall(G, R, k)
        if abs(got - want) < 1e-9:
            continue
        if abs(got - k / G) < 1e-9:
            return Feedback(False, f"k/G = {k / G:.4f} holds for ONE relevant item; with R = {R} "
                                   "any of them in the top k counts")
        if abs(got - R * k / G) < 1e-9:
            return Feedback(False, "R k / G counts a query twice when two relevant items are "
                                   "in its top k (it can exceed 1): compute P(no relevant item "
                                   "in the top k) instead")
        if abs(got - (1 - (1 - R / G) ** k)) < 1e-9:
            return Feedback(False, "close: (1 - R/G)^k draws the top k WITH replacement; the k "
                                   "items are distinct, so P(none relevant) = C(G-R, k) / C(G, k)")
        return Feedback(False, f"for G={G}, R={R}, k={k} the answer is {want:.4f}, you gave "
                               f"{got:.4f}")
    return Feedback(True, "1 - C(G-R, k)/C(G, k): right for all three cases.")
