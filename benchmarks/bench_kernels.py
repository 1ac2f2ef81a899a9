"""Time mmbook's rbf_kernel against scikit-learn's, and KernelCCA's fit on all of mfeat.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_kernels.py`` (add ``--threads N``).
Prints, in one run: the median time of ``mmbook.kernels.rbf_kernel`` and of
``sklearn.metrics.pairwise.rbf_kernel`` on a 2000 x 240 float32 matrix (the size of
mfeat's ``pix`` view; float32, where both compute the squared distances in float64 so that
data far from the origin come out right) and their ratio, then the same in float64; the
fit time of ``KernelCCA`` (exact and Nyström) on all 2000 mfeat samples of two views
(``fou`` and ``zer`` by default). ``--rbf-only`` skips the KernelCCA part.
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np
import torch
from sklearn.metrics import pairwise as skp
from sklearn.preprocessing import StandardScaler

from mmbook.kernels import KernelCCA, rbf_kernel


def median_time(fn, repeat: int, number: int = 1) -> float:
    """Median over ``repeat`` runs of the mean time of ``number`` calls, in seconds."""
    fn()  # warm up
    times = timeit.repeat(fn, repeat=repeat, number=number)
    return sorted(times)[len(times) // 2] / number


def bench_rbf(n: int, d: int, repeat: int, dtype=np.float32) -> dict:
    X = np.random.default_rng(0).normal(size=(n, d)).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(rbf_kernel(X), skp.rbf_kernel(X), **tol)
    ours = median_time(lambda: rbf_kernel(X), repeat)
    ref = median_time(lambda: skp.rbf_kernel(X), repeat)
    return {"mmbook_s": ours, "sklearn_s": ref, "ratio": ours / ref}


def all_mfeat(views) -> list:
    from mmbook.data import load_mfeat

    d = load_mfeat(views)
    return [StandardScaler().fit_transform(np.vstack([d["train"].views[v],
                                                      d["test"].views[v]])).astype(np.float64)
            for v in views]


def bench_kcca(views, n_components: int, n_landmarks: int) -> dict:
    X, Y = all_mfeat(views)
    out = {"n": len(X)}
    for name, approx in (("exact", None), ("nystroem", "nystroem")):
        est = KernelCCA(n_components=n_components, kernel="rbf", reg=1e-2, approx=approx,
                        n_landmarks=n_landmarks)
        t0 = time.perf_counter()
        est.fit(X, Y)
        out[f"{name}_fit_s"] = time.perf_counter() - t0
        out[f"{name}_rho1"] = float(est.canonical_correlations_[0])
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--views", nargs=2, default=["fou", "zer"])
    parser.add_argument("--n-components", type=int, default=5)
    parser.add_argument("--n-landmarks", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rbf-only", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = {}
    for dtype in (np.float32, np.float64):
        rbf = out[np.dtype(dtype).name] = bench_rbf(args.n, args.d, args.repeat, dtype)
        print(f"rbf_kernel {args.n} x {args.d} {np.dtype(dtype).name} (torch threads: "
              f"{torch.get_num_threads()})")
        print(f"  mmbook  {rbf['mmbook_s'] * 1e3:8.1f} ms")
        print(f"  sklearn {rbf['sklearn_s'] * 1e3:8.1f} ms")
        print(f"  ratio mmbook / sklearn: {rbf['ratio']:.2f}")
    if args.rbf_only:
        return {"rbf": out}
    kcca = bench_kcca(args.views, args.n_components, args.n_landmarks)
    print(f"KernelCCA (rbf, reg=1e-2, k={args.n_components}) on {kcca['n']} samples of "
          f"{' + '.join(args.views)}")
    print(f"  exact fit    {kcca['exact_fit_s']:6.2f} s   (rho_1 = {kcca['exact_rho1']:.3f})")
    print(f"  Nystroem fit {kcca['nystroem_fit_s']:6.2f} s   (rho_1 = {kcca['nystroem_rho1']:.3f},"
          f" {args.n_landmarks} landmarks)")
    return {"rbf": out, "kcca": kcca}


if __name__ == "__main__":
    main()
