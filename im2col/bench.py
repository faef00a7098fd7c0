"""The benchmark runner: this library's operations beside PyTorch, NumPy and the hardware floors.

Run ``python -m im2col.bench`` (or ``im2col bench``); ``--help`` lists the options. Needs torch and
threadpoolctl (``pip install im2col[test]``).

How it measures (the machine this was written on has 2 shared cores and noisy neighbours):

* Every implementation of one operation on one shape is a *case*. All cases of a shape run in one
  process, **interleaved**: each round times every case once, in a fresh random order, so a burst
  of noise hits all of them alike. The table reports the median per-call time over rounds and, for
  each baseline, the median over rounds of the per-round ratio ``ours / baseline`` (below 1 = ours
  faster).
* A case is warmed up (at least 3 calls and 50 ms; ``--quick``: one call) before timing, and its
  warm-up result is checked against torch's. Per round, a case's first call is timed on its own
  (it pays for switching from another library: spinning thread pools, cold caches), then a sample
  of ``number`` calls back to back, ``number`` chosen so a sample lasts about 1 ms (so the 5 µs
  teaching shape is not timed at clock resolution); times are ``time.perf_counter_ns`` deltas.
* Interleaving runs torch's OpenMP/MKL, NumPy's OpenBLAS pthreads and our OpenMP threads one after
  another, as real code does. Idle threads of one pool spin for a while and slow the next pool's
  first call (the header says which pools are loaded); this is part of what is measured.
* Peak extra memory (Linux; ``--no-memory`` skips it): in a fresh child process that does nothing
  else (run before the timing), ours and torch's counterpart run once per shape, each in a new
  thread (so no per-thread workspace of ours is already held), with the kernel's peak-RSS mark
  reset (``/proc/self/clear_refs``); extra = peak RSS during the call − RSS before it.
  The child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` (and ``malloc_trim`` before each call),
  so a buffer freed by an earlier case cannot hide a new allocation. Unlike ``tracemalloc`` this
  sees every allocator (NumPy, torch, OpenBLAS). It counts the output, any workspace kept, and the
  first call's one-time set-up (torch's oneDNN primitives, say); the thread's own stack adds up to
  ~0.1 MiB. A figure below the output's own size (marked ``*``) means already-resident pages were
  reused: read it as unknown.

The 1-D and 3-D shapes (``seq1d``, ``vol3d``) time im2col, conv forward and backward (ours
``conv1d``/``conv3d``) against torch's ``conv1d``/``conv3d``; their "torch unfold" is ``F.unfold`` on an
(N, C, 1, L) view, and for 3-D (no ``F.unfold``) ``F.pad`` + ``Tensor.unfold`` along D, H, W + a copy
into the same layout. col2im is timed on the 2-D shapes only; issue 4's goals apply to 2-D shapes.

Rates: conv2d forward is ``2·N·K·(C/groups)·kh·kw·L`` flops, its backward (grad input + grad weight)
twice that; im2col and col2im report column-matrix bytes ÷ time (so the copy floor, which reads and
writes those bytes, moves twice the figure shown).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Shape",
    "SHAPES",
    "OPS",
    "SMALL_SHAPES",
    "GOALS",
    "TORCH_REF",
    "make_cases",
    "main",
    "run",
]


# --- shapes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A convolution layer: input (N, C, H, W), K kernels of kh × kw, one stride and padding.

    ``dims=1`` is an (N, C, W) layer with kw-wide kernels (H = kh = 1); ``dims=3`` an
    (N, C, D, H, W) layer with kd × kh × kw kernels. ``pad`` applies to each spatial axis.
    """

    name: str
    N: int
    C: int
    H: int
    W: int
    K: int
    kh: int
    kw: int
    stride: int = 1
    pad: int = 0
    note: str = ""
    dims: int = 2
    D: int = 1
    kd: int = 1

    @property
    def spatial(self) -> tuple[int, ...]:
        return (self.D, self.H, self.W)[3 - self.dims :]

    @property
    def kernel(self) -> tuple[int, ...]:
        return (self.kd, self.kh, self.kw)[3 - self.dims :]

    @property
    def out(self) -> tuple[int, ...]:
        """The output's spatial sizes."""
        return tuple(
            (n + 2 * self.pad - k) // self.stride + 1 for n, k in zip(self.spatial, self.kernel)
        )

    @property
    def ops(self) -> list[str]:
        """The ops timed on this shape: col2im on 2-D shapes only (torch has no fold beyond 2-D)."""
        return OPS if self.dims == 2 else [op for op in OPS if op != "col2im"]

    @property
    def OH(self) -> int:
        return (self.H + 2 * self.pad - self.kh) // self.stride + 1

    @property
    def OW(self) -> int:
        return (self.W + 2 * self.pad - self.kw) // self.stride + 1

    @property
    def L(self) -> int:
        return int(np.prod(self.out))

    @property
    def rows(self) -> int:
        return self.C * int(np.prod(self.kernel))

    def cols_bytes(self, itemsize: int = 4) -> int:
        """Size of the full column matrix (N, C·kh·kw, L)."""
        return self.N * self.rows * self.L * itemsize

    @property
    def flops(self) -> int:
        """Multiply-adds ×2 of the forward convolution."""
        return 2 * self.N * self.K * self.rows * self.L

    @property
    def label(self) -> str:
        s = "×".join(map(str, (self.N, self.C, *self.spatial)))
        s += f", {self.K} " + "×".join(map(str, self.kernel))
        if self.stride != 1:
            s += f" s{self.stride}"
        if self.pad:
            s += f" p{self.pad}"
        return s


