"""The spoken-reviews data (chapter 13): determinism, the protocol, the stated structure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from mmbook.data.base import ModalityDataset
from mmbook.data.reviews import (
    REVIEW_WORDS,
    SpokenReviews,
    check_speaker_splits,
    make_spoken_reviews,
    review_lexicon,
    word_vectors,
)


@pytest.fixture(scope="module")
def data():
    return make_spoken_reviews(1600, seed=0)


def test_deterministic_and_seeded():
    a, b = make_spoken_reviews(120, seed=3), make_spoken_reviews(120, seed=3)
    c = make_spoken_reviews(120, seed=4)
    for split in ("train", "val", "test"):
        for x, y in zip(a[split].tensors, b[split].tensors):
            torch.testing.assert_close(x, y)
        assert a[split].texts == b[split].texts
    assert a["train"].texts != c["train"].texts


def test_shapes_scores_and_speakers(data):
    L = data["train"].tokens.shape[1]
    for name, ds in data.items():
        assert ds.split == name and ds.modalities == ("text", "acoustic", "visual")
        n = len(ds)
        assert ds.acoustic.shape == ds.visual.shape == (n, L, 4)
        s = ds.scores.numpy()
        assert s.min() >= -3 and s.max() <= 3
        np.testing.assert_allclose(s * 3, np.round(s * 3), atol=1e-5)  # mean of 3 ratings
        tok, ac, ln, y = *ds[0][:2], ds[0][3], ds[0][4]
        assert tok.shape == (L,) and ac.shape == (L, 4) and ln.ndim == 0 and y.ndim == 0
        pad = torch.arange(L)[None, :] >= ds.lengths[:, None]
        assert (ds.tokens[pad] == 0).all() and (ds.tokens[~pad] > 0).all()
        assert (ds.acoustic[pad] == 0).all()
    check_speaker_splits(data)
    assert (data["train"].scores == 0).any()  # zeros exist: the conventions differ
    sizes = [len(data[s]) for s in ("train", "val", "test")]
    assert sizes[0] > sizes[2] > sizes[1] > 0


def test_lexicon_is_vaders():
    vader = SentimentIntensityAnalyzer().lexicon
    lex = review_lexicon()
    assert set(lex) == set(REVIEW_WORDS)
    for w, v in lex.items():
        assert v == pytest.approx(vader[w]), w


def test_surface_polarity_agrees_with_vader(data):
    """The words' value (our composition) has the sign VADER itself gives the sentence."""
    sia = SentimentIntensityAnalyzer()
    ds = data["train"]
    comp = np.array([sia.polarity_scores(t)["compound"] for t in ds.texts])
    surf = ds.surface.numpy()
    strong = np.abs(surf) > 0.5
    assert np.mean(np.sign(comp[strong]) == np.sign(surf[strong])) > 0.9


def test_incongruent_texts_read_the_opposite(data):
    ds = data["train"]
    inc = ds.incongruent.numpy()
    assert 0.03 < inc.mean() < 0.2
    assert (ds.scores.numpy()[inc] <= -1).all()  # sarcasm: meant negative
    assert np.mean(ds.surface.numpy()[inc] > 0) > 0.85  # said with positive words


def test_face_and_voice_follow_the_intended_sentiment_word_by_word(data):
    ds = data["train"]
    vocab = ds.vocab
    sentiment_ids = torch.tensor([vocab.index(w) for w in REVIEW_WORDS])
    on_word = torch.isin(ds.tokens, sentiment_ids)  # (N, L)
    real = torch.arange(ds.tokens.shape[1])[None, :] < ds.lengths[:, None]
    au12 = ds.visual[..., 2]
    pos = ds.scores >= 2
    # smiles on positive utterances, strongest on the sentiment words (word alignment)
    assert au12[pos[:, None] & on_word].mean() > au12[pos[:, None] & real & ~on_word].mean() + 0.3
    assert au12[pos[:, None] & real].mean() > au12[(ds.scores <= -2)[:, None] & real].mean() + 0.5
    # sarcastic utterances frown like sincere negative ones (AU4, brow lowerer)
    au4 = ds.visual[..., 0]
    inc = ds.incongruent
    assert au4[inc[:, None] & real].mean() > au4[pos[:, None] & real].mean() + 0.5


def _features(ds, text: bool, nonverbal: bool) -> np.ndarray:
    sia = SentimentIntensityAnalyzer()
    cols = []
    if text:
        cols.append(np.array([[sia.polarity_scores(t)["compound"]] for t in ds.texts]))
    if nonverbal:
        cols += [ds.pooled("acoustic"), ds.pooled("visual")]
    return np.hstack(cols)


def test_text_alone_fails_on_incongruent_and_fusion_recovers(data):
    """Text-only (VADER's reading + a regressor) is no better than chance on the sarcastic
    test utterances, in fact reliably wrong; fused with voice and face it recovers them."""
    tr, te = data["train"], data["test"]
    y, yt = tr.scores.numpy(), te.scores.numpy()
    inc = te.incongruent.numpy()
    acc = {}
    for name, kw in (("text", (True, False)), ("fused", (True, True))):
        model = HistGradientBoostingRegressor(max_iter=150, random_state=0)
        p = model.fit(_features(tr, *kw), y).predict(_features(te, *kw))
        acc[name] = (np.mean((p[inc] >= 0) == (yt[inc] >= 0)),
                     np.mean((p[~inc] >= 0) == (yt[~inc] >= 0)), np.abs(p - yt).mean())
    assert inc.sum() >= 20
    assert acc["text"][0] <= 0.5  # at or below chance on sarcasm
    assert acc["text"][1] >= 0.75  # but good on sincere utterances
    assert acc["fused"][0] >= 0.6 and acc["fused"][0] > acc["text"][0] + 0.4
    assert acc["fused"][2] < acc["text"][2]  # and better overall (MAE)


