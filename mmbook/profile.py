"""What a model costs: parameters, FLOPs, latency and peak memory on a given input.

Each measure uses the tool PyTorch provides for it:

* parameters: a sum over ``model.parameters()`` (optionally trainable only);
* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode`, which counts the floating-point
  operations of matrix multiplications and convolutions (a multiply-add counts as 2);
  element-wise operations are not counted, as in the papers that report FLOPs;
* latency: :class:`torch.utils.benchmark.Timer` (warm-up, then ``blocked_autorange``),
  reported as the median and the interquartile range over the measured blocks, with the
  number of threads it ran on;
* peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on the CPU the peak of the
  bytes held by live tensors created during the call, tracked by a dispatch mode (the
  activations; the parameters are reported apart).

Reference: PyTorch's benchmarking recipe (``torch.utils.benchmark``) and ``FlopCounterMode``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import weakref
from collections import Counter

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from .utils import check_positive, count_parameters  # re-exported: one count_parameters

__all__ = ["count_parameters", "count_flops", "measure_latency", "peak_memory",
           "model_size_bytes", "profile_model"]


def _as_inputs(inputs) -> tuple:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if not isinstance(inputs, (tuple, list)):
        raise TypeError(f"inputs must be a tensor or a tuple of the model's positional "
                        f"inputs, got {type(inputs).__name__}")
    return tuple(inputs)


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return model


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of the model's ``state_dict`` as ``torch.save`` writes it (parameters, buffers
    and packed quantised weights included): the size of the file you would ship.

    Examples:
        >>> big, small = nn.Linear(1000, 256), nn.Linear(1000, 128)
        >>> (model_size_bytes(big) - model_size_bytes(small)) // 1000  # 4 bytes a weight
        512
    """
    import io

    _check_model(model)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _is_rnn(module: nn.Module) -> bool:
    """``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``, or their dynamically quantised versions
    (``torch.ao.nn.quantized.dynamic.LSTM`` / ``GRU``, which are not ``nn.RNNBase``)."""
    if isinstance(module, nn.RNNBase):
        return True
    return (type(module).__module__.startswith("torch.ao.nn.quantized.dynamic")
            and getattr(module, "mode", None) in _GATES and hasattr(module, "num_layers"))


def _rnn_flops(module: nn.Module, x) -> int:
    r"""FLOPs of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` on ``x``, from the gate equations.

    Each step of each layer and direction computes :math:`G` gates of size H from the
    input and the previous state, two matrix-vector products:
    :math:`2\,G H (D_{in} + H)` FLOPs per step and sample (``FlopCounterMode`` does not see
    inside torch's fused recurrent kernels, so they are counted here). With
    ``proj_size`` P > 0 (an LSTM with projections) the state fed back has size P and each
    step adds the projection :math:`h = W_{hr} h'`: :math:`2\,G H (D_{in} + P) + 2 H P`.
    """
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        steps = int(x.batch_sizes.sum())  # sum of the lengths
    else:
        steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
    G, H = _GATES[module.mode], module.hidden_size
    P = getattr(module, "proj_size", 0) or 0
    H_out = P or H  # the size of the state fed back (and passed up)
    dirs = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        d_in = module.input_size if layer == 0 else H_out * dirs
        total += dirs * steps * (2 * G * H * (d_in + H_out) + 2 * H * P)
    return total


# ----------------------------------------------- closed forms where the counter is blind
# FlopCounterMode has formulas for mm, addmm, bmm, baddbmm, convolutions and the CUDA
# attention kernels. The ops below do the same kind of work inside one fused kernel it has
# no formula for, so it counts them as 0; each closed form receives the op's actual
# arguments and output.
def _seq_lengths(x: torch.Tensor) -> list[int]:
    """Sequence length of each sample: (N, L, E) -> [L] * N, nested -> [L_n], (L, E) -> [L]."""
    if x.is_nested:
        return [int(n) for n in x._nested_tensor_size()[:, 0]]
    if x.dim() == 2:
        return [int(x.shape[0])]
    return [int(x.shape[-2])] * math.prod(x.shape[:-2])


