"""Grading without trusting the student's kernel: *produce* there, *judge* here.

The grader (:mod:`mmbook.grade`) never decides points in a process that ran student code.
For each exercise it runs the checker twice, with the same code:

1. **produce**, in the student's kernel inside the sandbox, right after the exercise's
   cell: the arguments of the teacher's checker call are evaluated in the student's
   namespace, then the checker runs as usual, and every call of the student's function
   made through :func:`mmbook.exercises.call_student` is *recorded*: its inputs and what it
   returned (or raised). Everything is written as data with no code in it (JSON, and
   ``.npy`` arrays read back with ``allow_pickle=False``).
2. **judge**, in the grader's own process: the same checker runs again on the recorded
   values; each call of the student's function is *replayed* (the checker's own inputs must
   match the recorded ones, and the recorded output is returned), so the verdict comes
   from the grader's code. Patching ``Feedback``, ``check_close``, ``eval`` or ``print``
   in the kernel changes nothing here; the most a kernel can do is claim outputs, and a
   claimed output earns points only if it is the right answer to the checker's inputs.

Each checker call runs twice in both places: on the book's inputs, and on **hidden
inputs**: :func:`hidden_inputs` shifts the seeds of the random generators the checker
builds (``torch.Generator().manual_seed``, ``torch.manual_seed``,
``numpy.random.default_rng``, ``numpy.random.seed``) by a secret the teacher's grading run
draws, so an answer hard-coded for the book's inputs fails.

The rules a checker follows (then the grader handles it with no change):

* the student's function is called only through ``call_student(fn, *args)``; anything
  else the checker needs from it (a gradient, a parameter count) is computed in a probe
  function passed to ``call_student`` in its place (see ``ch14.check_gradient_reversal``);
* the checker is deterministic: the same answers give the same calls with the same inputs;
  random inputs come from generators seeded with constants (shifted for the hidden run);
* in the starter cell's call, every argument that is a Python literal (``n=28``) is fixed
  by the teacher's edition; every other expression (``answer``, ``my_conv``) is the
  student's answer, evaluated in the student's namespace at that cell: a value (tensors,
  arrays, numbers, strings, lists, tuples, dicts) or a function (replayed).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from . import _SESSION, Feedback

__all__ = ["Unreadable", "NotRecorded", "encode", "decode", "same", "hidden_inputs",
           "parse_call", "produce", "judge_call", "read_answers"]

MAX_DEPTH = 16
MAX_ITEMS = 100_000
MAX_STR = 1 << 20
MAX_BYTES = 48 << 20  # bytes of arrays recorded per exercise


class Unreadable:
    """An answer the grader could not read back (an unsupported type, too large, ...)."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<an answer the grader could not read: {self.what}>"


class Replayed:
    """Stands for the student's function in the judge: only ``call_student`` may use it."""

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise NotRecorded("the checker used your function outside call_student (a checker "
                          "bug: tell your teacher)")


class NotRecorded(BaseException):
    """The judge needs an output the kernel did not record (a BaseException, so that a
    checker's ``except Exception`` cannot turn it into a verdict)."""


