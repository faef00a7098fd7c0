"""The convolution engine's Python side: its switches, its routing rule, and the calls into the kernels.

The engine (``csrc/engine/``, design in docs/engine.md) has two routes for a 2-D NCHW convolution,
neither calling BLAS:

- ``"depthwise"``: a direct kernel for ``groups == C`` (K = m·C output channels): each channel's
  kh·kw weights run straight over its own input plane, vectorised along the output width
  (``csrc/engine/depthwise.c``), and its transpose for grad input (conv2d_backward, and
  conv_transpose2d with ``groups == C_out``) with a fixed-order grad weight. As a GEMM a depthwise
  layer is a stack of 1-row products, the BLAS route's worst case; benchmarks/depthwise.py measures
  this route's forward 1.5-9× faster than it, its backward 1-2.5× (docs/engine.md).
- ``"gemm"``: a register-blocked micro-kernel fed by an im2col gather that writes the
  micro-kernel's packed panels directly (``csrc/engine/conv.c``); about as fast as the BLAS route
  over the realistic set (benchmarks/engine_layers.py, engine_cpu_time.py), faster on layers with
  few channels (C, K ≤ 64, stride 1: benchmarks/small_channels.py), which ``auto`` gives it.

Two environment switches, read once at import:

- ``IM2COL_ENGINE=auto`` (the default, also when unset) takes the engine routes measured faster
  than the BLAS route (today: depthwise, and gemm for few channels); ``engine`` takes every engine
  route; ``blas`` none (the reference route).
- ``IM2COL_UKERNEL=portable|avx2|avx512`` forces one set of kernels (one the CPU lacks falls back to
  the portable C one); unset, the best the CPU runs is used. All give the same bits. The portable
  kernels are routed only when asked for by name: without a vector unit the BLAS route is faster.

>>> from im2col import _engine
>>> _engine.MODE in ("auto", "engine", "blas"), _engine.ISA in ("portable", "avx2", "avx512")
(True, True)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from . import _engine_kernels

if TYPE_CHECKING:
    from ._geometry import Geometry

__all__ = ["MODE", "ISA", "set_mode", "set_ukernel", "route", "route_why", "takes", "forward", "conv2d_forward",
           "depthwise2d_forward", "depthwise2d_backward"]  # fmt: skip

MODES = ("auto", "engine", "blas")


def _read_switches() -> tuple[str, str]:
    mode = os.environ.get("IM2COL_ENGINE", "") or "auto"
    if mode not in MODES:
        raise ValueError(f"IM2COL_ENGINE must be 'auto', 'engine' or 'blas', got {mode!r}")
    isa = os.environ.get("IM2COL_UKERNEL", "") or _engine_kernels.best_isa()
    if isa not in _engine_kernels.ISA_NAMES:
        raise ValueError(f"IM2COL_UKERNEL must be one of 'portable', 'avx2', 'avx512', got {isa!r}")
    return mode, isa


MODE, ISA = _read_switches()


def set_mode(mode: str) -> str:
    """Route by ``mode`` ('auto', 'engine' or 'blas') from now on (tests, benchmarks); returns the
    previous mode.

    >>> from im2col import _engine
    >>> old = _engine.set_mode("blas"); _ = _engine.set_mode(old)
    """
    global MODE
    if mode not in MODES:
        raise ValueError(f"mode must be one of 'auto', 'engine', 'blas', got {mode!r}")
    old, MODE = MODE, mode
    if mode != old:
        for listener in _mode_listeners:  # the plans (im2col/_plans.py), built for the old mode's route
            listener()
    return old


_mode_listeners: list[Callable[[], None]] = []


def on_mode_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever :func:`set_mode` changes the mode (the plans forget theirs)."""
    _mode_listeners.append(listener)


def set_ukernel(isa: str) -> str:
    """Use the kernels of ``isa`` from now on (for tests); returns the previous one.

    >>> from im2col import _engine
    >>> old = _engine.set_ukernel("portable"); _ = _engine.set_ukernel(old)
    """
    global ISA
    if isa not in _engine_kernels.ISA_NAMES:
        raise ValueError(f"isa must be one of 'portable', 'avx2', 'avx512', got {isa!r}")
    old, ISA = ISA, isa
    return old