SHAPES: dict[str, Shape] = {
    s.name: s
    for s in [
        Shape("seed", 64, 1, 28, 28, 4, 3, 3, note="the seed example"),
        Shape("teaching", 1, 1, 5, 5, 1, 3, 3, pad=2, note="per-call overhead"),
        Shape("stem", 8, 3, 224, 224, 64, 7, 7, stride=2, pad=3, note="ResNet-50 stem"),
        Shape("res56", 8, 64, 56, 56, 64, 3, 3, pad=1, note="ResNet 3×3"),
        Shape("res14", 8, 256, 14, 14, 256, 3, 3, pad=1, note="ResNet 3×3"),
        Shape("vgg", 4, 64, 112, 112, 128, 3, 3, pad=1, note="VGG"),
        Shape("pointwise", 8, 256, 56, 56, 64, 1, 1, note="1×1"),
        Shape("batch1", 1, 64, 56, 56, 64, 3, 3, pad=1, note="batch 1"),
        Shape("seq1d", 16, 64, 1, 1024, 64, 1, 5, pad=2, dims=1, note="1-D, conv1d"),
        Shape("vol3d", 2, 16, 16, 16, 32, 3, 3, pad=1, dims=3, D=16, kd=3, note="3-D, conv3d"),
    ]
}

#: Shapes small enough to run in well under a second per case (used by ``--quick`` for extra
#: rounds, and by the pytest suite when benchmarking is disabled).
SMALL_SHAPES = ["seed", "teaching", "res14", "batch1", "seq1d", "vol3d"]

OPS = ["im2col", "col2im", "conv2d", "backward"]

#: Which case is "ours" in each op, and the goals of issue 4: (baseline, limit on ours/baseline,
#: shapes it applies to or None for all 2-D ones). "per call" goals limit ours' absolute time in µs.
OURS = "ours"
GOALS: dict[str, list[tuple[str, float, list[str] | None]]] = {
    "im2col": [
        ("torch unfold", 0.25, None),
        ("copy floor", 1.3, None),
        ("per call µs", 10.0, ["teaching"]),
    ],
    "col2im": [("torch fold", 0.25, None)],
    "conv2d": [
        ("torch conv2d", 1.0, ["seed", "teaching", "pointwise"]),
        ("torch conv2d", 1.25, ["stem", "res56", "res14", "vgg", "batch1"]),
        ("per call µs", 10.0, ["teaching"]),
    ],
    "backward": [("torch autograd", 1.5, ["res56", "res14"])],
}

#: The case each op's result is checked against, and the case whose memory is set beside ours
#: (on 1-D and 3-D shapes, "conv2d" reads conv1d / conv3d: see :func:`nd`).
TORCH_REF = {
    "im2col": "torch unfold",
    "col2im": "torch fold",
    "conv2d": "torch conv2d",
    "backward": "torch autograd",
}