def _mha_closed_form(L: int, S: int, E: int) -> int:
    r"""Multi-head attention of L queries over S keys, embed_dim E (any number of heads):
    projections :math:`2E^2(L + 2S)`, out-projection :math:`2E^2L`, scores
    :math:`QK^\top` and :math:`AV` :math:`2LSE` each."""
    return 2 * E * E * (2 * L + 2 * S) + 4 * L * S * E


def _sdpa_flops(args, kwargs, out) -> int:
    r"""Fused scaled dot-product attention, q (*, L, E_k), k (*, S, E_k), v (*, S, E_v):
    :math:`2LSE_k` for :math:`QK^\top` plus :math:`2LSE_v` for :math:`AV`, per batch and
    head (a causal mask is ignored, as in torch's own formula)."""
    q, k, v = args[:3]
    batch, (L, E_k), S, E_v = math.prod(q.shape[:-2]), q.shape[-2:], k.shape[-2], v.shape[-1]
    return 2 * batch * L * S * (E_k + E_v)


def _mha_flops(args, kwargs, out) -> int:
    """``nn.MultiheadAttention``'s fast path (``aten._native_multi_head_attention``)."""
    query, key, embed_dim = args[0], args[1], args[3]
    return sum(_mha_closed_form(L, S, embed_dim)
               for L, S in zip(_seq_lengths(query), _seq_lengths(key)))


def _encoder_layer_flops(args, kwargs, out) -> int:
    """``nn.TransformerEncoderLayer``'s fast path (``aten._transformer_encoder_layer_fwd``):
    self-attention plus the two linear layers of the MLP, :math:`4 L E F`."""
    src, embed_dim, ffn_weight_1 = args[0], args[1], args[14]
    F = ffn_weight_1.shape[0]  # dim_feedforward
    return sum(_mha_closed_form(L, L, embed_dim) + 4 * L * embed_dim * F
               for L in _seq_lengths(src))


def _linear_flops(args, kwargs, out) -> int:
    """A linear layer on X (*, K) giving (*, O): :math:`2 \\cdot \\#X \\cdot O` (the
    dynamically quantised linear layers: int8 or float16 multiply-adds)."""
    return 2 * args[0].numel() * out.shape[-1]


def _cell_flops(gates: int):
    """One step of a dynamically quantised recurrent cell: :math:`2\\,N G H (D + H)`."""
    def flops(args, kwargs, out) -> int:
        x, hx = args[0], args[1]
        H = (hx[0] if isinstance(hx, (list, tuple)) else hx).shape[-1]
        return 2 * x.numel() // x.shape[-1] * gates * H * (x.shape[-1] + H)
    return flops


def _mv_flops(args, kwargs, out) -> int:
    """Matrix (M, K) times vector (K,): :math:`2MK` (``addmv`` takes the bias first)."""
    mat = args[1] if len(args) > 2 else args[0]
    return 2 * mat.shape[0] * mat.shape[1]


def _dot_flops(args, kwargs, out) -> int:
    return 2 * args[0].numel()


def _sparse_mm_flops(args, kwargs, out) -> int:
    """Sparse (N, M) with nnz stored entries times dense (M, D): :math:`2\\,\\mathrm{nnz}\\,D`
    (each stored entry scales a row of D and adds it)."""
    return 2 * args[1]._nnz() * args[2].shape[-1]


def _addmm_flops(args, kwargs, out) -> int:
    return 2 * args[1].shape[0] * args[1].shape[1] * args[2].shape[1]


def _int_mm_flops(args, kwargs, out) -> int:
    """``torch._int_mm``: int8 (M, K) times int8 (K, N) into int32, :math:`2MKN` (torchao's
    int8 linear layers run their products through it)."""
    return 2 * args[0].shape[0] * args[0].shape[1] * args[1].shape[1]


