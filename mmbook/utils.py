"""Small helpers every chapter uses: device choice, seeding, showing source, checks.

Also the package's one rule for absent modalities (:func:`check_present`,
:func:`fill_absent`), :func:`count_parameters` and :func:`atomic_write`: every module
that needs them calls these, never a copy.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import random
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "get_device", "set_seed", "seed_from_env", "show_source", "check_shape",
    "check_positive_int", "check_nonnegative_int", "check_positive", "check_probability",
    "check_choice", "check_sizes", "check_finite", "check_lengths", "check_dtype",
    "check_nonempty_batch", "lengths_to_mask", "to_tensor", "is_sparse", "to_dense_tensor",
    "as_sparse_coo", "to_numpy", "environment", "check_present", "fill_absent",
    "count_parameters", "atomic_write", "one_thread",
]


def get_device() -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    Set the environment variable ``MMBOOK_DEVICE`` (e.g. ``cpu``) to override.

    Examples:
        >>> get_device().type in ("cuda", "mps", "cpu")
        True
        >>> torch.zeros(2, device=get_device()).device.type == get_device().type
        True
    """
    forced = os.environ.get("MMBOOK_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and torch (and every CUDA device when present).

    Examples:
        >>> set_seed(0); a = torch.rand(2)
        >>> set_seed(0); torch.equal(a, torch.rand(2))
        True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds the global state readers use)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)



@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one CPU thread (torch's and the BLAS libraries'), then restore.

    A float32 sum split across threads is added in another order, so a product such as
    ``x.T @ x`` over 60,000 rows changes in its last bits with the thread count. Work whose
    result is cached or compared bit for bit (the data sets built once and saved) runs in
    here, so that it is the same on a 1-core and a many-core machine.

    Examples:
        >>> before = torch.get_num_threads()
        >>> with one_thread():
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it only torch is limited
        blas = contextlib.nullcontext()
    else:
        blas = threadpool_limits(limits=1)
    torch.set_num_threads(1)
    try:
        with blas:
            yield
    finally:
        torch.set_num_threads(before)