def nd(text: str, dims: int) -> str:
    """``text`` with "conv2d" made "conv1d" or "conv3d" for a shape of ``dims`` dimensions."""
    return text.replace("conv2d", f"conv{dims}d")


def torch_ref(op: str, s: Shape) -> str:
    """The name of the torch case ``op``'s results on ``s`` are checked against."""
    return nd(TORCH_REF[op], s.dims)


# --- cases ---------------------------------------------------------------------------------------


@dataclass
class Cases:
    """The implementations of one op on one shape: name → zero-argument callable.

    ``checked`` names the cases whose return value must equal ``torch_ref(op, shape)``'s (floors return
    nothing meaningful); ``exact`` says the comparison is bitwise (im2col only moves data).
    """

    op: str
    shape: Shape
    fns: dict[str, Callable[[], Any]]
    checked: list[str] = field(default_factory=list)
    exact: bool = False


def _np_im2col(x: np.ndarray, s: Shape) -> np.ndarray:
    """im2col with ``sliding_window_view``: pad, take a strided view, copy it into columns."""
    d, p, axes = s.dims, s.pad, tuple(range(2, 2 + s.dims))
    xp = np.pad(x, ((0, 0), (0, 0)) + ((p, p),) * d) if p else x
    v = np.lib.stride_tricks.sliding_window_view(xp, s.kernel, axis=axes)
    v = v[(slice(None),) * 2 + (slice(None, None, s.stride),) * d]  # (N, C, *out, *kernel)
    return v.transpose(0, 1, *(a + d for a in axes), *axes).reshape(s.N, s.rows, s.L)


def _torch_im2col(xt: Any, s: Shape) -> Any:
    """torch's im2col: ``F.unfold`` (1-D: on an (N, C, 1, L) view); 3-D, which ``F.unfold`` lacks:
    ``F.pad``, then ``Tensor.unfold`` along D, H and W, then a copy into (N, C·kd·kh·kw, L)."""
    import torch.nn.functional as F

    p, st = s.pad, s.stride
    if s.dims == 2:
        return F.unfold(xt, s.kernel, padding=p, stride=st)
    if s.dims == 1:
        return F.unfold(xt.unsqueeze(2), (1, s.kw), padding=(0, p), stride=st)
    v = F.pad(xt, (p,) * 6).unfold(2, s.kd, st).unfold(3, s.kh, st).unfold(4, s.kw, st)
    return v.permute(0, 1, 5, 6, 7, 2, 3, 4).reshape(s.N, s.rows, s.L)


def _np_col2im(cols: np.ndarray, s: Shape) -> np.ndarray:
    """col2im in NumPy: one strided slice-add per kernel tap into a padded image, then crop."""
    p, st = s.pad, s.stride
    out = np.zeros((s.N, s.C, s.H + 2 * p, s.W + 2 * p), cols.dtype)
    c6 = cols.reshape(s.N, s.C, s.kh, s.kw, s.OH, s.OW)
    for i in range(s.kh):
        for j in range(s.kw):
            out[:, :, i : i + st * s.OH : st, j : j + st * s.OW : st] += c6[:, :, i, j]
    return out[:, :, p : p + s.H, p : p + s.W]