def _closed_forms() -> dict:
    table = {
        "aten._scaled_dot_product_flash_attention_for_cpu": _sdpa_flops,
        "aten._scaled_dot_product_attention_math_for_mps": _sdpa_flops,
        "aten._scaled_dot_product_fused_attention_overrideable": _sdpa_flops,
        "aten._native_multi_head_attention": _mha_flops,
        "aten._transformer_encoder_layer_fwd": _encoder_layer_flops,
        "aten._addmm_activation": _addmm_flops,
        "aten._int_mm": _int_mm_flops,
        "aten._sparse_addmm": _sparse_mm_flops,
        "aten.mv": _mv_flops, "aten.addmv": _mv_flops,
        "aten.dot": _dot_flops, "aten.vdot": _dot_flops,
        "quantized.linear_dynamic": _linear_flops,
        "quantized.linear_relu_dynamic": _linear_flops,
        "quantized.linear_dynamic_fp16": _linear_flops,
        "quantized.linear_relu_dynamic_fp16": _linear_flops,
        "quantized.quantized_lstm_cell_dynamic": _cell_flops(4),
        "quantized.quantized_gru_cell_dynamic": _cell_flops(3),
        "quantized.quantized_rnn_tanh_cell_dynamic": _cell_flops(1),
        "quantized.quantized_rnn_relu_cell_dynamic": _cell_flops(1),
    }
    ops = {}
    for name, formula in table.items():
        namespace, op = name.split(".")
        packet = getattr(getattr(torch.ops, namespace), op, None)  # absent in older torch
        if packet is not None:
            ops[packet] = formula
    return ops


# words in an op's name that mean it multiplies matrices (or does a recurrence or
# attention); such an op without any formula is reported instead of counted as 0
_COMPUTE_WORDS = {"mm", "bmm", "addmm", "baddbmm", "mv", "addmv", "dot", "vdot", "matmul",
                  "einsum", "tensordot", "conv", "conv1d", "conv2d", "conv3d", "convolution",
                  "linear", "bilinear", "trilinear", "attention", "lstm", "gru", "rnn",
                  "transformer", "cdist"}


def _looks_like_compute(name: str) -> bool:
    return not _COMPUTE_WORDS.isdisjoint(name.split("::")[-1].split("_"))


class _BlindSpots(TorchDispatchMode):
    """Runs below ``FlopCounterMode`` and sees each op it executes without decomposing:
    adds the closed form of the fused ops it has no formula for (``flops``) and records
    the compute ops that have none anywhere (``missed``)."""

    def __init__(self, counter):
        super().__init__()
        self.counter, self.closed_forms = counter, _closed_forms()
        self.flops = 0
        self.missed: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in self.counter.flop_registry:  # counted by FlopCounterMode: never twice
            return out
        formula = self.closed_forms.get(packet)
        if formula is not None:
            try:
                self.flops += int(formula(args, kwargs, out))
                return out
            except Exception:  # an input the closed form does not handle: report it
                pass
        if formula is not None or _looks_like_compute(func.name()):
            self.missed.append(func.name())
        return out

    def _seen(self) -> int:
        return self.counter.get_total_flops() + self.flops

    @contextlib.contextmanager
    def rnn_closed_forms(self, model: nn.Module):
        """Add :func:`_rnn_flops` for each recurrent layer whose call counted nothing."""
        before = {}

        def pre_hook(module, _args):
            before[id(module)] = (self._seen(), len(self.missed))

        def hook(module, args, kwargs, _out):
            # torch's packed-sequence path is decomposed into visible matmuls (counted);
            # the fused kernel of the padded path is not: add the closed form when unseen
            flops, n_missed = before.pop(id(module))
            if self._seen() == flops:
                self.flops += _rnn_flops(module, args[0] if args else kwargs["input"])
                del self.missed[n_missed:]  # the fused kernel is now counted

        handles = []
        for m in model.modules():
            if _is_rnn(m):
                handles += [m.register_forward_pre_hook(pre_hook),
                            m.register_forward_hook(hook, with_kwargs=True)]
        try:
            yield self
        finally:
            for h in handles:
                h.remove()

    def warn_missed(self) -> None:
        if self.missed:
            names = ", ".join(f"{op} ({n}x)" for op, n in Counter(self.missed).items())
            warnings.warn(f"count_flops left out {names}: FlopCounterMode cannot see inside "
                          f"these ops and mmbook has no closed form for them, so the count "
                          f"is too low", UserWarning, stacklevel=4)


