"""Train a fusion model on AV digits, in one process or under ``torchrun`` (DDP).

One process::

    python -m mmbook.examples.train_av_digits --epochs 2 --out weights.pt

Two processes on this machine's CPU (gloo), the same global batch::

    torchrun --standalone --nproc_per_node=2 -m mmbook.examples.train_av_digits \\
        --epochs 2 --out weights.pt

On GPUs the same command uses NCCL (one process per GPU, ``--nproc_per_node`` = GPUs);
on several nodes, start it on each node with ``--nnodes``, ``--node_rank`` and a
``--rdzv-endpoint`` that all nodes reach: the script does not change.

Why the two runs agree. ``DistributedSampler`` draws one permutation of the data per epoch
(seeded by ``seed + epoch``) and gives rank r the items ``r, r + W, r + 2W, ...``; with a
per-rank batch of ``B / W`` items, the W ranks' i-th batches together are exactly items
``i B`` to ``(i + 1) B - 1`` of the permutation, the batch a single process with batch size B
sees. Each rank takes the mean loss over its (equal-sized) part and DDP averages the
gradients over the ranks (an all-reduce), which is the gradient of the mean loss over the
whole batch. So every optimizer step, and the final weights, equal the single-process run
up to the order of floating-point additions. Dropout would draw different masks per rank,
and batch normalisation would see per-rank statistics, so the model here has neither.

Reference: PyTorch, "Getting Started with Distributed Data Parallel" and ``torchrun``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

from ..data import load_av_digits
from ..encoders import AudioEncoder, ImageEncoder
from ..fusion import ConcatFusion, MultimodalModel
from ..utils import check_positive_int, set_seed

__all__ = ["build_model", "train", "main"]


def build_model(hidden: int = 32, num_classes: int = 10) -> MultimodalModel:
    """Image CNN + audio LSTM, concatenated, then a linear head (no dropout, no batch norm)."""
    return MultimodalModel(
        [ImageEncoder(channels=(8, 16), out_features=hidden),
         AudioEncoder(input_size=64, hidden_size=hidden)],
        ConcatFusion((hidden, hidden)), nn.Linear(2 * hidden, num_classes), arity=(1, 2))


def _setup_distributed() -> tuple[int, int, torch.device]:
    """Join the process group when started by torchrun; return (rank, world, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return 0, 1, device
    if torch.cuda.is_available():
        local = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        device = torch.device("cuda", local)
    else:
        dist.init_process_group("gloo")
        device = torch.device("cpu")
    return dist.get_rank(), dist.get_world_size(), device


def train(epochs: int = 2, batch_size: int = 64, n_train: int = 1024, lr: float = 3e-3,
          seed: int = 0, out: str | None = None, log=print) -> dict:
    """Train on ``n_train`` AV digits items; the same code in one process or under DDP.

    Args:
        epochs: passes over the data.
        batch_size: the GLOBAL batch size B (each of the W processes takes B / W items).
        n_train: items of the training split used (rounded down to a multiple of W).
        lr: Adam's learning rate.
        seed: seeds the weights and the sampler's permutations.
        out: where rank 0 saves the final ``state_dict`` (``None``: not saved).
        log: called with one line per epoch, on rank 0 only.

    Returns:
        ``{"world_size", "losses", "seconds", "state_dict"}`` (the state dict on the CPU).

    Raises:
        ValueError: a batch size that the number of processes does not divide.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    n_train = check_positive_int(n_train, "n_train")
    rank, world, device = _setup_distributed()
    try:
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} must be a multiple of the number of "
                             f"processes ({world}): each takes batch_size / {world} items")
        data = load_av_digits("train", seed=seed)
        n = min(n_train, len(data)) // world * world
        data = Subset(data, range(n))
        set_seed(seed)  # the same initial weights on every rank
        model = build_model().to(device)
        net = model if world == 1 else nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True,
                                     seed=seed, drop_last=False)
        loader = DataLoader(data, batch_size=batch_size // world, sampler=sampler)
        losses, start = [], time.perf_counter()
        for epoch in range(epochs):
            sampler.set_epoch(epoch)  # a new permutation each epoch, the same on every rank
            total = torch.zeros(2, device=device)  # (sum of losses, items)
            for images, audio, lengths, labels in loader:
                images, audio, labels = images.to(device), audio.to(device), labels.to(device)
                loss = nn.functional.cross_entropy(net(images, audio, lengths), labels)
                optimizer.zero_grad()
                loss.backward()  # DDP all-reduces (averages) the gradients here
                optimizer.step()
                total += torch.stack([loss.detach() * len(labels),
                                      torch.tensor(float(len(labels)), device=device)])
            if world > 1:
                dist.all_reduce(total)  # the epoch's mean loss over every rank's items
            losses.append(float(total[0] / total[1]))
            if rank == 0:
                log(f"epoch {epoch + 1}/{epochs}  loss {losses[-1]:.4f}  "
                    f"({world} process{'es' if world > 1 else ''})")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        if out is not None and rank == 0:  # the checkpoint is written by rank 0 alone
            torch.save(state, out)
        return {"world_size": world, "losses": losses,
                "seconds": time.perf_counter() - start, "state_dict": state}
    finally:
        if world > 1:
            dist.destroy_process_group()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="file for the final weights (rank 0)")
    args = parser.parse_args(argv)
    result = train(args.epochs, args.batch_size, args.n_train, args.lr, args.seed, args.out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done in {result['seconds']:.1f} s")


if __name__ == "__main__":
    main()
