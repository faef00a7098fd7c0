"""Compare every operation with PyTorch on random configurations, outside the test suite.

    python scripts/check_against_torch.py --cases 2000 --seed 0

For each case it draws a batch, channels, groups, a non-square kernel, stride, padding (symmetric
or per side), dilation, a dtype, and an input form (C-order array, Fortran order, negative
strides, read-only, torch tensor, channels_last tensor), runs im2col, col2im, conv2d,
conv2d_backward and conv_transpose2d, and checks them against torch's unfold, fold, conv2d,
autograd and conv_transpose2d: im2col bit for bit, the rest to relative 1e-5 (float32) or 1e-11
(float64) of the largest magnitude. Prints the worst error seen per op and dtype; exits 1 on any
mismatch.
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F

import im2col

TOL = {np.float32: 1e-5, np.float64: 1e-11}


def rel_err(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    return float(np.abs(got - want).max(initial=0.0)) / scale


def input_form(x: np.ndarray, form: str):
    if form == "F":
        return np.asfortranarray(x)
    if form == "negative":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if form == "readonly":
        y = x.copy()
        y.flags.writeable = False
        return y
    if form == "tensor":
        return torch.from_numpy(x.copy()).requires_grad_(x.dtype == np.float64)
    if form == "channels_last":
        return torch.from_numpy(x.copy()).to(memory_format=torch.channels_last)
    return x


def one_case(rnd: random.Random, worst: dict) -> bool:
    dtype = rnd.choice([np.float32, np.float64])
    G = rnd.choice([1, 1, 2, 3])
    N, C, K = rnd.randint(1, 4), G * rnd.randint(1, 3), G * rnd.randint(1, 3)
    kh, kw = rnd.randint(1, 5), rnd.randint(1, 5)
    sh, sw, dh, dw = (rnd.randint(1, 3) for _ in range(4))
    pads = ((rnd.randint(0, 3), rnd.randint(0, 3)), (rnd.randint(0, 3), rnd.randint(0, 3)))
    if rnd.random() < 0.5:  # symmetric, the form torch takes
        pads = ((pads[0][0],) * 2, (pads[1][0],) * 2)
    H = rnd.randint(max(1, dh * (kh - 1) + 1 - sum(pads[0])), 14)
    W = rnd.randint(max(1, dw * (kw - 1) + 1 - sum(pads[1])), 14)
    r = np.random.default_rng(rnd.getrandbits(32))
    x = r.standard_normal((N, C, H, W)).astype(dtype)
    w = r.standard_normal((K, C // G, kh, kw)).astype(dtype)
    b = r.standard_normal(K).astype(dtype)
    xin = input_form(x, rnd.choice(["C", "F", "negative", "readonly", "tensor", "channels_last"]))
    (t, bo), (le, ri) = pads
    tx = F.pad(torch.from_numpy(x), (le, ri, t, bo))  # torch has no per-side padding: pad first
    tw, tb = torch.from_numpy(w), torch.from_numpy(b)
    ok = True

    def record(op, err, tol):
        nonlocal ok
        key = (op, np.dtype(dtype).name)
        worst[key] = max(worst.get(key, 0.0), err)
        if err > tol:
            ok = False
            print(f"MISMATCH {op} {np.dtype(dtype).name}: err {err:.3g} N,C,H,W={N, C, H, W} K={K} "
                  f"k={kh, kw} s={sh, sw} p={pads} d={dh, dw} groups={G}", file=sys.stderr)  # fmt: skip

    tol = TOL[dtype]
    cols = im2col.im2col(xin, (kh, kw), (dh, dw), pads, (sh, sw))
    want_cols = F.unfold(tx, (kh, kw), dilation=(dh, dw), stride=(sh, sw))
    record("im2col", 0.0 if np.array_equal(np.asarray(cols), want_cols.numpy()) else float("inf"), 0.0)
    if pads[0][0] == pads[0][1] and pads[1][0] == pads[1][1]:
        p = (pads[0][0], pads[1][0])
        folded = im2col.col2im(cols, (H, W), (kh, kw), (dh, dw), p, (sh, sw))
        want = F.fold(want_cols, (H, W), (kh, kw), dilation=(dh, dw), padding=p, stride=(sh, sw))
        record("col2im", rel_err(folded, want), tol)
    y = im2col.conv2d(xin, w, b, (sh, sw), pads, (dh, dw), G)
    txg, twg = tx.clone().requires_grad_(), tw.clone().requires_grad_()
    ty = F.conv2d(txg, twg, tb, (sh, sw), 0, (dh, dw), G)
    record("conv2d", rel_err(y, ty.detach()), tol)
    gy = r.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.from_numpy(gy))
    gx, gw, gb = im2col.conv2d_backward(gy, xin, w, (sh, sw), pads, (dh, dw), G)
    record("grad_input", rel_err(gx, txg.grad[:, :, t : t + H, le : le + W]), tol)
    record("grad_weight", rel_err(gw, twg.grad), tol)
    record("grad_bias", rel_err(gb, gy.sum(axis=(0, 2, 3))), tol)
    # transposed convolution with symmetric padding and a valid output_padding
    p = (pads[0][0], pads[1][0])
    op = (rnd.randint(0, max(sh, dh) - 1), rnd.randint(0, max(sw, dw) - 1))
    wt = r.standard_normal((C, K // G, kh, kw)).astype(dtype)
    try:
        want = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt), tb, (sh, sw), p, op, G, (dh, dw))
    except RuntimeError:
        want = None
    if want is not None and want.numel():
        got = im2col.conv_transpose2d(xin, wt, b, (sh, sw), p, op, G, (dh, dw))
        record("conv_transpose2d", rel_err(got, want), tol)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rnd = random.Random(args.seed)
    worst: dict = {}
    failures = sum(not one_case(rnd, worst) for _ in range(args.cases))
    for (op, dt), err in sorted(worst.items()):
        print(f"{op:18s} {dt:8s} worst relative error {err:.2e}")
    print(f"{args.cases} cases, {failures} with a mismatch")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
