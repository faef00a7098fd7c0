"""conv1d of one long signal: tiles of whole output rows against the colsᵀ tiles that split them.

    python benchmarks/long_signal.py            # 1×64×200000, 64 kernels of 5, 2 threads
    python benchmarks/long_signal.py --quick    # a short signal and a few rounds (seconds)

conv1d runs as a 2-D convolution of height 1, so the row tiles of ``conv_forward_tiled`` can only
put the whole signal in one tile: C·k·L values of columns (256 MB here) and one busy thread.
``im2col._tiles.rows_too_coarse`` sends such a convolution to the colsᵀ tiles instead, which
split rows (the forward reads the input in place; the backward gathers from a channels-last copy).
This prints, for the forward and for the backward (both gradients), medians over interleaved
rounds of: ours as routed, ours forced onto the row tiles, and torch, with the ratios; and the
peak NumPy memory each of ours allocates, tile workspace included (tracemalloc).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # run as a script: its sibling
from floor_breakdown import _interleaved  # noqa: E402


def _peak_mib(fn) -> float:
    """Peak bytes NumPy allocates during ``fn()`` (tracemalloc sees NumPy's allocations), in MiB,
    counting the kernels' tile workspace, which is otherwise kept from call to call."""
    from im2col._gemm import release_workspace

    release_workspace()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main(L: int = 200_000, C: int = 64, K: int = 64, k: int = 5, rounds: int = 15) -> dict[str, float]:
    """Print the comparison and return the median times (ms) by case name."""
    import torch
    import torch.nn.functional as F

    import im2col
    from im2col import _tiles

    torch.set_num_threads(im2col.get_num_threads())
    r = np.random.default_rng(0)
    x = r.standard_normal((1, C, L)).astype(np.float32)
    w = r.standard_normal((K, C, k)).astype(np.float32)
    gy = r.standard_normal((1, K, L)).astype(np.float32)
    xt, wt, gyt = (torch.from_numpy(a) for a in (x, w, gy))
    xg, wg = xt.clone().requires_grad_(), wt.clone().requires_grad_()
    yg = F.conv1d(xg, wg, padding=k // 2)

    def rows(fn):
        def forced():  # the route before _rows_too_coarse existed
            saved = _tiles.rows_too_coarse
            _tiles.rows_too_coarse = lambda *args: False
            try:
                return fn()
            finally:
                _tiles.rows_too_coarse = saved

        return forced

    def fwd():
        return im2col.conv1d(x, w, padding=k // 2)

    def bwd():
        return im2col.conv1d_backward(gy, x, w, padding=k // 2)

    np.testing.assert_allclose(fwd(), rows(fwd)(), rtol=1e-4, atol=1e-3)
    cases = {
        "forward, split tiles": fwd,
        "forward, row tiles": rows(fwd),
        "forward, torch": lambda: F.conv1d(xt, wt, padding=k // 2),
        "backward, split tiles": bwd,
        "backward, row tiles": rows(bwd),
        "backward, torch": lambda: torch.autograd.grad(yg, (xg, wg), gyt, retain_graph=True),
    }
    times = {key: statistics.median(ts) / 1e6 for key, ts in _interleaved(cases, rounds).items()}
    print(f"conv1d 1×{C}×{L}, {K} kernels of {k}, padding {k // 2}, float32, {im2col.get_num_threads()} threads, "
          f"{rounds} interleaved rounds (medians); torch {torch.__version__}")  # fmt: skip
    print("| case | ms | × torch | peak NumPy MiB |")
    print("|---|---:|---:|---:|")
    for key, ms in times.items():
        op = key.split(",")[0]
        torch_ms = times[f"{op}, torch"]
        peak = "" if key.endswith("torch") else f"{_peak_mib(cases[key]):.0f}"
        print(f"| {key} | {ms:.1f} | {ms / torch_ms:.2f} | {peak} |")
    return times


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20000-sample signal, 3 rounds")
    args = parser.parse_args()
    main(L=20_000, rounds=3) if args.quick else main()
