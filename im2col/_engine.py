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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import _engine_kernels

if TYPE_CHECKING:
    from ._geometry import Geometry

__all__ = ["MODE", "ISA", "set_mode", "set_ukernel", "ROUTES", "decide", "route", "route_why", "takes", "forward",
           "conv2d_forward", "depthwise2d_forward", "depthwise2d_backward"]  # fmt: skip

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


class Row(NamedTuple):
    """One row of the routing rule: its name, the route it picks (an engine route, or None for the
    BLAS route), and why, in words: a template of the call's numbers, filled in by :func:`route_why`
    only (``explain``), never on the way to a kernel."""

    name: str
    route: str | None
    why: str


BLAS_MODE = Row("blas mode", None, "IM2COL_ENGINE=blas sends every convolution down the BLAS route (the reference)")
CHANNELS_LAST = Row(
    "channels-last output", None, "the engine writes NCHW only; a channels-last output stays on the BLAS route"
)
DTYPE = Row("dtype", None, "the engine computes float32 and float64 only; here {x_dtype} × {w_dtype}")
LAYOUT = Row("layout", None, "the engine reads C-contiguous native-endian arrays only")
EMPTY = Row("empty batch", None, "an empty batch: nothing to compute")
NO_VECTOR_UNIT = Row(
    "no vector unit", None, "no AVX2 or AVX-512 found: the BLAS route is faster than the portable C kernels"
)
SMALL_DEPTHWISE_BACKWARD = Row(
    "small depthwise backward",
    None,
    "depthwise, but {OH}×{OW} = {pixels} output pixels per plane (< 64) are too few for the engine's {op_words} "
    "to pay (measured in benchmarks/depthwise.py)",
)
DEPTHWISE = Row(
    "depthwise",
    "depthwise",
    "a depthwise layer (groups == C = {C}): each channel's {kh}×{kw} weights run straight over its own plane, "
    "where a GEMM would be a stack of 1-row products",
)
WIDE_DEPTHWISE = Row(
    "wide depthwise",
    None,
    "depthwise with a channel multiplier of {multiplier} (> 4): the GEMM is wide enough for the BLAS route",
)
ENGINE_MODE_GEMM = Row(
    "engine mode gemm", "gemm", "IM2COL_ENGINE=engine: the engine's own micro-kernel instead of BLAS"
)
FEW_CHANNELS = Row(
    "few channels",
    "gemm",
    "few channels (C = {C}, K = {K} ≤ 64, stride 1, {kh}×{kw}): the BLAS route's products are thin, the engine's "
    "micro-kernel on panels gathered in place pays",
)
ENGINE_MODE_OTHER = Row(
    "engine mode, no gemm",
    None,
    "the engine's GEMM route needs C / groups ≥ 4 and a forward call; here {Cg}, {op}",
)
AUTO_DEFAULT = Row(
    "auto default",
    None,
    "auto mode takes the engine for depthwise and few-channel stride-1 layers (C, K ≤ 64); here groups {groups}, "
    "C {C}, K {K}, stride {sh}×{sw}, {kh}×{kw}",
)

#: The rows of the routing rule in the order :func:`decide` tries them (first match wins; the last
#: matches every call). tests/test_engine.py reaches each row with a call, in this order.
ROUTES = (BLAS_MODE, CHANNELS_LAST, DTYPE, LAYOUT, EMPTY, NO_VECTOR_UNIT, SMALL_DEPTHWISE_BACKWARD, DEPTHWISE,
          WIDE_DEPTHWISE, ENGINE_MODE_GEMM, FEW_CHANNELS, ENGINE_MODE_OTHER, AUTO_DEFAULT)  # fmt: skip


