"""im2col and col2im with a channels-last image against the same call on NCHW, float32.

    python benchmarks/nhwc_im2col.py [--rounds 15] [--shapes res56,res14,stem,batch1,pw]

im2col reads an (N, H, W, C) input (``layout='NHWC'``) and col2im writes one; the column matrix is
torch's (N, C·kh·kw, L) either way, so the two calls of a pair do the same work on the same bytes.
The cases run interleaved in one process, in a random order each round; the table has medians over
rounds (ms) and the median per-round ratio NHWC ÷ NCHW, for the channels-last tiles (``im2col_cl``,
``col2im_cl``) and for the plane kernels they replace (the tiles switched off: the "before").
Every call allocates its output, as a user's call does. Not a pytest benchmark: run it by hand, on
a quiet machine (it prints the load average).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script: its sibling
from floor_breakdown import _interleaved  # noqa: E402

SHAPES = {  # N, C, H, W, k, padding, stride
    "res56": (8, 64, 56, 56, 3, 1, 1),
    "res14": (8, 256, 14, 14, 3, 1, 1),
    "stem": (8, 3, 224, 224, 7, 3, 2),
    "batch1": (1, 64, 56, 56, 3, 1, 1),
    "pw": (8, 256, 56, 56, 1, 0, 1),  # not by default: 1×1, where NCHW is one streaming copy
}
DEFAULT_SHAPES = "res56,res14,stem,batch1"


def _planes(call):
    """``call`` with the channels-last tiles switched off: the plane kernels, as before the tiles."""
    from im2col import _im2col_drivers

    def run():
        saved = _im2col_drivers.CL_MIN_CHANNEL_BYTES
        _im2col_drivers.CL_MIN_CHANNEL_BYTES = float("inf")
        try:
            return call()
        finally:
            _im2col_drivers.CL_MIN_CHANNEL_BYTES = saved

    return run


def main(shapes: dict | None = None, rounds: int = 15) -> dict[str, list[int]]:
    """Print the table; return every case's times (ns), keyed ``"shape op layout"``."""
    import im2col

    shapes = {name: SHAPES[name] for name in DEFAULT_SHAPES.split(",")} if shapes is None else shapes
    print(f"# NHWC vs NCHW im2col/col2im, float32, {rounds} rounds, {im2col.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| shape | op | NCHW ms | NHWC planes ms | planes ÷ NCHW | NHWC tiles ms | tiles ÷ NCHW |")
    print("|---|---|---|---|---|---|---|")
    every: dict[str, list[int]] = {}
    for name, (N, C, H, W, k, p, s) in shapes.items():
        x = np.random.default_rng(0).standard_normal((N, C, H, W), dtype=np.float32)
        xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        cols = im2col.im2col(x, k, padding=p, stride=s)
        # the pairs must agree, or the timing compares different work
        assert np.array_equal(im2col.im2col(xh, k, padding=p, stride=s, layout="NHWC"), cols)
        folded = im2col.col2im(cols, (H, W), k, padding=p, stride=s)
        assert np.array_equal(im2col.col2im(cols, (H, W), k, padding=p, stride=s, layout="NHWC"),
                              folded.transpose(0, 2, 3, 1))  # fmt: skip
        cases = {
            "im2col NCHW": lambda: im2col.im2col(x, k, padding=p, stride=s),
            "im2col NHWC": lambda: im2col.im2col(xh, k, padding=p, stride=s, layout="NHWC"),
            "im2col NHWC planes": _planes(lambda: im2col.im2col(xh, k, padding=p, stride=s, layout="NHWC")),
            "col2im NCHW": lambda: im2col.col2im(cols, (H, W), k, padding=p, stride=s),
            "col2im NHWC": lambda: im2col.col2im(cols, (H, W), k, padding=p, stride=s, layout="NHWC"),
            "col2im NHWC planes": _planes(lambda: im2col.col2im(cols, (H, W), k, padding=p, stride=s, layout="NHWC")),
        }
        times = _interleaved(cases, rounds)
        label = f"{name} ({N}×{C}×{H}×{W}, {k}×{k}{f' s{s}' if s > 1 else ''} p{p})"
        for op in ("im2col", "col2im"):
            ta, tb, tp = times[f"{op} NCHW"], times[f"{op} NHWC"], times[f"{op} NHWC planes"]
            ratio = statistics.median(b / a for a, b in zip(ta, tb))
            before = statistics.median(b / a for a, b in zip(ta, tp))
            print(f"| {label} | {op} | {statistics.median(ta) / 1e6:.2f} | {statistics.median(tp) / 1e6:.2f} "
                  f"| {before:.2f}× | {statistics.median(tb) / 1e6:.2f} | {ratio:.2f}× |")  # fmt: skip
        every.update({f"{name} {key}": ts for key, ts in times.items()})
    return every


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help=f"of {','.join(SHAPES)}")
    args = ap.parse_args()
    main({name: SHAPES[name] for name in args.shapes.split(",")}, args.rounds)
