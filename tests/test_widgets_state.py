"""The explorers' drawn parameters always equal what their controls show (issue 11.3).

Rule (both explorers): a value the model accepts but a control does not offer widens the
control; a value outside the model's domain is refused with an error naming the range.
"""

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from mmbook.models import LSTMAttentionFusion  # noqa: E402
from mmbook.widgets import AttentionExplorer, KernelExplorer  # noqa: E402
from mmbook.widgets.attention import TEMPERATURE_GRID  # noqa: E402
from mmbook.widgets.common import fmt_value, log_grid, shown_label  # noqa: E402
from mmbook.widgets.kernels import GAMMA_GRID  # noqa: E402

pytest.importorskip("ipywidgets")


@pytest.fixture()
def views():
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(24, 5)), "b": rng.normal(size=(24, 3))}, np.arange(24) % 3


def _kernel_title(ex):
    return ex.figure.axes[0].get_title()


def _assert_kernel_consistent(ex):
    c, p, drawn = ex.controls, ex.params, ex.figure.mmbook_params
    assert drawn == p
    assert c["gamma"].value == p["gamma"] and c["degree"].value == p["degree"]
    assert c["view"].value == p["view"] and c["kernel"].value == p["kernel"]
    assert c["degree"].min <= c["degree"].value <= c["degree"].max
    if p["kernel"] != "linear":  # the title prints gamma exactly as the slider labels it
        assert f"gamma={shown_label(c['gamma'])}" in _kernel_title(ex)
    if p["kernel"] == "poly":
        assert f"d={c['degree'].value}" in _kernel_title(ex)


def test_kernel_explorer_degree_8_widens_the_slider(views):
    ex = KernelExplorer(*views, kernel="poly", degree=8)
    assert ex.controls["degree"].max == 8 and ex.controls["degree"].value == 8
    _assert_kernel_consistent(ex)


def test_kernel_explorer_gamma_100_is_drawn_and_shown(views):
    ex = KernelExplorer(*views)
    ex.update(gamma=100)
    assert ex.params["gamma"] == 100.0
    assert shown_label(ex.controls["gamma"]) == "100"
    _assert_kernel_consistent(ex)
    ex.update(gamma=GAMMA_GRID[3], kernel="poly", degree=2)  # back onto the grid
    _assert_kernel_consistent(ex)


def test_kernel_explorer_default_gamma_label_equals_title(views):
    # issue 12: the slider showed 0.00398 while the plot said 0.00417 (1/240)
    X, y = views
    ex = KernelExplorer({"pix": np.repeat(X["a"], 48, axis=1)}, y)
    assert ex.params["gamma"] == pytest.approx(1 / 240)
    assert shown_label(ex.controls["gamma"]) == "0.00417" and "gamma=0.00417" in _kernel_title(ex)
    _assert_kernel_consistent(ex)


def test_kernel_explorer_moving_controls(views):
    ex = KernelExplorer(*views)
    for g in (GAMMA_GRID[0], GAMMA_GRID[-1]):
        ex.controls["gamma"].value = g
        assert ex.params["gamma"] == g
        _assert_kernel_consistent(ex)
    ex.controls["kernel"].value = "poly"
    ex.controls["degree"].value = 5
    ex.controls["view"].value = "b"
    assert ex.params == {"view": "b", "kernel": "poly", "gamma": GAMMA_GRID[-1], "degree": 5}
    _assert_kernel_consistent(ex)


@pytest.mark.parametrize("bad, match", [({"gamma": 0}, "gamma"), ({"gamma": float("nan")}, "gamma"),
                                        ({"degree": 0}, "degree"), ({"degree": 2.5}, "degree"),
                                        ({"view": "c"}, "view"), ({"kernel": "tanh"}, "kernel")])
def test_kernel_explorer_refuses_outside_the_domain(views, bad, match):
    ex = KernelExplorer(*views)
    before = dict(ex.params)
    with pytest.raises(ValueError, match=match):
        ex.update(**bad)
    assert ex.params == before  # nothing half-changed
    _assert_kernel_consistent(ex)
    with pytest.raises(ValueError, match=match):
        KernelExplorer(*views, **bad)


def test_grids_format_as_their_labels():
    for grid in (GAMMA_GRID, TEMPERATURE_GRID):
        assert all(float(fmt_value(v)) == v for v in grid)
        assert len(set(map(fmt_value, grid))) == len(grid)
    assert log_grid(1e-4, 10, 10)[0] == 1e-4 and log_grid(1e-4, 10, 10)[-1] == 10


class _Items(torch.utils.data.Dataset):
    def __init__(self, n=6):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 1, 8, 8, generator=g)
        self.audio = torch.randn(n, 12, 6, generator=g)
        self.lengths = torch.tensor([12, 9, 5, 12, 7, 10])[:n]
        self.labels = torch.arange(n) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.audio[i], self.lengths[i], self.labels[i]


@pytest.fixture()
def model_data():
    torch.manual_seed(0)
    model = LSTMAttentionFusion((8, 6), 8, num_classes=3, num_heads=2,
                                modality_names=("image", "audio")).eval()
    return model, _Items()


def _assert_attention_consistent(ex):
    c, p = ex.controls, ex.params
    assert ex.figure.mmbook_params == p
    assert c["temperature"].value == p["temperature"]
    assert c["index"].value == p["index"] and c["index"].max >= p["index"]
    assert c["head"].value == p["head"] and c["pair"].value == p["pair"]
    titles = [ax.get_title() for ax in ex.figure.axes]
    assert f"head {p['head']}, T={shown_label(c['temperature'])}" in " ".join(titles)


def test_attention_explorer_temperature_002_widens_the_slider(model_data):
    ex = AttentionExplorer(*model_data, temperature=0.02)
    assert ex.params["temperature"] == 0.02 and shown_label(ex.controls["temperature"]) == "0.02"
    _assert_attention_consistent(ex)
    ex.update(temperature=100.0, head=1, pair=(1, 0))
    assert shown_label(ex.controls["temperature"]) == "100"
    _assert_attention_consistent(ex)


def test_attention_explorer_index_beyond_max_index_widens(model_data):
    ex = AttentionExplorer(*model_data, max_index=2)
    assert ex.controls["index"].max == 2
    ex.update(index=5)
    assert ex.controls["index"].max == 5 and ex.controls["index"].value == 5
    _assert_attention_consistent(ex)
    ex.controls["temperature"].value = TEMPERATURE_GRID[0]
    assert ex.params["temperature"] == TEMPERATURE_GRID[0]
    _assert_attention_consistent(ex)


@pytest.mark.parametrize("bad, match", [({"temperature": 0.0}, "temperature"),
                                        ({"temperature": float("inf")}, "temperature"),
                                        ({"index": 6}, r"index must be in \[0, 5\]"),
                                        ({"head": 2}, r"head must be in \[0, 1\]"),
                                        ({"pair": (0, 0)}, "pair")])
def test_attention_explorer_refuses_outside_the_domain(model_data, bad, match):
    ex = AttentionExplorer(*model_data)
    before = dict(ex.params)
    with pytest.raises(ValueError, match=match):
        ex.update(**bad)
    assert ex.params == before
    _assert_attention_consistent(ex)
    with pytest.raises(ValueError, match=match):
        AttentionExplorer(*model_data, **bad)