def make_cases(op: str, s: Shape, seed: int = 0) -> Cases:
    """Inputs for ``op`` on ``s`` (float32) and every implementation to compare on them."""
    import torch
    import torch.nn.functional as F

    import im2col

    rng = np.random.default_rng(seed)
    if op not in s.ops:
        raise ValueError(f"{op} is not timed on the {s.dims}-D shape {s.name}")
    x = rng.standard_normal((s.N, s.C, *s.spatial), dtype=np.float32)
    w = rng.standard_normal((s.K, s.C, *s.kernel), dtype=np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    k, st, p = s.kernel, s.stride, s.pad
    conv, ref = getattr(F, nd("conv2d", s.dims)), torch_ref(op, s)
    fns: dict[str, Callable[[], Any]] = {}

    if op == "im2col":
        src = np.full(s.N * s.rows * s.L, 0.5, np.float32)
        dst = np.zeros_like(src)
        fns[OURS] = lambda: im2col.im2col(x, k, padding=p, stride=st)
        fns["torch unfold"] = lambda: _torch_im2col(xt, s)
        fns["numpy sliding_window_view"] = lambda: _np_im2col(x, s)
        fns["copy floor"] = lambda: np.copyto(dst, src)
        return Cases(op, s, fns, checked=[OURS, "numpy sliding_window_view"], exact=True)

    if op == "col2im":
        cols = rng.standard_normal((s.N, s.rows, s.L), dtype=np.float32)
        colst = torch.from_numpy(cols)
        dst = np.zeros_like(cols)
        fns[OURS] = lambda: im2col.col2im(cols, (s.H, s.W), k, padding=p, stride=st)
        fns["torch fold"] = lambda: F.fold(colst, (s.H, s.W), k, padding=p, stride=st)
        fns["numpy slice-add"] = lambda: _np_col2im(cols, s)
        fns["copy floor"] = lambda: np.copyto(dst, cols)
        return Cases(op, s, fns, checked=[OURS, "numpy slice-add"])

    w2, w2t = w.reshape(s.K, s.rows), wt.reshape(s.K, s.rows)
    b_np = np.full((s.rows, s.N * s.L), 0.5, np.float32)  # the GEMM floor's column operand
    b_t = torch.from_numpy(b_np)
    c_np = np.zeros((s.K, s.N * s.L), np.float32)
    c_t = torch.from_numpy(c_np)

    if op == "conv2d":
        ours = getattr(im2col, nd("conv2d", s.dims))
        fns[OURS] = lambda: ours(x, w, stride=st, padding=p)
        fns[ref] = lambda: conv(xt, wt, stride=st, padding=p)
        fns["torch unfold+matmul"] = lambda: (w2t @ _torch_im2col(xt, s)).view(s.N, s.K, *s.out)
        fns["numpy swv+matmul"] = lambda: (w2 @ _np_im2col(x, s)).reshape(s.N, s.K, *s.out)
        fns["GEMM floor torch.mm"] = lambda: torch.mm(w2t, b_t, out=c_t)
        fns["GEMM floor np.matmul"] = lambda: np.matmul(w2, b_np, out=c_np)
        return Cases(op, s, fns, checked=[OURS, "torch unfold+matmul", "numpy swv+matmul"])

    if op == "backward":
        gy = rng.standard_normal((s.N, s.K, *s.out), dtype=np.float32)
        gyt = torch.from_numpy(gy)
        xg = xt.clone().requires_grad_(True)
        wg = wt.clone().requires_grad_(True)
        with torch.enable_grad():
            y = conv(xg, wg, stride=st, padding=p)
        gcols_t, gw_t = torch.zeros((s.rows, s.N * s.L)), torch.zeros((s.K, s.rows))
        gy2 = torch.from_numpy(np.moveaxis(gy, 1, 0).reshape(s.K, s.N * s.L).copy())

        def torch_bw():
            return torch.autograd.grad(y, (xg, wg), gyt, retain_graph=True)

        def gemm_floor():
            torch.mm(w2t.T, gy2, out=gcols_t)  # grad of the columns: Wᵀ · dY
            torch.mm(gy2, b_t.T, out=gw_t)  # grad of the weight: dY · colsᵀ

        ours_bw = getattr(im2col, nd("conv2d_backward", s.dims))
        fns[OURS] = lambda: ours_bw(gy, x, w, stride=st, padding=p)[:2]
        fns["torch autograd"] = torch_bw
        fns["2 GEMMs floor torch.mm"] = gemm_floor
        return Cases(op, s, fns, checked=[OURS])

    raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")


def _as_list(v: Any) -> list[np.ndarray]:
    vs = v if isinstance(v, (tuple, list)) else [v]
    return [t.detach().numpy() if hasattr(t, "detach") else np.asarray(t) for t in vs]


def check(cases: Cases, results: dict[str, Any] | None = None) -> None:
    """Raise AssertionError unless every checked case equals torch's result (float32 tolerance).

    ``results`` holds return values already computed (the warm-up's), by case name.
    """
    results = results or {}
    get = lambda name: results[name] if name in results else cases.fns[name]()  # noqa: E731
    ref_name = torch_ref(cases.op, cases.shape)
    ref = _as_list(get(ref_name))
    for name in cases.checked:
        got = _as_list(get(name))
        assert len(got) == len(ref), f"{cases.op} {cases.shape.name} {name}: {len(got)} outputs"
        for a, e in zip(got, ref, strict=True):
            what = f"{cases.op} on {cases.shape.name}: {name} vs {ref_name}"
            assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
            if cases.exact:
                np.testing.assert_array_equal(a, e, err_msg=what)
            else:
                scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
                np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


# --- timing --------------------------------------------------------------------------------------


def _warm(fn: Callable[[], Any], min_s: float, min_calls: int = 3) -> tuple[float, Any]:
    """Call ``fn`` at least ``min_calls`` times and for ``min_s`` seconds.

    Returns the best seconds per call and the first call's result (for :func:`check`).
    """
    best, total, n, first = float("inf"), 0.0, 0, None
    while n < min_calls or total < min_s:
        t0 = time.perf_counter_ns()
        out = fn()
        dt = (time.perf_counter_ns() - t0) / 1e9
        if n == 0:
            first = out
        del out
        best, total, n = min(best, dt), total + dt, n + 1
        if n >= 1000:
            break
    return best, first


def time_cases(
    cases: Cases,
    rounds: int,
    warmup_s: float,
    sample_s: float,
    rng: random.Random,
    min_warm_calls: int = 3,
) -> dict[str, Any]:
    """Warm up, check the results against torch, then time interleaved: per round, each case once in
    random order. Returns the per-case samples."""
    names = list(cases.fns)
    number, results = {}, {}
    for name in names:
        t, out = _warm(cases.fns[name], warmup_s, min_warm_calls)
        if name in cases.checked or name == torch_ref(cases.op, cases.shape):
            results[name] = out
        del out
        number[name] = max(1, min(10_000, round(sample_s / max(t, 1e-9))))
    check(cases, results)
    del results
    samples: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, list[float]] = {n: [] for n in names}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(names)
            for name in names:
                fn, k = cases.fns[name], number[name]
                # The first call after another case pays for the switch (the other library's
                # thread pool still spinning, caches cold): kept apart so it does not swamp
                # the steady per-call time, and reported on its own.
                t0 = time.perf_counter_ns()
                fn()
                t1 = time.perf_counter_ns()
                for _ in range(k):
                    fn()
                samples[name].append((time.perf_counter_ns() - t1) / k)
                first[name].append(t1 - t0)
    finally:
        if was_enabled:
            gc.enable()
    return {"number": number, "ns": samples, "first_ns": first}


