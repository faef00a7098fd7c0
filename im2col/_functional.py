"""The public operations: im2col, col2im, conv2d, its backward, and conv_transpose2d.

Each function converts its inputs (tensor → array, contiguous only when needed), validates them
(:mod:`im2col._validation`), allocates the output and calls the Cython kernels in ``csrc/``, which
trust what they are given. The GEMMs run on the kernels' own OpenMP threads through a BLAS found
by :mod:`im2col._gemm`. Names, argument order and defaults follow ``torch.nn.functional`` so code
ports by changing the import.

im2col, col2im and conv2d first look for a plan of the same small call (:mod:`im2col._plans`);
their full path is the private function of the same name right below each (``_im2col``, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _engine, _kernels, _nd, _plans, _tiles
from ._autograd import autograd_call
from ._gemm import matmul, native_blas, workspace
from ._geometry import (
    Geometry,
    IntOrPair,
    PaddingArg,
    as_int,
    as_pair,
    col2im_dims,
    geometry,
    im2col_dims,
    parse_padding,
    transposed_size,
)
from ._plans import plain as _plain
from ._threads import threads_for, threads_for_flops
from ._validation import (
    batched,
    channels_last_like,
    check_alloc,
    check_float,
    check_same_dtype,
    from_channels_first,
    is_tensor,
    layout_dims,
    needs_grad,
    out_array,
    parse_layout,
    shape_in_layout,
    strided_buffer,
    to_array,
    to_channels_first,
    wrap_like,
)
from ._validation import conv2d_geometry as _conv2d_geometry

__all__ = ["im2col", "col2im", "conv2d", "conv2d_backward", "conv_transpose2d", "output_size"]

# The plans of repeated small calls (im2col/_plans.py): key → plan, or None for "no plan, full path".
_IM2COL_PLANS, _COL2IM_PLANS, _CONV2D_PLANS = _plans.IM2COL.plans, _plans.COL2IM.plans, _plans.CONV2D.plans
_im2col_plan_for, _col2im_plan_for, _conv2d_plan_for = _IM2COL_PLANS.get, _COL2IM_PLANS.get, _CONV2D_PLANS.get
_ndarray = np.ndarray
# im2col's defaults, compared by identity (the cheapest test): any other value, even "zeros" built at
# run time or 0.0, takes the full path, which gives the same result
_ZEROS, _ZERO = "zeros", 0

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


# --- kernel calls (inputs already checked) ----------------------------------------------------


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


def _conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: Geometry, groups: int, out_cl: bool = False
) -> np.ndarray:
    # x is (N, C, H, W) with any kernel-readable strides, w is (K, C/groups, kh, kw);
    # returns (N, K, OH, OW), laid out channels-last (a view of an (N, OH, OW, K) array) if out_cl.
    N, K, L = g.N, w.shape[0], g.L
    Rg = g.rows // groups
    wmat = w.reshape(K, Rg)
    out4 = _empty_image((N, K, g.OH, g.OW), x.dtype, out_cl)
    if N == 0:
        return out4
    engine_route = _engine.route(x, w, g, groups, out_cl)
    if engine_route is not None:
        return _engine.forward(engine_route, x, w, b, g, groups, threads_for_flops(2 * N * K * Rg * L))
    blas = native_blas(x, w, out4)
    if blas is not None:
        rows = _tiles.tile_rows(g, x.dtype.itemsize)
        n_threads = threads_for_flops(2 * N * K * Rg * L)
        im, im_strides = strided_buffer(x)
        mode, im_strides = _pointwise(g, im_strides)
        if _tiles.takes_cols_t(g, x, mode, rows, n_threads, groups):
            # tiles of colsᵀ: for channels-last x, and for rows too wide to be a tile, read in
            # place through x's strides (conv1d of 1×64×200000, k=5: 66–80 ms, against 15 for a
            # channels-last copy and 58–65 for the tiles on it)
            _conv_forward_nhwc(x, w, g, groups, from_channels_first(out4, out_cl), out_cl, blas)
        else:
            # Each thread unrolls a few output rows into its own cache-sized tile and multiplies it
            # at once, writing into `out` in place: the column matrix never exists in full.
            work = workspace("tiles", 1 if mode else n_threads * g.rows * rows * g.OW, x.dtype)
            out_buf = from_channels_first(out4, out_cl)  # C-contiguous, (N, K, OH, OW) or (N, OH, OW, K)
            _kernels.conv_forward_tiled(
                im, wmat.reshape(-1), out_buf.reshape(-1), work, _kernels.Geometry2d(g, N, K, groups), im_strides,
                rows, mode, out_cl, n_threads, blas,
            )  # fmt: skip
        if b is not None:
            out4 += b[:, None, None]
        return out4
    out = _conv_forward_matmul(x, wmat, b, g, groups)
    if not out_cl:
        return out.reshape(N, K, g.OH, g.OW)
    np.copyto(out4, out.reshape(N, K, g.OH, g.OW))
    return out4


def _conv_forward_matmul(x: np.ndarray, wmat: np.ndarray, b: np.ndarray | None, g: Geometry, groups: int):
    # The fallback without a BLAS the kernels can call: returns (N, K, L), C-contiguous.
    N, K, L = g.N, wmat.shape[0], g.L
    Kg, Rg = K // groups, g.rows // groups
    out = np.empty((N, K, L), dtype=x.dtype)
    if g.is_pointwise:
        # x[n] viewed as (C, H·W) already is image n's column matrix: no copy at all.
        xs = x.reshape(N, g.C, L)
        for gi in range(groups):
            matmul(wmat[gi * Kg : (gi + 1) * Kg], xs[:, gi * Rg : (gi + 1) * Rg], out[:, gi * Kg : (gi + 1) * Kg])
        if b is not None:
            out += b[:, None]
        return out
    nb = _tiles.chunk(g, x.dtype.itemsize)
    cols_buf = workspace("cols", g.rows * nb * L, x.dtype)
    y_buf = workspace("gemm_out", K * nb * L, x.dtype) if nb > 1 else None
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = cols_buf[: g.rows * m * L].reshape(g.rows, m * L)
        # One image: its (K, L) result is already in place in `out`, no rearranging needed.
        y = out[n0] if m == 1 else y_buf[: K * m * L].reshape(K, m * L)
        _im2col_into(x[n0 : n0 + m], g, cols, folded=True)
        for gi in range(groups):  # one GEMM per group over the whole chunk of images
            matmul(wmat[gi * Kg : (gi + 1) * Kg], cols[gi * Rg : (gi + 1) * Rg], y[gi * Kg : (gi + 1) * Kg])
        if m == 1:
            if b is not None:
                y += b[:, None]
            continue
        # (K, m, L) -> (m, K, L), adding the bias on the way
        y3 = y.reshape(K, m, L).transpose(1, 0, 2)
        if b is None:
            np.copyto(out[n0 : n0 + m], y3)
        else:
            np.add(y3, b[:, None], out=out[n0 : n0 + m])
    return out


def _conv_backward_tiled(
    gy: np.ndarray,
    x: np.ndarray | None,
    w: np.ndarray,
    g: Geometry,
    groups: int,
    blas,
    *,
    want_gx: bool,
    want_gw: bool,
    gx_cl: bool = False,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    # gy is (N, K, L) with any strides, x is (N, C, H, W) with kernel-readable strides (only read
    # for grad_weight); returns (grad_input (N, C, H, W), channels-last if gx_cl; grad_weight).
    # channels-last input and grad_input: tiles of colsᵀ, whose taps copy runs of channels
    if (
        _tiles.groups_of_channels(g, groups)
        and (gx_cl or not want_gx)
        and (not want_gw or _tiles.channels_contiguous(x))
    ):
        return _conv_backward_nhwc(gy, x, w, g, groups, blas, want_gx=want_gx, want_gw=want_gw, gx_cl=gx_cl)
    N, K = g.N, w.shape[0]
    Rg = g.rows // groups
    dtype = gy.dtype
    # Tiles two apart must not share input rows (they add into grad_input at the same time).
    overlap = g.dh * (g.kh - 1) - g.sh + 1
    rows = max(_tiles.tile_rows(g, dtype.itemsize), -(-overlap // g.sh) if overlap > 0 else 1)
    rows = min(rows, g.OH)
    n_threads = threads_for_flops(4 * N * K * Rg * g.L)
    if _tiles.rows_too_coarse(g, rows, dtype.itemsize, n_threads, groups):
        # The colsᵀ tiles, grad_input added in place through its strides (in conv1d_backward of
        # 1×64×200000, k=5: 67–75 ms against 49–55 channels-last, whose copy back to NCHW takes
        # 85–140), x read from a channels-last copy (gathering it: 42–44 ms against 88–92, the copy 15).
        xc = to_channels_first(np.ascontiguousarray(from_channels_first(x, True)), True) if want_gw else None
        return _conv_backward_nhwc(gy, xc, w, g, groups, blas, want_gx=want_gx, want_gw=want_gw, gx_cl=gx_cl)
    gx = _empty_image((N, g.C, g.H, g.W), dtype, gx_cl, zero=True) if want_gx else np.empty((1,) * 4, dtype=dtype)
    gw_parts = np.zeros(n_threads * K * Rg if want_gw else 1, dtype=dtype)
    work = workspace("tiles", 2 * n_threads * g.rows * rows * g.OW, dtype)
    if N:
        gy_buf, gy_cl = _tiles.grad_output_buffer(gy)
        im, im_strides = strided_buffer(x) if want_gw else (gy_buf.reshape(-1), (0,) * 4)  # not read without want_gw
        gx_buf, gx_strides = strided_buffer(gx) if want_gx else (gx.reshape(-1), (0,) * 4)
        _kernels.conv_backward_tiled(
            im, w.reshape(-1), gy_buf.reshape(-1), gx_buf if want_gx else None, gw_parts if want_gw else None, work,
            _kernels.Geometry2d(g, N, K, groups), im_strides, gx_strides, gy_cl, rows, n_threads, blas,
        )  # fmt: skip
    gw = gw_parts.reshape(n_threads, K, Rg).sum(axis=0) if want_gw else None
    return (gx if want_gx else None), gw


# --- channels-last convolutions: tiles of colsᵀ, a row per output pixel (csrc/_kernels.pyx) ------


def _pointwise_cl(g: Geometry, strides: tuple[int, ...]) -> tuple[bool, tuple[int, ...]]:
    """(Is the input of this 1×1 convolution its colsᵀ, read in place? The strides to pass)."""
    mode, pw_strides = _pointwise(g, strides)
    return (True, pw_strides) if mode == 2 else (False, strides)


def _evenly_spaced(strides: tuple[int, ...], g: Geometry) -> bool:
    """Whether pixel l of image n (of a 1×1 convolution's (n, 1, W·ld, ld) strides) is at
    (n·L + l)·ld: then a tile of pixels may run across images."""
    return g.N == 1 or strides[0] == g.L * strides[3]


def _conv_forward_nhwc(
    x: np.ndarray, w: np.ndarray, g: Geometry, groups: int, out_buf: np.ndarray, out_cl: bool, blas
) -> None:
    # x is (N, C, H, W), channels contiguous; fills out_buf, C-contiguous (N, OH, OW, K) if out_cl
    # else (N, K, OH, OW). colsᵀ's columns run (group, ki, kj, c), so the weight is permuted to match.
    N, K, L = g.N, w.shape[0], g.L
    wperm = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # (K, kh, kw, C/groups)
    im, im_strides = strided_buffer(x)
    pointwise, im_strides = _pointwise_cl(g, im_strides)
    span = out_cl and (not pointwise or _evenly_spaced(im_strides, g))
    n_threads = threads_for_flops(2 * N * K * (g.rows // groups) * L)
    pixels = _tiles.tile_pixels(g, x.dtype.itemsize, N * L if span else L, n_threads if span else 1)
    work = workspace("tiles", 1 if pointwise else n_threads * g.rows * pixels, x.dtype)
    _kernels.conv_forward_nhwc(
        im, wperm.reshape(-1), out_buf.reshape(-1), work, _kernels.Geometry2d(g, N, K, groups), im_strides,
        pixels, span, pointwise, out_cl, n_threads, blas,
    )  # fmt: skip


def _conv_backward_nhwc(
    gy: np.ndarray,
    x: np.ndarray | None,
    w: np.ndarray,
    g: Geometry,
    groups: int,
    blas,
    *,
    want_gx: bool,
    want_gw: bool,
    gx_cl: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    # As _conv_backward_tiled, with x's channels contiguous (if want_gw) and gx channels-last (if
    # want_gx): colsᵀ tiles, the weight and grad_weight in the permuted (K, kh, kw, C/groups) order.
    N, C, K, L = g.N, g.C, w.shape[0], g.L
    Cg, Rg = C // groups, g.rows // groups
    dtype = gy.dtype
    wperm = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    n_threads = threads_for_flops(4 * N * K * Rg * L)
    gx = _empty_image((N, C, g.H, g.W), dtype, gx_cl, zero=True) if want_gx else np.empty((1,) * 4, dtype=dtype)
    gw_parts = np.zeros(n_threads * K * Rg if want_gw else 1, dtype=dtype)
    if N:
        gy_buf, gy_cl = _tiles.grad_output_buffer(gy)
        im, im_strides = strided_buffer(x) if want_gw else (gy_buf.reshape(-1), (0,) * 4)  # not read without want_gw
        gx_buf, gx_strides = strided_buffer(gx) if want_gx else (gx.reshape(-1), (0,) * 4)
        pointwise = g.is_pointwise
        if pointwise and want_gw:
            pointwise, im_strides = _pointwise_cl(g, im_strides)
        if pointwise and want_gx:
            pointwise, gx_strides = _pointwise_cl(g, gx_strides)
        even = (not want_gw or _evenly_spaced(im_strides, g)) and (not want_gx or _evenly_spaced(gx_strides, g))
        span = gy_cl and (not pointwise or even)
        # Tiles two apart add into grad_input at the same time: they must not share input pixels.
        # Output rows further apart than dh·(kh − 1) // sh never do, nor a 1×1 convolution's pixels.
        # With kh = 1 (conv1d) each output row reads its own input row, and within a row, columns
        # further apart than dw·(kw − 1) // sw read disjoint pixels: tiles then split rows.
        if pointwise:
            apart = 1
        elif g.kh == 1:
            apart = g.dw * (g.kw - 1) // g.sw + 1
        else:
            apart = (g.dh * (g.kh - 1) // g.sh + 1) * g.OW
        pixels = _tiles.tile_pixels(g, dtype.itemsize, N * L if span else L, 2 * n_threads if span else 1, apart)
        work = workspace("tiles", 1 if pointwise else 2 * n_threads * g.rows * pixels, dtype)
        _kernels.conv_backward_nhwc(
            im, wperm.reshape(-1), gy_buf.reshape(-1), gx_buf if want_gx else None, gw_parts if want_gw else None,
            work, _kernels.Geometry2d(g, N, K, groups), im_strides, gx_strides, gy_cl, pixels, span, pointwise,
            n_threads, blas,
        )  # fmt: skip
    gw = None
    if want_gw:  # the threads' slabs summed, back from (K, kh, kw, C/groups) to (K, C/groups·kh·kw)
        gw_perm = gw_parts.reshape(n_threads, K, g.kh, g.kw, Cg).sum(axis=0)
        gw = np.ascontiguousarray(gw_perm.transpose(0, 3, 1, 2)).reshape(K, Rg)
    return (gx if want_gx else None), gw


def _conv_grad_input(
    gy: np.ndarray, w: np.ndarray, g: Geometry, groups: int, dtype: np.dtype, gx_cl: bool = False
) -> np.ndarray:
    # gy is (N, K, L); returns d(input) (N, C, H, W) = col2im(Wᵀ · gy), chunked like the forward.
    N, K, L = g.N, w.shape[0], g.L
    Kg, Rg = K // groups, g.rows // groups
    wmat = w.reshape(K, Rg)
    gx = _empty_image((N, g.C, g.H, g.W), dtype, gx_cl)
    if N == 0:
        return gx
    nb = _tiles.chunk(g, dtype.itemsize)
    cols_buf = workspace("cols", g.rows * nb * L, dtype)
    gy_buf = workspace("grad_out", K * nb * L, dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        gyf = gy_buf[: K * m * L].reshape(K, m * L)
        np.copyto(gyf.reshape(K, m, L), gy[n0 : n0 + m].transpose(1, 0, 2))
        dcols = cols_buf[: g.rows * m * L].reshape(g.rows, m * L)
        for gi in range(groups):
            matmul(wmat[gi * Kg : (gi + 1) * Kg].T, gyf[gi * Kg : (gi + 1) * Kg], dcols[gi * Rg : (gi + 1) * Rg])
        _col2im_into(dcols, g, gx[n0 : n0 + m], folded=True)
    return gx


def _conv_grad_weight(gy: np.ndarray, x: np.ndarray, w_shape: tuple[int, ...], g: Geometry, groups: int) -> np.ndarray:
    # gy is (N, K, L), x is (N, C, H, W); returns d(weight) = Σ_n gy[n] · cols[n]ᵀ per group.
    N, K, L = g.N, w_shape[0], g.L
    Kg, Rg = K // groups, g.rows // groups
    gw = np.zeros((K, Rg), dtype=x.dtype)
    if N == 0:
        return gw.reshape(w_shape)
    nb = _tiles.chunk(g, x.dtype.itemsize)
    cols_buf = workspace("cols", g.rows * nb * L, x.dtype)
    gy_buf = workspace("gemm_out", K * nb * L, x.dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = cols_buf[: g.rows * m * L].reshape(g.rows, m * L)
        _im2col_into(x[n0 : n0 + m], g, cols, folded=True)
        gyf = gy_buf[: K * m * L].reshape(K, m * L)
        np.copyto(gyf.reshape(K, m, L), gy[n0 : n0 + m].transpose(1, 0, 2))
        for gi in range(groups):  # gw += gy · colsᵀ
            matmul(gyf[gi * Kg : (gi + 1) * Kg], cols[gi * Rg : (gi + 1) * Rg].T, gw[gi * Kg : (gi + 1) * Kg], beta=1.0)
    return gw.reshape(w_shape)


# --- shared argument handling -----------------------------------------------------------------


def _conv_args(
    fn: str, input: Any, weight: Any, bias: Any, groups: Any, channels_last: bool = False, transposed: bool = False
):
    """Convert and check input/weight/bias of a convolution; the shapes' agreement is checked later.

    The input comes back as an (N, C, H, W) view of the user's data, whatever its layout."""
    x = to_array(input, "input", fn, strided=True)
    w = to_array(weight, "weight", fn)
    check_float(x, "input", fn, input)
    check_same_dtype(x, "input", w, "weight", fn)
    x4, unbatched = batched(x, "input", fn, layout_dims(2, channels_last))
    x4 = to_channels_first(x4, channels_last)
    if w.ndim != 4:
        raise ValueError(f"{fn}(): argument 'weight' must be a 4-D array, got {w.ndim}-D of shape {w.shape}")
    if 0 in w.shape:
        raise ValueError(f"{fn}(): argument 'weight' must have non-zero sizes, got shape {w.shape}")
    groups = as_int(groups, "groups", fn)
    if groups < 1:
        raise ValueError(f"{fn}(): argument 'groups' must be positive, got groups={groups}")
    need = w.shape[0] if transposed else w.shape[1] * groups
    if channels_last and x4.shape[1] != need:  # say where the channels were read from
        raise ValueError(
            f"{fn}(): input has {x4.shape[1]} channels in its last axis (layout='NHWC') but weight of shape "
            f"{w.shape} expects {need}" + ("" if transposed else f" (weight.shape[1]·groups = {w.shape[1]}·{groups})")
        )
    b = None
    if bias is not None:
        b = to_array(bias, "bias", fn)
        check_same_dtype(x, "input", b, "bias", fn)
    return x4, unbatched, w, b, groups


def _check_bias(fn: str, b: np.ndarray | None, n_out: int, what: str) -> None:
    if b is not None and b.shape != (n_out,):
        raise ValueError(f"{fn}(): argument 'bias' must have shape ({n_out},), one per {what}, got shape {b.shape}")


# --- public API -------------------------------------------------------------------------------


def output_size(
    input_size: int | tuple[int, ...],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
) -> tuple[int, int]:
    """Spatial size of a convolution's output: ``(n + 2·pad − dilation·(k − 1) − 1) // stride + 1``.

    Parameters
    ----------
    input_size : int or (int, int)
        Input height and width (an int means a square input).
    kernel_size, stride, dilation : int or (int, int)
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        As in :func:`conv2d`; per-side padding adds ``top + bottom`` in place of ``2·pad``.

    Returns
    -------
    (int, int)
        Output height and width.

    Raises
    ------
    ValueError
        If the kernel does not fit in the padded input, with the formula and its numbers.

    Examples
    --------
    The blog post's 28×28 digit and a 3×3 kernel give 26×26; full padding on a 5×5 input gives 7×7:

    >>> import im2col
    >>> im2col.output_size(28, 3)
    (26, 26)
    >>> im2col.output_size((5, 5), 3, padding=2)
    (7, 7)
    >>> im2col.output_size((224, 224), 7, stride=2, padding=3)
    (112, 112)
    """
    fn = "output_size"
    size = as_pair(input_size, "input_size", fn, minimum=1)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    p = parse_padding(padding, fn, 2, k, d, s)
    g = geometry(fn, (1, 1, *size), k, s, p, d)
    return (g.OH, g.OW)


def im2col(
    input: Any,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: PaddingArg = 0,
    stride: IntOrPair = 1,
    *,
    padding_mode: str = "zeros",
    pad_value: Any = 0,
    out: Any = None,
    layout: str | None = None,
) -> Any:
    """Unroll every receptive field of an image batch into a column: ``torch.nn.functional.unfold``.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C, H, W) or (C, H, W); (N, C, L) or (C, L); (N, C, D, H, W)
        Any dtype NumPy and the kernels can move (float, int, bool, complex); any memory layout.
        It is never written to. A 5-D input is a batch of volumes (3-D im2col, "vol2col"); a
        one-element ``kernel_size`` such as ``(3,)`` makes it 1-D.
    kernel_size : int or tuple of ints
        Kernel height and width ``(kh, kw)`` (one size per spatial axis in 1-D and 3-D).
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same', default 0
        The same on all sides, per axis ``(ph, pw)``, or per side ``((top, bottom), (left, right))``.
        'same' needs stride 1.
    stride : int or (int, int), default 1
    padding_mode : {'zeros', 'constant', 'reflect', 'replicate', 'circular'}, default 'zeros'
        What the padding reads, as ``torch.nn.functional.pad``'s modes: zeros, ``pad_value``, the
        input mirrored about its edge pixels, the edge pixels repeated, or the input wrapped around.
        Done inside the kernel: no padded copy of the input is made.
    pad_value : number, default 0
        The value of the padding with ``padding_mode='constant'``.
    out : ndarray or Tensor, optional
        Where to write the result: C-contiguous, writable, of the result's shape and dtype, not
        overlapping the input. Reusing one buffer across calls saves the page faults of a fresh
        allocation, which measured 1.6–1.7× the time of the copy itself on 55 MiB column matrices
        (``benchmarks/floor_breakdown.py``).
    layout : {None, 'NCHW', 'NHWC', 'NCL', 'NLC', 'NCDHW', 'NDHWC', 'channels_first', 'channels_last'}
        The input's layout. None (the default) and the channels-first names mean (N, C, H, W);
        'NHWC' (1-D 'NLC', 3-D 'NDHWC') or 'channels_last' mean (N, H, W, C). Channels-last data is
        read in place, without a copy. The columns are in the same layout either way.

    Returns
    -------
    ndarray or Tensor, shape (N, C·kh·kw, L) or (C·kh·kw, L)
        The column matrix (``out`` when given, else a new array) of the input's type and dtype.
        Row ``(c·kh + i)·kw + j`` is kernel tap ``(i, j)`` of channel ``c``; column ``oh·OW + ow`` is output position
        ``(oh, ow)``; ``L = OH·OW`` with ``OH = (H + top + bottom − dh·(kh − 1) − 1) // sh + 1``.

    See Also
    --------
    col2im : the adjoint, which sums columns back into an image.
    im2col.reference.im2col : the same in plain loops.

    Notes
    -----
    The column matrix holds every input pixel about ``kh·kw / (sh·sw)`` times. For the blog post's batch
    of 64 digits of 28×28 and a 3×3 kernel that is (64, 9, 676): 389,376 float32 values, 1.5 MiB,
    from 196 KiB of input. For an 8×64×56×56 float32 batch and a 3×3 kernel with padding 1 it is
    8·576·3136 values, 55 MiB.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> cols = im2col.im2col(x, kernel_size=3)
    >>> cols.shape
    (1, 9, 4)
    >>> cols[0, :, 0]          # the first 3×3 window, read row by row
    array([ 0.,  1.,  2.,  4.,  5.,  6.,  8.,  9., 10.], dtype=float32)

    The blog post's batch: 64 one-channel 28×28 images give 676 columns of 9 values each.

    >>> im2col.im2col(np.zeros((64, 1, 28, 28), np.float32), 3).shape
    (64, 9, 676)

    Writing into a buffer that is reused across calls:

    >>> buf = np.empty((1, 9, 4), np.float32)
    >>> im2col.im2col(x, 3, out=buf) is buf
    True

    A channels-last (N, H, W, C) batch gives the same columns:

    >>> x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))     # (1, 4, 4, 1)
    >>> np.array_equal(im2col.im2col(x_nhwc, 3, layout="NHWC"), cols)
    True
    """
    # A repeated small call runs the plan its first call kept (im2col/_plans.py): the same kernel on
    # the same arguments, without redoing the checks that signature passed.
    if type(input) is _ndarray and out is None and layout is None and padding_mode is _ZEROS and pad_value is _ZERO:
        if _plain(kernel_size, dilation, padding, stride):
            key = (input.shape, input.dtype, input.strides, kernel_size, dilation, padding, stride)
            plan = _im2col_plan_for(key)
            if plan is not None:
                return plan(input)
            if key not in _IM2COL_PLANS:
                args = (input, kernel_size, dilation, padding, stride)
                return _plans.first_call(_plans.IM2COL, key, _im2col, _plans.im2col_plan, *args)
    return _im2col(input, kernel_size, dilation, padding, stride, padding_mode, pad_value, out, layout)


def _im2col(input, kernel_size, dilation, padding, stride, padding_mode="zeros", pad_value=0, out=None,
            layout=None):  # fmt: skip
    """:func:`im2col` in full: every check, then the kernels."""
    if needs_grad(input):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "im2col",
            input=input,
            kernel_size=kernel_size,
            dilation=dilation,
            padding=padding,
            stride=stride,
            padding_mode=padding_mode,
            pad_value=pad_value,
            out=out,
            layout=layout,
        )
    fn = "im2col"
    x = to_array(input, "input", fn, strided=True)
    if x.dtype.kind not in "biufc" or (x.dtype.itemsize not in _MOVER and x.dtype.kind != "c"):
        raise TypeError(
            f"{fn}(): argument 'input' has dtype {x.dtype}; supported are bool, integers, float16/32/64 "
            f"and complex64/128"
        )
    _nd.check_mode(fn, padding_mode, pad_value)
    n = im2col_dims(x.ndim, kernel_size)
    cl = parse_layout(fn, layout, n)
    if n != 2 or padding_mode not in ("zeros", "constant") or pad_value != 0:
        return _nd.im2col(
            x, is_tensor(input), kernel_size, dilation, padding, stride, padding_mode, pad_value, n, out=out,
            channels_last=cl,
        )  # fmt: skip
    x4, unbatched = batched(x, "input", fn, layout_dims(2, cl))
    x4 = to_channels_first(x4, cl)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    p = parse_padding(padding, fn, 2, k, d, s)
    g = geometry(fn, x4.shape, k, s, p, d)
    shape = (g.rows, g.L) if unbatched else (g.N, g.rows, g.L)
    if out is not None:
        _im2col_into(x4, g, out_array(fn, out, shape, x4.dtype, x).reshape(g.N, g.rows, g.L), folded=False)
        return out
    check_alloc(fn, "column matrix", (g.N, g.rows, g.L), x4.dtype)
    result = np.empty((g.N, g.rows, g.L), dtype=x4.dtype)
    _im2col_into(x4, g, result, folded=False)
    return wrap_like(result[0] if unbatched else result, is_tensor(input))