def route(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool, op: str = "forward") -> str | None:
    """The routing rule: which engine route computes ``op`` of this 2-D convolution, or None for the
    BLAS route. ``op``: 'forward' (conv2d), 'backward' (conv2d_backward: grad input and weight) or
    'grad_input' (alone: conv_transpose2d, whose geometry ``g`` is that of the convolution it
    transposes, and ``x`` its input, that convolution's grad_output).

    Shape predicates only (no timing), so every process takes the same route and gives the same bits.
    Both routes read a C-contiguous NCHW float input and write an NCHW output.

    =========  =====================================================  ==============
    route      when                                                   modes
    =========  =====================================================  ==============
    depthwise  ``groups == C ≥ 2`` (one input channel per group),    auto, engine
               with a channel multiplier K / C ≤ 4 in auto (a
               larger one makes a GEMM wide enough for BLAS: C = 1,
               K = 32, 5×5 measured 1.3× slower than the BLAS route)
    gemm       ``C / groups >= 4`` (a reduction long enough to pay)   engine
               (forward only)
    gemm       small channels: groups 1, stride 1, dilation 1,        auto, engine
               ``4 <= C <= 64``, ``K <= 64``, at least 9 taps
               (forward only)
    =========  =====================================================  ==============

    The small-channel row: on such layers the BLAS route's matrix products are thin (K ≤ 64 rows)
    and the engine's gather-into-panels pays; measured engine/BLAS 0.76–0.91 on the realistic set's
    CIFAR, mid32 and Inception 5×5 layers (``im2col bench --set realistic``, docs/performance.md)
    and 0.91 (2 threads) / 0.92 (1 thread) geomean, worst 1.04, on twelve held-out layers of the
    family (benchmarks/small_channels.py). Stride 2, 1×1 and ≥ 128 channels stay on BLAS, where the
    engine measured slower (docs/engine.md).

    In auto the depthwise backward also leaves out planes of fewer than 64 output pixels with
    fewer than 25 taps (MobileNetV2's 3×3 on 7×7: measured 1.11-1.14× the BLAS route, where every
    other depthwise layer of benchmarks/depthwise.py ran 0.36-1.04×), and grad input alone leaves
    out every plane under 64 pixels (ConvNeXt's 7×7 on 7×7: 1.02-1.70×).

    >>> import numpy as np
    >>> from im2col import _engine, _functional
    >>> x, w = np.zeros((2, 8, 6, 6), np.float32), np.zeros((8, 1, 3, 3), np.float32)
    >>> g = _functional._conv2d_geometry("conv2d", x, w, 1, 1, 1, 8)
    >>> old = _engine.set_mode("engine")
    >>> _engine.route(x, w, g, 8, False) in ("depthwise", None)  # None: no vector unit, not forced
    True
    >>> _ = _engine.set_mode("blas"); _engine.route(x, w, g, 8, False) is None
    True
    >>> _ = _engine.set_mode(old)
    """
    return route_why(x, w, g, groups, out_cl, op)[0]


def route_why(
    x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool, op: str = "forward"
) -> tuple[str | None, str]:
    """:func:`route` and the reason, in words: the row of the rule that decided (for ``explain``).

    >>> import numpy as np
    >>> from im2col import _engine, _functional
    >>> x, w = np.zeros((1, 3, 6, 6), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    >>> g = _functional._conv2d_geometry("conv2d", x, w, 1, 1, 1, 1)
    >>> old = _engine.set_mode("auto")
    >>> print(_engine.route_why(x, w, g, 1, False)[1])
    auto mode takes the engine for depthwise and few-channel stride-1 layers (C, K ≤ 64);
    here groups 1, C 3, K 4, stride 1×1, 3×3
    >>> _ = _engine.set_mode(old)
    """
    if MODE == "blas":
        return None, "IM2COL_ENGINE=blas sends every convolution down the BLAS route (the reference)"
    if out_cl:
        return None, "the engine writes NCHW only; a channels-last output stays on the BLAS route"
    if x.dtype not in (np.float32, np.float64) or w.dtype != x.dtype:
        return None, f"the engine computes float32 and float64 only; here {x.dtype} × {w.dtype}"
    if not (x.flags.c_contiguous and w.flags.c_contiguous and x.dtype.isnative):
        return None, "the engine reads C-contiguous native-endian arrays only"
    if g.N == 0:
        return None, "an empty batch: nothing to compute"
    if ISA == "portable" and os.environ.get("IM2COL_UKERNEL", "") != "portable":
        # no vector unit found: the BLAS route is faster (1 GFLOP/s for portable here)
        return None, "no AVX2 or AVX-512 found: the BLAS route is faster than the portable C kernels"
    if groups == g.C >= 2 and (MODE == "engine" or w.shape[0] <= 4 * g.C):
        small = g.OH * g.OW < 64 and (op == "grad_input" or g.kh * g.kw < 25)
        if op != "forward" and small and MODE == "auto":
            return None, (
                f"depthwise, but {g.OH}×{g.OW} = {g.OH * g.OW} output pixels per plane (< 64) are too few "
                f"for the engine's {op.replace('_', ' ')} to pay (measured in benchmarks/depthwise.py)"
            )
        return "depthwise", (
            f"a depthwise layer (groups == C = {g.C}): each channel's {g.kh}×{g.kw} weights run straight "
            "over its own plane, where a GEMM would be a stack of 1-row products"
        )
    if groups == g.C >= 2:
        return None, (
            f"depthwise with a channel multiplier of {w.shape[0] // g.C} (> 4): the GEMM is wide enough "
            "for the BLAS route"
        )
    if MODE == "engine" and g.C // groups >= 4 and op == "forward":
        return "gemm", "IM2COL_ENGINE=engine: the engine's own micro-kernel instead of BLAS"
    few_channels = (
        groups == 1 and (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1) and 4 <= g.C <= 64
        and w.shape[0] <= 64 and g.kh * g.kw >= 9
    )  # fmt: skip
    if few_channels and op == "forward":
        return "gemm", (
            f"few channels (C = {g.C}, K = {w.shape[0]} ≤ 64, stride 1, {g.kh}×{g.kw}): the BLAS route's "
            "products are thin, the engine's micro-kernel on panels gathered in place pays"
        )
    if MODE == "engine":
        return None, f"the engine's GEMM route needs C / groups ≥ 4 and a forward call; here {g.C // groups}, {op}"
    return None, (
        f"auto mode takes the engine for depthwise and few-channel stride-1 layers (C, K ≤ 64); "
        f"here groups {groups}, C {g.C}, K {w.shape[0]}, stride {g.sh}×{g.sw}, {g.kh}×{g.kw}"
    )