# --- memory --------------------------------------------------------------------------------------


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def memory_supported() -> bool:
    return sys.platform.startswith("linux") and os.access("/proc/self/clear_refs", os.W_OK)


def _malloc_trim() -> None:
    """Hand glibc's free heap pages back to the kernel, so reusing them shows up as RSS again."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_extra_bytes(fn: Callable[[], Any], *, with_output: bool = False) -> Any:
    """Peak RSS above the RSS before, while ``fn()`` runs once in a new thread (result included).

    ``with_output=True`` returns ``(extra, output_bytes)``: the result is alive at the peak, so its
    size is a lower bound that tells whether the measurement saw the call's allocations at all.
    """
    box: list[Any] = []
    gc.collect()
    _malloc_trim()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join()
    peak = _status_kib("VmHWM")
    out_bytes = sum(a.nbytes for a in _as_list(box[0])) if box and box[0] is not None else 0
    box.clear()
    extra = max(0, peak - before) * 1024
    return (extra, out_bytes) if with_output else extra


def measure_memory(ops: list[str], shapes: list[str], seed: int = 0) -> dict[str, Any]:
    """Peak extra memory of ours and torch's counterpart per op and shape, in this process.

    :func:`run` calls it in a fresh child process with glibc told to mmap every block from 64 KiB
    up: in-process, and even in a child with glibc's defaults, pages freed by an earlier case were
    sometimes reused, and the extra memory came out below the size of the output itself.
    """
    out: dict[str, Any] = {}
    for op in ops:
        for name in shapes:
            if op not in SHAPES[name].ops:
                continue
            cases = make_cases(op, SHAPES[name], seed)
            for case in (OURS, torch_ref(op, SHAPES[name])):
                extra, out_bytes = peak_extra_bytes(cases.fns[case], with_output=True)
                out[f"{op}/{name}/{case}"] = {"extra": extra, "output": out_bytes}
            del cases
    return out


def _memory_in_child(ops: list[str], shapes: list[str], seed: int) -> dict[str, Any] | None:
    """:func:`measure_memory` in a fresh ``python -m im2col.bench`` process; None if that fails."""
    import subprocess

    cmd = [sys.executable, "-m", "im2col.bench", "--_memory-child", "--ops", ",".join(ops)]
    cmd += ["--shapes", ",".join(shapes), "--seed", str(seed)]
    # Every block from 64 KiB up gets its own mmap and goes back to the kernel when freed, so no
    # call can reuse pages an earlier one left resident (the child times nothing; speed is moot).
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"im2col bench: memory pass failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(r.stdout)


# --- environment ---------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """Thread counts, library versions, BLAS and CPU, for the header and the JSON."""
    import torch
    from threadpoolctl import threadpool_info

    import im2col

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    pools = [
        {
            k: p.get(k)
            for k in (
                "user_api",
                "internal_api",
                "num_threads",
                "version",
                "prefix",
                "threading_layer",
            )
        }
        for p in threadpool_info()
    ]
    native = None
    try:
        from ._gemm import native_blas

        nb = native_blas()
        native = nb.name if nb is not None else None
    except Exception:  # noqa: BLE001 - informational only
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "im2col": getattr(im2col, "__version__", "?"),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "threads_ours": im2col.get_num_threads() if hasattr(im2col, "get_num_threads") else None,
        "threads_torch": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "ours_gemm_blas": native,
        "threadpools": pools,
        "loadavg_at_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages: above the core count, co-tenants are taking CPU time."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# --- the run -------------------------------------------------------------------------------------


def _median(v: list[float]) -> float:
    return float(np.median(v)) if v else float("nan")


def summarize(cases: Cases, timing: dict[str, Any]) -> dict[str, Any]:
    s, op = cases.shape, cases.op
    ns = timing["ns"]
    ours = ns[OURS]
    ratios = {
        name: _median([a / b for a, b in zip(ours, ns[name], strict=True)])
        for name in ns
        if name != OURS
    }
    med = {name: _median(v) for name, v in ns.items()}
    first = {name: _median(v) for name, v in timing["first_ns"].items()}
    work = (
        s.flops * (2 if op == "backward" else 1) if op in ("conv2d", "backward") else s.cols_bytes()
    )
    goals = []
    for base, limit, where in GOALS.get(op, []):
        if s.name not in (where or [n for n, v in SHAPES.items() if v.dims == 2]):
            continue
        if base == "per call µs":
            value = med[OURS] / 1e3
            goals.append(
                {"goal": f"< {limit:g} µs per call", "value": value, "pass": value < limit}
            )
        else:
            value = ratios[base]
            strict = limit == 1.0
            ok = value < limit if strict else value <= limit
            text = f"{'<' if strict else '≤'} {limit:g}× {base}"
            goals.append(
                {"goal": text, "baseline": base, "limit": limit, "value": value, "pass": ok}
            )
    return {
        "op": op,
        "shape": s.name,
        "shape_label": s.label,
        "geometry": asdict(s),
        "cols_bytes": s.cols_bytes(),
        "work": work,
        "work_unit": "flop" if op in ("conv2d", "backward") else "column-matrix byte",
        "median_ns": med,
        "median_first_call_ns": first,
        "min_ns": {name: float(min(v)) for name, v in ns.items()},
        "ratio_ours_over": ratios,
        "goals": goals,
        "number": timing["number"],
        "samples_ns": ns,
        "first_call_samples_ns": timing["first_ns"],
    }


def run(
    ops: list[str],
    shapes: list[str],
    rounds: int,
    *,
    warmup_s: float = 0.03,
    sample_s: float = 0.001,
    memory: bool = True,
    min_warm_calls: int = 3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time every op on every shape; return a JSON-ready dict (``env`` and ``results``)."""
    env = environment()
    results = []
    rng = random.Random(seed)
    mem = _memory_in_child(ops, shapes, seed) if memory and memory_supported() else None
    for op in ops:
        for name in shapes:
            if op not in SHAPES[name].ops:
                continue
            t0 = time.perf_counter()
            cases = make_cases(op, SHAPES[name], seed)
            ref = torch_ref(op, SHAPES[name])
            timing = time_cases(cases, rounds, warmup_s, sample_s, rng, min_warm_calls)
            r = summarize(cases, timing)
            r["rounds"] = rounds
            if mem is not None:
                r["peak_extra_bytes"] = {
                    n: mem[f"{op}/{name}/{n}"]["extra"] for n in (OURS, ref)
                }
                r["output_bytes"] = {
                    n: mem[f"{op}/{name}/{n}"]["output"] for n in (OURS, ref)
                }
            results.append(r)
            if log:
                log(f"  {op:8s} {name:10s} {time.perf_counter() - t0:6.1f} s")
            del cases
    return {"env": env, "results": results}


