"""The engine's GEMM route against the BLAS route on small-channel layers the realistic set does not name.

The rule that lets ``IM2COL_ENGINE=auto`` take the GEMM route for small-channel convolutions
(``im2col/_engine.py``, ``route_why``) was read off the realistic set's CIFAR and Inception layers;
this script checks it on twelve held-out layers of the same family (groups 1, stride 1, dilation 1,
4 ≤ C ≤ 64, K ≤ 64, 3×3 or 5×5), so that it is not a speed-up on the benchmark's own shapes only.
One process, interleaved rounds (engine, BLAS route, torch), medians of per-round ratios.

    env -u OPENBLAS_CORETYPE python benchmarks/small_channels.py [--rounds 15] [--threads 2,1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

import im2col
from im2col import _engine
from im2col._bench_measure import cpu_model

#: (N, C, H = W, K, k): VGG/ResNet-on-CIFAR-like widths at other sizes and batches
SHAPES = [
    (32, 64, 32, 64, 3), (8, 64, 56, 64, 3), (1, 64, 56, 64, 3), (64, 16, 32, 16, 3),
    (16, 48, 28, 48, 3), (32, 24, 32, 48, 3), (64, 16, 14, 32, 5), (4, 32, 64, 32, 3),
    (16, 64, 16, 32, 3), (128, 32, 8, 64, 3), (8, 16, 128, 16, 3), (2, 64, 28, 64, 5),
]  # fmt: skip
SMOKE = [(2, 8, 10, 8, 3)]


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(N: int, C: int, H: int, K: int, k: int, rounds: int) -> tuple[float, float, float]:
    """Medians of engine/BLAS, engine/torch and BLAS/torch over interleaved rounds."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H), np.float32)
    w = rng.standard_normal((K, C, k, k), np.float32)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    mode = _engine.MODE

    def engine():
        _engine.set_mode("engine")
        im2col.conv2d(x, w, padding=k // 2)

    def blas():
        _engine.set_mode("blas")
        im2col.conv2d(x, w, padding=k // 2)

    def theirs():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, padding=k // 2)

    try:
        for f in (engine, blas, theirs):
            f()
        eb, et, bt = [], [], []
        for _ in range(rounds):
            te, tb, tt = _time(engine), _time(blas), _time(theirs)
            eb.append(te / tb)
            et.append(te / tt)
            bt.append(tb / tt)
    finally:
        _engine.set_mode(mode)
    med = statistics.median
    return med(eb), med(et), med(bt)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print one table per thread count; return the geomean engine/BLAS per thread count."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", default="2,1", help="thread counts, comma-separated")
    ap.add_argument("--smoke", action="store_true", help="one tiny layer, one round (for the test run)")
    args = ap.parse_args(argv)
    shapes, rounds = (SMOKE, 1) if args.smoke else (SHAPES, args.rounds)
    print(f"CPU: {cpu_model()}; kernels: {_engine.ISA}; torch {torch.__version__}; rounds {rounds}")
    out = {}
    for n in [int(t) for t in args.threads.split(",")]:
        im2col.set_num_threads(n)
        torch.set_num_threads(n)
        try:
            print(f"\n{n} thread(s)\n\n| layer | engine/BLAS | engine/torch | BLAS/torch |\n|---|---|---|---|")
            ratios = []
            for N, C, H, K, k in shapes:
                eb, et, bt = measure(N, C, H, K, k, rounds)
                ratios.append(eb)
                print(f"| {N}×{C}×{H}×{H}, {K} {k}×{k} p{k // 2} | {eb:.2f} | {et:.2f} | {bt:.2f} |", flush=True)
            out[f"{n} thread(s)"] = math.exp(statistics.fmean(math.log(r) for r in ratios))
            print(f"\ngeomean engine/BLAS: {out[f'{n} thread(s)']:.2f} (worst {max(ratios):.2f})")
        finally:
            im2col.set_num_threads(None)
    return out


if __name__ == "__main__":
    main()
