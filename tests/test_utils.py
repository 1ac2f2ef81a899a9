"""mmbook.utils: device choice, seeding, show_source, check_shape."""

import random

import numpy as np
import pytest
import torch

import mmbook
from mmbook.utils import check_shape, get_device, set_seed, show_source


def test_version():
    assert isinstance(mmbook.__version__, str) and mmbook.__version__.count(".") == 2


def test_lazy_submodules_and_unknown_attribute():
    assert mmbook.utils.get_device is get_device
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mmbook.nope  # noqa: B018


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("MMBOOK_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setenv("MMBOOK_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device() == torch.device("cpu")


def test_get_device_is_usable():
    x = torch.ones(2, device=get_device())
    assert x.sum().item() == 2


def _draw():
    return random.random(), np.random.rand(), torch.rand(3)  # noqa: NPY002 (global state)


def test_set_seed_reproduces_python_numpy_torch():
    set_seed(123)
    a = _draw()
    set_seed(123)
    b = _draw()
    assert a[0] == b[0] and a[1] == b[1]
    torch.testing.assert_close(a[2], b[2])
    set_seed(124)
    c = _draw()
    assert a[0] != c[0] and not torch.equal(a[2], c[2])


def test_set_seed_rejects_non_int():
    with pytest.raises(TypeError, match="seed must be an int"):
        set_seed(1.5)


def test_show_source_renders_highlighted_html_and_text():
    src = show_source(check_shape)
    assert "def check_shape" in repr(src)
    html = src._repr_html_()
    assert "<span" in html and "check_shape" in html  # highlighted by pygments
    assert src._repr_markdown_().startswith("```python")


def test_show_source_of_a_method_is_dedented():
    class A:
        def f(self):
            if True:
                return 1

    assert repr(show_source(A.f)) == "def f(self):\n    if True:\n        return 1\n"


def test_show_source_rejects_builtins():
    with pytest.raises(TypeError, match="cannot get the source"):
        show_source(len)


def test_check_shape_accepts_matching_shapes():
    x = torch.zeros(4, 3, 5)
    check_shape(x, (4, 3, 5), "x")
    check_shape(x, (None, 3, None), "x")
    check_shape(torch.zeros(2, 7, 7), ("N", "L", "L"), "scores")
    check_shape(np.zeros((2, 3)), (2, 3), "arr")


@pytest.mark.parametrize(
    "shape, expected, pattern",
    [
        ((4, 3), (4, 3, 5), r"x must have 3 dimensions \(4, 3, 5\), got shape \(4, 3\)"),
        ((4, 2, 5), (4, 3, 5), r"x has shape \(4, 2, 5\) but expected \(4, 3, 5\) \(axis 1"),
        ((2, 7, 6), ("N", "L", "L"), r"dimension L is 7 at one axis and 6 at axis 2"),
        ((4, 2), (None, 3), r"expected \(\?, 3\)"),
        ((3,), (4,), r"x has shape \(3,\) but expected \(4,\)"),
    ],
)
def test_check_shape_errors_name_argument_and_shapes(shape, expected, pattern):
    with pytest.raises(ValueError, match=pattern):
        check_shape(torch.zeros(shape), expected, "x")


def test_check_shape_rejects_non_tensor():
    with pytest.raises(TypeError, match="x must be a tensor or array"):
        check_shape([1, 2], (2,), "x")

