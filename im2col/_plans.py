"""Repeated small calls: skip the checks that the same call signature has already passed.

On the 1×1×5×5 teaching shape the public functions spent about 9 µs per call, nearly all of it in
Python argument checking (``as_pair`` ×4, ``parse_padding``, ``geometry``, ``batched``, …) and
in the kernel call's fixed costs, against about 0.1 µs of work. Real code calls the same layer
with the same shapes over and over, so the public im2col, col2im (im2col/_functional.py) and conv2d (_conv2d.py)
look their call up in a cache here before anything else:

* The first call with a given *signature* (input type, shape, dtype and strides; the other
  arrays' too; the exact values of the int/str/tuple arguments) runs the full function, so every
  check and every message is the one it gives. If it succeeds and the problem is small enough to
  run on one thread anyway, a *plan* is kept: the output shape and the kernel with its arguments.
* A later call with an equal signature does a few type checks, one dict lookup, ``np.empty`` and
  the serial kernel (``csrc/_kernels.pyx``: no OpenMP region, no fused-type dispatch).

A plan never accepts what the full checks would refuse: the key holds everything the checks look
at (shapes, dtypes, and the strides, which fix contiguity), argument values count only when their
type is exactly int, str or a tuple of ints (``stride=1.0`` and ``stride=True`` equal 1 but are
refused by the full checks, so they are never looked up), and anything else (tensors, ``out=``,
other keyword arguments, subclasses of ndarray) takes the full path every time. The plan's result
is bit for bit the full path's: a plan is only made where it runs the same arithmetic in the same
order (not for a 1×1 col2im, which the full path copies, so -0.0 stays -0.0; not for a convolution
the full path runs on its colsᵀ tiles).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _engine, _kernels, _tiles
from ._gemm import native_blas
from ._geometry import as_pair, col2im_dims, geometry, im2col_dims, parse_padding
from ._threads import SERIAL_BELOW, SERIAL_FLOPS_BELOW
from ._validation import conv2d_geometry

#: Plans kept per public function; past this the cache starts again from empty.
MAX_PLANS = 256

_Plan = Callable[..., np.ndarray]


def plain(*values: Any) -> bool:
    """True when every value is an int, a str or a tuple of ints: safe in a cache key.

    Floats, bools and NumPy scalars compare equal to ints but the full checks refuse some of them,
    so they are never looked up; nor are lists (unhashable) or per-side padding pairs (rare).
    """
    for v in values:
        t = type(v)
        if t is int or t is str:
            continue
        if t is not tuple:
            return False
        for e in v:
            if type(e) is not int:
                return False
    return True


def _specialised(fn, dtype: np.dtype):
    """The fused kernel's specialisation for ``dtype`` (skips the per-call dispatch)."""
    return fn[{4: "float", 8: "double"}[dtype.itemsize] if dtype.kind == "f" else _MOVED[dtype.itemsize]]


_MOVED = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}
_MOVER = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


class Cache:
    """A dict of plans, ``plans``, with a bound on its size: key → plan, or None for a signature that
    passed the checks but has no plan (large, or unusual), which takes the full path."""

    def __init__(self) -> None:
        self.plans: dict[tuple, _Plan | None] = {}
        _caches.append(self)

    def put(self, key: tuple, plan: _Plan | None) -> None:
        if len(self.plans) >= MAX_PLANS:
            self.plans.clear()  # in place: the public functions hold this dict
        self.plans[key] = plan


_caches: list[Cache] = []

#: The plans of the public im2col, col2im and conv2d (im2col/_functional.py and _conv2d.py look them up).
IM2COL: Cache = Cache()
COL2IM: Cache = Cache()
CONV2D: Cache = Cache()


def clear() -> None:
    """Forget every plan (the next call of each signature runs the full checks again)."""
    for cache in _caches:
        cache.plans.clear()


# a plan is built for the route of the engine mode it was made in: set_mode forgets them all
_engine.on_mode_change(clear)


def first_call(cache: Cache, key: tuple, full: Callable[..., Any], make_plan: Callable[..., Any], *args: Any):
    """The first call of a signature: ``full(*args)``, with every check and its errors; if it
    succeeds, keep ``make_plan(*args)`` (a plan, or None) under ``key`` for the next call."""
    result = full(*args)
    cache.put(key, make_plan(*args))
    return result


# --- im2col -----------------------------------------------------------------------------------


