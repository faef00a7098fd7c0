"""What limits conv2d on the 3×3 ResNet layers: the GEMM on each tile, im2col, or the tile size?

    python benchmarks/gemm_breakdown.py            # runs itself twice: OpenBLAS as configured
                                                   # (OPENBLAS_CORETYPE) and with the variable unset

conv2d's fast path (``_kernels.conv_forward_tiled``) unrolls a tile of ``_tile_rows`` output rows
of one image into a cache-sized buffer and multiplies it by the (K × C·kh·kw) weight matrix with a
single-threaded BLAS call. For each shape this prints, in one process (medians over interleaved
rounds):

1. the single-thread GFLOP/s of that BLAS call on a hot tile, for the tile width the library picks
   and a few others (M = K kernels, K = C·kh·kw, N = tile columns);
2. conv2d (ours) and torch conv2d with 1 and 2 threads, in GFLOP/s, and how much of our
   one-thread time the tile GEMMs alone account for (tiles × GEMM time per tile): the rest is
   im2col and overhead;
3. conv2d (ours, 2 threads) with other ``TILE_BYTES``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script: its sibling
from floor_breakdown import _interleaved as interleaved_samples  # noqa: E402

SHAPES = {  # N, C, H, W, K, kernel, padding
    "res56": (8, 64, 56, 56, 64, 3, 1),
    "res14": (8, 256, 14, 14, 256, 3, 1),
}


def _median_ns(fn, rounds: int, min_ns: int = 2_000_000) -> float:
    """Median per-call time of ``fn`` over ``rounds`` samples of enough calls to last ``min_ns``."""
    fn()
    t0 = time.perf_counter_ns()
    fn()
    reps = max(1, min_ns // max(time.perf_counter_ns() - t0, 1))
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(reps):
            fn()
        samples.append((time.perf_counter_ns() - t0) / reps)
    return statistics.median(samples)


def _interleaved(cases: dict, rounds: int) -> dict[str, float]:
    """Median time (ns) per case, every round running each case once in a random order."""
    return {key: statistics.median(ts) for key, ts in interleaved_samples(cases, rounds).items()}


def child(rounds: int = 15) -> None:
    import threadpoolctl
    import torch
    import torch.nn.functional as F

    import im2col
    from im2col import _kernels, _tiles
    from im2col._gemm import native_blas
    from im2col._validation import geometry

    blas = native_blas()
    pools = threadpoolctl.threadpool_info()
    cores = [f"{p['internal_api']} {p.get('architecture')}" for p in pools if p["user_api"] == "blas"]
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}; BLAS pools: {', '.join(cores)}; "
          f"our GEMM: {blas.name}")  # fmt: skip
    for name, (N, C, H, W, K, k, p) in SHAPES.items():
        g = geometry("conv2d", (N, C, H, W), (k, k), (1, 1), ((p, p), (p, p)), (1, 1))
        rows = _tiles.tile_rows(g, 4)
        flops = 2 * N * K * g.rows * g.L
        print(f"\n{name}: {N}×{C}×{H}×{W}, {K} {k}×{k} p{p}; {flops / 1e9:.2f} GFLOP; library tile = {rows} "
              f"output rows = {rows * g.OW} columns")  # fmt: skip
        rng = np.random.default_rng(0)
        wmat = rng.standard_normal((K, g.rows), dtype=np.float32)
        tile_gemm = {}
        print(f"  1. one-thread GEMM ({K} × {g.rows}) @ ({g.rows} × N) on a hot tile:")
        for r in sorted({1, 2, 4, rows, 8, 16, g.OH, g.OH % rows} & set(range(1, g.OH + 1))):
            n_cols = r * g.OW
            b = rng.standard_normal((g.rows, n_cols), dtype=np.float32)
            out = np.empty((K, n_cols), np.float32)
            t = _median_ns(
                lambda b=b, out=out: _kernels.gemm(wmat, False, b, False, out, 0.0, 1, blas.sgemm, blas.ilp64,
                                                   blas.set_threads_local), rounds)  # fmt: skip
            tile_gemm[r] = t
            mark = "  <- the library's tile" if r == rows else ""
            print(f"     N = {n_cols:5d} ({r:2d} rows): {2 * K * g.rows * n_cols / t:6.1f} GFLOP/s{mark}")
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C, k, k), dtype=np.float32)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        res = {}
        for n_threads in (1, 2):
            im2col.set_num_threads(n_threads)
            torch.set_num_threads(n_threads)
            res[n_threads] = _interleaved(
                {"ours": lambda: im2col.conv2d(x, w, padding=p), "torch": lambda: F.conv2d(xt, wt, padding=p)}, rounds
            )
        im2col.set_num_threads(None)
        torch.set_num_threads(2)
        tiles = N * -(-g.OH // rows)
        gemm_total = N * (g.OH // rows) * tile_gemm[rows] + (N * tile_gemm[g.OH % rows] if g.OH % rows else 0)
        print("  2. conv2d, GFLOP/s (time):")
        for n_threads in (1, 2):
            o, t = res[n_threads]["ours"], res[n_threads]["torch"]
            print(f"     {n_threads} thread(s): ours {flops / o:6.1f} ({o / 1e6:.2f} ms), torch {flops / t:6.1f} "
                  f"({t / 1e6:.2f} ms), ours/torch {o / t:.2f}")  # fmt: skip
        share = gemm_total / res[1]["ours"]
        print(f"     the {tiles} tile GEMMs alone: {gemm_total / 1e6:.2f} ms = {share:.0%} of ours on 1 thread; "
              f"im2col + rest {(res[1]['ours'] - gemm_total) / 1e6:.2f} ms; 2-thread speed-up "
              f"ours {res[1]['ours'] / res[2]['ours']:.2f}×, "
              f"torch {res[1]['torch'] / res[2]['torch']:.2f}×")  # fmt: skip
        print("  3. conv2d (ours, 2 threads) by TILE_BYTES:")
        default = _tiles.TILE_BYTES
        cases = {}
        for kib in (128, 256, 512, 1024, 2048, 4096):

            def run(kib=kib):
                _tiles.TILE_BYTES = kib * 1024
                im2col.conv2d(x, w, padding=p)

            cases[kib] = run
        cases["torch"] = lambda: F.conv2d(xt, wt, padding=p)
        times = _interleaved(cases, rounds)
        _tiles.TILE_BYTES = default
        for kib, t in times.items():
            if kib == "torch":
                continue
            _tiles.TILE_BYTES = kib * 1024
            r = _tiles.tile_rows(g, 4)
            _tiles.TILE_BYTES = default
            print(f"     {kib:5d} KiB ({r:2d} rows): {t / 1e6:.2f} ms, {flops / t:6.1f} GFLOP/s, "
                  f"{t / times['torch']:.2f}× torch ({times['torch'] / 1e6:.2f} ms)")  # fmt: skip


def main() -> None:
    for unset in (False, True):
        env = dict(os.environ)
        if unset:
            env.pop("OPENBLAS_CORETYPE", None)
            env.pop("OPENBLAS_L2_SIZE", None)
        print("=" * 100, flush=True)
        subprocess.run([sys.executable, __file__, "--child"], env=env, check=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # the timed process
    if parser.parse_args().child:
        child()
    else:
        main()