# ----------------------------------------------------------------------------- the codec
class _Encoder:
    """Values -> a JSON tree, with the arrays kept aside (written as ``.npy`` files)."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.arrays: list = []
        self.left = max_bytes

    def _array(self, arr: np.ndarray):
        if arr.dtype.hasobject:
            return None
        if arr.nbytes > self.left:
            return None
        self.left -= arr.nbytes
        self.arrays.append(np.array(arr, copy=True, order="C"))
        return len(self.arrays) - 1

    def encode(self, v, depth: int = 0) -> dict:
        if depth > MAX_DEPTH:
            return {"t": "unreadable", "what": "nested too deeply"}
        if v is None:
            return {"t": "none"}
        if isinstance(v, bool):
            return {"t": "bool", "v": bool(v)}
        if isinstance(v, int):
            return ({"t": "int", "v": str(int(v))} if abs(int(v)) < 10 ** 1000
                    else {"t": "unreadable", "what": "an int with over 1000 digits"})
        if isinstance(v, float):
            return {"t": "float", "v": repr(float(v))}
        if isinstance(v, complex):
            return {"t": "complex", "v": [repr(v.real), repr(v.imag)]}
        if isinstance(v, str):
            return ({"t": "str", "v": str(v)} if len(v) <= MAX_STR
                    else {"t": "unreadable", "what": f"a string of {len(v)} characters"})
        if isinstance(v, torch.Tensor):
            return self._tensor(v)
        if isinstance(v, np.ndarray):
            index = self._array(v)
            return ({"t": "ndarray", "a": index} if index is not None else
                    {"t": "unreadable", "what": f"an array of {v.dtype} {v.shape} (too large "
                                                "or of objects)"})
        if isinstance(v, np.generic):
            index = self._array(np.asarray(v))
            return ({"t": "npscalar", "a": index} if index is not None
                    else {"t": "unreadable", "what": f"a numpy {type(v).__name__}"})
        if isinstance(v, (list, tuple)):
            if len(v) > MAX_ITEMS:
                return {"t": "unreadable", "what": f"a sequence of {len(v)} items"}
            return {"t": "tuple" if isinstance(v, tuple) else "list",
                    "items": [self.encode(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            if len(v) > MAX_ITEMS:
                return {"t": "unreadable", "what": f"a dict of {len(v)} items"}
            return {"t": "dict", "items": [[self.encode(k, depth + 1), self.encode(x, depth + 1)]
                                           for k, x in v.items()]}
        if isinstance(v, torch.nn.Module):
            state = {k: t.detach() for k, t in v.state_dict().items()}
            return {"t": "module", "type": type(v).__qualname__,
                    "state": self.encode(state, depth + 1)}
        if callable(v):
            return {"t": "function", "name": str(getattr(v, "__name__", "function"))[:100]}
        return {"t": "unreadable", "what": f"an object of type {type(v).__name__}"}

    def _tensor(self, v: torch.Tensor) -> dict:
        try:
            t = v.detach().cpu()
            if t.layout != torch.strided:
                t = t.to_dense()
            kept = t.dtype
            if t.dtype == torch.bfloat16:
                t = t.float()
            arr = t.resolve_conj().resolve_neg().numpy()
        except Exception as err:  # quantized, meta, ... tensors
            return {"t": "unreadable", "what": f"a tensor that cannot be read ({err})"[:300]}
        index = self._array(arr)
        if index is None:
            return {"t": "unreadable", "what": f"a tensor of {tuple(v.shape)} (too large)"}
        return {"t": "tensor", "a": index, "dtype": str(kept).removeprefix("torch."),
                "requires_grad": bool(v.requires_grad)}


def encode(value, max_bytes: int = MAX_BYTES) -> tuple:
    """``value`` as ``(tree, arrays)``: a JSON-able tree and the list of arrays it points to.

    Examples:
        >>> tree, arrays = encode((torch.ones(2), {"k": 3}))
        >>> tree["t"], len(arrays), decode(tree, arrays)[1]
        ('tuple', 1, {'k': 3})
    """
    enc = _Encoder(max_bytes)
    return enc.encode(value), enc.arrays


def decode(tree, arrays, depth: int = 0):
    """The value a tree from :func:`encode` stands for (``Unreadable`` where it cannot).

    Untrusted input: any malformed part becomes an :class:`Unreadable`.
    """
    try:
        return _decode(tree, arrays, depth)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError,
            RecursionError) as err:
        return Unreadable(f"a malformed record ({type(err).__name__})")


_DTYPES = {"bfloat16": torch.bfloat16}


def _decode(tree, arrays, depth):
    if depth > MAX_DEPTH + 2:
        return Unreadable("nested too deeply")
    t = tree["t"]
    if t == "none":
        return None
    if t == "bool":
        return bool(tree["v"])
    if t == "int":
        return int(str(tree["v"])[:1002])
    if t == "float":
        return float(str(tree["v"]))
    if t == "complex":
        return complex(float(tree["v"][0]), float(tree["v"][1]))
    if t == "str":
        return str(tree["v"])
    if t in ("tensor", "ndarray", "npscalar"):
        arr = arrays[int(tree["a"])]
        if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
            return Unreadable("a missing array")
        if t == "ndarray":
            return arr.copy()
        if t == "npscalar":
            return arr[()]
        out = torch.from_numpy(arr.copy())
        dtype = _DTYPES.get(str(tree.get("dtype")))
        if dtype is not None:
            out = out.to(dtype)
        if tree.get("requires_grad") and (out.is_floating_point() or out.is_complex()):
            out.requires_grad_(True)
        return out
    if t in ("list", "tuple"):
        items = [_decode(x, arrays, depth + 1) for x in tree["items"][:MAX_ITEMS]]
        return tuple(items) if t == "tuple" else items
    if t == "dict":
        out = {}
        for key, value in tree["items"][:MAX_ITEMS]:
            k = _decode(key, arrays, depth + 1)
            try:
                hash(k)
            except TypeError:
                return Unreadable("a dict with an unhashable key")
            out[k] = _decode(value, arrays, depth + 1)
        return out
    if t == "function":
        return Replayed(str(tree.get("name", "function"))[:100])
    if t == "module":
        return Unreadable(f"a {str(tree.get('type'))[:100]} module")
    return Unreadable(str(tree.get("what", "an unknown record"))[:300])


def same(a_tree, a_arrays, b_tree, b_arrays, depth: int = 0) -> bool:
    """Do two encoded values hold the same data (floats within 1e-6, relative)?"""
    try:
        if depth > MAX_DEPTH + 2 or a_tree.get("t") != b_tree.get("t"):
            return False
        t = a_tree["t"]
        if t in ("tensor", "ndarray", "npscalar"):
            x, y = a_arrays[int(a_tree["a"])], b_arrays[int(b_tree["a"])]
            if x.shape != y.shape or x.dtype != y.dtype:
                return False
            if x.dtype.kind in "fc":
                return bool(np.allclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=True))
            return bool(np.array_equal(x, y))
        if t in ("list", "tuple"):
            return len(a_tree["items"]) == len(b_tree["items"]) and all(
                same(x, a_arrays, y, b_arrays, depth + 1)
                for x, y in zip(a_tree["items"], b_tree["items"]))
        if t == "dict":
            return len(a_tree["items"]) == len(b_tree["items"]) and all(
                same(ka, a_arrays, kb, b_arrays, depth + 1)
                and same(va, a_arrays, vb, b_arrays, depth + 1)
                for (ka, va), (kb, vb) in zip(a_tree["items"], b_tree["items"]))
        if t == "module":
            return a_tree.get("type") == b_tree.get("type") and same(
                a_tree["state"], a_arrays, b_tree["state"], b_arrays, depth + 1)
        if t == "float":
            x, y = float(a_tree["v"]), float(b_tree["v"])
            return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-6,
                                                                       abs_tol=1e-9)
        if t == "function":
            return True
        return a_tree == b_tree
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return False


# ----------------------------------------------------------------------------- sessions
class _Recorder:
    """Produce side: records each call of the student's function."""

    replaying = False

    def __init__(self, encoder: _Encoder):
        self.encoder = encoder
        self.calls: list = []

    def begin(self, args) -> dict:
        entry = {"args": self.encoder.encode(list(args)), "outcome": {"unfinished": True}}
        self.calls.append(entry)
        return entry

    def end(self, entry: dict, kind: str, value) -> None:
        entry["outcome"] = ({"raised": str(value)[:2000]} if kind == "raised"
                            else {"value": self.encoder.encode(value)})