def col2im(
    input: Any,
    output_size: IntOrPair,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: PaddingArg = 0,
    stride: IntOrPair = 1,
    *,
    padding_mode: str = "zeros",
    reduce: str = "sum",
    layout: str | None = None,
) -> Any:
    """Sum columns back into an image batch: ``torch.nn.functional.fold``, the adjoint of :func:`im2col`.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C·kh·kw, L) or (C·kh·kw, L), float32 or float64
        A column matrix in :func:`im2col`'s layout.
    output_size : int or tuple of ints
        The image's ``(H, W)``; ``(L,)`` or ``(D, H, W)`` for 1-D or 3-D columns (a one- or
        three-element ``output_size`` or ``kernel_size`` chooses the number of spatial axes).
    kernel_size, dilation, padding, stride
        As in :func:`im2col`; ``L`` must equal the number of windows they give on ``output_size``.
    padding_mode : {'zeros', 'constant', 'reflect', 'replicate', 'circular'}, default 'zeros'
        The padding of the :func:`im2col` this is the adjoint of: entries read from reflected,
        replicated or wrapped padding are added into the pixel they were read from; entries read
        from zero or constant padding are dropped.
    reduce : {'sum', 'mean'}, default 'sum'
        'sum' as torch's fold; 'mean' divides each pixel by the number of column entries added
        into it, so ``col2im(im2col(x), reduce='mean') = x`` wherever a window covers x.
    layout : {None, 'NCHW', 'NHWC', ...}, default None
        The layout of the *output* image, as in :func:`im2col`: 'NHWC' (or 'NLC', 'NDHWC',
        'channels_last') returns (N, H, W, C), folded straight into that layout.

    Returns
    -------
    ndarray or Tensor, shape (N, C, H, W) or (C, H, W) (or channels-last, see ``layout``)
        Every column entry added into the pixel it was read from; entries that came from padding
        are dropped. Pixels covered by several windows receive the sum, so
        ``col2im(im2col(x)) = count · x`` where ``count`` is the number of windows covering each pixel.

    Notes
    -----
    col2im is the transpose of im2col: ``⟨col2im(Y), X⟩ = ⟨Y, im2col(X)⟩`` for all X, Y. That is why
    it gives the gradient with respect to a convolution's input. It runs in parallel over images
    and channels (never over column rows, which add into the same pixels).

    Examples
    --------
    Folding the columns of an all-ones 4×4 image counts how many 3×3 windows cover each pixel:

    >>> import numpy as np, im2col
    >>> ones = np.ones((1, 1, 4, 4))
    >>> im2col.col2im(im2col.im2col(ones, 3), (4, 4), 3)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    # A repeated small call runs the plan its first call kept (im2col/_plans.py).
    if type(input) is _ndarray and padding_mode == "zeros" and reduce == "sum" and layout is None:
        if _plain(output_size, kernel_size, dilation, padding, stride):
            key = (input.shape, input.dtype, input.strides, output_size, kernel_size, dilation, padding, stride)
            plan = _col2im_plan_for(key)
            if plan is not None:
                return plan(input)
            if key not in _COL2IM_PLANS:
                args = (input, output_size, kernel_size, dilation, padding, stride)
                return _plans.first_call(_plans.COL2IM, key, _col2im, _plans.col2im_plan, *args)
    return _col2im(input, output_size, kernel_size, dilation, padding, stride, padding_mode, reduce, layout)


def _col2im(input, output_size, kernel_size, dilation, padding, stride, padding_mode="zeros", reduce="sum",
            layout=None):  # fmt: skip
    """:func:`col2im` in full: every check, then the kernels."""
    if needs_grad(input):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "col2im",
            input=input,
            output_size=output_size,
            kernel_size=kernel_size,
            dilation=dilation,
            padding=padding,
            stride=stride,
            padding_mode=padding_mode,
            reduce=reduce,
            layout=layout,
        )
    fn = "col2im"
    cols = to_array(input, "input", fn)
    check_float(cols, "input", fn, input)
    _nd.check_mode(fn, padding_mode, 0)
    _nd.check_reduce(fn, reduce)
    n = col2im_dims(output_size, kernel_size)
    cl = parse_layout(fn, layout, n)
    if n != 2 or padding_mode not in ("zeros", "constant") or reduce != "sum":
        return _nd.col2im(
            cols, is_tensor(input), output_size, kernel_size, dilation, padding, stride, padding_mode, reduce, n,
            channels_last=cl,
        )  # fmt: skip
    cols3, unbatched = batched(cols, "input", fn, "(N, C·kh·kw, L)")
    size = as_pair(output_size, "output_size", fn, minimum=1)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    p = parse_padding(padding, fn, 2, k, d, s)
    N, R, L = cols3.shape
    if R % (k[0] * k[1]):
        raise ValueError(
            f"{fn}(): expected the size of dimension -2 of 'input' (C·kh·kw) to be divisible by "
            f"kh·kw = {k[0]}·{k[1]} = {k[0] * k[1]}, got {R}"
        )
    C = R // (k[0] * k[1])
    g = geometry(fn, (N, C, *size), k, s, p, d)
    if L != g.L:
        raise ValueError(
            f"{fn}(): expected the size of dimension -1 of 'input' (L) to match the number of sliding "
            f"windows, {g.OH}·{g.OW} = {g.L}, for output_size={size}, kernel_size={k}, dilation={d}, "
            f"padding={p}, stride={s}; got L={L}"
        )
    check_alloc(fn, "output", (N, C, *size), cols3.dtype)
    out = _empty_image((N, C, *size), cols3.dtype, cl)
    _col2im_into(cols3, g, out, folded=False)
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> Any:
    """2-D convolution (cross-correlation, as in deep learning) as im2col and one GEMM per group.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C, H, W) or (C, H, W), float32 or float64
    weight : ndarray or Tensor, shape (K, C/groups, kh, kw), same dtype
    bias : ndarray or Tensor, shape (K,), optional
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same', default 0
        Zero padding as in :func:`im2col`; 'same' (stride 1 only) keeps the spatial size.
    groups : int, default 1
        Split channels into groups convolved separately; ``groups = C = K`` is a depthwise
        convolution.
    layout : {'NCHW', 'NHWC', 'channels_first', 'channels_last'}, default 'NCHW'
        Of the input and the output. With 'NHWC' the input is (N, H, W, C), read in place, and the
        output (N, OH, OW, K) is written directly in that layout (the weight stays
        (K, C/groups, kh, kw)). Independently of ``layout``, any strided view (such as
        ``x.transpose(0, 3, 1, 2)`` of an NHWC array) is read without a copy, and a tensor in
        ``torch.channels_last`` memory format (input or weight) gives a channels_last output,
        as torch does.

    Returns
    -------
    ndarray or Tensor, shape (N, K, OH, OW) or (K, OH, OW); (N, OH, OW, K) with 'NHWC'
        Of the input's type and dtype, with ``OH = (H + top + bottom − dh·(kh − 1) − 1) // sh + 1``.

    Notes
    -----
    For each group the weights flatten to a ``(K/groups) × (C/groups·kh·kw)`` matrix W and the columns
    of the whole batch lie side by side in a ``(C/groups·kh·kw) × (N·L)`` matrix, so the convolution
    is one GEMM: for the blog post's example ``(4 × 9) @ (9 × 43264) → (4 × 43264)``, rearranged to
    ``(64, 4, 26, 26)``.

    The fast path computes exactly that product by blocks of columns: each OpenMP thread unrolls a
    few output rows of one image (about 512 KiB of columns, so they stay in its cache) and
    multiplies W by that block at once, writing straight into the output. The full column matrix
    is never built, so the extra memory is a few tiles per thread, whatever the batch. A 1×1 kernel
    with stride 1 and no padding or dilation needs no im2col at all: the input already is the column
    matrix. Channels-last input is unrolled transposed, one row per output pixel in which each
    kernel tap is a contiguous copy of the pixel's channels, with the weight permuted to match.
    Without a BLAS the kernels can call (see :mod:`im2col._gemm`) it falls back to NumPy's
    ``matmul`` on the batch in chunks of at most ``WORKSPACE_BYTES`` (64 MiB) of columns.

    Examples
    --------
    The blog post's example: four 3×3 edge kernels over a batch of 64 digits of 28×28.

    >>> import numpy as np, im2col
    >>> top_edge = np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], np.float32)
    >>> x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    >>> weight = np.stack([top_edge, top_edge.T, -top_edge, -top_edge.T])[:, None]
    >>> weight.shape
    (4, 1, 3, 3)
    >>> im2col.conv2d(x, weight).shape
    (64, 4, 26, 26)

    It is exactly im2col followed by a matrix product:

    >>> cols = im2col.im2col(x, 3)                       # (64, 9, 676)
    >>> y = (weight.reshape(4, 9) @ cols).reshape(64, 4, 26, 26)
    >>> bool(np.allclose(im2col.conv2d(x, weight), y, atol=1e-6))
    True

    The same batch stored channels-last, (N, H, W, C), gives the output channels-last:

    >>> x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    >>> y_nhwc = im2col.conv2d(x_nhwc, weight, layout="NHWC")
    >>> y_nhwc.shape
    (64, 26, 26, 4)
    >>> bool(np.allclose(y_nhwc.transpose(0, 3, 1, 2), y, atol=1e-6))
    True
    """
    # A repeated small call runs the plan its first call kept (im2col/_plans.py): the same kernel on
    # the same arguments, without redoing the checks that signature passed.
    if type(input) is _ndarray and type(weight) is _ndarray and layout == "NCHW":
        if bias is None or type(bias) is _ndarray:
            bkey = None if bias is None else (bias.shape, bias.dtype, bias.strides)
            if _plain(stride, padding, dilation, groups):
                key = (input.shape, input.dtype, input.strides, weight.shape, weight.dtype, weight.strides, bkey,
                       stride, padding, dilation, groups)  # fmt: skip
                plan = _conv2d_plan_for(key)
                if plan is not None:
                    return plan(input, weight, bias)
                if key not in _CONV2D_PLANS:
                    args = (input, weight, bias, stride, padding, dilation, groups)
                    return _plans.first_call(_plans.CONV2D, key, _conv2d, _plans.conv2d_plan, *args)
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, layout)


def _conv2d(input, weight, bias, stride, padding, dilation, groups, layout="NCHW"):
    """:func:`conv2d` in full: every check, then the kernels."""
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv2d",
            input=input,
            weight=weight,
            bias=bias,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv2d"
    cl = parse_layout(fn, layout, 2)
    x4, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, cl)
    g = _conv2d_geometry(fn, x4, w, stride, padding, dilation, groups)
    _check_bias(fn, b, w.shape[0], "output channel (weight.shape[0])")
    out = _conv_forward(x4, w, b, g, groups, cl or _tensor_channels_last(input, weight))
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))


def _tensor_channels_last(*tensors: Any) -> bool:
    """Torch's rule: a convolution of a tensor is channels-last if its input or weight is."""
    return is_tensor(tensors[0]) and any(channels_last_like(t) for t in tensors)


