"""The convolution engine's Python side: its switches, its routing rule, and the call into the kernels.

The engine (``csrc/engine/``, design in docs/engine.md) computes a 2-D NCHW convolution with a
register-blocked micro-kernel fed by an im2col gather that writes the micro-kernel's packed panels
directly, with no BLAS call. Two environment switches, read once at import:

- ``IM2COL_ENGINE=engine`` lets the routing rule choose the engine; ``IM2COL_ENGINE=blas`` (the
  default, because benchmarks/engine_layers.py measures the engine slower than the BLAS route on
  every realistic layer so far; see docs/engine.md) sends every convolution down the BLAS route.
- ``IM2COL_UKERNEL=portable|avx2|avx512`` forces one micro-kernel (one the CPU lacks falls back to
  the portable C one); unset, the best the CPU runs is used. All give the same bits.

>>> from im2col import _engine
>>> _engine.ISA in ("portable", "avx2", "avx512")
True
"""

from __future__ import annotations

import os

import numpy as np

from . import _engine_kernels
from ._validation import Geometry

__all__ = ["ENABLED", "ISA", "set_ukernel", "takes", "conv2d_forward"]


def _read_switches() -> tuple[bool, str]:
    engine = os.environ.get("IM2COL_ENGINE", "blas")
    if engine not in ("engine", "blas"):
        raise ValueError(f"IM2COL_ENGINE must be 'engine' or 'blas', got {engine!r}")
    isa = os.environ.get("IM2COL_UKERNEL", "") or _engine_kernels.best_isa()
    if isa not in _engine_kernels.ISA_NAMES:
        raise ValueError(f"IM2COL_UKERNEL must be one of 'portable', 'avx2', 'avx512', got {isa!r}")
    return engine == "engine", isa


ENABLED, ISA = _read_switches()


def set_ukernel(isa: str) -> str:
    """Use the micro-kernel of ``isa`` from now on (for tests); returns the previous one.

    >>> from im2col import _engine
    >>> old = _engine.set_ukernel("portable"); _ = _engine.set_ukernel(old)
    """
    global ISA
    if isa not in _engine_kernels.ISA_NAMES:
        raise ValueError(f"isa must be one of 'portable', 'avx2', 'avx512', got {isa!r}")
    old, ISA = ISA, isa
    return old


def takes(x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_cl: bool) -> bool:
    """The routing rule: does the engine compute this 2-D convolution?

    Shape predicates only (no timing), so every process takes the same route and gives the same bits.
    The engine reads a C-contiguous NCHW float input and writes an NCHW output. Depthwise and other
    layers with few channels per group have too short a reduction for the micro-kernel to pay off
    (measured in benchmarks/engine_layers.py); they keep the BLAS route.
    """
    if not ENABLED or out_cl or x.dtype not in (np.float32, np.float64) or w.dtype != x.dtype:
        return False
    if not (x.flags.c_contiguous and w.flags.c_contiguous and x.dtype.isnative):
        return False
    if ISA == "portable" and os.environ.get("IM2COL_UKERNEL", "") != "portable":
        return False  # no vector unit found: the BLAS route is faster
    return g.C // groups >= 4 and g.N > 0


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Geometry, groups: int, n_threads: int):
    # x (N, C, H, W) C-contiguous, w (K, C/groups, kh, kw) C-contiguous; returns (N, K, OH, OW)
    K = w.shape[0]
    out = np.empty((g.N, K, g.OH, g.OW), dtype=x.dtype)
    bias = np.empty(0, x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    geom = (g.N, g.C, g.H, g.W, K, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, g.OH, g.OW, groups)
    _engine_kernels.conv2d(
        x.reshape(-1), w.reshape(-1), bias, out.reshape(-1), geom, _engine_kernels.ISA_NAMES[ISA], n_threads
    )
    return out
