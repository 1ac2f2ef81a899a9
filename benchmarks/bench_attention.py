"""Time mmbook's scaled dot-product attention against torch's fused kernel (CPU).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_attention.py`` (add ``--threads N``).
Prints the median time of each path and its ratio to ``F.scaled_dot_product_attention``
for N=32, h=4, L=S=256, E=64 (per-head size 64), in one run.
"""

from __future__ import annotations

import argparse
import timeit

import torch
import torch.nn.functional as F

from mmbook.attention import scaled_dot_product_attention


def median_time(fn, repeat: int, number: int) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls, in seconds."""
    fn()  # warm up
    times = timeit.repeat(fn, repeat=repeat, number=number)
    return sorted(times)[len(times) // 2] / number


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--masked", action="store_true", help="add a padding mask")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = (args.batch, args.heads, args.length, args.embed)
    q, k, v = (torch.randn(shape) for _ in range(3))
    mask = None
    if args.masked:
        lengths = torch.randint(args.length // 2, args.length + 1, (args.batch,))
        mask = (torch.arange(args.length)[None, :] < lengths[:, None])[:, None, None, :]
    paths = {
        "torch F.scaled_dot_product_attention": lambda: F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask),
        "mmbook, weights path (need_weights=True)": lambda: scaled_dot_product_attention(
            q, k, v, mask, need_weights=True),
        "mmbook, fast path (need_weights=False)": lambda: scaled_dot_product_attention(
            q, k, v, mask, need_weights=False),
    }
    with torch.no_grad():
        times = {name: median_time(fn, args.repeat, args.number) for name, fn in paths.items()}
    ref = times["torch F.scaled_dot_product_attention"]
    print(f"shape (N, h, L=S, E) = {shape}, threads = {torch.get_num_threads()}, "
          f"masked = {args.masked}, torch {torch.__version__}")
    for name, t in times.items():
        print(f"{name:45s} {1e3 * t:8.2f} ms   ratio to torch {t / ref:5.2f}")
    return times


if __name__ == "__main__":
    main()