class _Replayer:
    """Judge side: answers each call of the student's function from the record."""

    replaying = True

    def __init__(self, calls: list, arrays: list, unfinished: str):
        self.calls, self.arrays, self.position = calls, arrays, 0
        self.unfinished = unfinished

    def replay(self, args) -> tuple:
        if self.position >= len(self.calls):
            raise NotRecorded(self.unfinished)
        entry = self.calls[self.position]
        self.position += 1
        mine, my_arrays = encode(list(args), max_bytes=1 << 40)
        if not isinstance(entry, dict) or not same(mine, my_arrays, entry.get("args", {}),
                                                     self.arrays):
            raise NotRecorded("the kernel recorded your function's output for other inputs "
                              "than the checker's (was the checker changed in the notebook?)")
        outcome = entry.get("outcome", {})
        if not isinstance(outcome, dict) or outcome.get("unfinished") or not outcome:
            raise NotRecorded("your function did not return on the checker's input within "
                              "the time limit")
        if "raised" in outcome:
            return "raised", str(outcome["raised"])[:2000]
        return "value", decode(outcome.get("value", {}), self.arrays)


@contextlib.contextmanager
def _session(session):
    token = _SESSION.set(session)
    try:
        yield session
    finally:
        _SESSION.reset(token)


# ----------------------------------------------------------------------------- hidden inputs
def _shift(seed, offset: int):
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return (int(seed) + offset) % (2 ** 32)
    return seed


