"""The engine's GEMM route against the BLAS route and torch in process CPU time, per realistic layer.

On a machine shared with other work, wall-clock ratios swing by tens of percent from one run to the
next (benchmarks/engine_layers.py medians them over rounds). Process CPU time does not count the
time slices other processes take, so with one thread it measures the work each route does far more
steadily; it is the figure to judge a kernel change by. (With two threads it sums both threads' CPU
time: it shows the work, not how evenly the threads share it; engine_layers.py shows that.)
One process, interleaved (engine, BLAS route, torch in each round), best CPU time of the rounds.

    env -u OPENBLAS_CORETYPE python benchmarks/engine_cpu_time.py [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

import im2col
from im2col import _engine
from im2col._bench_measure import cpu_model
from im2col._layers import REALISTIC, Layer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script: its sibling
from engine_layers import runners  # noqa: E402


def engine_layers() -> dict[str, Layer]:
    """The realistic layers the engine computes: 2-D, not transposed, at least 4 channels per group."""
    return {k: v for k, v in REALISTIC.items() if len(v.spatial) == 2 and not v.transposed and v.C // v.groups >= 4}


def best_cpu_times(layer: Layer, rounds: int) -> dict[str, float]:
    """Best process CPU time in seconds over ``rounds`` interleaved rounds: engine, BLAS route, torch."""
    runs = runners(layer)
    best = dict.fromkeys(runs, math.inf)
    old = _engine.MODE
    try:
        for f in runs.values():
            f()
        for _ in range(rounds):
            for name, f in runs.items():
                t = time.process_time()
                f()
                best[name] = min(best[name], time.process_time() - t)
    finally:
        _engine.set_mode(old)
    return best


def main(argv: list[str] | None = None) -> None:
    """Print one table per thread count: CPU-time ratios engine/BLAS, engine/torch, BLAS/torch."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", default="1", help="thread counts, comma-separated")
    ap.add_argument("--layers", default="", help="comma-separated names (default: all the engine takes)")
    ap.add_argument("--quick", action="store_true", help="2 rounds, layers under 2e8 FLOPs")
    args = ap.parse_args(argv)
    todo = engine_layers()
    if args.layers:
        todo = {k: v for k, v in todo.items() if k in args.layers.split(",")}
    elif args.quick:
        todo = {k: v for k, v in todo.items() if v.flops < 2e8}
    rounds = 2 if args.quick else args.rounds
    print(f"CPU: {cpu_model()}; micro-kernel: {_engine.ISA}; torch {torch.__version__}; rounds {rounds}")
    for n in [int(t) for t in args.threads.split(",")]:
        im2col.set_num_threads(n)
        torch.set_num_threads(n)
        print(f"\n## {n} thread(s), best process CPU time\n")
        print("| layer | shape | engine/BLAS | engine/torch | BLAS/torch | engine GFLOP/CPU-s |")
        print("|---|---|---|---|---|---|")
        logs = {"engine/BLAS": [], "engine/torch": [], "BLAS/torch": []}
        for name, layer in todo.items():
            t = best_cpu_times(layer, rounds)
            r = {"engine/BLAS": t["engine"] / t["blas"], "engine/torch": t["engine"] / t["torch"],
                 "BLAS/torch": t["blas"] / t["torch"]}  # fmt: skip
            for k, v in r.items():
                logs[k].append(math.log(v))
            print(f"| {name} | {layer.label} | {r['engine/BLAS']:.2f} | {r['engine/torch']:.2f} | "
                  f"{r['BLAS/torch']:.2f} | {layer.flops / t['engine'] / 1e9:.0f} |", flush=True)  # fmt: skip
        print()
        for k, v in logs.items():
            print(f"geomean {k}: {math.exp(sum(v) / len(v)):.2f}")
    im2col.set_num_threads(None)


if __name__ == "__main__":
    main()
