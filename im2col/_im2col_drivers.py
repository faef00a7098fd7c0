"""The 2-D im2col and col2im drivers: they pick a kernel for checked arguments and call it.

:func:`_im2col_into` and :func:`_col2im_into` fill a caller's buffer with the columns of an
(N, C, H, W) image batch (any strides the kernels read), or fold columns back into one, choosing
between the plane kernels (``im2col`` / ``col2im``), the channels-last tiles (``im2col_cl`` /
``col2im_cl``) and, for a 1×1 kernel, one plain copy. They serve the public im2col and col2im
(im2col/_functional.py) and the convolutions' fallbacks without a BLAS (im2col/_conv2d_routes.py);
the kernels are in csrc/_kernels.pyx (csrc/kernels/*.pxi).
"""

from __future__ import annotations

import numpy as np

from . import _kernels
from ._gemm import workspace
from ._geometry import Geometry
from ._threads import threads_for
from ._validation import strided_buffer, to_channels_first

# im2col moves elements as unsigned integers of the same width (see csrc/_kernels.pyx).
_MOVER = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


#: Channels-last im2col and col2im (``im2col_cl``, ``col2im_cl`` in csrc/_kernels.pyx) work in tiles of
#: CL_TILE_CHANNELS channels × whole image rows of one image: im2col about CL_IM2COL_TILE_PIXELS output
#: pixels (the longer each column-matrix row's run, the faster), col2im about CL_COL2IM_TILE_PIXELS
#: input pixels (the tile it adds into stays near L1). Images with fewer than CL_MIN_CHANNEL_BYTES of
#: channels per pixel keep the plane kernels: with three channels col2im's tiles took about 4× the
#: NCHW time, the planes 1.0–1.2×. (One-off sweeps on 2 threads; benchmarks/nhwc_im2col.py has the
#: ratios these settings give.)
CL_TILE_CHANNELS = 32
CL_IM2COL_TILE_PIXELS = 4096
CL_COL2IM_TILE_PIXELS = 512
CL_MIN_CHANNEL_BYTES = 32


def _cl_tiles(g: Geometry, strides: tuple[int, ...], itemsize: int) -> bool:
    """Whether a channels-last image (channel stride 1) takes the channels × pixels tiles."""
    return strides[1] == 1 and itemsize in (4, 8) and g.C * itemsize >= CL_MIN_CHANNEL_BYTES


