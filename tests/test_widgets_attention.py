"""The attention explorer and its static fallback, headless."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from mmbook.attention import attention_entropy  # noqa: E402
from mmbook.models import LSTMAttentionFusion  # noqa: E402
from mmbook.widgets import AttentionExplorer, attention_static  # noqa: E402
from mmbook.widgets.attention import explain_example  # noqa: E402

pytest.importorskip("ipywidgets")


class _Items(torch.utils.data.Dataset):
    """A tiny AV-digits-like dataset: (image, audio, length, label)."""

    def __init__(self, n=5):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 1, 8, 8, generator=g)
        self.audio = torch.randn(n, 12, 6, generator=g)
        self.lengths = torch.tensor([12, 9, 5, 12, 7])[:n]
        self.labels = torch.arange(n) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.audio[i], self.lengths[i], self.labels[i]


@pytest.fixture()
def setup():
    torch.manual_seed(0)
    model = LSTMAttentionFusion((8, 6), 8, num_classes=3, num_heads=2,
                                modality_names=("image", "audio")).eval()
    return model, _Items()


def test_static_figure(setup):
    model, ds = setup
    fig = attention_static(model, ds, index=2, pair=(0, 1), head=1, temperature=0.5)
    assert len(fig.axes) >= 5
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "image" in titles and "audio" in titles
    with pytest.raises(ValueError, match="pair"):
        attention_static(model, ds, pair=(0, 0))
    with pytest.raises(ValueError, match="head"):
        attention_static(model, ds, head=2)
    with pytest.raises(ValueError, match="index"):
        attention_static(model, ds, index=5)


def test_explorer_update_and_callbacks(setup):
    model, ds = setup
    ex = AttentionExplorer(model, ds, index=0)
    first = ex.cross_weights().clone()
    assert first.shape == (8, 12)
    fig = ex.update(index=2)
    assert ex.figure is fig and ex.controls["index"].value == 2
    assert ex.cross_weights().shape == (8, 5)  # padding of example 2 cut off
    assert torch.allclose(ex.cross_weights().sum(-1), torch.ones(8))
    # moving a control runs the callback, as a click in the browser would
    ex.controls["pair"].value = (1, 0)
    assert ex.params["pair"] == (1, 0) and ex.cross_weights().shape == (5, 8)
    ex.controls["head"].value = 1
    assert ex.params["head"] == 1
    ent = {}
    for t in (0.1, 10.0):
        ex.controls["temperature"].value = t
        ent[t] = attention_entropy(ex.cross_weights()).mean()
    assert ex.params["temperature"] == pytest.approx(10.0)
    assert ent[0.1] <= ent[10.0]
    # the weights the widget shows are the model's
    info = explain_example(model, ds, 2, 10.0)
    torch.testing.assert_close(ex.cross_weights(), info["attention"]["cross"][1, 0][0, 1, :5, :8])
    assert ex.widget is not None


def test_explorer_rejects_bad_params(setup):
    model, ds = setup
    ex = AttentionExplorer(model, ds)
    with pytest.raises(ValueError, match="temperature"):
        ex.update(temperature=0)
    with pytest.raises(ValueError, match="unknown"):
        ex.update(layer=3)
    with pytest.raises(ValueError, match="index"):
        ex.update(index=99)
    assert ex.params["index"] == 0  # unchanged after a rejected update
