"""Data-parallel training under ``torchrun``: the few helpers behind :class:`mmbook.train.Trainer`.

``torchrun --nproc_per_node=W`` starts W copies of a script and tells each, in the
environment, its ``RANK`` (0 .. W-1 over all nodes), its ``LOCAL_RANK`` (its GPU on this
node) and the ``WORLD_SIZE`` W. With those set:

* :func:`init` joins the process group (gloo on the CPU, NCCL on CUDA, where each
  process takes the GPU ``cuda:LOCAL_RANK``) and returns the process's device;
* :class:`GlobalBatchSampler` gives each process its share of every global batch;
* :func:`all_gather_sums` adds up per-process sums (losses, hits, counts), so that a
  metric over a sharded data set counts each item once;
* :func:`save` writes a file from rank 0 only, between two barriers;
* :func:`average_gradients` and :func:`broadcast_module` do by hand what
  ``DistributedDataParallel`` does, for models that run their own optimizer steps.

Without ``torchrun`` every function is a no-op for one process (rank 0 of 1), so the same
script runs unchanged on a laptop.

Reference: PyTorch, "Getting Started with Distributed Data Parallel"; ``torchrun``
(Elastic Launch) documentation.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import BatchSampler, Sampler

from .utils import atomic_write, check_positive_int, get_device

__all__ = ["is_distributed", "rank", "world_size", "local_rank", "init", "shutdown",
           "barrier", "all_gather_sums", "all_true", "save", "average_gradients",
           "broadcast_module", "GlobalBatchSampler"]


def is_distributed() -> bool:
    """True when this process belongs to an initialised process group.

    Examples:
        >>> is_distributed()  # a plain process, not started by torchrun
        False
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group).

    Examples:
        >>> rank()
        0
    """
    return dist.get_rank() if is_distributed() else 0


_this_rank = rank  # for GlobalBatchSampler, whose argument is named rank


def world_size() -> int:
    """The number of processes W (1 without a process group).

    Examples:
        >>> world_size()
        1
    """
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """This process's index on its node (``LOCAL_RANK``, set by torchrun; 0 otherwise).

    Examples:
        >>> import os
        >>> local_rank() == int(os.environ.get("LOCAL_RANK", "0"))
        True
    """
    return int(os.environ.get("LOCAL_RANK", "0"))


def _requested_world() -> int:
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"the environment variable WORLD_SIZE must be an int, got "
                         f"{raw!r}") from None


def _device(device) -> torch.device:
    """The device of this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` when distributed."""
    device = torch.device(device) if device is not None else get_device()
    parallel = is_distributed() or _requested_world() > 1
    if device.type == "cuda" and device.index is None and parallel:
        device = torch.device("cuda", local_rank())
    return device


def init(device=None) -> torch.device:
    """Join the process group when started by torchrun (``WORLD_SIZE > 1``).

    The backend follows the device: NCCL for CUDA (after ``torch.cuda.set_device``, so
    that each process drives its own GPU ``cuda:LOCAL_RANK``), gloo otherwise. Does
    nothing when the group is already initialised or when there is one process.

    Args:
        device: the device asked for (``None``: :func:`mmbook.utils.get_device`).

    Returns:
        this process's device.

    Examples:
        >>> init("cpu"), rank(), world_size()  # no torchrun: one process
        (device(type='cpu'), 0, 1)
    """
    device = _device(device)
    if is_distributed() or _requested_world() == 1:
        return device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a script); nothing without one.

    Examples:
        >>> shutdown()  # one process: nothing to leave
    """
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here (nothing in one process).

    Examples:
        >>> barrier()  # one process: returns at once
    """
    if is_distributed():
        dist.barrier()


def all_gather_sums(sums: dict, count: int) -> tuple[dict, int]:
    """Add ``sums`` (name -> float) and ``count`` over every process.

    The processes may hold different keys (a process with an empty shard holds none); a
    key missing on one process counts as 0 there. In one process, returns the input.

    Examples:
        >>> all_gather_sums({"loss": 3.0}, 4)
        ({'loss': 3.0}, 4)
    """
    if not is_distributed():
        return dict(sums), count
    parts = [None] * world_size()
    dist.all_gather_object(parts, (dict(sums), int(count)))
    total, n = {}, 0
    for part_sums, part_count in parts:  # in rank order: the same sum on every process
        for key, value in part_sums.items():
            total[key] = total.get(key, 0.0) + value
        n += part_count
    return total, n


def all_true(flag: bool, device=None) -> bool:
    """True when ``flag`` is True on every process (a logical AND, an all-reduce).

    Examples:
        >>> all_true(True), all_true(False)  # one process: the flag itself
        (True, False)
    """
    if not is_distributed():
        return bool(flag)
    t = torch.tensor(float(bool(flag)), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def save(obj, path) -> None:
    """``torch.save(obj, path)`` on rank 0 only, between two barriers, atomically.

    The first barrier waits until every process has finished the step being saved; the
    second keeps the others from reading ``path`` before it is complete. The file is
    written next to ``path`` and moved into place (:func:`mmbook.utils.atomic_write`), so
    a crash never leaves half a file.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "state.pt"
        >>> save({"epoch": 3}, path); torch.load(path)
        {'epoch': 3}
    """
    barrier()
    if rank() == 0:
        with atomic_write(path) as f:
            torch.save(obj, f)
    barrier()


def average_gradients(params: Iterable[torch.Tensor]) -> None:
    r"""Replace each gradient by its mean over the processes, :math:`g \leftarrow \frac1W
    \sum_r g_r` (what DDP does during ``backward``). Parameters without a gradient are
    skipped, so every process must compute gradients for the same parameters.

    Examples:
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> w.grad = torch.tensor([1.0, 3.0])
        >>> average_gradients([w]); w.grad  # one process: the mean of one gradient
        tensor([1., 3.])
    """
    if not is_distributed():
        return
    W = world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(W)


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process (DDP does it when it wraps).

    Examples:
        >>> layer = torch.nn.Linear(2, 1)
        >>> before = layer.weight.clone()
        >>> broadcast_module(layer); torch.equal(layer.weight, before)  # one process
        True
    """
    if not is_distributed():
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


class GlobalBatchSampler(Sampler):
    r"""Each process's share of every global batch of a one-process order.

    All W processes walk through the same order of items (``sampler``, e.g. a
    ``RandomSampler`` whose generator is seeded alike on every process), cut it into
    global batches of ``batch_size`` B, and process r keeps items r, r + W, r + 2W, ...
    of each batch: B / W items. Together the W shares of a step are exactly the batch one
    process with batch size B would see, so DDP (which averages the W gradients of the
    per-process mean losses) takes the same steps as one process. This is
    ``DistributedSampler``'s scheme (one shared permutation, rank r takes every W-th
    item) applied batch by batch, with the permutation drawn as one process draws it.

    A last batch whose size W does not divide is padded by repeating its first items
    (as ``DistributedSampler`` pads), so that every process takes part in every step; a
    repeated item then counts twice in that step.

    Args:
        sampler: the one-process order of item indices.
        batch_size: the global batch size B, a multiple of ``num_replicas``.
        num_replicas: the number of processes W (default: :func:`world_size`).
        rank: this process's rank r (default: :func:`rank`).

    Raises:
        ValueError: B not a multiple of W, or a rank outside [0, W).

    Examples:
        >>> order = range(9)  # a one-process order; the last batch holds 1 item
        >>> [list(GlobalBatchSampler(order, 4, num_replicas=2, rank=r)) for r in (0, 1)]
        [[[0, 2], [4, 6], [8]], [[1, 3], [5, 7], [8]]]
    """

    def __init__(self, sampler, batch_size: int, num_replicas: int | None = None,
                 rank: int | None = None):
        self.num_replicas = check_positive_int(
            world_size() if num_replicas is None else num_replicas, "num_replicas")
        self.rank = _this_rank() if rank is None else rank
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or \
                not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank must be in [0, {self.num_replicas}), got {self.rank}")
        batch_size = check_positive_int(batch_size, "batch_size")
        if batch_size % self.num_replicas:
            raise ValueError(f"batch_size={batch_size} (the global batch) must be a multiple "
                             f"of the number of processes ({self.num_replicas}): each "
                             f"takes batch_size / {self.num_replicas} items")
        self.batches = BatchSampler(sampler, batch_size, drop_last=False)

    def __iter__(self) -> Iterator[list]:
        W = self.num_replicas
        for batch in self.batches:
            padded = (batch * W)[:-(-len(batch) // W) * W]  # (ceil(n / W) W,) items
            yield padded[self.rank::W]

    def __len__(self) -> int:
        return len(self.batches)
