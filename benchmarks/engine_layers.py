"""The convolution engine against the BLAS route and torch, on every realistic layer and named shape.

One process, interleaved rounds (engine, BLAS route, torch one after another in each round), the
median of per-round ratios, so a co-tenant's burst slows all three alike. 2-D layers only run on the
engine today; the others are listed with the route they take (engine = BLAS there).

    env -u OPENBLAS_CORETYPE python benchmarks/engine_layers.py [--quick] [--threads 2,1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch

import im2col
from im2col import _engine
from im2col._bench_measure import cpu_model
from im2col._layers import REALISTIC, Layer
from im2col.bench import SHAPES


def layers() -> dict[str, Layer]:
    out = dict(REALISTIC)
    for s in SHAPES.values():
        out["named:" + s.name] = Layer(s.name, s.note, s.N, s.C, s.spatial, s.K, s.kernel, s.stride, (s.pad,) * s.dims)
    return out


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def runners(layer: Layer) -> dict[str, Callable[[], object]]:
    """One call each of ``layer`` on the engine's routes, on the BLAS route and in torch, on the same
    inputs (the engine ones switch the mode; the caller restores it)."""
    x, w = layer.inputs()
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    ours, theirs, kw = layer.ours(), layer.torch(), layer.kwargs()

    def run_engine():
        _engine.set_mode("engine")
        return ours(x, w, **kw)

    def run_blas():
        _engine.set_mode("blas")
        return ours(x, w, **kw)

    def run_torch():
        with torch.no_grad():
            return theirs(tx, tw, **kw)

    return {"engine": run_engine, "blas": run_blas, "torch": run_torch}


def measure(layer: Layer, rounds: int) -> dict[str, float]:
    """Medians over rounds: engine/torch, blas/torch, engine/blas, and the engine's GFLOP/s."""
    mode = _engine.MODE
    run_engine, run_blas, run_torch = runners(layer).values()
    for f in (run_engine, run_blas, run_torch):
        f()
    r_et, r_bt, r_eb, t_e = [], [], [], []
    for _ in range(rounds):
        te, tb, tt = _time(run_engine), _time(run_blas), _time(run_torch)
        r_et.append(te / tt)
        r_bt.append(tb / tt)
        r_eb.append(te / tb)
        t_e.append(te)
    _engine.set_mode(mode)
    med = statistics.median
    return {"engine/torch": med(r_et), "blas/torch": med(r_bt), "engine/blas": med(r_eb),
            "GFLOP/s": layer.flops / med(t_e) / 1e9}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, small layers only")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", default="2,1", help="thread counts, comma-separated")
    ap.add_argument("--layers", default="", help="comma-separated names (default: all)")
    args = ap.parse_args(argv)
    rounds = 3 if args.quick else args.rounds
    todo = layers()
    if args.layers:
        todo = {k: v for k, v in todo.items() if k in args.layers.split(",")}
    elif args.quick:
        todo = {k: v for k, v in todo.items() if v.flops < 2e8}
    print(f"CPU: {cpu_model()}; micro-kernel: {_engine.ISA}; torch {torch.__version__}; rounds {rounds}")
    for n in [int(t) for t in args.threads.split(",")]:
        im2col.set_num_threads(n)
        torch.set_num_threads(n)
        print(f"\n## {n} thread(s)\n")
        print("| layer | shape | engine/torch | BLAS route/torch | engine/BLAS | engine GFLOP/s |")
        print("|---|---|---|---|---|---|")
        realistic = {"engine/torch": [], "blas/torch": []}
        for name, layer in todo.items():
            r = measure(layer, rounds)
            if name in REALISTIC:
                for k in realistic:
                    realistic[k].append(r[k])
            print(f"| {name} | {layer.label} | {r['engine/torch']:.2f} | {r['blas/torch']:.2f} | "
                  f"{r['engine/blas']:.2f} | {r['GFLOP/s']:.0f} |", flush=True)  # fmt: skip
        for k, v in realistic.items():
            if v:
                gm = math.exp(sum(map(math.log, v)) / len(v))
                print(f"\nREALISTIC {k}: geomean {gm:.2f}, worst {max(v):.2f} ({len(v)} layers)")
    im2col.set_num_threads(None)


if __name__ == "__main__":
    main()
