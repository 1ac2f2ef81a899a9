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



# ----------------------------------------------------------------------------- lengths, dtypes
def test_lengths_to_mask_on_an_empty_batch():
    from mmbook.utils import lengths_to_mask

    for empty in ([], torch.zeros(0, dtype=torch.int64), np.zeros(0, dtype=np.int64)):
        mask = lengths_to_mask(empty)
        assert mask.shape == (0, 0) and mask.dtype == torch.bool
    assert lengths_to_mask([], max_len=5).shape == (0, 5)
    # the same as torch's own construction on a non-empty batch
    lengths = torch.tensor([3, 0, 2])
    ref = torch.arange(4)[None, :] < lengths[:, None]
    assert torch.equal(lengths_to_mask(lengths, 4), ref)
    with pytest.raises(ValueError, match="max_len=2 is shorter"):
        lengths_to_mask(lengths, 2)


def test_check_lengths_names_range_and_dtype():
    from mmbook.utils import check_lengths

    assert check_lengths([2, 1], batch_size=2, max_len=2, min_length=1).tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"steps must lie in \[1, 4\], got values from 0 to 4"):
        check_lengths([4, 0], max_len=4, name="steps", min_length=1)
    with pytest.raises(ValueError, match="must hold integers, got dtype torch.float32"):
        check_lengths(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"lengths has shape \(3,\)"):
        check_lengths([1, 2, 3], batch_size=2)


def test_check_dtype_names_both_dtypes():
    from mmbook.utils import check_dtype

    x = torch.zeros(2, dtype=torch.float64)
    assert check_dtype(x, torch.float64) is x
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the LSTM's parameters "
                                        r"are torch.float32"):
        check_dtype(x, torch.float32, "x", "the LSTM")


def test_environment_is_detected_in_one_place(monkeypatch):
    from mmbook.utils import environment

    assert environment() == "nbval"  # under pytest
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    import sys

    monkeypatch.delitem(sys.modules, "nbval", raising=False)
    monkeypatch.setitem(sys.modules, "ipykernel", sys)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert environment() == "ipykernel"
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert environment() == "jupyter"
    monkeypatch.setitem(sys.modules, "google.colab", sys)
    assert environment() == "colab"


@pytest.mark.parametrize("layout", ["coo", "csr", "csc", "bsr", "scipy_csr", "scipy_coo"])
def test_sparse_matrices_of_every_layout(layout):
    """Issue 23: only COO was handled (CSR: "unsupported tensor layout"; scipy: "must be
    numeric, got dtype object"). to_tensor makes them dense; as_sparse_coo gives COO."""
    import scipy.sparse

    from mmbook.utils import as_sparse_coo, is_sparse, to_tensor

    dense = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]],
                         dtype=torch.float64)
    x = {"coo": lambda: dense.to_sparse(), "csr": lambda: dense.to_sparse_csr(),
         "csc": lambda: dense.to_sparse_csc(), "bsr": lambda: dense.to_sparse_bsr((1, 1)),
         "scipy_csr": lambda: scipy.sparse.csr_matrix(dense.numpy()),
         "scipy_coo": lambda: scipy.sparse.coo_matrix(dense.numpy())}[layout]()
    assert is_sparse(x) and not is_sparse(dense) and not is_sparse(dense.numpy())
    assert torch.equal(to_tensor(x, "x"), dense)
    coo = as_sparse_coo(x, "x")
    assert coo.layout == torch.sparse_coo and coo.is_coalesced()
    assert torch.equal(coo.to_dense(), dense)
    with pytest.raises(ValueError, match="x must be a sparse matrix"):
        as_sparse_coo(dense, "x")


def test_check_nonempty_batch_names_the_argument():
    from mmbook.utils import check_nonempty_batch

    check_nonempty_batch(torch.zeros(1, 0), "x")  # one sample (of length 0) is a batch
    with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 3\)\): expected "
                                         r"at least one sample \(N >= 1\)"):
        check_nonempty_batch(torch.zeros(0, 3), "x")
