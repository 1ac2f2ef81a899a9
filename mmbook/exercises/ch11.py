"""Checkers for chapter 11 (Contrastive learning and retrieval)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..losses import info_nce
from ..metrics import recall_at_k
from . import Feedback, call_student, check_close, shape_error_hint

__all__ = ["chance_recall", "check_recall_at_k", "check_info_nce", "check_chance_recall"]


def chance_recall(gallery_size: int, n_relevant: int, k: int) -> float:
    """Expected recall@k of a random ranking: 1 - C(G - R, k) / C(G, k) (the reference)."""
    return 1.0 - math.comb(gallery_size - n_relevant, k) / math.comb(gallery_size, k)


def _similarity(seed: int = 0) -> torch.Tensor:
    """40 queries whose match (the diagonal) is often, not always, the most similar item."""
    g = torch.Generator().manual_seed(seed)
    return 1.5 * torch.eye(40) + torch.randn(40, 40, generator=g)


def check_recall_at_k(fn) -> Feedback:
    """Check ``fn(similarity, k)``: recall@k when query i's match is gallery item i."""
    s, ks = _similarity(), (1, 3, 5)
    got = []
    for k in ks:
        value, fail = call_student(fn, s, k)
        if fail is not None:
            return shape_error_hint(fail, "compare each query's top k, shape (Q, k), with "
                                          "its OWN index: torch.arange(Q)[:, None], shape "
                                          "(Q, 1) (torch.arange(Q) alone is (Q,) and lines "
                                          "up with the k columns)")
        try:
            got.append(float(value))
        except (TypeError, ValueError):
            return Feedback(False, f"return one number (a fraction of queries), got {value!r}")
    want = [recall_at_k(s, k) for k in ks]
    if all(abs(a - b) < 1e-6 for a, b in zip(got, want)):
        return Feedback(True, "recall@1, @3 and @5 match mmbook.metrics.recall_at_k.")
    mistakes = {
        "you looked at the k LEAST similar items: sort in descending order (higher "
        "similarity = better)": [recall_at_k(-s, k) for k in ks],
        "you ranked the columns: each ROW is a query, rank along dim=1":
            [recall_at_k(s.T, k) for k in ks],
        "you returned the number of hits: divide by the number of queries":
            [w * len(s) for w in want],
        "you computed recall@(k-1): with 1-based ranks a hit is rank <= k (with 0-based "
        "positions, position < k)": [recall_at_k(s, max(k - 1, 1)) for k in ks],
        "an off-by-one: you computed recall@(k+1), the top k items are positions 0 .. k-1":
            [recall_at_k(s, k + 1) for k in ks],
    }
    for message, values in mistakes.items():
        if all(abs(a - b) < 1e-6 for a, b in zip(got, values)):
            return Feedback(False, message)
    return Feedback(False, f"you gave recall@(1, 3, 5) = {[round(g, 4) for g in got]}, not "
                           "the fraction of queries whose match is in the top k")


def _missing_keepdim(fn, tau: float) -> str:
    """The hint for a shape error in InfoNCE: with N = E the reader's function runs, and a
    norm without keepdim shows as each column divided by another row's norm."""
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    a, b = z_a / z_a.norm(dim=1), z_b / z_b.norm(dim=1)  # the mistake: (N, E) / (N,)
    labels = torch.arange(4)
    wrong = (F.cross_entropy(a @ b.T / tau, labels) + F.cross_entropy(b @ a.T / tau, labels)) / 2
    try:
        keepdim_missing = abs(float(fn(z_a, z_b, tau)) - float(wrong)) < 1e-5
    except Exception:
        keepdim_missing = False
    hint = ("z.norm(dim=1) has shape (N,), and (N, E) / (N,) divides the columns, not the "
            "rows: keep the dimension, z / z.norm(dim=1, keepdim=True), or use "
            "F.normalize(z, dim=1)")
    return ("you forgot keepdim: " if keepdim_missing else "check every norm or sum over "
            "dim 1: ") + hint


def check_info_nce(fn) -> Feedback:
    """Check ``fn(z_a, z_b, tau)`` against :func:`mmbook.losses.info_nce` (symmetric)."""
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    tau = 0.2
    got, fail = call_student(fn, z_a, z_b, tau)
    if fail is not None:
        return shape_error_hint(fail, _missing_keepdim(fn, tau))
    if got is None or not torch.is_tensor(got) or got.numel() != 1:
        return Feedback(False, f"return the loss as a scalar tensor, got {got!r}")
    got, want = float(got), float(info_nce(z_a, z_b, tau))
    if abs(got - want) < 1e-5:
        return Feedback(True, "your InfoNCE matches mmbook.losses.info_nce.")
    labels = torch.arange(6)
    raw = z_a @ z_b.T
    cos = F.normalize(z_a, dim=1) @ F.normalize(z_b, dim=1).T
    cos0 = F.normalize(z_a, dim=0) @ F.normalize(z_b, dim=0).T
    mistakes = {
        "you did not L2-normalise the embeddings: use cosine similarities":
            (F.cross_entropy(raw / tau, labels) + F.cross_entropy(raw.T / tau, labels)) / 2,
        "you multiplied by the temperature: divide the similarities by tau":
            (F.cross_entropy(cos * tau, labels) + F.cross_entropy(cos.T * tau, labels)) / 2,
        "you forgot the temperature": (F.cross_entropy(cos, labels)
                                       + F.cross_entropy(cos.T, labels)) / 2,
        "you added the two directions: average them, (a->b + b->a) / 2":
            F.cross_entropy(cos / tau, labels) + F.cross_entropy(cos.T / tau, labels),
        "you normalised along the batch (dim=0): each embedding, each ROW, must have norm 1 "
        "(F.normalize(z, dim=1))": (F.cross_entropy(cos0 / tau, labels)
                                    + F.cross_entropy(cos0.T / tau, labels)) / 2,
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
        if abs(got - (1 - want)) < 1e-9:
            return Feedback(False, "that is the probability that NO relevant item is in the "
                                   "top k: recall@k is 1 minus it")
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
        return Feedback(False, f"for G={G}, R={R}, k={k} you gave {got:.4f}, which is not "
                               "the chance recall: 1 - P(no relevant item in the top k)")
    return Feedback(True, "1 - C(G-R, k)/C(G, k): right for all three cases.")