def show_source(obj) -> object:
    """Show the source code of a function, class or method, syntax-highlighted.

    In a notebook (and so in the HTML book) this returns an object that renders as
    highlighted HTML, with a plain-text fallback; outside a notebook, print it.

    Args:
        obj: a function, class, method or module.

    Returns:
        an object with ``_repr_html_`` and ``__repr__`` showing the source.

    Examples:
        >>> print(show_source(to_numpy))  # doctest: +ELLIPSIS
        def to_numpy(t) -> np.ndarray:
        ...
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"show_source: cannot get the source of {obj!r}: {err}") from None
    return _Source(textwrap.dedent(source))


class _Source:
    """Source code that renders highlighted in Jupyter and as text elsewhere."""

    def __init__(self, code: str):
        self.code = code

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        formatter = HtmlFormatter(noclasses=True, style="default")
        return highlight(self.code, PythonLexer(), formatter)

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}\n```"

    def __repr__(self) -> str:
        return self.code


def _fmt(shape) -> str:
    shape = tuple(shape)
    return str(shape).replace("'", "") if len(shape) != 1 else f"({shape[0]},)"


def check_shape(tensor, expected: Sequence, name: str = "input") -> None:
    """Raise a clear ``ValueError`` unless ``tensor`` has the expected shape.

    Args:
        tensor: a ``torch.Tensor`` or ``numpy.ndarray``.
        expected: the expected shape; each entry is an int, ``None`` (any size) or a
            string naming a dimension (``"N"``): entries that share a name must be equal.
        name: the argument's name, used in the message.

    Raises:
        ValueError: naming the argument, the shape received and the shape expected.

    Examples:
        >>> check_shape(torch.zeros(4, 3, 3), ("N", "D", "D"), "x")  # passes: None
        >>> check_shape(torch.zeros(4, 3, 2), ("N", "D", "D"), "x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: x has shape (4, 3, 2) but expected (N, D, D): dimension D is 3 at ...
    """
    if not hasattr(tensor, "shape"):
        raise TypeError(f"{name} must be a tensor or array, got {type(tensor).__name__}")
    shape = tuple(tensor.shape)
    want = _fmt("?" if e is None else e for e in expected)
    if len(shape) != len(expected):
        raise ValueError(
            f"{name} must have {len(expected)} dimensions {want}, got shape {_fmt(shape)}"
        )
    bound: dict[str, int] = {}
    for axis, (got, exp) in enumerate(zip(shape, expected)):
        if exp is None:
            continue
        if isinstance(exp, str):
            if exp in bound and bound[exp] != got:
                raise ValueError(
                    f"{name} has shape {_fmt(shape)} but expected {want}: dimension "
                    f"{exp} is {bound[exp]} at one axis and {got} at axis {axis}"
                )
            bound[exp] = got
        elif got != exp:
            raise ValueError(
                f"{name} has shape {_fmt(shape)} but expected {want} (axis {axis} "
                f"should be {exp}, got {got})"
            )



def check_nonempty_batch(tensor, name: str = "input", what: str = "sample") -> None:
    """Raise a clear ``ValueError`` when ``tensor`` holds no samples (N = 0 on axis 0).

    Packing a sequence batch or reshaping it with ``-1`` fails on N = 0 with an opaque
    torch error ("Cannot pack empty tensors", "cannot reshape tensor of 0 elements");
    a module that cannot encode an empty batch calls this first.

    Examples:
        >>> check_nonempty_batch(torch.zeros(0, 5), "ids", what="sentence")
        Traceback (most recent call last):
        ...
        ValueError: ids is an empty batch (shape (0, 5)): expected at least one sentence (N >= 1)
    """
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {_fmt(tensor.shape)}): expected "
                         f"at least one {what} (N >= 1)")


# ----------------------------------------------------------------------------- scalar checks
def check_positive_int(value, name: str) -> int:
    """Return ``value`` if it is an int >= 1 (not a bool), else raise ``ValueError``.

    Examples:
        >>> check_positive_int(3, "num_heads")
        3
        >>> check_positive_int(2.0, "max_epochs")
        Traceback (most recent call last):
        ...
        ValueError: max_epochs must be a positive int, got 2.0 (float)
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r} "
                         f"({type(value).__name__})")
    return int(value)


def check_nonnegative_int(value, name: str) -> int:
    """Return ``value`` if it is an int >= 0 (not a bool), else raise ``ValueError``.

    Examples:
        >>> check_nonnegative_int(0, "t")
        0
        >>> check_nonnegative_int(True, "t")
        Traceback (most recent call last):
        ...
        ValueError: t must be an int >= 0, got True (bool)
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r} "
                         f"({type(value).__name__})")
    return int(value)


def check_positive(value, name: str, allow_zero: bool = False) -> float:
    """Return ``float(value)`` if it is a finite real number > 0 (>= 0 with ``allow_zero``).

    Raises:
        ValueError: naming the argument and the value received.

    Examples:
        >>> check_positive(2, "lr")
        2.0
        >>> check_positive(float("inf"), "lr")
        Traceback (most recent call last):
        ...
        ValueError: lr must be a finite number > 0, got inf
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        want = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {want}, got {value!r}")
    return float(value)


def check_probability(value, name: str, allow_one: bool = True) -> float:
    """Return ``float(value)`` if it lies in [0, 1] ([0, 1) when ``allow_one=False``).

    Examples:
        >>> check_probability(0.5, "p")
        0.5
        >>> check_probability(1, "p", allow_one=False)
        Traceback (most recent call last):
        ...
        ValueError: p must be a probability in [0, 1), got 1
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = 0.0 <= v <= 1.0 and (allow_one or v < 1.0)
    if not ok:
        want = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name} must be a probability in {want}, got {value!r}")
    return float(value)


def check_choice(value, choices: Sequence, name: str):
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them.

    Examples:
        >>> check_choice("mean", ("mean", "weighted"), "mode")
        'mean'
    """
    if value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_sizes(sizes, name: str, allow_modules: bool = False) -> tuple:
    """Validate a non-empty sequence of positive ints (one per modality or layer).

    Args:
        sizes: a sequence of ints (an int alone is refused: say ``(d,)``).
        name: the argument's name, used in messages.
        allow_modules: also accept ``nn.Module`` entries (kept as they are).

    Returns:
        the sizes as a tuple.

    Examples:
        >>> check_sizes([3, 5], "in_features")
        (3, 5)
        >>> check_sizes(3, "in_features")
        Traceback (most recent call last):
        ...
        ValueError: in_features must be a sequence with one entry per modality, got 3
    """
    from torch import nn

    if isinstance(sizes, (int, str, nn.Module)) or not isinstance(sizes, Sequence):
        raise ValueError(f"{name} must be a sequence with one entry per modality, "
                         f"got {sizes!r}")
    if len(sizes) < 1:
        raise ValueError(f"{name} must have at least one entry, got an empty sequence")
    for m, d in enumerate(sizes):
        if allow_modules and isinstance(d, nn.Module):
            continue
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            kind = "a positive int or an nn.Module" if allow_modules else "a positive int"
            raise ValueError(f"{name}[{m}] must be {kind}, got {d!r}")
    return tuple(sizes)


