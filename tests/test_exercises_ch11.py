"""Chapter 11 checkers: right answers pass, each likely mistake gets its own diagnosis."""

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import hypergeom

from mmbook.exercises import ch11


def _recall(s, k, descending=True, dim=1, count=False, shift=0):
    s = s if dim == 1 else s.T
    top = torch.topk(s, k + shift, dim=1, largest=descending).indices
    hits = (top == torch.arange(len(s))[:, None]).any(1).float()
    return hits.sum() if count else hits.mean()


def test_recall_checker():
    assert ch11.check_recall_at_k(_recall)
    cases = {
        "LEAST similar": lambda s, k: _recall(s, k, descending=False),
        "columns": lambda s, k: _recall(s, k, dim=0),
        "number of hits": lambda s, k: _recall(s, k, count=True),
        "off-by-one": lambda s, k: _recall(s, k, shift=1),
        "recall@(k-1)": lambda s, k: _recall(s, max(k - 1, 1)),
        "not the fraction of queries": lambda s, k: _recall(s, k) + 0.01,
        "raised": lambda s, k: 1 / 0,
        "one number": lambda s, k: "high",
    }
    for needle, fn in cases.items():
        fb = ch11.check_recall_at_k(fn)
        assert not fb and needle in fb.message, (needle, fb.message)


def _nce(z_a, z_b, tau, norm=True, mode="div", both=True, reduction="mean"):
    a, b = (F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)) if norm else (z_a, z_b)
    s = a @ b.T
    s = {"div": s / tau, "mul": s * tau, "none": s}[mode]
    y = torch.arange(len(s))
    loss = F.cross_entropy(s, y, reduction=reduction)
    return (loss + F.cross_entropy(s.T, y, reduction=reduction)) / 2 if both else loss


def test_info_nce_checker():
    assert ch11.check_info_nce(_nce)
    cases = {
        "normalise": lambda a, b, t: _nce(a, b, t, norm=False),
        "multiplied": lambda a, b, t: _nce(a, b, t, mode="mul"),
        "forgot the temperature": lambda a, b, t: _nce(a, b, t, mode="none"),
        "one direction": lambda a, b, t: _nce(a, b, t, both=False),
        "summed": lambda a, b, t: _nce(a, b, t, reduction="sum"),
        "returned None": lambda a, b, t: None,  # pending
        "differs": lambda a, b, t: _nce(a, b, t) + 0.1,
    }
    for needle, fn in cases.items():
        fb = ch11.check_info_nce(fn)
        assert not fb and needle in fb.message, (needle, fb.message)


@pytest.mark.parametrize("G, R, k", [(1000, 100, 5), (500, 1, 10), (20, 4, 3)])
def test_chance_recall_reference_against_scipy(G, R, k):
    # P(at least one relevant among k drawn without replacement) = 1 - hypergeom.pmf(0)
    assert ch11.chance_recall(G, R, k) == pytest.approx(1 - hypergeom(G, R, k).pmf(0))


def test_chance_recall_checker():
    assert ch11.check_chance_recall(lambda G, R, k: 1 - math.comb(G - R, k) / math.comb(G, k))
    cases = {
        "ONE relevant": lambda G, R, k: k / G,
        "counts a query twice": lambda G, R, k: R * k / G,
        "WITH replacement": lambda G, R, k: 1 - (1 - R / G) ** k,
        "not the chance recall": lambda G, R, k: 0.123,
        "returned None": lambda G, R, k: None,  # pending
    }
    for needle, fn in cases.items():
        fb = ch11.check_chance_recall(fn)
        assert not fb and needle in fb.message, (needle, fb.message)


def test_checkers_name_added_directions_batch_normalisation_and_missing_complement():
    added = lambda a, b, t: 2 * _nce(a, b, t)
    assert "added the two directions" in ch11.check_info_nce(added).message

    def dim0(z_a, z_b, tau):
        return _nce(F.normalize(z_a, dim=0), F.normalize(z_b, dim=0), tau, norm=False)

    assert "dim=0" in ch11.check_info_nce(dim0).message
    none_relevant = lambda G, R, k: math.comb(G - R, k) / math.comb(G, k)
    assert "NO relevant" in ch11.check_chance_recall(none_relevant).message


def test_shape_mistakes_get_a_hint_not_a_runtime_error():
    def nce_without_keepdim(z_a, z_b, tau):
        a, b = z_a / z_a.norm(dim=1), z_b / z_b.norm(dim=1)  # (N, E) / (N,)
        y = torch.arange(len(a))
        return (F.cross_entropy(a @ b.T / tau, y) + F.cross_entropy(b @ a.T / tau, y)) / 2

    fb = ch11.check_info_nce(nce_without_keepdim)
    assert not fb and "you forgot keepdim" in fb.message and "RuntimeError" in fb.message
    other = ch11.check_info_nce(lambda a, b, t: (a / a.norm(dim=0)[:, None]).sum())
    assert not other and "shape mistake" in other.message
    assert "you forgot keepdim" not in other.message
    fb = ch11.check_recall_at_k(  # arange(Q) where arange(Q)[:, None] is meant
        lambda s, k: (s.topk(k, dim=1).indices == torch.arange(len(s))).any(1).float().mean())
    assert not fb and "torch.arange(Q)[:, None]" in fb.message, fb.message
    other = ch11.check_recall_at_k(lambda s, k: 1 / 0)  # not a shape error: said as it is
    assert "raised ZeroDivisionError" in other.message