@torch.no_grad()
def count_flops(model: nn.Module, inputs) -> int:
    """Floating-point operations of one forward pass, counted by ``FlopCounterMode``.

    A multiply-add counts as 2 FLOPs: ``nn.Linear(D, E)`` on ``(N, D)`` costs ``2 N D E``.
    ``FlopCounterMode`` counts the matrix products and convolutions it has a formula for;
    the fused kernels it cannot see inside are added here from closed forms, each checked
    in the tests against ``FlopCounterMode`` on an equivalent computation it does see:

    * torch's recurrent kernels (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` on a padded batch),
      from the gate equations (:func:`_rnn_flops`; checked against
      :class:`mmbook.rnn.LSTMScratch`, which computes the same gates with visible matmuls);
    * attention fast paths: ``F.scaled_dot_product_attention``'s fused CPU kernel (so
      also :class:`mmbook.attention.MultiheadCrossModalAttention` with
      ``need_weights=False``), ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``
      in eval mode without gradients (the text encoder of :mod:`mmbook.text`); checked
      against the same layers on torch's unfused path;
    * dynamically quantised layers (torchao's ``quantize_`` with int8 dynamic
      activations, whose products are ``torch._int_mm``, and the older
      ``torch.ao.quantization.quantize_dynamic``): their int8 (or float16) multiply-adds
      are counted like the float layer's (they are the same operations in another number
      format), so quantising leaves the count unchanged;
    * matrix-vector products (``mv``, ``addmv``, ``dot``) and sparse-dense products
      (``torch.sparse.mm`` with a COO matrix: 2 FLOPs per stored entry and output column).

    Any other op that looks like a matrix product, a convolution, a recurrence or
    attention but has no formula (e.g. ``nn.Bilinear``, ``torch.cdist``, statically
    quantised layers) is left out of the count with a warning naming it.

    Args:
        model: the module.
        inputs: a tensor or a tuple of positional inputs.

    Returns:
        the total FLOPs (an int).

    Warns:
        UserWarning: some compute ops could not be counted (named in the message).

    Examples:
        >>> count_flops(nn.Linear(3, 2, bias=False), torch.zeros(5, 3))
        60
        >>> count_flops(nn.LSTM(4, 8, batch_first=True), torch.zeros(2, 10, 4))  # 2*10*2*32*12
        15360
    """
    from torch.utils.flop_counter import FlopCounterMode

    _check_model(model)
    counter = FlopCounterMode(display=False)
    blind = _BlindSpots(counter)  # the closed forms, where the counter is blind
    with blind.rnn_closed_forms(model), blind, counter:
        model(*_as_inputs(inputs))
    blind.warn_missed()
    return int(counter.get_total_flops()) + blind.flops