# --- the report ----------------------------------------------------------------------------------


def _fmt_time(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e9:.3g} s"


def _fmt_rate(r: dict[str, Any]) -> str:
    per_s = r["work"] / (r["median_ns"][OURS] / 1e9)
    return f"{per_s / 1e9:.3g} GFLOP/s" if r["work_unit"] == "flop" else f"{per_s / 1e9:.3g} GB/s"


def _mib(b: float) -> str:
    return f"{b / 2**20:.3g}"


TITLES = {
    "im2col": "im2col (ours) vs torch unfold",
    "col2im": "col2im (ours) vs torch fold",
    "conv2d": "conv2d forward",
    "backward": "conv2d backward (grad input + grad weight)",
}


def format_report(data: dict[str, Any], command: str = "") -> str:
    """Markdown: a header with the environment, then one table per op."""
    env = data["env"]
    blas = ", ".join(
        f"{p['internal_api']}{' ' + p['version'] if p.get('version') else ''} "
        f"({p['user_api']}, {p['num_threads']} threads)"
        for p in env["threadpools"]
    )
    lines = [
        f"# im2col benchmark — {env['date']}",
        "",
        f"- command: `{command}`" if command else "",
        f"- CPU: {env['cpu']} ({env['logical_cpus']} logical CPUs); load average "
        f"{env.get('loadavg_at_start')} at start, {data.get('loadavg_at_end')} at the end",
        f"- threads: ours {env['threads_ours']} (OpenMP), torch {env['threads_torch']}, "
        f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}",
        f"- versions: im2col {env['im2col']}, numpy {env['numpy']}, torch {env['torch']}, "
        f"python {env['python']}",
        f"- thread pools loaded: {blas}; our GEMM calls: {env['ours_gemm_blas']}",
        "- cases run interleaved in one process (random order per round), so one library's "
        "spinning idle threads can slow the next call of another: that is measured, not removed.",
        '- per round, each case\'s first call (right after another case: "ours 1st call") is timed '
        "apart from the steady calls that follow; times and ratios below are the steady ones.",
        "- ratio = median over rounds of (ours / baseline) in the same round: below 1× ours is "
        "faster. Baseline median time in brackets.",
    ]
    if any("peak_extra_bytes" in r for r in data["results"]):
        lines.append(
            "- extra MiB: peak RSS above the start during one first call in a fresh process "
            "(output included); * = below the output's size, so not trustworthy."
        )
    lines = [ln for ln in lines if ln != ""]
    by_op: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in data["results"]:  # one table per op and number of dimensions (their cases differ)
        by_op.setdefault((r["op"], r["geometry"].get("dims", 2)), []).append(r)
    for (op, dims), rs in by_op.items():
        ref = nd(TORCH_REF[op], dims)
        bases = [n for n in rs[0]["median_ns"] if n != OURS]
        has_mem = all("peak_extra_bytes" in r for r in rs)
        head = (
            ["shape", "cols MiB", "ours", "rate", "ours 1st call"]
            + [f"÷ {b}" for b in bases]
            + ["goal"]
        )
        if has_mem:
            head += [f"extra MiB ours / {ref}"]
        title = nd(TITLES.get(op, op), dims) + ("" if dims == 2 else f", {dims}-D shapes")
        lines += ["", f"## {title} ({rs[0]['rounds']} rounds)", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for r in rs:
            cells = [
                f"{r['shape']} ({r['shape_label']})",
                _mib(r["cols_bytes"]),
                _fmt_time(r["median_ns"][OURS]),
                _fmt_rate(r),
                _fmt_time(r["median_first_call_ns"][OURS]),
            ]
            cells += [
                f"{r['ratio_ours_over'][b]:.2f}× ({_fmt_time(r['median_ns'][b])})" for b in bases
            ]
            goal = "; ".join(
                f"{g['goal']}: **{'pass' if g['pass'] else 'miss'}**"
                + (f" ({g['value']:.2f}×)" if "baseline" in g else f" ({g['value']:.3g} µs)")
                for g in r["goals"]
            )
            cells.append(goal or "—")
            if has_mem:
                m, o = r["peak_extra_bytes"], r.get("output_bytes", {})
                # "*": below the output's own size, so the call reused already-resident pages.
                marks = {n: "*" if m[n] < 0.95 * o.get(n, 0) - 2**16 else "" for n in (OURS, ref)}
                cells.append(f"{_mib(m[OURS])}{marks[OURS]} / {_mib(m[ref])}{marks[ref]}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- command line --------------------------------------------------------------------------------


def _names(value: str, allowed: list[str], what: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(bad) or repr(value)}; choose from {', '.join(allowed)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="im2col bench",
        description="Time im2col/col2im/conv2d/backward against torch, NumPy and the copy/GEMM "
        "floors, interleaved over many rounds; print markdown tables.",
    )
    p.add_argument(
        "--quick", action="store_true", help="3 rounds, 1 warm-up call, no memory pass: < 1 min"
    )
    p.add_argument(
        "--rounds", type=int, default=None, help="timed rounds per shape (default 30, quick 3)"
    )
    p.add_argument(
        "--shapes",
        type=lambda v: _names(v, list(SHAPES), "shape"),
        default=list(SHAPES),
        help=f"comma-separated, from: {','.join(SHAPES)}",
    )
    p.add_argument(
        "--ops",
        type=lambda v: _names(v, OPS, "op"),
        default=list(OPS),
        help=f"comma-separated, from: {','.join(OPS)}",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for ours, torch and NumPy's BLAS (default: leave them as they are)",
    )
    p.add_argument(
        "--json", metavar="PATH", help="also save every number (and raw samples) as JSON"
    )
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure peak extra memory in a child process (default: yes, except with --quick)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs and the case order")
    p.add_argument(
        "--_memory-child", dest="memory_child", action="store_true", help=argparse.SUPPRESS
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``im2col bench`` / ``python -m im2col.bench``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        print("im2col bench: --rounds must be at least 1", file=sys.stderr)
        return 2
    try:
        import threadpoolctl
        import torch
    except ImportError as e:
        print(
            f"im2col bench needs torch and threadpoolctl ({e}); pip install 'im2col[test]'",
            file=sys.stderr,
        )
        return 2

    import im2col

    if args.memory_child:  # the memory pass of run(): JSON on stdout
        json.dump(measure_memory(args.ops, args.shapes, args.seed), sys.stdout)
        return 0

    limiter, torch_threads = None, torch.get_num_threads()
    if args.threads is not None:
        if args.threads < 1:
            print("im2col bench: --threads must be at least 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
        if hasattr(im2col, "set_num_threads"):
            im2col.set_num_threads(args.threads)
        limiter = threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    rounds = args.rounds or (3 if args.quick else 30)
    warmup_s, min_warm_calls = (0.0, 1) if args.quick else (0.05, 3)
    command = (
        "python -m im2col.bench"
        + ("" if argv is None and len(sys.argv) <= 1 else " ")
        + " ".join(sys.argv[1:] if argv is None else argv)
    )
    memory = not args.quick if args.memory is None else args.memory
    t0 = time.perf_counter()
    try:
        data = run(
            args.ops, args.shapes, rounds, warmup_s=warmup_s, memory=memory, seed=args.seed,
            min_warm_calls=min_warm_calls, log=lambda m: print(m, file=sys.stderr, flush=True),
        )  # fmt: skip
    finally:
        if limiter is not None:  # main() may run inside another program (tests, notebooks)
            limiter.restore_original_limits()
            torch.set_num_threads(torch_threads)
            if hasattr(im2col, "set_num_threads"):
                im2col.set_num_threads(None)
    data["command"] = command.strip()
    data["wall_s"] = time.perf_counter() - t0
    data["loadavg_at_end"] = _loadavg()
    print(format_report(data, data["command"]))
    print(f"(total {data['wall_s']:.1f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