# ----------------------------------------------------------------------------- arrays
def check_finite(x, name: str):
    """Raise ``ValueError`` if the tensor or array ``x`` holds NaN or infinity.

    Returns ``x`` unchanged, so it can wrap an expression. Integer and bool inputs pass.

    Examples:
        >>> check_finite(torch.tensor([1.0, float("nan")]), "X")
        Traceback (most recent call last):
        ...
        ValueError: X holds 1 NaN and 0 infinite values (shape (2,)); NaN and inf are not accepted
    """
    if isinstance(x, torch.Tensor):
        if x.device.type == "meta":  # shapes only, no values to check (device tests)
            return x
        if x.is_floating_point() or x.is_complex():
            bad = ~torch.isfinite(x)
            if bool(bad.any()):
                n_nan = int(torch.isnan(x).sum())
                raise ValueError(f"{name} holds {n_nan} NaN and {int(bad.sum()) - n_nan} "
                                 f"infinite values (shape {_fmt(x.shape)}); NaN and inf are "
                                 f"not accepted")
        return x
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.inexact):
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan = int(np.isnan(arr).sum())
            raise ValueError(f"{name} holds {n_nan} NaN and {int(bad.sum()) - n_nan} "
                             f"infinite values (shape {_fmt(arr.shape)}); NaN and inf are "
                             f"not accepted")
    return x


def check_lengths(lengths, batch_size: int | None = None, max_len: int | None = None,
                  name: str = "lengths", min_length: int = 0) -> torch.Tensor:
    """Validate sequence lengths and return them as an integer tensor.

    Args:
        lengths: ``(N,)`` integers (a tensor, array or list).
        batch_size: N, when known.
        max_len: T, the padded length; every length must be <= T.
        name: the argument's name, used in messages.
        min_length: the smallest length allowed (1 for an RNN, which needs a step).

    Raises:
        ValueError: naming the argument, the shape or values received and the range expected.

    Examples:
        >>> check_lengths([3, 1], batch_size=2, max_len=3, min_length=1)
        tensor([3, 1])
        >>> check_lengths([3, 0], max_len=3, min_length=1)
        Traceback (most recent call last):
        ...
        ValueError: lengths must lie in [1, 3], got values from 0 to 3
    """
    lengths = torch.as_tensor(lengths)
    check_shape(lengths, ("N",) if batch_size is None else (batch_size,), name)
    if lengths.numel() == 0 and lengths.is_floating_point():
        lengths = lengths.long()  # an empty list: no values, so no wrong dtype either
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got dtype {lengths.dtype}")
    if lengths.numel():
        lo, hi = int(lengths.min()), int(lengths.max())
        top = "inf" if max_len is None else max_len
        if lo < min_length or (max_len is not None and hi > max_len):
            raise ValueError(f"{name} must lie in [{min_length}, {top}], got values from "
                             f"{lo} to {hi}")
    return lengths


