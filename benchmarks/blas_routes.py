"""conv2d and its backward on each BLAS the kernels can call, against each other and torch.

    python benchmarks/blas_routes.py [--rounds 15] [--shapes stem,res56,res14,1x1,batch1]

The tiled kernels call a BLAS from their own threads: NumPy's bundled OpenBLAS or, with torch
loaded, torch's MKL (``im2col._gemm.native_blas`` picks the faster by timing one tile GEMM). This
runs the same convolutions on each route, interleaved with torch's in one process, and prints the
median per-round ratios. It also prints the tile-GEMM times the choice was made from.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script: its sibling
from floor_breakdown import _interleaved  # noqa: E402

SHAPES = {  # N, C, H, W, K, k, stride, padding
    "stem": (8, 3, 224, 224, 64, 7, 2, 3),
    "res56": (8, 64, 56, 56, 64, 3, 1, 1),
    "res14": (8, 256, 14, 14, 256, 3, 1, 1),
    "1x1": (8, 256, 56, 56, 64, 1, 1, 0),
    "batch1": (1, 64, 56, 56, 64, 3, 1, 1),
}


def main(argv: list[str] | None = None) -> None:
    import torch

    import im2col
    from im2col import _gemm

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    args = parser.parse_args(argv)
    torch.set_num_threads(im2col.get_num_threads())
    chosen = _gemm.native_blas()
    routes = {b.name: b for b in _gemm._native["torch"]}
    tile = {name: min(_gemm._tile_gemm_ns(b)) / 3 / 1e3 for name, b in routes.items()}
    print(f"load average {os.getloadavg()[0]:.2f}; tile GEMM (64×576 · 576×224, one thread): "
          + ", ".join(f"{n} {t:.0f} µs" for n, t in tile.items()) + f"; chosen: {chosen.name}")  # fmt: skip

    def on(route, fn):
        def run():
            saved = _gemm._native["torch"]
            _gemm._native["torch"] = [routes[route]]
            try:
                return fn()
            finally:
                _gemm._native["torch"] = saved

        return run

    names = list(routes)
    print(f"| shape | op | {' | '.join(f'{n} ms' for n in names)} | torch ms | "
          + " | ".join(f"{n} ÷ torch" for n in names)
          + (f" | {names[1]} ÷ {names[0]}" if len(names) > 1 else "") + " |")  # fmt: skip
    print("|---" * (3 + 2 * len(names) + (len(names) > 1)) + "|")
    for shape in args.shapes.split(","):
        N, C, H, W, K, k, s, p = SHAPES[shape]
        r = np.random.default_rng(0)
        x = r.standard_normal((N, C, H, W)).astype(np.float32)
        w = r.standard_normal((K, C, k, k)).astype(np.float32)
        gy = np.ones_like(im2col.conv2d(x, w, stride=s, padding=p))
        xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
        yt = torch.nn.functional.conv2d(xt, wt, stride=s, padding=p)
        ops = {
            "forward": (lambda: im2col.conv2d(x, w, stride=s, padding=p),
                        lambda: torch.nn.functional.conv2d(xt.detach(), wt.detach(), stride=s, padding=p)),
            "backward": (lambda: im2col.conv2d_backward(gy, x, w, stride=s, padding=p),
                         lambda: torch.autograd.grad(yt, (xt, wt), torch.from_numpy(gy), retain_graph=True)),
        }  # fmt: skip
        for op, (ours, theirs) in ops.items():
            cases = {name: on(name, ours) for name in names}
            cases["torch"] = theirs
            t = _interleaved(cases, args.rounds)

            def ratio(a, b):
                return statistics.median(u / v for u, v in zip(t[a], t[b]))

            ms = " | ".join(f"{statistics.median(t[n]) / 1e6:.2f}" for n in [*names, "torch"])
            vs = " | ".join(f"{ratio(n, 'torch'):.2f}×" for n in names)
            ab = f" | {ratio(names[1], names[0]):.2f}×" if len(names) > 1 else ""
            print(f"| {shape} | {op} | {ms} | {vs}{ab} |")


if __name__ == "__main__":
    main()
