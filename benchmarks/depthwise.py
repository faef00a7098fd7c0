"""Depthwise convolutions: the engine's direct kernel against the BLAS route and torch.

Layers from published architectures (MobileNetV2's 3×3, EfficientNet-B0's 5×5, ConvNeXt-T's 7×7
depthwise convolutions, stride 1 and 2), forward, backward and grad input alone (the transposed
convolution), each timed in one process in interleaved rounds (engine
route, BLAS route, torch one after another in each round); the table gives medians of per-round
ratios, so a co-tenant's burst slows all three alike. Below 1 is faster.

    env -u OPENBLAS_CORETYPE python benchmarks/depthwise.py [--rounds 9] [--threads 2,1]
        [--ops forward,backward,grad_input] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import NamedTuple

import numpy as np
import torch

import im2col
from im2col import _engine
from im2col._bench_measure import cpu_model
from im2col._functional import _conv2d_geometry
from im2col._geometry import transposed_size


class DW(NamedTuple):
    """One depthwise layer: N×C×H×W input, k×k taps per channel, stride, padding k // 2."""

    net: str
    N: int
    C: int
    H: int
    k: int
    stride: int = 1

    @property
    def label(self) -> str:
        s = f" s{self.stride}" if self.stride > 1 else ""
        return f"{self.N}×{self.C}×{self.H}×{self.H}, {self.k}×{self.k}{s} p{self.k // 2}"

    def flops(self) -> int:
        OH = (self.H + 2 * (self.k // 2) - self.k) // self.stride + 1
        return 2 * self.N * self.C * OH * OH * self.k * self.k


LAYERS = {
    # MobileNetV2 (Sandler et al. 2018): expansion-6 blocks' 3×3 depthwise, batch 32
    "mbv2_144_56": DW("MobileNetV2", 32, 144, 56, 3),
    "mbv2_144_56_s2": DW("MobileNetV2", 32, 144, 56, 3, 2),
    "mbv2_192_28": DW("MobileNetV2", 32, 192, 28, 3),
    "mbv2_192_28_s2": DW("MobileNetV2", 32, 192, 28, 3, 2),
    "mbv2_384_14": DW("MobileNetV2", 32, 384, 14, 3),
    "mbv2_960_7": DW("MobileNetV2", 32, 960, 7, 3),
    # EfficientNet-B0 (Tan & Le 2019): its 5×5 depthwise stages
    "effb0_240_28_s2": DW("EfficientNet-B0", 32, 240, 28, 5, 2),
    "effb0_672_14": DW("EfficientNet-B0", 32, 672, 14, 5),
    "effb0_1152_7": DW("EfficientNet-B0", 32, 1152, 7, 5),
    # ConvNeXt-T (Liu et al. 2022): 7×7 depthwise in every block, batch 8
    "convnext_96_56": DW("ConvNeXt-T", 8, 96, 56, 7),
    "convnext_192_28": DW("ConvNeXt-T", 8, 192, 28, 7),
    "convnext_384_14": DW("ConvNeXt-T", 8, 384, 14, 7),
    "convnext_768_7": DW("ConvNeXt-T", 8, 768, 7, 7),
}
SMOKE = {"smoke_3x3": DW("smoke", 2, 8, 12, 3), "smoke_7x7_s2": DW("smoke", 1, 4, 9, 7, 2)}


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(layer: DW, rounds: int, op: str = "forward") -> dict[str, float]:
    """Medians over rounds of engine/torch, BLAS route/torch, engine/BLAS, and engine GFLOP/s.

    ``op`` is 'forward' (conv2d with bias), 'backward' (conv2d_backward: grad input, weight and
    bias, against torch's aten.convolution_backward with the same three outputs) or 'grad_input'
    (conv_transpose2d of a grad_output back to the input's size, groups = C)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((layer.N, layer.C, layer.H, layer.H)).astype(np.float32)
    w = rng.standard_normal((layer.C, 1, layer.k, layer.k)).astype(np.float32)
    b = rng.standard_normal(layer.C).astype(np.float32)
    kw = dict(stride=layer.stride, padding=layer.k // 2, groups=layer.C)
    g = _conv2d_geometry("conv2d", x, w, layer.stride, layer.k // 2, 1, layer.C)
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    mode = _engine.MODE

    if op == "forward":
        ours = lambda: im2col.conv2d(x, w, b, **kw)  # noqa: E731

        def run_torch():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, **kw)
    elif op == "grad_input":  # conv_transpose2d of grad_output: the grad input alone
        gy = rng.standard_normal((g.N, layer.C, g.OH, g.OW)).astype(np.float32)
        tgy = torch.from_numpy(gy)
        p, s = layer.k // 2, layer.stride
        # output_padding restores H: the transposed size without it is (OH − 1)·s − 2·p + (k − 1) + 1
        no_op = transposed_size("conv_transpose2d", (g.OH, g.OW), (layer.k, layer.k), s, p, 0, 1)[4][0]
        tconf = (s, p, layer.H - no_op, layer.C)
        ours = lambda: im2col.conv_transpose2d(gy, w, None, *tconf)  # noqa: E731

        def run_torch():
            with torch.no_grad():
                torch.nn.functional.conv_transpose2d(tgy, tw, None, *tconf)
    else:
        gy = rng.standard_normal((g.N, layer.C, g.OH, g.OW)).astype(np.float32)
        tgy = torch.from_numpy(gy)
        ours = lambda: im2col.conv2d_backward(gy, x, w, **kw)  # noqa: E731
        conf = ([layer.stride] * 2, [layer.k // 2] * 2, [1, 1], False, [0, 0], layer.C, [True, True, True])

        def run_torch():
            with torch.no_grad():
                torch.ops.aten.convolution_backward(tgy, tx, tw, [layer.C], *conf)

    def run_engine():
        _engine.set_mode("auto")
        ours()

    def run_blas():
        _engine.set_mode("blas")
        ours()

    try:
        _engine.set_mode("auto")
        routed = _engine.route(x, w, g, layer.C, False, op=op)
        for f in (run_engine, run_blas, run_torch):
            f()
        r_et, r_bt, r_eb, t_e = [], [], [], []
        for _ in range(rounds):
            te, tb_, tt = _time(run_engine), _time(run_blas), _time(run_torch)
            r_et.append(te / tt)
            r_bt.append(tb_ / tt)
            r_eb.append(te / tb_)
            t_e.append(te)
    finally:
        _engine.set_mode(mode)
    med = statistics.median
    flops = layer.flops() * (2 if op == "backward" else 1)
    return {"route": routed or "BLAS", "engine/torch": med(r_et), "blas/torch": med(r_bt),
            "engine/blas": med(r_eb), "GFLOP/s": flops / med(t_e) / 1e9}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", default="2,1", help="thread counts, comma-separated")
    ap.add_argument("--layers", default="", help="comma-separated names (default: all)")
    ap.add_argument(
        "--ops", default="forward,backward,grad_input", help="forward, backward, grad_input, comma-separated"
    )
    ap.add_argument("--smoke", action="store_true", help="two tiny layers, one round (for the test run)")
    args = ap.parse_args(argv)
    todo, rounds = (SMOKE, 1) if args.smoke else (LAYERS, args.rounds)
    if args.layers:
        todo = {k: v for k, v in todo.items() if k in args.layers.split(",")}
    print(f"CPU: {cpu_model()}; kernels: {_engine.ISA}; torch {torch.__version__}; numpy {np.__version__}; "
          f"rounds {rounds}; engine = IM2COL_ENGINE=auto, BLAS route = IM2COL_ENGINE=blas")  # fmt: skip
    results: dict[str, dict[str, dict[str, float]]] = {}
    for op in args.ops.split(","):
        for n in [int(t) for t in args.threads.split(",")]:
            key = f"{op}, {n} thread(s)"
            im2col.set_num_threads(n)
            torch.set_num_threads(n)
            print(f"\n## {op}, {n} thread(s), float32\n")
            print("| layer | net | shape | route | engine/torch | BLAS route/torch | engine/BLAS | engine GFLOP/s |")
            print("|---|---|---|---|---|---|---|---|")
            results[key] = {}
            try:
                for name, layer in todo.items():
                    r = measure(layer, rounds, op)
                    results[key][name] = r
                    print(f"| {name} | {layer.net} | {layer.label} | {r['route']} | {r['engine/torch']:.2f} | "
                          f"{r['blas/torch']:.2f} | {r['engine/blas']:.2f} | {r['GFLOP/s']:.0f} |",
                          flush=True)  # fmt: skip
            finally:
                im2col.set_num_threads(None)
            print()
            for ratio in ("engine/torch", "blas/torch", "engine/blas"):
                v = [r[ratio] for r in results[key].values()]
                gm = math.exp(sum(map(math.log, v)) / len(v))
                print(f"{key} {ratio}: geomean {gm:.2f}, worst {max(v):.2f} ({len(v)} layers)")
    return results


if __name__ == "__main__":
    main()
