"""The kernel-free explorers: frames precomputed on the slider grid equal the model's."""

import json

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from mmbook.models import LSTMAttentionFusion  # noqa: E402
from mmbook.widgets import SliderFigure, attention_slider_figure, kernel_slider_figure  # noqa: E402
from mmbook.widgets.attention import explain_example  # noqa: E402
from mmbook.widgets.kernels import sorted_kernel  # noqa: E402

pytest.importorskip("plotly")


def test_slider_figure_order_and_pool():
    calls = []

    def render(a, b):
        calls.append((a, b))
        return [{"type": "bar", "x": [0], "y": [a * 10 + b]}], f"a={a} b={b}"

    fig = SliderFigure([("a", [1, 2, 3]), ("b", [0, 5])], render, initial={"a": 2, "b": 5})
    assert calls == [(a, b) for a in (1, 2, 3) for b in (0, 5)]  # row-major
    assert fig.shape == (3, 2) and fig.initial_index == fig.index(a=2, b=5) == 3
    assert fig.current() == {"a": 2, "b": 5}
    spec = json.loads(fig.frames_json())
    k = fig.index(a=3, b=0)
    assert spec["pool"][spec["frames"][k]["data"][0]]["y"] == [30]
    assert spec["frames"][k]["title"] == "a=3 b=0"
    plotly_fig = fig.figure()
    assert [s["name"] for s in plotly_fig.layout.sliders] == ["a", "b"]
    assert [s.label for s in plotly_fig.layout.sliders[1].steps] == ["0", "5"]
    assert plotly_fig.layout.sliders[0].active == 1 and plotly_fig.data[0].y == (25,)
    html = fig.to_html("fig-x")
    assert 'id="fig-x-frames"' in html and "cdn.plot.ly" not in html and "<script src" not in html
    with pytest.raises(ValueError, match="initial"):
        SliderFigure([("a", [1])], render, initial={"a": 7})


def test_kernel_slider_figure_frames_are_the_kernels():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    fig = kernel_slider_figure(X, y, gammas=[0.01, 0.1], degrees=[1, 2], per_class=4)
    assert fig.shape == (2, 2)
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:4] for c in range(3)]))
    traces, title = fig.frames[fig.index(gamma=0.1, degree=2)]
    K, _, rho = sorted_kernel(X[keep], y[keep], "poly", 0.1, 2)
    np.testing.assert_allclose(traces[1]["z"], K, atol=6e-4)
    assert "gamma=0.1, degree=2" in title and f"poly {rho:.3f}" in title


def test_attention_slider_figure_frames_are_the_models():
    torch.manual_seed(0)
    model = LSTMAttentionFusion((8, 6), 8, num_classes=3, num_heads=2,
                                modality_names=("image", "audio")).eval()
    g = torch.Generator().manual_seed(0)
    items = [(torch.randn(1, 8, 8, generator=g), torch.randn(12, 6, generator=g),
              torch.tensor(n), torch.tensor(i % 3)) for i, n in enumerate([12, 7, 9])]
    fig = attention_slider_figure(model, items, indices=[0, 1], temperatures=[0.1, 1.0],
                                  pair=(1, 0))
    assert fig.shape == (2, 2, 2)
    traces, title = fig.frames[fig.index(example=1, temperature=0.1, head=1)]
    info = explain_example(model, items, 1, 0.1)
    w = info["attention"]["cross"][1, 0][0, 1, :7, :]
    np.testing.assert_allclose(traces[0]["z"], w.numpy(), atol=6e-4)
    np.testing.assert_allclose(traces[1]["y"], info["probs"].numpy(), atol=6e-4)
    assert "example 1" in title and "head 1, T=0.1" in title
