"""NHWC against NCHW: our conv2d, its backward and im2col, with torch's conv2d in both memory formats.

    python benchmarks/channels_last.py [--rounds 15] [--shapes res56,pw,stem]

The cases run interleaved in one process, a few calls each per round; the table has medians over
rounds (ms) and the median per-round ratio NHWC ÷ NCHW. Not a pytest benchmark: run it by hand.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

SHAPES = {  # N, C, H, W, K, k, padding, stride
    "res56": (8, 64, 56, 56, 64, 3, 1, 1),
    "res14": (8, 256, 14, 14, 256, 3, 1, 1),
    "pw": (8, 256, 56, 56, 64, 1, 0, 1),
    "stem": (8, 3, 224, 224, 64, 7, 3, 2),
}


def _time(fn, calls: int = 3) -> float:
    fn()
    best = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    return min(best)


def main(argv: list[str] | None = None) -> None:
    import torch
    import torch.nn.functional as F

    import im2col
    from im2col._geometry import out_sizes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--shapes", default="res56,pw")
    args = ap.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"# channels-last benchmark, {args.rounds} rounds, load average {os.getloadavg()}")
    print("| shape | op | NCHW ms | NHWC ms | NHWC ÷ NCHW |")
    print("|---|---|---|---|---|")
    for name in args.shapes.split(","):
        N, C, H, W, K, k, p, s = SHAPES[name]
        (OH,) = out_sizes("channels_last", (H,), (k,), (s,), ((p, p),), (1,))
        r = np.random.default_rng(0)
        x = r.standard_normal((N, C, H, W), dtype=np.float32)
        w = r.standard_normal((K, C, k, k), dtype=np.float32)
        xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        gy = r.standard_normal((N, K, OH, OH), dtype=np.float32)
        gyh = np.ascontiguousarray(gy.transpose(0, 2, 3, 1))
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        xt_cl = xt.contiguous(memory_format=torch.channels_last)
        pairs = {
            "im2col": (
                lambda: im2col.im2col(x, k, padding=p, stride=s),
                lambda: im2col.im2col(xh, k, padding=p, stride=s, layout="NHWC"),
            ),
            "conv2d": (
                lambda: im2col.conv2d(x, w, stride=s, padding=p),
                lambda: im2col.conv2d(xh, w, stride=s, padding=p, layout="NHWC"),
            ),
            "conv2d_backward": (
                lambda: im2col.conv2d_backward(gy, x, w, stride=s, padding=p),
                lambda: im2col.conv2d_backward(gyh, xh, w, stride=s, padding=p, layout="NHWC"),
            ),
            "torch conv2d": (
                lambda: F.conv2d(xt, wt, stride=s, padding=p),
                lambda: F.conv2d(xt_cl, wt, stride=s, padding=p),
            ),
        }
        times = {op: ([], []) for op in pairs}
        for _ in range(args.rounds):
            for op, (a, b) in pairs.items():
                times[op][0].append(_time(a))
                times[op][1].append(_time(b))
        for op, (ta, tb) in times.items():
            ratio = statistics.median(b / a for a, b in zip(ta, tb))
            shape = f"{name} ({N}×{C}×{H}×{W}, {K} {k}×{k}{f' s{s}' if s > 1 else ''} p{p})"
            print(
                f"| {shape} | {op} | {statistics.median(ta) * 1e3:.2f} | {statistics.median(tb) * 1e3:.2f} "
                f"| {ratio:.2f}× |"
            )


if __name__ == "__main__":
    main()
