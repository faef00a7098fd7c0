"""Where im2col's time goes against the plain-copy floor: the kernel, or the fresh output's pages?
What a stride of 2 costs col2im, and how close the 1×1 layer's im2col/col2im get to a copy.

    python benchmarks/floor_breakdown.py

The benchmark's copy floor copies the column matrix's bytes into a buffer that already exists,
while ``im2col.im2col`` returns a new array, whose pages the kernel first touches (page faults).
This times, interleaved over 30 rounds (medians; ratios to the copy into an existing buffer):
im2col returning a fresh output, im2col writing into an existing buffer (``out=``), and the plain
copy into an existing and into a fresh buffer.
"""

from __future__ import annotations

import mmap
import random
import statistics
import time

import numpy as np

import im2col
from im2col import _kernels, _validation

SHAPES = {  # N, C, H, W, kernel, stride, padding
    "seed": (64, 1, 28, 28, 3, 1, 0),
    "stem": (8, 3, 224, 224, 7, 2, 3),
    "res56": (8, 64, 56, 56, 3, 1, 1),
}


def main(rounds: int = 30) -> None:
    for name, (N, C, H, W, k, s, p) in SHAPES.items():
        x = np.random.default_rng(0).random((N, C, H, W), dtype=np.float32)
        g = _validation.geometry("im2col", x.shape, (k, k), (s, s), ((p, p), (p, p)), (1, 1))
        out = np.empty((N, g.rows, g.L), np.float32)
        src, dst = out.copy(), np.empty_like(out)
        cases = {
            "im2col, fresh output": lambda: im2col.im2col(x, k, padding=p, stride=s),
            "im2col into an existing buffer (out=)": lambda: im2col.im2col(x, k, padding=p, stride=s, out=out),
            "copy, existing buffer": lambda: np.copyto(dst, src),
            "copy, fresh buffer": lambda: np.copyto(np.empty_like(src), src),
        }
        times = _interleaved(cases, rounds)
        floor = statistics.median(times["copy, existing buffer"])
        print(f"{name} ({out.nbytes / 2**20:.1f} MiB of columns)")
        for key, ts in times.items():
            med = statistics.median(ts)
            print(f"  {key:40s} {med / 1e6:8.3f} ms  {med / floor:5.2f}x the copy floor")


def col2im_stride(rounds: int = 20) -> None:
    """col2im's throughput (column bytes per second) with stride 1 and stride 2 on equal-sized columns.

    With stride 1 each kernel tap adds a contiguous run into the image row, which the compiler
    vectorises; with stride 2 it adds into every other pixel, one element at a time.
    """
    print("col2im, column bytes per second")
    for N, C, H, W, k, s, p in [(8, 3, 224, 224, 7, 2, 3), (8, 3, 112, 112, 7, 1, 3),
                                (8, 64, 112, 112, 3, 2, 1), (8, 64, 56, 56, 3, 1, 1)]:  # fmt: skip
        x = np.random.default_rng(0).random((N, C, H, W), dtype=np.float32)
        cols = im2col.im2col(x, k, padding=p, stride=s)
        im2col.col2im(cols, (H, W), k, padding=p, stride=s)
        ts = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            im2col.col2im(cols, (H, W), k, padding=p, stride=s)
            ts.append(time.perf_counter_ns() - t0)
        med = statistics.median(ts)
        print(f"  {N}×{C}×{H}×{W}, {k}×{k} stride {s}: {cols.nbytes / 2**20:.1f} MiB of columns, "
              f"{med / 1e6:.2f} ms, {cols.nbytes / med:.1f} GB/s")  # fmt: skip


def _interleaved(cases: dict, rounds: int) -> dict[str, list[int]]:
    """Per-case times (ns) over ``rounds`` rounds, each running every case once in a random order."""
    times: dict[str, list[int]] = {key: [] for key in cases}
    for case in cases.values():
        case()
    for _ in range(rounds):
        order = list(cases.items())
        random.shuffle(order)
        for key, case in order:
            t0 = time.perf_counter_ns()
            case()
            times[key].append(time.perf_counter_ns() - t0)
    return times


def pointwise(rounds: int = 30) -> None:
    """The 1×1 layer (8×256×56×56, float32): im2col and col2im are one 24.5 MiB copy each.

    Against torch's unfold and fold, the copy floors: ``np.copyto`` into an existing and into a fresh
    buffer, the library's two-thread copies (``_kernels.copy_bytes``: memcpy; ``stream_copy_bytes``:
    non-temporal stores, which im2col/col2im use from 16 MiB), and writing a fresh
    buffer without reading anything (``np.empty(...).fill(0)``: first-touch page faults, if the
    allocator hands out new pages, plus the write bandwidth); and the streaming copy into a mapping the
    process never touched (every page faults), with 4 KiB and with huge pages. Ratios are medians of
    per-round ratios.
    """
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(0).random((8, 256, 56, 56), dtype=np.float32)
    cols = x.reshape(8, 256, 56 * 56).copy()
    xt, colst = torch.from_numpy(x), torch.from_numpy(cols)
    dst = np.empty_like(x)

    def two_thread_copy(copy=_kernels.copy_bytes):
        out = np.empty_like(x)
        copy(x.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8), 2)

    def into_new_mapping(huge: bool):
        # A mapping the process never touched: every page faults on first write. (np.empty reuses
        # the pages glibc kept from the previous call's free, so in a loop it rarely faults.)
        m = mmap.mmap(-1, x.nbytes)
        if huge:
            m.madvise(mmap.MADV_HUGEPAGE)  # what NumPy asks for on large allocations
        out = np.frombuffer(m, np.float32).reshape(x.shape)
        _kernels.stream_copy_bytes(x.reshape(-1).view(np.uint8), out.reshape(-1).view(np.uint8), 2)
        del out
        m.close()

    cases = {
        "im2col (ours)": lambda: im2col.im2col(x, 1),
        "col2im (ours)": lambda: im2col.col2im(cols, (56, 56), 1),
        "torch unfold": lambda: F.unfold(xt, 1),
        "torch fold": lambda: F.fold(colst, (56, 56), 1),
        "np.copyto, existing buffer": lambda: np.copyto(dst, x),
        "np.copyto, fresh buffer": lambda: np.copyto(np.empty_like(x), x),
        "memcpy, 2 threads, fresh": two_thread_copy,
        "streaming stores, 2 threads, fresh": lambda: two_thread_copy(_kernels.stream_copy_bytes),
        "fresh buffer, fill(0) only": lambda: np.empty_like(x).fill(0),
        "streaming copy into a new mapping": lambda: into_new_mapping(False),
        "same, huge pages (madvise)": lambda: into_new_mapping(True),
    }
    times = _interleaved(cases, rounds)
    print(f"1×1 layer 8×256×56×56 float32 ({x.nbytes / 2**20:.1f} MiB each way), {rounds} rounds")
    for key, ts in times.items():
        ratio = {b: statistics.median(a / t for a, t in zip(ts, times[b])) for b in ("torch unfold", "torch fold")}
        print(f"  {key:36s} {statistics.median(ts) / 1e6:7.3f} ms  "
              f"{ratio['torch unfold']:5.2f}x unfold  {ratio['torch fold']:5.2f}x fold")  # fmt: skip


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # only --help
    main()
    col2im_stride()
    pointwise()
