"""Repeated small calls: skip the checks that the same call signature has already passed.

On the 1×1×5×5 teaching shape the public functions spent about 9 µs per call, nearly all of it in
Python argument checking (``as_pair`` ×4, ``parse_padding``, ``geometry``, ``batched``, …) and
in the kernel call's fixed costs, against about 0.1 µs of work. Real code calls the same layer
with the same shapes over and over, so each public function is wrapped here:

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
from functools import wraps
from typing import Any

import numpy as np

from . import _kernels
from ._threads import SERIAL_BELOW, SERIAL_FLOPS_BELOW

#: Plans kept per public function; past this the cache starts again from empty.
MAX_PLANS = 256

_Plan = Callable[..., np.ndarray]
_ndarray = np.ndarray
_MISSING = object()


def _plain(*values: Any) -> bool:
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


#: Kept for a signature that passed the checks but has no plan (large, or unusual): the full path.
NO_PLAN = None


class _Cache:
    """A dict of plans with a bound on its size; ``clear`` empties it (tests that patch internals)."""

    def __init__(self) -> None:
        self.plans: dict[tuple, _Plan | None] = {}

    def put(self, key: tuple, plan: _Plan | None) -> None:
        if len(self.plans) >= MAX_PLANS:
            self.plans.clear()
        self.plans[key] = plan


_caches: list[_Cache] = []


def clear() -> None:
    """Forget every plan (the next call of each signature runs the full checks again)."""
    for cache in _caches:
        cache.plans.clear()


def _new_cache() -> _Cache:
    cache = _Cache()
    _caches.append(cache)
    return cache


# --- im2col -----------------------------------------------------------------------------------


def im2col(full: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the public ``im2col``: plans for arrays of any movable dtype, zero padding, no ``out``."""
    cache = _new_cache()
    plans = cache.plans

    @wraps(full)
    def im2col(input, kernel_size, dilation=1, padding=0, stride=1, **kwargs):
        if type(input) is _ndarray and not kwargs:
            key = (input.shape, input.dtype, input.strides, kernel_size, dilation, padding, stride)
            if _plain(kernel_size, dilation, padding, stride):
                plan = plans.get(key, _MISSING)
                if plan is _MISSING:  # first call: every check, and its errors, then a plan
                    result = full(input, kernel_size, dilation, padding, stride)
                    cache.put(key, _im2col_plan(input, kernel_size, dilation, padding, stride))
                    return result
                if plan is not NO_PLAN:
                    return plan(input)
        return full(input, kernel_size, dilation, padding, stride, **kwargs)

    return im2col


def _im2col_plan(x: np.ndarray, kernel_size, dilation, padding, stride) -> _Plan | None:
    """A plan for a call the full checks have accepted, or None (large, or an unusual layout)."""
    from ._nd import im2col_dims
    from ._validation import as_pair, geometry, parse_padding

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
    g = geometry(fn, shape4, k, s, parse_padding(padding, fn, k, d, s), d)
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


def col2im(full: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the public ``col2im``: plans for float arrays, 2-D, zero padding, reduce='sum'."""
    cache = _new_cache()
    plans = cache.plans

    @wraps(full)
    def col2im(input, output_size, kernel_size, dilation=1, padding=0, stride=1, **kwargs):
        if type(input) is _ndarray and not kwargs:
            key = (input.shape, input.dtype, input.strides, output_size, kernel_size, dilation, padding, stride)
            if _plain(output_size, kernel_size, dilation, padding, stride):
                plan = plans.get(key, _MISSING)
                if plan is _MISSING:
                    result = full(input, output_size, kernel_size, dilation, padding, stride)
                    cache.put(key, _col2im_plan(input, output_size, kernel_size, dilation, padding, stride))
                    return result
                if plan is not NO_PLAN:
                    return plan(input)
        return full(input, output_size, kernel_size, dilation, padding, stride, **kwargs)

    return col2im


def _col2im_plan(cols: np.ndarray, output_size, kernel_size, dilation, padding, stride) -> _Plan | None:
    from ._nd import col2im_dims
    from ._validation import as_pair, geometry, parse_padding

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
    g = geometry(fn, (N, R // (k[0] * k[1]), *size), k, s, parse_padding(padding, fn, k, d, s), d)
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


def conv2d(full: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the public ``conv2d``: plans for float arrays when the kernels can call a BLAS."""
    cache = _new_cache()
    plans = cache.plans

    @wraps(full)
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **kwargs):
        if type(input) is _ndarray and type(weight) is _ndarray and not kwargs:
            if bias is None:
                bkey = None
            elif type(bias) is _ndarray:
                bkey = (bias.shape, bias.dtype, bias.strides)
            else:
                return full(input, weight, bias, stride, padding, dilation, groups)
            key = (input.shape, input.dtype, input.strides, weight.shape, weight.dtype, weight.strides, bkey,
                   stride, padding, dilation, groups)  # fmt: skip
            if _plain(stride, padding, dilation, groups):
                plan = plans.get(key, _MISSING)
                if plan is _MISSING:
                    result = full(input, weight, bias, stride, padding, dilation, groups)
                    cache.put(key, _conv2d_plan(input, weight, bias, stride, padding, dilation, groups))
                    return result
                if plan is not NO_PLAN:
                    return plan(input, weight, bias)
        return full(input, weight, bias, stride, padding, dilation, groups, **kwargs)

    return conv2d


def _conv2d_plan(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride, padding, dilation, groups):
    from . import _engine, _functional
    from ._gemm import native_blas

    arrays = (x, w) if b is None else (x, w, b)
    if x.ndim not in (3, 4) or not all(a.flags.c_contiguous and a.dtype.isnative for a in arrays):
        return None
    blas = native_blas()
    if blas is None or x.dtype.kind != "f":
        return None
    x4 = x if x.ndim == 4 else x[None]
    g = _functional._conv2d_geometry("conv2d", x4, w, stride, padding, dilation, groups)
    K = w.shape[0]
    if 2 * g.N * K * (g.rows // groups) * g.L >= SERIAL_FLOPS_BELOW or g.N == 0:
        return None
    dtype = x.dtype
    rows = _functional._tile_rows(g, dtype.itemsize)
    # the full path's choice, on one thread (these problems run on one); for a C-contiguous x its
    # 1×1 mode is 1 exactly when the convolution is pointwise. 1×1 images look channels-last, and
    # one wide row is too coarse: then the full path takes the colsᵀ tiles, and there is no plan.
    if _functional._takes_cols_t(g, x4, int(g.is_pointwise), rows, 1, groups):
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