@contextlib.contextmanager
def hidden_inputs(offset: int):
    """Shift the seed of every random generator a checker builds by ``offset`` (0: no-op).

    Examples:
        >>> with hidden_inputs(5):
        ...     a = torch.randn(2, generator=torch.Generator().manual_seed(0))
        >>> torch.equal(a, torch.randn(2, generator=torch.Generator().manual_seed(5)))
        True
    """
    if not offset:
        yield
        return
    saved = (torch.Generator, torch.manual_seed, np.random.default_rng, np.random.seed)

    class Generator(saved[0]):
        def manual_seed(self, seed):
            return super().manual_seed(_shift(seed, offset))

    def manual_seed(seed):
        return saved[1](_shift(seed, offset))

    def default_rng(seed=None):
        return saved[2](_shift(seed, offset))

    def np_seed(seed=None):
        return saved[3](_shift(seed, offset))

    torch.Generator, torch.manual_seed = Generator, manual_seed
    np.random.default_rng, np.random.seed = default_rng, np_seed
    try:
        yield
    finally:
        torch.Generator, torch.manual_seed, np.random.default_rng, np.random.seed = saved


# ----------------------------------------------------------------------------- checker calls
def parse_call(arguments: str) -> dict:
    """Split a checker call's argument source into literals and answer expressions.

    Returns:
        ``{"args": [slot, ...], "kwargs": {name: slot}}``, a slot being
        ``{"literal": bool, "source": str}``.

    Raises:
        ValueError: ``*args`` / ``**kwargs`` or a syntax error.

    Examples:
        >>> parse_call("answer, n=28, kernel=5")["kwargs"]["n"]
        {'literal': True, 'source': '28'}
        >>> parse_call("answer, n=28")["args"][0]
        {'literal': False, 'source': 'answer'}
    """
    node = ast.parse(f"f({arguments})", mode="eval").body

    def slot(expr):
        try:
            ast.literal_eval(expr)
            return {"literal": True, "source": ast.unparse(expr)}
        except ValueError:
            return {"literal": False, "source": ast.unparse(expr)}

    if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords):
        raise ValueError(f"a checker call with *args or **kwargs cannot be graded: "
                         f"{arguments!r}")
    return {"args": [slot(a) for a in node.args],
            "kwargs": {k.arg: slot(k.value) for k in node.keywords}}


def _runs(salt: int) -> tuple:
    return (("book", 0), ("hidden", salt)) if salt else (("book", 0),)


def produce(plan_file, label: str, out_dir, namespace: dict | None = None) -> None:
    """Kernel side: record the answers of exercise ``label`` (see the module docstring).

    Writes ``out_dir/<label>/answers.json`` and its ``a<i>.npy`` arrays, after each run, so
    that a run cut short keeps what was recorded.

    Args:
        plan_file: the grader's plan (JSON): ``{"salt": int, "exercises": {label:
            {"calls": [{"module", "function", "args", "kwargs"}]}}}``.
        label: the exercise.
        out_dir: where the record goes.
        namespace: the student's namespace; default the IPython kernel's.
    """
    if namespace is None:
        from IPython import get_ipython

        namespace = get_ipython().user_ns
    with open(plan_file, encoding="utf-8") as f:
        plan = json.load(f)
    exercise, salt = plan["exercises"][label], int(plan["salt"])
    encoder = _Encoder()
    record = {"label": label, "calls": []}
    folder = Path(out_dir) / label
    folder.mkdir(parents=True, exist_ok=True)
    for call in exercise["calls"]:
        entry = {"values": {}, "missing": {}, "runs": {}}
        record["calls"].append(entry)
        slots = [(str(i), s) for i, s in enumerate(call["args"])] + list(call["kwargs"].items())
        values = {}
        for key, s in slots:
            if s["literal"]:
                values[key] = ast.literal_eval(s["source"])
                continue
            try:
                values[key] = eval(compile(s["source"], "<answer>", "eval"), namespace)
            except Exception as err:
                entry["missing"][key] = f"{type(err).__name__}: {err}"[:500]
                continue
            entry["values"][key] = encoder.encode(values[key])
        _write(folder, record, encoder)
        if entry["missing"]:
            continue
        args = [values[str(i)] for i in range(len(call["args"]))]
        kwargs = {k: values[k] for k in call["kwargs"]}
        checker = getattr(importlib.import_module(f"mmbook.exercises.{call['module']}"),
                          call["function"])
        for run, offset in _runs(salt):
            recorder = _Recorder(encoder)
            entry["runs"][run] = recorder.calls
            try:
                with _session(recorder), hidden_inputs(offset):
                    checker(*args, **kwargs)
            except KeyboardInterrupt:  # the time limit: keep what was recorded, stop
                _write(folder, record, encoder)
                return
            except BaseException:  # the checker's own verdict does not matter here
                pass
            _write(folder, record, encoder)


