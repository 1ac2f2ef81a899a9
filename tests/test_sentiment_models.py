"""Chapter 13's sentiment models (the checkers: tests/test_exercises_ch13.py)."""

from __future__ import annotations

import pytest
import torch

from mmbook.data.reviews import make_spoken_reviews, word_vectors
from mmbook.fusion import ConcatFusion, LowRankTensorFusion, TensorFusion
from mmbook.models.sentiment import (
    CrossModalSentiment,
    ModalityEncoder,
    UtteranceFusion,
    WordLevelEarlyFusion,
)
from mmbook.train import count_parameters


@pytest.fixture(scope="module")
def batch():
    ds = make_spoken_reviews(80, seed=1)["train"]
    return ds, ds.tensors[:4]


def _models(vectors):
    enc = lambda m, h: ModalityEncoder(m, h, vectors if m == "text" else None)  # noqa: E731
    return {
        "text": UtteranceFusion({"text": enc("text", 6)}, ConcatFusion((6,))),
        "tfn": UtteranceFusion({"text": enc("text", 6), "acoustic": enc("acoustic", 3),
                                "visual": enc("visual", 3)}, TensorFusion((6, 3, 3))),
        "lmf": UtteranceFusion({"text": enc("text", 6), "acoustic": enc("acoustic", 3),
                                "visual": enc("visual", 3)}, LowRankTensorFusion((6, 3, 3), 8, 2)),
        "early": WordLevelEarlyFusion(vectors, 8),
        "mult": CrossModalSentiment(vectors, 8, 2),
    }


def test_shapes_and_padding_is_ignored(batch):
    ds, (tok, ac, vi, ln) = batch
    torch.manual_seed(0)
    for name, model in _models(word_vectors(ds.vocab)).items():
        model.eval()
        out = model(tok, ac, vi, ln)
        assert out.shape == (len(tok),), name
        pad = torch.arange(tok.shape[1])[None, :] >= ln[:, None]  # (N, L)
        ac2 = ac.masked_fill(pad[..., None], 7.0)
        vi2 = vi.masked_fill(pad[..., None], -7.0)
        torch.testing.assert_close(model(tok, ac2, vi2, ln), out, msg=name)


def test_tfn_head_is_larger_than_lmf(batch):
    ds, _ = batch
    m = _models(word_vectors(ds.vocab))
    tfn_head = count_parameters(m["tfn"].head)
    assert tfn_head == (7 * 4 * 4) * 32 + 32 + 33
    assert count_parameters(m["lmf"].fusion) == 2 * (7 + 4 + 4) * 8 + 8


def test_models_reject_misaligned_inputs(batch):
    ds, (tok, ac, vi, ln) = batch
    model = _models(word_vectors(ds.vocab))["tfn"]
    with pytest.raises(ValueError, match="acoustic"):
        model(tok, ac[:, :-1], vi, ln)
    with pytest.raises(ValueError, match="visual"):
        model(tok, ac, vi[:-1], ln)
    with pytest.raises(ValueError, match="word_vectors"):
        ModalityEncoder("text", 4)
    with pytest.raises(ValueError, match="modality"):
        ModalityEncoder("audio", 4)
    with pytest.raises(ValueError, match="Fusion over 2"):
        UtteranceFusion({"acoustic": ModalityEncoder("acoustic", 3),
                         "visual": ModalityEncoder("visual", 3)}, ConcatFusion((3,)))


def test_gradient_reaches_every_parameter(batch):
    ds, (tok, ac, vi, ln) = batch
    for name, model in _models(word_vectors(ds.vocab)).items():
        model(tok, ac, vi, ln).sum().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, (name, missing)