def check_dtype(x: torch.Tensor, dtype: torch.dtype, name: str = "input",
                owner: str = "the module") -> torch.Tensor:
    """Raise a clear ``TypeError`` unless the tensor ``x`` has ``dtype``.

    Examples:
        >>> x = torch.zeros(2, dtype=torch.float64)
        >>> check_dtype(x, torch.float32, "x", "the LSTM")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: x has dtype torch.float64 but the LSTM's parameters are torch.float32: ...
    """
    if x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but {owner}'s parameters are {dtype}: "
                        f"convert one of them (x.to({dtype}), or module.to({x.dtype}))")
    return x


def lengths_to_mask(lengths, max_len: int | None = None) -> torch.Tensor:
    """Boolean mask that is ``True`` on the first ``lengths[i]`` steps of row ``i``.

    The package's mask convention: ``True`` = a real step (attend to it / present),
    ``False`` = padding (see :mod:`mmbook.attention`).

    Args:
        lengths: ``(N,)`` integers >= 0 (a tensor, array or list).
        max_len: T; default ``max(lengths)`` (0 for an empty batch). Must be >= every length.

    Raises:
        ValueError: lengths not 1-D, not integers, negative, or longer than ``max_len``.

    Shape:
        - lengths: :math:`(N,)` integers
        - output: :math:`(N, T)` bool, on ``lengths``' device

    Examples:
        >>> lengths_to_mask(torch.tensor([2, 0, 3]))
        tensor([[ True,  True, False],
                [False, False, False],
                [ True,  True,  True]])
    """
    lengths = check_lengths(lengths)
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        max_len = longest
    else:
        max_len = check_nonnegative_int(max_len, "max_len")
        if longest > max_len:
            raise ValueError(f"max_len={max_len} is shorter than the longest length {longest}")
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] < lengths[:, None]  # (N, T)


def to_tensor(x, name: str, dtype: torch.dtype | None = None, device=None,
              ndim: int | None = None, finite: bool = True) -> torch.Tensor:
    """Convert an array-like to a tensor, with the package's one rule for dtype and device.

    * a tensor keeps its device; an array or list goes to ``device`` (default the CPU);
    * floating dtypes are kept (float16 / bfloat16 arrays become float32); integers and
      bools become ``dtype`` when given, else are kept;
    * ``dtype`` given: the result has that dtype;
    * ``finite=True`` (default) refuses NaN and inf, naming ``name``;
    * a sparse matrix (a torch tensor of any sparse layout, or ``scipy.sparse``) is made
      dense: every caller computes dense results of the same size.

    Raises:
        TypeError: a non-numeric array (strings, objects).
        ValueError: the wrong number of dimensions, or non-finite values.

    Examples:
        >>> to_tensor(np.ones((2, 3), dtype=np.float16), "X", ndim=2).dtype
        torch.float32
        >>> to_tensor([[1, 2]], "X", dtype=torch.float64)
        tensor([[1., 2.]], dtype=torch.float64)
        >>> to_tensor([1.0, float("nan")], "X")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: X holds 1 NaN and 0 infinite values ...
    """
    x = to_dense_tensor(x)
    if isinstance(x, torch.Tensor):
        t = x
    else:
        arr = np.asarray(x)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == np.bool_):
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        if arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        arr = np.ascontiguousarray(arr) if arr.flags.writeable else arr.copy()
        t = torch.from_numpy(arr)
        if device is not None:
            t = t.to(device)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if ndim is not None and t.dim() != ndim:
        dims = ", ".join(["N", "D", "E", "F"][:ndim]) if ndim <= 4 else f"{ndim} dims"
        raise ValueError(f"{name} must be {ndim}-D ({dims}), got shape {_fmt(t.shape)}")
    if finite:
        check_finite(t, name)
    return t


def is_sparse(x) -> bool:
    """True for a sparse matrix: a torch tensor of any sparse layout (COO, CSR, CSC, BSR,
    BSC) or a ``scipy.sparse`` matrix or array.

    Examples:
        >>> is_sparse(torch.eye(2).to_sparse_csr()), is_sparse(torch.eye(2))
        (True, False)
    """
    if isinstance(x, torch.Tensor):
        return x.layout != torch.strided
    if type(x).__module__.startswith("scipy.sparse"):
        import scipy.sparse

        return scipy.sparse.issparse(x)
    return False