def conv2d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> tuple[Any, Any, Any]:
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray or Tensor, shape (N, K, OH, OW) or (K, OH, OW)
        Gradient of the loss with respect to ``conv2d(input, weight, ...)``.
    input, weight, stride, padding, dilation, groups
        The arguments of the forward :func:`conv2d`.
    layout : {'NCHW', 'NHWC', 'channels_first', 'channels_last'}, default 'NCHW'
        Of ``input``, ``grad_output`` and ``grad_input``, as in :func:`conv2d`: with 'NHWC'
        grad_output is (N, OH, OW, K) and grad_input comes back (N, H, W, C).

    Returns
    -------
    grad_input : shape of ``input``
        ``col2im(Wᵀ · grad_output)``: the columns' gradient folded back into the image.
    grad_weight : shape of ``weight``
        ``grad_output · colsᵀ`` summed over the batch (one GEMM per group and chunk).
    grad_bias : shape (K,)
        ``grad_output`` summed over the batch and the output grid.

    All three are torch tensors when ``input`` is a tensor, else arrays.

    Examples
    --------
    The gradient of ``sum(conv2d(x, w))`` with respect to ``w`` is the sum of each kernel tap's
    inputs:

    >>> import numpy as np, im2col
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 3, 3))
    >>> gy = np.ones((1, 1, 2, 2))
    >>> gx, gw, gb = im2col.conv2d_backward(gy, x, w)
    >>> gw[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    >>> gb
    array([4.])
    """
    if needs_grad(grad_output, input, weight):  # keep autograd: through im2col.nn's operators
        return autograd_call(
            "conv2d_backward",
            grad_output=grad_output,
            input=input,
            weight=weight,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv2d_backward"
    cl = parse_layout(fn, layout, 2)
    x4, unbatched, w, _, groups = _conv_args(fn, input, weight, None, groups, cl)
    g = _conv2d_geometry(fn, x4, w, stride, padding, dilation, groups)
    gy = to_array(grad_output, "grad_output", fn, strided=True)
    check_same_dtype(x4, "input", gy, "grad_output", fn)
    K = w.shape[0]
    expected = shape_in_layout((g.N, K, g.OH, g.OW), cl)[unbatched:]
    if gy.shape != expected:
        given = shape_in_layout(x4.shape, cl)[unbatched:]
        raise ValueError(
            f"{fn}(): argument 'grad_output' must have shape {expected}, the shape of conv2d's output "
            f"{'(N, OH, OW, K)' if cl else '(N, K, OH, OW)'} for input of shape {given} and weight of shape "
            f"{w.shape}, got shape {gy.shape}"
        )
    gy4 = to_channels_first(gy[None] if unbatched else gy, cl)
    gy3 = gy4.reshape(g.N, K, g.L)  # a view for C-contiguous and channels-last alike
    gx_cl = cl or channels_last_like(input)
    if _engine.route(x4, w, g, groups, gx_cl, op="backward") == "depthwise":
        # the engine's direct depthwise kernels, as in the forward (im2col/_engine.py, route())
        flops = 4 * g.N * K * g.kh * g.kw * g.L
        gx, gw = _engine.depthwise2d_backward(np.ascontiguousarray(gy4), x4, w, g, threads_for_flops(flops))
    elif (blas := native_blas(gy3, x4, w)) is not None:  # grad_input: as many elements as x4
        gx, gw = _conv_backward_tiled(gy3, x4, w, g, groups, blas, want_gx=True, want_gw=True, gx_cl=gx_cl)
        gw = gw.reshape(w.shape)
    else:
        gx = _conv_grad_input(gy3, w, g, groups, x4.dtype, gx_cl)
        gw = _conv_grad_weight(gy3, x4, w.shape, g, groups)
    gb = gy3.sum(axis=(0, 2))
    gx = from_channels_first(gx, cl)
    like = is_tensor(input)
    return wrap_like(gx[0] if unbatched else gx, like), wrap_like(gw, like), wrap_like(gb, like)


def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
    *,
    layout: str = "NCHW",
) -> Any:
    """Transposed convolution (``torch.nn.functional.conv_transpose2d``) as a GEMM then col2im.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C_in, H, W) or (C_in, H, W), float32 or float64
    weight : ndarray or Tensor, shape (C_in, C_out/groups, kh, kw), same dtype
    bias : ndarray or Tensor, shape (C_out,), optional
    stride, padding, dilation : int or (int, int)
        Those of the convolution this one transposes; ``padding`` removes rows and columns from
        the output's borders.
    output_padding : int or (int, int), default 0
        Extra rows/columns at the bottom/right, to pick among the sizes a strided convolution maps
        to the same output; each must be smaller than the stride or the dilation.
    groups : int, default 1
    layout : {'NCHW', 'NHWC', 'channels_first', 'channels_last'}, default 'NCHW'
        Of the input and the output, as in :func:`conv2d`.

    Returns
    -------
    ndarray or Tensor, shape (N, C_out, OH, OW) or (C_out, OH, OW)
        With ``OH = (H − 1)·sh − 2·ph + dh·(kh − 1) + output_padding + 1``.

    Notes
    -----
    A transposed convolution is the input gradient of a convolution: each input pixel's channels
    are multiplied by the weights (``(C_out/groups·kh·kw) × (C_in/groups)`` per group, the weight
    matrix transposed) and the resulting columns are summed into the output with :func:`col2im`.

    Examples
    --------
    A stride-2 transposed convolution doubles the size of a 3×3 map (with ``output_padding=1``):

    >>> import numpy as np, im2col
    >>> x = np.ones((1, 1, 3, 3), np.float32)
    >>> w = np.ones((1, 1, 3, 3), np.float32)
    >>> im2col.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).shape
    (1, 1, 6, 6)
    >>> im2col.conv_transpose2d(x, w)[0, 0]          # counts of overlapping 3×3 stamps
    array([[1., 2., 3., 2., 1.],
           [2., 4., 6., 4., 2.],
           [3., 6., 9., 6., 3.],
           [2., 4., 6., 4., 2.],
           [1., 2., 3., 2., 1.]], dtype=float32)
    """
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv_transpose2d",
            input=input,
            weight=weight,
            bias=bias,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
            layout=layout,
        )
    fn = "conv_transpose2d"
    cl = parse_layout(fn, layout, 2)
    x4, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, cl, transposed=True)
    N, Cin, H, W = x4.shape
    wCin, Cog, kh, kw = w.shape
    if wCin != Cin:
        raise ValueError(
            f"{fn}(): input has {Cin} channels but weight of shape {w.shape} expects weight.shape[0] = {wCin} "
            f"input channels (weight is (C_in, C_out/groups, kh, kw))"
        )
    if Cin % groups:
        raise ValueError(f"{fn}(): input channels {Cin} must be divisible by groups={groups}")
    s, p, op, d, size = transposed_size(fn, (H, W), (kh, kw), stride, padding, output_padding, dilation)
    Cout = Cog * groups
    _check_bias(fn, b, Cout, "output channel (weight.shape[1]·groups)")
    # The convolution this transposes maps an (OH, OW) image with C_out channels to our (H, W) grid.
    g = geometry(fn, (N, Cout, *size), (kh, kw), s, ((p[0], p[0]), (p[1], p[1])), d, grid=(H, W))
    check_alloc(fn, "output", (N, Cout, *size), x4.dtype)
    check_alloc(fn, "column matrix of one chunk", (g.rows, _tiles.chunk(g, x4.dtype.itemsize) * g.L), x4.dtype)
    out_cl = cl or _tensor_channels_last(input, weight)
    # x4 as the (N, C_in, H·W) "grad_output" of that convolution: a view when x4 is C-contiguous
    # or channels-last, else a copy
    x3 = x4.reshape(N, Cin, H * W)
    blas = native_blas(x3, w, elements=N * Cout * size[0] * size[1])
    if _engine.route(x4, w, g, groups, out_cl, op="grad_input") == "depthwise":
        # one output channel per group: the engine's depthwise grad input (im2col/_engine.py, route())
        flops = 2 * N * Cin * kh * kw * H * W
        out, _ = _engine.depthwise2d_backward(x4, x4, w, g, threads_for_flops(flops), want_gw=False)
    elif blas is not None:
        out, _ = _conv_backward_tiled(x3, None, w, g, groups, blas, want_gx=True, want_gw=False, gx_cl=out_cl)
    else:
        out = _conv_grad_input(x3, w, g, groups, x4.dtype, out_cl)
    if b is not None:
        out += b[:, None, None]
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))
