"""The N-d im2col and col2im drivers: the geometry of 1 to 3 spatial axes, its index tables, and
the kernel calls for checked arguments.

:class:`NdGeometry` holds one N-d im2col's checked sizes; for any padding mode :func:`axis_table`
lists, per spatial axis, which input index every (kernel tap, output position) reads, so the
padding never becomes a padded copy of the input. :func:`_im2col_into` gathers through those tables
(``im2col_nd`` in csrc/_nd_kernels.pyx), or, for 3-D zero padding, with the 2-D kernel's plane
copies (``vol2col`` in csrc/_kernels.pyx); :func:`_col2im_into` scatter-adds back (``col2im_nd``).
They serve :mod:`im2col._nd`'s public functions and the 3-D routes (im2col/_conv3d_routes.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import _kernels, _nd_kernels
from ._geometry import AXES, normalise_and_check_reach, out_sizes
from ._threads import threads_for
from ._validation import check_alloc, strided_buffer

_MOVER = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def axis_table(n: int, k: int, s: int, before: int, d: int, o: int, mode: str) -> np.ndarray:
    """(k, o) int64: the input index tap ``i`` reads at output position ``j`` along one axis.

    The padded coordinate ``j·s + i·d − before`` maps back into ``[0, n)`` by the mode: reflected
    about the edge pixels ('reflect', which requires padding < n, as torch), clamped ('replicate'),
    wrapped ('circular'), or -1, the constant pad value ('zeros', 'constant').
    """
    q = np.arange(o, dtype=np.int64)[None, :] * s + np.arange(k, dtype=np.int64)[:, None] * d - before
    if mode == "reflect":
        q = np.abs(q)
        q = np.where(q >= n, 2 * (n - 1) - q, q)
    elif mode == "replicate":
        q = np.clip(q, 0, n - 1)
    elif mode == "circular":
        q = q % n
    else:
        q = np.where((q >= 0) & (q < n), q, -1)
    return np.ascontiguousarray(q)


class NdGeometry:
    """Checked sizes of one N-d im2col: spatial size, kernel, stride, padding, dilation, output, tables."""

    def __init__(self, fn, size, k, s, pads, d, mode, grid=None):
        if mode == "reflect":
            for axis, n, (before, after) in zip(AXES[len(size)], size, pads):
                if max(before, after) >= n:
                    raise ValueError(
                        f"{fn}(): padding_mode='reflect' needs padding smaller than the input, as "
                        f"torch.nn.functional.pad: {axis} padding ({before}, {after}) on size {n}"
                    )
        # grid overrides the number of output positions: a transposed convolution's grid is its
        # input, which can have fewer positions than a convolution of its output would (when
        # output_padding ≥ stride, allowed if dilation > stride)
        self.size, self.k = tuple(size), tuple(k)
        self.out = tuple(grid) if grid is not None else out_sizes(fn, size, k, s, pads, d)
        s, d = normalise_and_check_reach(fn, AXES[len(size)], size, k, s, pads, d, self.out)
        self.stride, self.dilation, self.pads = tuple(s), tuple(d), tuple(pads)
        self.fn, self.mode = fn, mode
        self.dhw = (1,) * (3 - len(size)) + self.size
        # along the last axis, tap e reads input index ow·s + e·d − before, the table's value
        # wherever that lies inside the input (any mode): for w_lo[e] <= ow < w_hi[e]
        n, kk, ss, (before, _), dd, o = size[-1], k[-1], s[-1], pads[-1], d[-1], self.out[-1]
        off = np.arange(kk, dtype=np.int64) * dd - before
        lo = np.clip(-(off // ss), 0, o)  # first ow with ow·s + off >= 0: ceil(−off / s)
        hi = np.clip(-((off - n) // ss), lo, o)  # first ow with ow·s + off >= n
        self.w_span = (lo, hi, off, ss)
        self.taps = math.prod(k)  # Python ints: np.prod would wrap around for absurd sizes
        self.L = math.prod(self.out)

    @functools.cached_property
    def tables(self) -> list[np.ndarray]:
        """The (kernel tap, output position) → input index table of each axis, as 3-D.

        Built on first use: conv1d runs on the 2-D kernels and conv3d on its own tiles, which need
        only the sizes, so a long signal never pays for ``k·L`` int64 entries it does not read.
        """
        check_alloc(self.fn, "index tables", (sum(kk * o for kk, o in zip(self.k, self.out)),), np.dtype(np.int64))
        tables = [axis_table(n, kk, ss, before, dd, o, self.mode)
                  for n, kk, ss, (before, _), dd, o in zip(self.size, self.k, self.stride, self.pads, self.dilation,
                                                           self.out)]  # fmt: skip
        ones = np.zeros((1, 1), np.int64)
        return [ones] * (3 - len(tables)) + tables  # 1-D and 2-D as 3-D with unit depth/height


def _strides5(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """The buffer and (N, C, D, H, W) element strides of an (N, C, *size) array (unit axes: 0)."""
    buf, strides = strided_buffer(x)
    return buf, strides[:2] + (0,) * (5 - x.ndim) + strides[2:]


def _im2col_into(x: np.ndarray, g: NdGeometry, out: np.ndarray, pad_value) -> None:
    # x is (N, C, *size) with kernel-readable strides; out is (N, C·taps, L) C-contiguous
    N, C = x.shape[:2]
    if N == 0:
        return
    if x.dtype.itemsize not in _MOVER:  # complex128: real and imaginary parts separately
        pv = complex(pad_value)
        for part, value in (("real", pv.real), ("imag", pv.imag)):
            tmp = np.empty(out.shape, dtype=getattr(out, part).dtype)
            _im2col_into(getattr(x, part), g, tmp, value)
            setattr(out, part, tmp)
        return
    mover = _MOVER[x.dtype.itemsize]
    pv = np.array(pad_value).astype(x.dtype).reshape(1).view(mover)[0]
    im, strides = _strides5(x)
    if len(g.size) == 3 and g.mode in ("zeros", "constant") and pv == 0:
        # zero padding: each (image, channel, depth tap, output depth) is a 2-D im2col of one
        # input plane, with the 2-D kernel's contiguous row copies and no index tables
        _kernels.vol2col(im.view(mover), out.reshape(-1).view(mover), _kernels.Geometry3d(g, N, C), strides,
                         threads_for(out.size))  # fmt: skip
        return
    _nd_kernels.im2col_nd(im.view(mover), out.reshape(-1).view(mover), g.tables, g.w_span, N, C,
                         strides, pv, threads_for(out.size))  # fmt: skip


def _col2im_into(cols: np.ndarray, g: NdGeometry, out: np.ndarray, reduce: str) -> None:
    # cols is (N, C·taps, L); out is (N, C, *size), any strides (channels-last), overwritten
    N, C = out.shape[:2]
    if N == 0:
        return
    im, strides = _strides5(out)
    _nd_kernels.col2im_nd(cols.reshape(-1), im, g.tables, g.w_span, N, C, g.dhw, strides, threads_for(cols.size))
    if reduce == "mean":
        # how many column entries land on each pixel: the fold of all-ones columns of one plane
        count = np.empty((1, 1, *g.size), out.dtype)
        im, strides = _strides5(count)
        _nd_kernels.col2im_nd(np.ones(g.taps * g.L, out.dtype), im, g.tables, g.w_span, 1, 1, g.dhw, strides, 1)
        np.divide(out, np.maximum(count, 1), out=out)  # pixels no window covers stay 0