def _sparse_name(x) -> str:
    return str(x.layout).replace("torch.", "") if isinstance(x, torch.Tensor) else \
        f"scipy.sparse {type(x).__name__}"


def to_dense_tensor(x):
    """A sparse matrix (any torch layout, or scipy) as a dense tensor; anything else as is.

    Examples:
        >>> to_dense_tensor(torch.eye(2).to_sparse())
        tensor([[1., 0.],
                [0., 1.]])
        >>> to_dense_tensor([1, 2])  # not sparse: returned as it is
        [1, 2]
    """
    if not is_sparse(x):
        return x
    if isinstance(x, torch.Tensor):
        return x.to_dense()
    return torch.from_numpy(np.asarray(x.toarray()))


def as_sparse_coo(x, name: str) -> torch.Tensor:
    """A sparse matrix of any layout (torch CSR / CSC / BSR / BSC, or scipy) as a coalesced
    torch COO tensor, the layout the package's sparse code computes with.

    Raises:
        ValueError: ``x`` is not sparse, or holds NaN or infinity.

    Examples:
        >>> A = torch.tensor([[0.0, 2.0], [1.0, 0.0]]).to_sparse_csr()
        >>> coo = as_sparse_coo(A, "adjacency")
        >>> coo.layout, coo.indices().tolist(), coo.values().tolist()
        (torch.sparse_coo, [[0, 1], [1, 0]], [2.0, 1.0])
    """
    if not is_sparse(x):
        raise ValueError(f"{name} must be a sparse matrix, got {type(x).__name__}")
    if isinstance(x, torch.Tensor):
        coo = x if x.layout == torch.sparse_coo else x.to_sparse_coo()
    else:
        m = x.tocoo()
        index = torch.from_numpy(np.vstack([m.row, m.col]).astype(np.int64))
        coo = torch.sparse_coo_tensor(index, torch.from_numpy(np.asarray(m.data)), m.shape,
                                      check_invariants=True)
    coo = coo.coalesce()
    check_finite(coo.values(), f"{name} (its stored values)")
    return coo


def to_numpy(t) -> np.ndarray:
    """A tensor (any device, with or without grad) or array as a NumPy array.

    Examples:
        >>> to_numpy(torch.ones(2, requires_grad=True))
        array([1., 1.], dtype=float32)
    """
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