def test_word_vectors():
    vocab = make_spoken_reviews(30)["train"].vocab
    v = word_vectors(vocab, dim=8)
    assert v.shape == (len(vocab), 8) and (v[0] == 0).all()
    assert v[vocab.index("great"), 0] == pytest.approx(review_lexicon()["great"] / 4)
    assert v[vocab.index("not"), 1] == 1 and v[vocab.index("very"), 2] == 1
    with pytest.raises(ValueError, match="dim"):
        word_vectors(vocab, dim=3)


def test_modality_pooled_subset_and_permutation(data):
    ds = data["test"]
    x, ln, y = ds.modality("visual")[0]
    assert x.shape == ds.visual.shape[1:] and y == ds.scores[0]
    assert ds.pooled("text").shape == (len(ds), len(ds.vocab))
    np.testing.assert_allclose(ds.pooled("text").sum(1), ds.lengths.numpy())
    np.testing.assert_allclose(ds.pooled("visual")[0], ds.visual[0, :int(ds.lengths[0])].mean(0),
                               rtol=1e-5)
    sub = ds.subset(ds.incongruent)
    assert len(sub) == int(ds.incongruent.sum()) and sub.incongruent.all()
    perm = ds.with_permuted("visual", seed=0)
    torch.testing.assert_close(perm.tokens, ds.tokens)
    assert not torch.equal(perm.visual, ds.visual)
    for L in ds.lengths.unique():  # shuffled among utterances of the same length only
        rows = ds.lengths == L
        a = ds.visual[rows].reshape(int(rows.sum()), -1)
        b = perm.visual[rows].reshape(int(rows.sum()), -1)
        torch.testing.assert_close(a[a[:, 0].argsort()], b[b[:, 0].argsort()])
    with pytest.raises(ValueError, match="name must be one of"):
        ds.modality("audio")


def test_bad_input_gets_clear_errors(data):
    ds = data["val"]
    args = dict(tokens=ds.tokens, acoustic=ds.acoustic, visual=ds.visual, lengths=ds.lengths,
                scores=ds.scores, speakers=ds.speakers, incongruent=ds.incongruent,
                texts=ds.texts, vocab=ds.vocab, split="val")
    with pytest.raises(ValueError, match=r"scores must lie in \[-3, 3\].*1 outside"):
        SpokenReviews(**{**args, "scores": torch.cat([ds.scores[:-1], torch.tensor([3.5])])})
    with pytest.raises(ValueError, match="NaN"):
        SpokenReviews(**{**args, "scores": torch.full_like(ds.scores, float("nan"))})
    with pytest.raises(ValueError, match="acoustic"):
        SpokenReviews(**{**args, "acoustic": ds.acoustic[:, :-1]})
    with pytest.raises(ValueError, match="visual"):
        SpokenReviews(**{**args, "visual": ds.visual[:-1]})
    with pytest.raises(ValueError, match="lengths must lie in"):
        SpokenReviews(**{**args, "lengths": ds.lengths + 100})
    leaky = {"train": data["train"], "test": data["train"].subset(torch.arange(5))}
    with pytest.raises(ValueError, match="appears in both 'train' and 'test'"):
        check_speaker_splits(leaky)
    with pytest.raises(ValueError, match="n must be a positive int"):
        make_spoken_reviews(0)
    with pytest.raises(ValueError, match="n_speakers must be >= 3"):
        make_spoken_reviews(50, n_speakers=2)
    with pytest.raises(ValueError, match="incongruent"):
        make_spoken_reviews(50, incongruent=1.5)


def test_a_modality_dataset_built_by_name(data):
    ds = data["val"]
    assert isinstance(ds, ModalityDataset) and ds.num_classes is None
    assert [f.name for f in dataclasses.fields(ds)][:5] == ["tokens", "acoustic", "visual",
                                                            "lengths", "scores"]
    assert len(ds.tensors) == 5 and all(a is b for a, b in zip(ds.tensors, (
        ds.tokens, ds.acoustic, ds.visual, ds.lengths, ds.scores)))
    for item, whole in zip(ds[3], ds.tensors):  # (*inputs, target), as the contract says
        torch.testing.assert_close(item, whole[3])
    copy = dataclasses.replace(ds, split="other")  # a copy by name, validated again
    assert copy.split == "other" and copy.tensors[0] is ds.tokens and ds.split == "val"
    with pytest.raises(ValueError, match="scores must lie in"):
        dataclasses.replace(ds, scores=ds.scores * 2)
    with pytest.raises(ValueError, match=r"texts must hold one sentence per utterance"):
        dataclasses.replace(ds, texts=ds.texts[:-1])
    with pytest.raises(ValueError, match="surface"):
        dataclasses.replace(ds, surface=ds.surface[:-1])


def test_standardized_by_speaker(data):
    ds = data["test"]
    z = ds.standardized_by_speaker()
    real = torch.arange(ds.tokens.shape[1])[None, :] < ds.lengths[:, None]
    assert (z.visual[~real] == 0).all()
    for s in ds.speakers.unique()[:3]:
        words = z.acoustic[ds.speakers == s][real[ds.speakers == s]]
        torch.testing.assert_close(words.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
        torch.testing.assert_close(words.std(0, unbiased=False), torch.ones(4), atol=1e-4,
                                   rtol=0)
    torch.testing.assert_close(z.tokens, ds.tokens)