def im2col_plan(x: np.ndarray, kernel_size, dilation, padding, stride) -> _Plan | None:
    """A plan for a call the full checks have accepted, or None (large, or an unusual layout)."""
    if (
        x.ndim not in (3, 4)
        or im2col_dims(x.ndim, kernel_size) != 2
        or x.dtype.itemsize not in _MOVER
        or not (x.flags.c_contiguous and x.dtype.isnative)
    ):
        return None  # 1-D/3-D go through _nd; complex128 and copies take the full path
    fn = "im2col"
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    shape4 = x.shape if x.ndim == 4 else (1, *x.shape)
    g = geometry(fn, shape4, k, s, parse_padding(padding, fn, 2, k, d, s), d)
    size = g.N * g.rows * g.L
    if size >= SERIAL_BELOW or size == 0:
        return None
    shape = (g.N, g.rows, g.L) if x.ndim == 4 else (g.rows, g.L)
    dtype = x.dtype
    args = (_kernels.Geometry2d(g), g.rows * g.L, g.L)
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        kernel = _specialised(_kernels.im2col_serial, dtype)

        def plan(x: np.ndarray) -> np.ndarray:
            out = np.empty(shape, dtype)
            kernel(x.reshape(-1), out.reshape(-1), *args)
            return out

        return plan
    kernel = _kernels.im2col_serial[_MOVED[dtype.itemsize]]
    mover = _MOVER[dtype.itemsize]

    def moved_plan(x: np.ndarray) -> np.ndarray:
        out = np.empty(shape, dtype)
        kernel(x.reshape(-1).view(mover), out.reshape(-1).view(mover), *args)
        return out

    return moved_plan


# --- col2im -----------------------------------------------------------------------------------


def col2im_plan(cols: np.ndarray, output_size, kernel_size, dilation, padding, stride) -> _Plan | None:
    if col2im_dims(output_size, kernel_size) != 2 or cols.ndim not in (2, 3):
        return None
    if not (cols.flags.c_contiguous and cols.dtype.isnative) or cols.dtype.kind != "f":
        return None
    fn = "col2im"
    size = as_pair(output_size, "output_size", fn, minimum=1)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    N, R, L = cols.shape if cols.ndim == 3 else (1, *cols.shape)
    g = geometry(fn, (N, R // (k[0] * k[1]), *size), k, s, parse_padding(padding, fn, 2, k, d, s), d)
    if cols.size >= SERIAL_BELOW or cols.size == 0 or g.is_pointwise:  # pointwise: the full path copies
        return None
    shape = (N, g.C, g.H, g.W) if cols.ndim == 3 else (g.C, g.H, g.W)
    dtype = cols.dtype
    args = (_kernels.Geometry2d(g, N), g.rows * g.L, g.L)
    kernel = _specialised(_kernels.col2im_serial, dtype)

    def plan(cols: np.ndarray) -> np.ndarray:
        out = np.empty(shape, dtype)
        kernel(cols.reshape(-1), out.reshape(-1), *args)
        return out

    return plan


# --- conv2d -----------------------------------------------------------------------------------


def conv2d_plan(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride, padding, dilation, groups):
    arrays = (x, w) if b is None else (x, w, b)
    if x.ndim not in (3, 4) or not all(a.flags.c_contiguous and a.dtype.isnative for a in arrays):
        return None
    blas = native_blas()
    if blas is None or x.dtype.kind != "f":
        return None
    x4 = x if x.ndim == 4 else x[None]
    g = conv2d_geometry("conv2d", x4, w, stride, padding, dilation, groups)
    K = w.shape[0]
    if 2 * g.N * K * (g.rows // groups) * g.L >= SERIAL_FLOPS_BELOW or g.N == 0:
        return None
    dtype = x.dtype
    rows = _tiles.tile_rows(g, dtype.itemsize)
    # the full path's choice, on one thread (these problems run on one); for a C-contiguous x its
    # 1×1 mode is 1 exactly when the convolution is pointwise. 1×1 images look channels-last, and
    # one wide row is too coarse: then the full path takes the colsᵀ tiles, and there is no plan.
    if _tiles.takes_cols_t(g, x4, int(g.is_pointwise), rows, 1, groups):
        return None
    if _engine.takes(x4, w, g, groups, False):
        return None  # the engine's route: the full path takes it, so the plan would not match its bits
    work_size = 1 if g.is_pointwise else g.rows * rows * g.OW
    shape = (g.N, K, g.OH, g.OW) if x.ndim == 4 else (K, g.OH, g.OW)
    kernel = _specialised(_kernels.conv_forward_serial, dtype)
    args = (_kernels.Geometry2d(g, K=K, groups=groups), rows, g.is_pointwise, blas)

    def plan(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        out = np.empty(shape, dtype)
        kernel(x.reshape(-1), w.reshape(-1), out.reshape(-1), np.empty(work_size, dtype), *args)
        if b is not None:
            out += b[:, None, None]
        return out

    return plan