# ----------------------------------------------------------------------------- environment
def seed_from_env(default: int = 0) -> int:
    """The book's seed: ``MMBOOK_SEED`` from the environment if set, else ``default``.

    Chapters call ``set_seed(seed_from_env())`` so that the whole book can be run under
    another seed (``MMBOOK_SEED=3 make notebooks``).

    Examples:
        >>> from unittest import mock
        >>> with mock.patch.dict(os.environ, {"MMBOOK_SEED": "3"}):
        ...     seed_from_env()
        3
    """
    raw = os.environ.get("MMBOOK_SEED", "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"MMBOOK_SEED must be an int, got {raw!r}") from None


def environment() -> str:
    """Where the code runs, the one place the package asks.

    Returns:
        ``"colab"``; ``"nbval"`` (under the tests: pytest, or a kernel it started);
        ``"jupyter"`` (a kernel that a Jupyter server started for a person: live);
        ``"ipykernel"`` (a kernel driven headless, e.g. by jupyter-book); or ``"script"``.

    Examples:
        >>> environment() in ("colab", "nbval", "jupyter", "ipykernel", "script")
        True
    """
    import sys

    if "google.colab" in sys.modules:
        return "colab"
    if os.environ.get("PYTEST_CURRENT_TEST") or "nbval" in sys.modules:
        return "nbval"
    if "ipykernel" in sys.modules:
        return "jupyter" if os.environ.get("JPY_SESSION_NAME") else "ipykernel"
    return "script"


# ----------------------------------------------------------------------------- absent modalities
# The package's one rule for absent modalities. ``present`` (bool (N, M), True = sample n
# has modality m) is validated by check_present; what an absent modality holds is removed
# by fill_absent (torch.where, never a product). Fusions, attention over modalities, the
# graph over modalities, ModalityDropout and the imputers all call these two.
def check_present(present, num_modalities: int, batch_size: int | None = None, device=None,
                  name: str = "present") -> torch.Tensor:
    r"""Validate a ``present`` mask, the package's one reading of "which modalities are there".

    ``present[n, m]`` is ``True`` when sample n has modality m (the package's mask
    convention: True = real). It is bool ``(N, M)``, or ``(M,)`` for the same modalities
    in every sample (a list of M booleans works too). **Every sample must have at least
    one modality**: a row with none raises, in every fusion and imputer alike (there is
    nothing to fuse or impute from; :class:`mmbook.missing.ModalityDropout` and
    :func:`mmbook.missing.missing_mask` never produce such a row).

    Args:
        present: a bool tensor, array or list, ``(N, M)`` or ``(M,)``.
        num_modalities: M.
        batch_size: N; when given, the result is expanded to ``(N, M)``.
        device: where the mask goes (default: where it is; a list goes to the CPU).
        name: the argument's name, used in messages.

    Returns:
        bool ``(N, M)`` (``(1, M)`` from an ``(M,)`` mask when ``batch_size`` is None).

    Raises:
        ValueError: not bool, a wrong shape (the message gives the shape received and the
            one expected), or a sample with no modality (its first rows are named).

    Shape:
        - present: :math:`(N, M)` or :math:`(M,)`
        - output: :math:`(N, M)`

    Examples:
        >>> check_present([True, False], 2, batch_size=3)
        tensor([[ True, False],
                [ True, False],
                [ True, False]])
        >>> check_present(torch.tensor([[True, False], [False, False]]), 2)
        Traceback (most recent call last):
        ...
        ValueError: present: every sample needs at least one modality; rows [1] have none
    """
    M = check_positive_int(num_modalities, "num_modalities")
    p = present if isinstance(present, torch.Tensor) else torch.as_tensor(np.asarray(present))
    if device is not None:
        p = p.to(device)
    n = "N" if batch_size is None else batch_size
    if p.dtype != torch.bool:
        raise ValueError(f"{name} must be a bool tensor ({n}, {M}) or ({M},), True = present, "
                         f"got dtype {p.dtype}")
    ok = (p.dim() == 1 and p.shape[0] == M) or (
        p.dim() == 2 and p.shape[1] == M and (batch_size is None or p.shape[0] in (1, batch_size)))
    if not ok:
        raise ValueError(f"{name} must have shape ({n}, {M}) or ({M},), got {_fmt(p.shape)}")
    p = p.reshape(-1, M)  # (N or 1, M)
    empty = ~p.any(dim=1)
    if p.device.type != "meta" and bool(empty.any()):  # meta: shapes only, no values
        rows = torch.nonzero(empty).flatten()[:5].tolist()
        raise ValueError(f"{name}: every sample needs at least one modality; rows {rows} "
                         f"have none")
    return p if batch_size is None else p.expand(batch_size, M)


def fill_absent(xs, present, value: float = 0.0, shapes: Sequence | None = None,
                name: str = "xs") -> list:
    r"""Remove what absent modalities hold: the rows of ``xs[m]`` whose modality is absent
    become ``value``.

    .. math:: \tilde x^{(m)}_n = \begin{cases} x^{(m)}_n & r_{nm} \\ v & \text{otherwise}
              \end{cases}

    with :math:`r` the ``present`` mask (:func:`check_present`). Written with
    ``torch.where``, never as the product :math:`r_{nm} x^{(m)}_n`: whatever an absent row
    holds (NaN, inf, garbage) is dropped, and its gradient is exactly 0 (a product gives
    0 × NaN = NaN, in the output and in the gradient). ``xs[m]`` may be ``None`` for a
    modality absent from every sample; it becomes ``value`` everywhere, of shape
    ``(N, *shapes[m])``.

    Args:
        xs: a list of M tensors ``(N, ...)`` (``None`` where absent from every sample).
        present: the mask, as :func:`check_present` takes it.
        value: what absent rows hold afterwards (0: the neutral input of a sum).
        shapes: each modality's feature shape (an int :math:`D_m` or a tuple), needed only
            for a ``None`` entry.
        name: the argument's name, used in messages.

    Returns:
        a list of M tensors, each shaped like its input.

    Raises:
        ValueError: ``xs`` not a list of M entries, tensors that disagree on N, a ``None``
            entry for a modality some sample has (or with no shape to build it), and what
            :func:`check_present` raises.

    Shape:
        - xs[m]: :math:`(N, *)`; present: :math:`(N, M)` or :math:`(M,)`
        - output[m]: :math:`(N, *)`

    Examples:
        >>> xs = [torch.ones(2, 3), torch.full((2, 2), float("nan"))]
        >>> fill_absent(xs, torch.tensor([[True, True], [True, False]]))[1]
        tensor([[nan, nan],
                [0., 0.]])
        >>> fill_absent([torch.ones(2, 3), None], [True, False], shapes=(3, 2))[1]
        tensor([[0., 0.],
                [0., 0.]])
    """
    if isinstance(xs, torch.Tensor) or not isinstance(xs, (list, tuple)) or not xs:
        raise ValueError(f"{name} must be a list of modality tensors (N, ...), None where "
                         f"absent, got {type(xs).__name__}")
    known = [x for x in xs if x is not None]
    for m, x in enumerate(xs):
        if x is not None and (not isinstance(x, torch.Tensor) or x.dim() < 1):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name}[{m}] must be a tensor (N, ...) or None, got {got}")
    if not known:
        raise ValueError(f"{name}: at least one modality tensor is needed, got only None")
    N, M = known[0].shape[0], len(xs)
    mask = check_present(present, M, N, device=known[0].device)
    out = []
    for m, x in enumerate(xs):
        if x is None:
            if bool(mask[:, m].any()):
                raise ValueError(f"{name}[{m}] is None but present[:, {m}] is True for some "
                                 f"samples")
            if shapes is None or shapes[m] is None or not isinstance(shapes[m], (int, tuple)):
                raise ValueError(f"{name}[{m}] is None and no feature size is known for it")
            tail = (shapes[m],) if isinstance(shapes[m], int) else tuple(shapes[m])
            out.append(known[0].new_full((N, *tail), value))
            continue
        if x.shape[0] != N:
            raise ValueError(f"{name}[{m}] has batch size {x.shape[0]} (shape {_fmt(x.shape)}) "
                             f"but {name} has N={N}: all modalities must share N")
        keep = mask[:, m].reshape(N, *(1,) * (x.dim() - 1))  # (N, 1, ..., 1)
        out.append(torch.where(keep, x, torch.full((), value, dtype=x.dtype, device=x.device)))
    return out


