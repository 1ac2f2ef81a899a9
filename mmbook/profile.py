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

import weakref

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
    and packed quantised weights included): the size of the file you would ship."""
    import io

    _check_model(model)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn_flops(module: nn.RNNBase, x) -> int:
    r"""FLOPs of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` on ``x``, from the gate equations.

    Each step of each layer and direction computes :math:`G` gates of size H from the
    input and the previous state, two matrix-vector products:
    :math:`2\,G H (D_{in} + H)` FLOPs per step and sample (``FlopCounterMode`` does not see
    inside torch's fused recurrent kernels, so they are counted here).
    """
    from torch.nn.utils.rnn import PackedSequence

    if isinstance(x, PackedSequence):
        steps = int(x.batch_sizes.sum())  # sum of the lengths
    else:
        steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]
    G, H = _GATES[module.mode], module.hidden_size
    dirs = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        d_in = module.input_size if layer == 0 else H * dirs
        total += dirs * steps * 2 * G * H * (d_in + H)
    return total


@torch.no_grad()
def count_flops(model: nn.Module, inputs) -> int:
    """Floating-point operations of one forward pass, counted by ``FlopCounterMode``.

    A multiply-add counts as 2 FLOPs: ``nn.Linear(D, E)`` on ``(N, D)`` costs ``2 N D E``.
    torch's fused recurrent kernels (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` on a padded batch)
    are invisible to ``FlopCounterMode``; their FLOPs are added from the gate equations
    (the tests check this against ``FlopCounterMode`` on
    :class:`mmbook.rnn.LSTMScratch`, which computes the same gates with visible matmuls).

    Args:
        model: the module.
        inputs: a tensor or a tuple of positional inputs.

    Returns:
        the total FLOPs (an int).

    Examples:
        >>> count_flops(nn.Linear(3, 2, bias=False), torch.zeros(5, 3))
        60
        >>> count_flops(nn.LSTM(4, 8, batch_first=True), torch.zeros(2, 10, 4))  # 2*10*2*32*12
        15360
    """
    from torch.utils.flop_counter import FlopCounterMode

    _check_model(model)
    counter = FlopCounterMode(display=False)
    rnn_total, before = [0], {}

    def pre_hook(module, _args):
        before[id(module)] = counter.get_total_flops()

    def hook(module, args, _out):
        # torch's packed-sequence path is decomposed into visible matmuls (counted); the
        # fused kernel of the padded path is not: add the closed form only when unseen
        if counter.get_total_flops() == before.pop(id(module)):
            rnn_total[0] += _rnn_flops(module, args[0])

    handles = []
    for m in model.modules():
        if isinstance(m, nn.RNNBase):
            handles += [m.register_forward_pre_hook(pre_hook), m.register_forward_hook(hook)]
    try:
        with counter:
            model(*_as_inputs(inputs))
    finally:
        for h in handles:
            h.remove()
    return int(counter.get_total_flops()) + rnn_total[0]


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
