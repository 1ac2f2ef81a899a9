"""Forward + backward time of mmbook.rnn.LSTMScratch against torch.nn.LSTM on the CPU.

Not a test: run it by hand (``python benchmarks/bench_lstm.py``) and read the ratio.
Both modules hold the same weights; one step = forward, a sum as loss, backward.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.benchmark import Timer

from mmbook.rnn import LSTMScratch


def fwd_bwd(model: nn.Module, x: torch.Tensor) -> None:
    """One forward and backward pass (gradients w.r.t. the weights and the input)."""
    model.zero_grad(set_to_none=True)
    x.grad = None
    out, (h_n, c_n) = model(x)
    (out.sum() + h_n.sum() + c_n.sum()).backward()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--input-size", type=int, default=40)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-run-time", type=float, default=2.0, help="seconds per module")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    ref = nn.LSTM(args.input_size, args.hidden_size, batch_first=True)
    ours = LSTMScratch.from_torch(ref)
    x = torch.randn(args.batch, args.length, args.input_size, requires_grad=True)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])  # same function before timing it

    times = {}
    for name, model in (("torch.nn.LSTM", ref), ("LSTMScratch", ours)):
        timer = Timer("fwd_bwd(model, x)", globals={"fwd_bwd": fwd_bwd, "model": model, "x": x},
                      num_threads=args.threads, label="LSTM forward+backward",
                      sub_label=name, description=f"N={args.batch}, L={args.length}, "
                      f"{args.input_size}->{args.hidden_size}")
        times[name] = timer.blocked_autorange(min_run_time=args.min_run_time).median
    ratio = times["LSTMScratch"] / times["torch.nn.LSTM"]
    print(f"N={args.batch}, L={args.length}, {args.input_size} -> {args.hidden_size}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    for name, secs in times.items():
        print(f"  {name:14s} {1e3 * secs:8.2f} ms per forward+backward")
    print(f"  ratio LSTMScratch / torch.nn.LSTM = {ratio:.2f}")
    return {**times, "ratio": ratio}


if __name__ == "__main__":
    main()