# ----------------------------------------------------------------------------- models and files
def count_parameters(model, trainable_only: bool = False) -> int:
    """The number of scalar parameters of ``model``: all of them (default), or only those an
    optimizer would train (``requires_grad``) with ``trainable_only=True``.

    Buffers (BatchNorm statistics) are not parameters; a tensor kept in a plain Python
    list is not registered, so it is not counted either (chapter 6).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))  # 8 + 6 parameters
        >>> _ = net[0].requires_grad_(False)  # freeze the first layer
        >>> count_parameters(net), count_parameters(net, trainable_only=True)
        (14, 6)
    """
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb") -> Iterator:
    """Write a file all at once or not at all: a context manager yielding an open file.

    The data go to a temporary file in the same folder, which replaces ``path``
    (``os.replace``, atomic on POSIX and Windows) only when the block ends without an
    error; otherwise it is removed and ``path`` is left as it was. An interrupted
    download or an exception mid-write never leaves a half-written file. The file gets
    mode ``0o644`` (``mkstemp`` makes files private; the package's files are not secret).

    Args:
        path: the file to write; its folder must exist.
        mode: ``"wb"`` (bytes) or ``"w"`` (text, UTF-8).

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_write(folder / "a.txt", "w") as f:
        ...     _ = f.write("hello")
        >>> (folder / "a.txt").read_text()
        'hello'
        >>> try:
        ...     with atomic_write(folder / "a.txt", "w") as f:
        ...         _ = f.write("half")
        ...         raise OSError("disk full")
        ... except OSError:
        ...     pass
        >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
        ('hello', ['a.txt'])
        >>> import shutil; shutil.rmtree(folder)
    """
    check_choice(mode, ("wb", "w"), "mode")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