@torch.no_grad()
def measure_latency(model: nn.Module, inputs, min_run_time: float = 0.2,
                    num_threads: int | None = None) -> dict:
    """Latency of one forward pass, measured by ``torch.utils.benchmark.Timer``.

    Args:
        model: the module (put in ``eval`` mode by the caller if it matters).
        inputs: a tensor or a tuple of positional inputs.
        min_run_time: seconds of measurement (``blocked_autorange``).
        num_threads: torch threads to run on (default: the current setting).

    Returns:
        ``{"median_ms", "iqr_ms", "num_threads", "runs"}``: median and interquartile range
        of the time per call in milliseconds.

    Raises:
        ValueError: a non-positive ``min_run_time``.

    Examples:
        >>> m = measure_latency(nn.Linear(8, 4), torch.zeros(1, 8), min_run_time=0.01,
        ...                     num_threads=1)
        >>> sorted(m), m["num_threads"], m["median_ms"] > 0
        (['iqr_ms', 'median_ms', 'num_threads', 'runs'], 1, True)
    """
    from torch.utils import benchmark

    _check_model(model)
    check_positive(min_run_time, "min_run_time")
    threads = torch.get_num_threads() if num_threads is None else int(num_threads)
    args = _as_inputs(inputs)
    model(*args)  # warm-up (lazy initialisation, caches)
    timer = benchmark.Timer(stmt="model(*args)", globals={"model": model, "args": args},
                            num_threads=threads)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return {"median_ms": m.median * 1e3, "iqr_ms": m.iqr * 1e3, "num_threads": threads,
            "runs": len(m.times)}


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of the tensors created while active and the peak of their sum."""

    def __init__(self, existing=()):
        super().__init__()
        self._existing = {t.untyped_storage().data_ptr() for t in existing}
        self.live = 0
        self.peak = 0
        self._seen: set = set()

    def _track(self, t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key and key not in self._seen and key not in self._existing:
                self._seen.add(key)
                size = storage.nbytes()
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._free, key, size)
        return t

    def _free(self, key, size):
        self._seen.discard(key)
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tree_map(self._track, out)
        return out


@torch.no_grad()
def peak_memory(model: nn.Module, inputs) -> int:
    """Peak bytes of the tensors a forward pass creates (activations and temporaries).

    On CUDA this is ``torch.cuda.max_memory_allocated`` during the call, minus what was
    allocated before; on the CPU (and other devices) the peak of the bytes held by the
    tensors created during the call (a dispatch mode tracks each new storage until it is
    freed). Parameters and the inputs are not counted.

    Examples:
        >>> peak_memory(nn.Linear(3, 2), torch.zeros(4, 3))  # one (4, 2) float32 output
        32
    """
    _check_model(model)
    args = _as_inputs(inputs)
    device = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        out = model(*args)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        del out
        return int(peak)
    existing = [*model.parameters(), *model.buffers(),
                *(a for a in args if isinstance(a, torch.Tensor))]
    mode = _LiveBytes(existing)
    with mode:
        out = model(*args)
    del out
    return int(mode.peak)


def profile_model(model: nn.Module, inputs, min_run_time: float = 0.2,
                  num_threads: int | None = None) -> dict:
    """One row of the cost table: parameters, size, FLOPs, latency and peak memory.

    Returns:
        ``{"params", "size_kB", "MFLOPs", "latency_ms", "latency_iqr_ms", "threads",
        "peak_kB"}`` for one forward pass on ``inputs``.

    Examples:
        >>> row = profile_model(nn.Linear(3, 2), torch.zeros(4, 3), min_run_time=0.01)
        >>> row["params"], row["MFLOPs"] * 1e6, row["peak_kB"] * 1e3  # 2*4*3*2 FLOPs
        (8, 48.0, 32.0)
    """
    was_training = _check_model(model).training
    model.eval()
    try:
        lat = measure_latency(model, inputs, min_run_time, num_threads)
        return {
            "params": count_parameters(model),
            "size_kB": model_size_bytes(model) / 1e3,
            "MFLOPs": count_flops(model, inputs) / 1e6,
            "latency_ms": lat["median_ms"],
            "latency_iqr_ms": lat["iqr_ms"],
            "threads": lat["num_threads"],
            "peak_kB": peak_memory(model, inputs) / 1e3,
        }
    finally:
        model.train(was_training)