def _write(folder: Path, record: dict, encoder: _Encoder) -> None:
    for i, arr in enumerate(encoder.arrays):
        path = folder / f"a{i}.npy"
        if not path.exists():
            np.save(path, arr, allow_pickle=False)
    tmp = folder / "answers.json.tmp"
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, folder / "answers.json")


def read_answers(files: dict, label: str, max_bytes: int = 64 << 20):
    """The record of ``label`` from the sandbox's files (``{relative path: bytes}``).

    Returns:
        ``(record, arrays)``, or ``(None, [])`` when there is none or it cannot be read.
        Arrays are read with ``allow_pickle=False``; an unreadable one becomes ``None``.
    """
    import io

    raw = files.get(f"answers/{label}/answers.json")
    if raw is None or len(raw) > max_bytes:
        return None, []
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, []
    if not isinstance(record, dict) or record.get("label") != label:
        return None, []
    arrays, i = [], 0
    while f"answers/{label}/a{i}.npy" in files:
        try:
            arrays.append(np.load(io.BytesIO(files[f"answers/{label}/a{i}.npy"]),
                                  allow_pickle=False))
        except (ValueError, OSError, EOFError):
            arrays.append(None)
        i += 1
    return record, arrays


def judge_call(call: dict, entry, arrays: list, salt: int,
               missing_reason: str = "the notebook stopped before this exercise") -> tuple:
    """Grader side: the verdicts of one checker call, on the book's and the hidden inputs.

    Args:
        call: ``{"module", "function", "args", "kwargs"}`` from the teacher's edition
            (:func:`parse_call`).
        entry: the kernel's record of this call (untrusted), or ``None``.
        arrays: the arrays the record points to.
        salt: the hidden-input offset of this grading run.
        missing_reason: what to say when nothing was recorded.

    Returns:
        ``[(run, Feedback), ...]`` for the runs ``"book"`` (and ``"hidden"``).
    """
    checker = getattr(importlib.import_module(f"mmbook.exercises.{call['module']}"),
                      call["function"])
    if not isinstance(entry, dict):
        return [("book", Feedback(False, missing_reason))]
    missing = entry.get("missing") or {}
    if missing:
        key, why = next(iter(missing.items()))
        source = (call["args"][int(key)] if key.isdigit() and int(key) < len(call["args"])
                  else call["kwargs"].get(key, {"source": key}))["source"]
        return [("book", Feedback(False, f"{source} is not defined when the exercise's cell "
                                         f"has run ({str(why)[:300]})"))]
    values = entry.get("values") or {}
    slots = [(str(i), s) for i, s in enumerate(call["args"])] + list(call["kwargs"].items())
    resolved = {}
    for key, s in slots:
        if s["literal"]:
            resolved[key] = ast.literal_eval(s["source"])
        elif isinstance(values.get(key), dict):
            resolved[key] = decode(values[key], arrays)
        else:
            return [("book", Feedback(False, f"no value of {s['source']} was recorded"))]
    args = [resolved[str(i)] for i in range(len(call["args"]))]
    kwargs = {k: resolved[k] for k in call["kwargs"]}
    runs = entry.get("runs") if isinstance(entry.get("runs"), dict) else {}
    verdicts = []
    for run, offset in _runs(salt):
        calls = runs.get(run)
        replayer = _Replayer(calls if isinstance(calls, list) else [], arrays,
                             "your function did not answer the checker's call (the time "
                             "limit, or the kernel stopped)")
        try:
            with _session(replayer), hidden_inputs(offset):
                verdict = checker(*args, **kwargs)
        except NotRecorded as err:
            verdict = Feedback(False, str(err))
        except Exception as err:
            verdict = Feedback(False, f"the checker could not use your answer "
                                      f"({type(err).__name__}: {str(err)[:300]})")
        if not isinstance(verdict, Feedback):
            verdict = Feedback(False, "the checker gave no verdict")
        verdicts.append((run, verdict))
    return verdicts