def _cl_tile_rows(pixels: int, width: int) -> int:
    """Image rows per channels-last tile: about ``pixels`` pixels, at least one row."""
    return max(1, pixels // max(width, 1))


def _im2col_into(x: np.ndarray, g: Geometry, out: np.ndarray, *, folded: bool) -> None:
    """Fill ``out`` (C-contiguous, same dtype) with the columns of ``x`` (N, C, H, W), any strides
    the kernels read (:func:`im2col._validation.kernel_readable`).

    ``folded=False``: ``out`` is (N, C·kh·kw, L), torch's layout. ``folded=True``: ``out`` is
    (C·kh·kw, N·L), the batch laid side by side so one GEMM covers every image.
    """
    N = x.shape[0]
    if N == 0:
        return
    if g.is_pointwise and (N == 1 or not folded) and x.flags.c_contiguous:
        _copy_pointwise(x, out)
        return
    if x.dtype.itemsize not in _MOVER:  # complex128: move the real and imaginary parts separately
        for part in ("real", "imag"):
            tmp = np.empty(out.shape, dtype=getattr(out, part).dtype)
            _im2col_into(getattr(x, part), g, tmp, folded=folded)
            setattr(out, part, tmp)
        return
    mover = _MOVER[x.dtype.itemsize]
    n_stride, row_stride = (g.L, N * g.L) if folded else (g.rows * g.L, g.L)
    im, im_strides = strided_buffer(x)
    if _cl_tiles(g, im_strides, x.dtype.itemsize):  # channels-last: tiles of channels × output rows
        _kernels.im2col_cl(
            im.view(mover), out.reshape(-1).view(mover), _kernels.Geometry2d(g, N), im_strides, n_stride, row_stride,
            _cl_tile_rows(CL_IM2COL_TILE_PIXELS, g.OW), CL_TILE_CHANNELS, threads_for(out.size),
        )  # fmt: skip
        return
    _kernels.im2col(
        im.view(mover), out.reshape(-1).view(mover), _kernels.Geometry2d(g, N), im_strides,
        n_stride, row_stride, threads_for(out.size),
    )  # fmt: skip


def _col2im_into(cols: np.ndarray, g: Geometry, out: np.ndarray, *, folded: bool) -> None:
    """Fold ``cols`` into ``out`` (N, C, H, W), overwriting it; layouts as in :func:`_im2col_into`.

    ``out`` may be strided (a channels-last buffer seen as N, C, H, W)."""
    N = out.shape[0]
    if N == 0:
        return
    if g.is_pointwise and (N == 1 or not folded) and out.flags.c_contiguous:  # no overlaps: no adds
        _copy_pointwise(cols, out)
        return
    n_stride, row_stride = (g.L, N * g.L) if folded else (g.rows * g.L, g.L)
    n_threads = threads_for(cols.size)
    im, im_strides = strided_buffer(out)
    if _cl_tiles(g, im_strides, out.dtype.itemsize):  # channels-last: tiles of channels × input rows
        _kernels.col2im_cl(
            cols.reshape(-1), im, _kernels.Geometry2d(g, N), im_strides, n_stride, row_stride,
            _cl_tile_rows(CL_COL2IM_TILE_PIXELS, g.W), CL_TILE_CHANNELS, n_threads,
        )  # fmt: skip
        return
    # with a horizontal stride, or rows that are not contiguous (channels-last), each thread
    # accumulates a plane in scratch first (split by column phase)
    phased = g.H * g.sw * -(-g.W // g.sw) if g.sw != 1 or im_strides[3] != 1 else 0
    scratch = workspace("col2im_phases", max(1, n_threads * phased), out.dtype)
    _kernels.col2im(
        cols.reshape(-1), im, scratch, _kernels.Geometry2d(g, N), im_strides, n_stride, row_stride, n_threads
    )


#: 1×1 copies of at least this many bytes use streaming stores (``csrc/_stream_copy.h``): source and
#: destination together then overflow a 32 MiB L3, so the output would not stay cached anyway, and
#: not reading each destination line first saves a third of the traffic. On 8×256×56×56 float32
#: (24.5 MiB), two threads: 0.84 ms against 1.00 ms for memcpy; at 8 MiB memcpy was faster.
STREAM_COPY_BYTES = 16 * 2**20


def _copy_pointwise(src: np.ndarray, dst: np.ndarray) -> None:
    """im2col or col2im of a 1×1 kernel, stride 1, no padding: the same bytes, so one copy.

    C-contiguous arrays of one dtype and size, split over the threads (one block each). On
    8×256×56×56 float32 with two threads the plain copy took 1.20 ms into a fresh output against
    1.31 ms for ``np.copyto`` and 1.39 ms for the im2col kernel (``benchmarks/floor_breakdown.py``).
    """
    copy = _kernels.stream_copy_bytes if src.nbytes >= STREAM_COPY_BYTES else _kernels.copy_bytes
    copy(src.reshape(-1).view(np.uint8), dst.reshape(-1).view(np.uint8), threads_for(src.size))


def _pointwise(g: Geometry, strides: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """How the tiled forward reads a 1×1 convolution's input in place, and the strides to pass.

    0: not in place (not pointwise, or a layout the GEMM cannot read). 1: each (C, H·W) plane a
    matrix with unit column stride and row stride ``ld`` (NCHW). 2: each image an (H·W, C) matrix
    with unit column stride (channels-last). Only the strides the kernel reads in that mode matter.
    """
    if not g.is_pointwise:
        return 0, strides
    sn, sc, sh, sw = strides
    L = g.L
    if g.W == 1 or g.H == 1 or sh == g.W * sw:  # the grid is one axis of stride sl
        sl = sh if g.W == 1 else sw
    else:
        return 0, strides
    if (sl == 1 or L == 1) and (g.C == 1 or sc >= L):
        ld = sc if g.C > 1 else L
        return 1, (sn, ld, g.W, 1)
    if (sc == 1 or g.C == 1) and (L == 1 or sl >= g.C):
        ld = sl if L > 1 else g.C
        return 2, (sn, 1, g.W * ld, ld)
    return 0, strides


def _empty_image(shape: tuple[int, ...], dtype, channels_last: bool, zero: bool = False) -> np.ndarray:
    """A new (N, C, *spatial) array, laid out channels-last (a moved-axis view) if asked."""
    alloc = np.zeros if zero else np.empty
    if not channels_last:
        return alloc(shape, dtype=dtype)
    return to_channels_first(alloc((shape[0], *shape[2:], shape[1]), dtype=dtype), True)
