"""Time one epoch of SGD (batch 1) against mini-batches (batch 32), chapter 5's lesson (CPU).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_minibatch.py``. Softmax regression
(784 -> 10) trained with mmbook's ``sgd_step`` on N=3000 random inputs, as in chapter 5;
prints the median time of an epoch for each batch size, the time per update, and the ratio
SGD / mini-batch. The chapter asserts counts (the same examples, 32 times fewer updates);
this timing claim lives here, as a ratio, because it depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import timeit

import torch
from torch import nn

from mmbook.optim import cross_entropy, sgd_step


def epoch(X, Y, batch_size: int, lr: float) -> int:
    """One pass over (X, Y) in batches of ``batch_size``; returns the number of updates."""
    model = nn.Linear(X.shape[1], 10)
    params, state, updates = list(model.parameters()), {}, 0
    for i in range(0, len(Y), batch_size):
        loss = cross_entropy(model(X[i:i + batch_size]), Y[i:i + batch_size])
        sgd_step(params, torch.autograd.grad(loss, params), state, lr)
        updates += 1
    return updates


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    X, Y = torch.randn(args.n, 784) / 28.0, torch.randint(0, 10, (args.n,))
    rows = {}
    for name, batch, lr in (("SGD (batch 1)", 1, 0.03), ("mini-batch (32)", 32, 1.0)):
        updates = epoch(X, Y, batch, lr)  # warm up, and count
        times = timeit.repeat(lambda b=batch, r=lr: epoch(X, Y, b, r), repeat=args.repeat,
                              number=1)
        seconds = sorted(times)[len(times) // 2]
        rows[name] = {"seconds": seconds, "updates": updates}
        print(f"{name:16s} {seconds:7.3f} s / epoch  {updates:5d} updates  "
              f"{1e3 * seconds / updates:6.3f} ms / update")
    ratio = rows["SGD (batch 1)"]["seconds"] / rows["mini-batch (32)"]["seconds"]
    print(f"SGD / mini-batch: {ratio:.1f} times the time for the same {args.n} examples")
    return rows


if __name__ == "__main__":
    main()
