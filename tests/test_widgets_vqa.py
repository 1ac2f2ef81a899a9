"""The chapter-12 explorer (attention over the image, word by word), headless."""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from mmbook.models.captioning import AttentionCaptionModel  # noqa: E402
from mmbook.models.vqa import CoAttentionVQA  # noqa: E402
from mmbook.text import Vocabulary  # noqa: E402
from mmbook.widgets.vqa import (  # noqa: E402
    TokenMaps,
    TokenMapsExplorer,
    caption_token_maps,
    coattention_token_maps,
    token_maps_slider_figure,
    token_maps_static,
)

C, G, S = 5, 4, 8
QUESTIONS = ["Is the red object on the left?", "What is the shape of the blue object?"]


@pytest.fixture()
def vqa():
    torch.manual_seed(0)
    vocab = Vocabulary.build(QUESTIONS)
    ids, lengths = vocab.encode_batch(QUESTIONS)
    features = torch.rand(2, C, G, G)
    images = torch.rand(2, 3, S, S)
    model = CoAttentionVQA(C, G, len(vocab), 4, question_encoder="bow").eval()
    examples = coattention_token_maps(model, features, ids, lengths, images, [1, 0],
                                      QUESTIONS, ["yes", "square"], ["yes", "no", "a", "b"],
                                      indices=[0, 1])
    return model, (features, ids, lengths, images), examples


def test_coattention_examples_are_the_models_maps(vqa):
    model, (features, ids, lengths, images), examples = vqa
    maps = model.attention_maps(features, ids, lengths)
    for k, ex in enumerate(examples):
        L = int(lengths[k])
        assert ex.tokens[0] == "(whole question)" and len(ex.tokens) == L + 1
        np.testing.assert_allclose(ex.maps[0], maps["question"][k].reshape(G, G), atol=1e-6)
        added = maps["words"][k, :L].clamp_min(0).reshape(L, G, G)
        np.testing.assert_allclose(ex.maps[1:], added, atol=1e-6)
        np.testing.assert_allclose(ex.maps[0].sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(examples[0].image, images[1].permute(1, 2, 0).numpy())
    assert "answer: yes" in examples[0].title


def test_caption_examples_are_the_decoders_weights():
    torch.manual_seed(0)
    vocab = Vocabulary.build(["a red square , a blue circle ."])
    model = AttentionCaptionModel(C, G, len(vocab), embed_dim=4, hidden_size=6).eval()
    features, images = torch.rand(3, C, G, G), torch.rand(3, 3, S, S)
    examples = caption_token_maps(model, features, images, vocab, indices=[2, 0], max_len=5)
    ids, alpha = model.greedy(features[[2, 0]], max_len=5, return_attention=True)
    for row, ex in enumerate(examples):
        assert ex.tokens[-1] == "<eos>" and len(ex.tokens) <= 6
        T = len(ex.tokens)
        np.testing.assert_allclose(ex.maps, alpha[row, :T].reshape(T, G, G).numpy(), atol=1e-6)


def test_token_maps_are_checked():
    with pytest.raises(ValueError, match="one map per token"):
        TokenMaps(np.zeros((S, S, 3)), ["a"], np.zeros((2, G, G)), "")
    with pytest.raises(ValueError, match=r"\(T, G, G\)"):
        TokenMaps(np.zeros((S, S, 3)), ["a"], np.zeros((1, G)), "")


def test_static_figure_and_bad_values(vqa):
    examples = vqa[2]
    fig = token_maps_static(examples, example=1, token=3)
    assert fig.mmbook_params == {"example": 1, "token": 3} and len(fig.axes) >= 2
    assert repr(examples[1].tokens[3]) in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="token must be in"):
        token_maps_static(examples, 0, token=len(examples[0].tokens))
    with pytest.raises(ValueError, match="example must be in"):
        token_maps_static(examples, example=2)


def test_explorer_follows_its_controls(vqa):
    pytest.importorskip("ipywidgets")
    examples = vqa[2]
    ex = TokenMapsExplorer(examples, example=0, token=2)
    np.testing.assert_array_equal(ex.shown_map(), examples[0].maps[2])
    ex.controls["token"].value = 4  # as a click in the browser would
    assert ex.params == {"example": 0, "token": 4}
    np.testing.assert_array_equal(ex.shown_map(), examples[0].maps[4])
    ex.controls["example"].value = 1
    assert ex.params["example"] == 1
    assert [v for _, v in ex.controls["token"].options] == list(range(len(examples[1].tokens)))
    last = len(examples[1].tokens) - 1
    ex.update(token=last)
    assert ex.controls["token"].value == last and ex.figure.mmbook_params["token"] == last
    with pytest.raises(ValueError, match="token must be in"):
        ex.update(token=99)
    with pytest.raises(ValueError, match="unknown"):
        ex.update(head=1)


def test_slider_figure_frames_are_the_maps(vqa):
    pytest.importorskip("plotly")
    examples = vqa[2]
    fig = token_maps_slider_figure(examples, initial={"example": 1, "position": 2})
    T = max(len(e.tokens) for e in examples)
    assert fig.shape == (2, T) and fig.current() == {"example": "1", "position": 2}
    traces, title = fig.frames[fig.index(example="0", position=3)]
    np.testing.assert_allclose(traces[1]["z"], examples[0].maps[3], atol=6e-4)
    assert np.asarray(traces[0]["z"]).shape == (S, S, 3)  # the image with the map over it
    assert repr(examples[0].tokens[3]) in title
    short = min(range(2), key=lambda k: len(examples[k].tokens))
    past = len(examples[short].tokens)
    if past < T:
        traces, title = fig.frames[fig.index(example=str(short), position=past)]
        assert np.all(np.asarray(traces[1]["z"]) == 0) and "past the end" in title
    assert 'id="vqa-x-frames"' in fig.to_html("vqa-x")
