"""make_interactions: the stated structure holds, measured with flexible classifiers."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

from mmbook.data import INTERACTION_KINDS, make_interactions


def _acc(model, Xtr, ytr, Xte, yte):
    return model.fit(Xtr, ytr).score(Xte, yte)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _accuracies(kind, n=4000, seed=0):
    """Held-out accuracy from modality 1, modality 2 and both, with two model families."""
    x1, x2, y = (a.numpy() for a in make_interactions(kind, n=n, seed=seed).tensors)
    tr, te = slice(0, n // 2), slice(n // 2, n)
    out = {}
    for name, X in (("x1", x1), ("x2", x2), ("both", np.hstack([x1, x2]))):
        knn = _acc(KNeighborsClassifier(15), X[tr], y[tr], X[te], y[te])
        gbt = _acc(HistGradientBoostingClassifier(max_iter=100, random_state=0),
                   X[tr], y[tr], X[te], y[te])
        mlp = _acc(MLPClassifier((32,), max_iter=1000, random_state=0),
                   X[tr], y[tr], X[te], y[te])
        out[name] = max(knn, gbt, mlp)  # the best of three flexible model families
    return out


def test_shapes_dtypes_and_balance():
    for kind in INTERACTION_KINDS:
        x1, x2, y = make_interactions(kind, n=500, seed=1, dim=5).tensors
        assert x1.shape == (500, 5) and x2.shape == (500, 5) and y.shape == (500,)
        assert x1.dtype == torch.float32 and y.dtype == torch.int64
        assert set(y.tolist()) == {0, 1}
        assert 0.4 < y.float().mean().item() < 0.6


def test_deterministic_given_seed():
    a = make_interactions("synergy", n=100, seed=3)
    b = make_interactions("synergy", n=100, seed=3)
    c = make_interactions("synergy", n=100, seed=4)
    for u, v in zip(a.tensors, b.tensors):
        assert torch.equal(u, v)
    assert not torch.equal(a.x1, c.x1)


def test_synergy_neither_alone_both_together():
    acc = _accuracies("synergy")
    assert acc["x1"] < 0.56 and acc["x2"] < 0.56, acc  # chance is 0.5
    assert acc["both"] > 0.85, acc


def test_redundancy_each_alone_suffices():
    acc = _accuracies("redundancy")
    assert acc["x1"] > 0.9 and acc["x2"] > 0.9, acc


def test_uniqueness_only_first_modality_informative():
    acc = _accuracies("uniqueness")
    assert acc["x1"] > 0.9, acc
    assert acc["x2"] < 0.56, acc


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(kind="xor"), "kind must be one of"),
        (dict(kind="synergy", n=0), "n must be a positive int"),
        (dict(kind="synergy", n=-5), "n must be a positive int"),
        (dict(kind="synergy", n=2.5), "n must be a positive int"),
        (dict(kind="synergy", dim=0), "dim must be a positive int"),
        (dict(kind="redundancy", margin=0), "margin must be a finite number > 0"),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_interactions(**kwargs)