def decide(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool, op: str = "forward") -> Row:
    """The routing rule: the first row of :data:`ROUTES` that applies to this call, one ``if`` per
    row in the table's order. Shape predicates only (no timing), so every process takes the same
    route and gives the same bits; nothing is put into words here (see :func:`route_why`).
    Arguments as in :func:`route`."""
    if MODE == "blas":
        return BLAS_MODE
    if out_cl:
        return CHANNELS_LAST
    if x.dtype not in (np.float32, np.float64) or w.dtype != x.dtype:
        return DTYPE
    if not (x.flags.c_contiguous and w.flags.c_contiguous and x.dtype.isnative):
        return LAYOUT
    if g.N == 0:
        return EMPTY
    if ISA == "portable" and os.environ.get("IM2COL_UKERNEL", "") != "portable":
        return NO_VECTOR_UNIT  # no vector unit found: the BLAS route is faster (1 GFLOP/s for portable here)
    K = w.shape[0]
    depthwise = groups == g.C >= 2  # one input channel per group
    if depthwise and (MODE == "engine" or K <= 4 * g.C):  # a channel multiplier ≤ 4 in auto
        if MODE == "auto" and op != "forward" and g.OH * g.OW < 64 and (op == "grad_input" or g.kh * g.kw < 25):
            return SMALL_DEPTHWISE_BACKWARD
        return DEPTHWISE
    if depthwise:
        return WIDE_DEPTHWISE
    if MODE == "engine" and g.C // groups >= 4 and op == "forward":
        return ENGINE_MODE_GEMM
    if (
        op == "forward" and groups == 1 and (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1) and 4 <= g.C <= 64
        and K <= 64 and g.kh * g.kw >= 9
    ):  # fmt: skip
        return FEW_CHANNELS
    if MODE == "engine":
        return ENGINE_MODE_OTHER
    return AUTO_DEFAULT


def route(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool, op: str = "forward") -> str | None:
    """The routing rule: which engine route computes ``op`` of this 2-D convolution, or None for the
    BLAS route. ``op``: 'forward' (conv2d), 'backward' (conv2d_backward: grad input and weight) or
    'grad_input' (alone: conv_transpose2d, whose geometry ``g`` is that of the convolution it
    transposes, and ``x`` its input, that convolution's grad_output).

    The route of the first row of :data:`ROUTES` that applies (:func:`decide`); no reason is put
    into words here, only in :func:`route_why`. Both routes read a C-contiguous NCHW float input
    and write an NCHW output. The engine rows, in short:

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
    return decide(x, w, g, groups, out_cl, op).route


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
    row = decide(x, w, g, groups, out_cl, op)
    K = w.shape[0]
    facts = dict(x_dtype=x.dtype, w_dtype=w.dtype, C=g.C, K=K, kh=g.kh, kw=g.kw, OH=g.OH, OW=g.OW,
                 pixels=g.OH * g.OW, op=op, op_words=op.replace("_", " "), multiplier=K // max(g.C, 1),
                 Cg=g.C // groups, groups=groups, sh=g.sh, sw=g.sw)  # fmt: skip
    return row.route, row.why.format(**facts)


def takes(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool) -> bool:
    """Whether an engine route (see :func:`route`) computes this 2-D convolution."""
    return route(x, w, g, groups, out_cl) is not None


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
        x.reshape(-1), w.reshape(-1), _bias(b, x.dtype), out.reshape(-1), g, K, groups,
        _engine_kernels.ISA_NAMES[ISA], n_threads,
    )  # fmt: skip
    return out


def depthwise2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Geometry, n_threads: int):
    # x (N, C, H, W) C-contiguous, w (m·C, 1, kh, kw) C-contiguous; returns (N, m·C, OH, OW)
    K = w.shape[0]
    out = np.empty((g.N, K, g.OH, g.OW), dtype=x.dtype)
    _engine_kernels.depthwise2d(
        x.reshape(-1), w.reshape(-1), _bias(b, x.dtype), out.reshape(-1), g, K, g.C,
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
        g, K, g.C, _engine_kernels.ISA_NAMES[ISA], n_threads,
    )  # fmt: skip
    return gx, gw