def takes(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool) -> bool:
    """Whether an engine route (see :func:`route`) computes this 2-D convolution."""
    return route(x, w, g, groups, out_cl) is not None


def _geom(g: Geometry, K: int, groups: int) -> tuple[int, ...]:
    return (g.N, g.C, g.H, g.W, K, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.OH, g.OW, groups)


def _bias(b: np.ndarray | None, dtype) -> np.ndarray:
    return np.empty(0, dtype) if b is None else np.ascontiguousarray(b, dtype=dtype)


def forward(name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Geometry, groups: int, n_threads: int):
    """Run engine route ``name`` (from :func:`route`); returns (N, K, OH, OW)."""
    if name == "depthwise":
        return depthwise2d_forward(x, w, b, g, n_threads)
    return conv2d_forward(x, w, b, g, groups, n_threads)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Geometry, groups: int, n_threads: int):
    # x (N, C, H, W) C-contiguous, w (K, C/groups, kh, kw) C-contiguous; returns (N, K, OH, OW)
    K = w.shape[0]
    out = np.empty((g.N, K, g.OH, g.OW), dtype=x.dtype)
    _engine_kernels.conv2d(
        x.reshape(-1), w.reshape(-1), _bias(b, x.dtype), out.reshape(-1), _geom(g, K, groups),
        _engine_kernels.ISA_NAMES[ISA], n_threads,
    )  # fmt: skip
    return out


def depthwise2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Geometry, n_threads: int):
    # x (N, C, H, W) C-contiguous, w (m·C, 1, kh, kw) C-contiguous; returns (N, m·C, OH, OW)
    K = w.shape[0]
    out = np.empty((g.N, K, g.OH, g.OW), dtype=x.dtype)
    _engine_kernels.depthwise2d(
        x.reshape(-1), w.reshape(-1), _bias(b, x.dtype), out.reshape(-1), _geom(g, K, g.C),
        _engine_kernels.ISA_NAMES[ISA], n_threads,
    )  # fmt: skip
    return out


def depthwise2d_backward(
    gy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    g: Geometry,
    n_threads: int,
    want_gx: bool = True,
    want_gw: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """grad_input (N, C, H, W) and grad_weight (m·C, 1, kh, kw) of the depthwise route's convolution.

    ``gy`` (N, m·C, OH, OW), ``x`` and ``w`` C-contiguous; a gradient not wanted comes back None.
    grad_input is the transposed direct kernel (each output pixel's taps scattered back), grad_weight
    a per-channel sum over the batch in a fixed order: the same bits for any thread count.

    >>> import numpy as np
    >>> from im2col import _engine, _functional
    >>> x, w = np.ones((1, 2, 4, 4)), np.ones((2, 1, 3, 3))
    >>> g = _functional._conv2d_geometry("conv2d", x, w, 1, 1, 1, 2)
    >>> gx, gw = _engine.depthwise2d_backward(np.ones((1, 2, 4, 4)), x, w, g, 1)
    >>> gx[0, 0]  # how many outputs each input pixel reaches
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]])
    >>> gw[0, 0]  # how many input pixels each tap sees
    array([[ 9., 12.,  9.],
           [12., 16., 12.],
           [ 9., 12.,  9.]])
    """
    K = w.shape[0]
    gx = np.empty((g.N, g.C, g.H, g.W), x.dtype) if want_gx else None
    gw = np.empty(w.shape, x.dtype) if want_gw else None
    empty = np.empty(0, x.dtype)
    _engine_kernels.depthwise2d_backward(
        gy.reshape(-1), x.reshape(-1) if want_gw else empty, w.reshape(-1),
        empty if gx is None else gx.reshape(-1), empty if gw is None else gw.reshape(-1),
        _geom(g, K, g.C), _engine_kernels.ISA_NAMES[ISA], n_threads,
    )  # fmt: skip
    return gx, gw
