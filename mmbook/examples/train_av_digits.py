"""Train a fusion model on AV digits, in one process or under ``torchrun`` (DDP).

One process::

    python -m mmbook.examples.train_av_digits --epochs 2 --out weights.pt

Two processes on this machine's CPU (gloo), the same global batch::

    torchrun --standalone --nproc_per_node=2 -m mmbook.examples.train_av_digits \\
        --epochs 2 --out weights.pt

On GPUs the same command uses NCCL (one process per GPU, ``--nproc_per_node`` = GPUs).
On several nodes, run on each node (or once per node from ``srun``)::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=HEAD_NODE:29500 --rdzv-id=JOB_ID \\
        -m mmbook.examples.train_av_digits --checkpoint ckpt.pt --resume ckpt.pt

``--checkpoint`` writes a checkpoint after every epoch (rank 0); ``--resume`` continues
from one when it exists (weights, optimizer, epoch, random state), so a job that was
stopped restarts where it was. The script does not change between these launches: everything
distributed happens inside :class:`mmbook.train.Trainer`.

Why the runs agree. Every process draws the same permutation of the data each epoch and
takes its share of each global batch of B items (B / W items on each of W processes,
:class:`mmbook.distributed.GlobalBatchSampler`): the W shares of a step are exactly the
batch one process with batch size B sees. Each process takes the mean loss over its
(equal-sized) share and DDP averages the gradients over the processes (an all-reduce),
which is the gradient of the mean loss over the whole batch. So every optimizer step,
and the final weights, equal the single-process run up to the order of floating-point
additions. Dropout would draw different masks per process, and batch normalisation
would see per-process statistics, so the model here has neither.

Reference: PyTorch, "Getting Started with Distributed Data Parallel" and ``torchrun``.
"""

from __future__ import annotations

import argparse
import os

from torch import nn
from torch.utils.data import Subset

from .. import distributed
from ..data import load_av_digits
from ..encoders import AudioEncoder, ImageEncoder
from ..fusion import ConcatFusion, MultimodalModel
from ..train import Trainer
from ..utils import check_positive_int, set_seed

__all__ = ["build_model", "train", "main"]


def build_model(hidden: int = 32, num_classes: int = 10) -> MultimodalModel:
    """Image CNN + audio LSTM, concatenated, then a linear head (no dropout, no batch norm)."""
    return MultimodalModel(
        [ImageEncoder(channels=(8, 16), out_features=hidden),
         AudioEncoder(input_size=64, hidden_size=hidden)],
        ConcatFusion((hidden, hidden)), nn.Linear(2 * hidden, num_classes), arity=(1, 2))


def train(epochs: int = 2, batch_size: int = 64, n_train: int = 1024, lr: float = 3e-3,
          seed: int = 0, out: str | None = None, progress=True, checkpoint: str | None = None,
          resume: str | None = None, n_test: int = 0) -> dict:
    """Train on ``n_train`` AV digits items; the same code in one process or under DDP.

    Args:
        epochs: passes over the data (in all, counting those before ``resume``).
        batch_size: the GLOBAL batch size B (each of the W processes takes B / W items).
        n_train: items of the training split used (rounded down to a multiple of W, so
            that no process repeats an item).
        lr: Adam's learning rate.
        seed: seeds the weights and the shuffling.
        out: where rank 0 saves the final ``state_dict`` (``None``: not saved).
        progress: the Trainer's progress display (rank 0 only).
        checkpoint: where rank 0 writes a checkpoint after every epoch.
        resume: a checkpoint to continue from, if that file exists (so that one command
            both starts a job and restarts it: ``--checkpoint F --resume F``).
        n_test: test items to evaluate on after training (0: none), shared by the
            processes, each counted once.

    Returns:
        ``{"world_size", "losses", "seconds", "state_dict", "test_accuracy"}`` (the state
        dict on the CPU; the accuracy NaN-free only with ``n_test``).

    Raises:
        ValueError: a batch size that the number of processes does not divide, or fewer
            items than processes.
    """
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(
        batch_size, "batch_size")
    n_train = check_positive_int(n_train, "n_train")
    device = distributed.init()  # joins torchrun's process group: gloo on CPU, NCCL on CUDA
    world = distributed.world_size()
    data = load_av_digits("train", seed=seed)
    n = min(n_train, len(data))
    data = Subset(data, range(n - n % world if n >= world else n))
    set_seed(seed)  # the same initial weights on every process
    model = build_model()
    trainer = Trainer(model, lr=lr, max_epochs=epochs, batch_size=batch_size, seed=seed,
                      device=device, progress=progress, checkpoint_path=checkpoint)
    trainer.fit(data, resume_from=resume if resume and os.path.exists(resume) else None)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if out is not None:
        distributed.save(state, out)  # rank 0 writes, between barriers
    accuracy = float("nan")
    if n_test:
        test = load_av_digits("test", seed=seed)
        accuracy = trainer.evaluate(Subset(test, range(min(n_test, len(test)))))["accuracy"]
    return {"world_size": world, "losses": trainer.history_["train_loss"],
            "seconds": trainer.fit_time_, "state_dict": state, "test_accuracy": accuracy}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--n-test", type=int, default=0, help="test items to evaluate on")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="file for the final weights (rank 0)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint after every epoch")
    parser.add_argument("--resume", default=None, help="checkpoint to continue from")
    args = parser.parse_args(argv)
    try:
        result = train(args.epochs, args.batch_size, args.n_train, args.lr, args.seed,
                       args.out, checkpoint=args.checkpoint, resume=args.resume,
                       n_test=args.n_test)
        if distributed.rank() == 0:
            W = result["world_size"]
            test = f"; test accuracy {result['test_accuracy']:.3f}" if args.n_test else ""
            print(f"done in {result['seconds']:.1f} s ({W} process{'es' * (W > 1)}){test}")
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
