"""How a checked 3-D convolution runs: the tiled vol2col kernels and their fallbacks.

:func:`_conv3d_forward` (conv3d), :func:`_grad_input` (``col2im(Wᵀ · gy)``, also the whole of
conv_transpose3d) and :func:`_grad_weight` (``Σ gy · colsᵀ``) call ``conv3d_forward_tiled`` and,
through :func:`_backward3d_tiled`, ``conv3d_backward_tiled`` (csrc/_kernels.pyx) when a BLAS the
kernels can call is found: each thread gathers a cache-sized tile of columns (:func:`_tiles3d`) and
multiplies it at once, so the column matrix is never built. Without one they run vol2col
(im2col/_nd_drivers.py) and one GEMM per group and image on chunks of images. The callers,
im2col/_nd.py's public functions, check the arguments.
"""

from __future__ import annotations

import math

import numpy as np

from . import _kernels, _tiles
from ._gemm import matmul, native_blas, workspace
from ._nd_drivers import NdGeometry, _col2im_into, _im2col_into
from ._threads import threads_for_flops
from ._validation import check_alloc, shape_in_layout, strided_buffer, to_channels_first


def _conv3d_forward(fn: str, xb: np.ndarray, w: np.ndarray, g: NdGeometry, groups: int, out_cl: bool) -> np.ndarray:
    """conv3d of a checked (N, C, D, H, W) input by a (K, C/groups, kd, kh, kw) weight, without the
    bias: (N, K, L), a view of an (N, L, K) array if ``out_cl``.

    The tiled forward (``conv3d_forward_tiled``) when a BLAS the kernels can call is found, else
    vol2col and one GEMM per group and image on chunks of images."""
    N, C = xb.shape[:2]
    K, R = w.shape[0], C * g.taps
    Kg, Rg = K // groups, R // groups
    out = np.empty((N, g.L, K), xb.dtype).transpose(0, 2, 1) if out_cl else np.empty((N, K, g.L), xb.dtype)
    blas = native_blas(xb, w, out)
    if blas is not None and N:
        # vol2col tiles of a few hundred KiB, each multiplied as soon as it is gathered, on the
        # kernels' own threads: the column matrix (27× the input for 3×3×3) is never built
        td, tr, _, _ = _tiles3d(g, R, xb.dtype.itemsize)
        n_threads = threads_for_flops(2 * N * K * Rg * g.L)
        work = workspace("tiles", n_threads * R * td * tr * g.out[2], xb.dtype)
        im, strides = strided_buffer(xb)
        out_buf = out.transpose(0, 2, 1) if out_cl else out
        _kernels.conv3d_forward_tiled(
            im, w.reshape(-1), out_buf.reshape(-1), work, _kernels.Geometry3d(g, N, C, K, groups), strides,
            td, tr, out_cl, n_threads, blas,
        )  # fmt: skip
    else:
        wmat = w.reshape(groups, Kg, Rg)
        nb = _tiles.images_per_chunk(R, g.L, N, xb.dtype.itemsize)
        check_alloc(fn, "column matrix of one chunk", (nb, R, g.L), xb.dtype)
        for n0 in range(0, N, nb):
            m = min(nb, N - n0)
            cols = np.empty((m, R, g.L), xb.dtype)
            _im2col_into(xb[n0 : n0 + m], g, cols, 0)
            for i in range(m):
                for gi in range(groups):
                    if out_cl:
                        matmul(cols[i, gi * Rg : (gi + 1) * Rg].T, wmat[gi].T, out[n0 + i, gi * Kg : (gi + 1) * Kg].T)
                    else:
                        matmul(wmat[gi], cols[i, gi * Rg : (gi + 1) * Rg], out[n0 + i, gi * Kg : (gi + 1) * Kg])
    return out


def _grad_input(
    fn: str, gy3: np.ndarray, w: np.ndarray, g: NdGeometry, groups: int, C: int, out_cl: bool
) -> np.ndarray:
    """``col2im(Wᵀ · gy)``: (N, K, L) output gradients to the (N, C, *g.size) input gradient, a view
    of a channels-last buffer when ``out_cl``.

    Also the whole of a transposed convolution (its input is ``gy3``, its weight ``w``)."""
    N, K = gy3.shape[:2]
    R = C * g.taps
    Kg, Rg = K // groups, R // groups
    wmat = w.reshape(groups, Kg, Rg)
    check_alloc(fn, "output", (N, C, *g.size), gy3.dtype)
    blas = native_blas(gy3, w, elements=N * C * math.prod(g.size))
    if blas is not None and N:
        gx = to_channels_first(np.zeros(shape_in_layout((N, C, *g.size), out_cl), gy3.dtype), out_cl)
        _backward3d_tiled(gy3, None, w, g, groups, blas, gx, None)
        return gx
    gx = to_channels_first(np.empty(shape_in_layout((N, C, *g.size), out_cl), gy3.dtype), out_cl)
    nb = _tiles.images_per_chunk(R, g.L, N, gy3.dtype.itemsize)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        dcols = np.empty((m, R, g.L), gy3.dtype)
        for i in range(m):
            for gi in range(groups):
                matmul(wmat[gi].T, gy3[n0 + i, gi * Kg : (gi + 1) * Kg], dcols[i, gi * Rg : (gi + 1) * Rg])
        _col2im_into(dcols, g, gx[n0 : n0 + m], "sum")
    return gx


def _grad_weight(gy3: np.ndarray, xb: np.ndarray, w_shape: tuple, g: NdGeometry, groups: int) -> np.ndarray:
    """``Σ gy · colsᵀ`` over the batch: the weight gradient, shaped like the weight."""
    N, C = xb.shape[:2]
    K, R = gy3.shape[1], C * g.taps
    Kg, Rg = K // groups, R // groups
    blas = native_blas(gy3, xb)
    if blas is not None and N:
        return _backward3d_tiled(gy3, xb, np.empty(w_shape, xb.dtype), g, groups, blas, None, True).reshape(w_shape)
    gw = np.zeros((groups, Kg, Rg), xb.dtype)
    nb = _tiles.images_per_chunk(R, g.L, N, xb.dtype.itemsize)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = np.empty((m, R, g.L), xb.dtype)
        _im2col_into(xb[n0 : n0 + m], g, cols, 0)
        for i in range(m):
            for gi in range(groups):
                matmul(gy3[n0 + i, gi * Kg : (gi + 1) * Kg], cols[i, gi * Rg : (gi + 1) * Rg].T, gw[gi], beta=1.0)
    return gw.reshape(w_shape)


# --- the tiled 3-D kernels -----------------------------------------------------------------------


def _tiles3d(g: NdGeometry, R: int, itemsize: int) -> tuple[int, int, int, int]:
    """(tile_depth, tile_rows, phases_d, phases_r) of the tiled 3-D kernels.

    A tile is about TILE_BYTES of columns (at least TILE_MIN_COLUMNS wide), as in 2-D: several whole
    output depths, or rows of one depth when a single depth is larger. For the backward, depth
    (row) blocks ``phases`` apart never read the same input depth (row): blocks m apart are disjoint
    when (m − 1)·tile·stride > dilation·(kernel − 1) − stride."""
    TILE_BYTES, TILE_MIN_COLUMNS = _tiles.TILE_BYTES, _tiles.TILE_MIN_COLUMNS  # looked up now: tests patch them
    OD, OH, OW = g.out
    depth_bytes = R * OH * OW * itemsize
    if depth_bytes <= TILE_BYTES:
        td = min(OD, max(1, TILE_BYTES // depth_bytes, -(-TILE_MIN_COLUMNS // (OH * OW))))
        tr = OH
    else:
        td = 1
        tr = min(OH, max(1, TILE_BYTES // (R * OW * itemsize), -(-TILE_MIN_COLUMNS // OW)))
    phases = []
    for out, tile, k, s, d in (
        (OD, td, g.k[0], g.stride[0], g.dilation[0]),
        (OH, tr, g.k[1], g.stride[1], g.dilation[1]),
    ):
        overlap = d * (k - 1) - s
        phases.append(1 if tile >= out or overlap < 0 else overlap // (tile * s) + 2)
    return td, tr, phases[0], phases[1]


def _backward3d_tiled(gy3, xb, w, g: NdGeometry, groups: int, blas, gx, want_gw):
    """Accumulate col2im(Wᵀ·gy) into ``gx`` (zeroed (N, C, D, H, W), any kernel-readable strides) if
    it is given, and return Σ gy·colsᵀ, (groups·Kg, Rg), if ``want_gw`` (``xb`` then is the input)."""
    N, K = gy3.shape[:2]
    C = gx.shape[1] if gx is not None else xb.shape[1]
    R = C * g.taps
    Rg = R // groups
    dtype = gy3.dtype
    td, tr, phases_d, phases_r = _tiles3d(g, R, dtype.itemsize)
    n_threads = threads_for_flops(2 * N * K * Rg * g.L * (bool(gx is not None) + bool(want_gw)))
    work = workspace("tiles", 2 * n_threads * R * td * tr * g.out[2], dtype)
    gw_parts = np.zeros(n_threads * K * Rg if want_gw else 1, dtype)
    gy_buf, gy_cl = _tiles.grad_output_buffer(gy3)
    im, im_strides = strided_buffer(xb) if want_gw else (gy_buf.reshape(-1), (0,) * 5)  # not read then
    gx_buf, gx_strides = strided_buffer(gx) if gx is not None else (np.empty(1, dtype), (0,) * 5)
    _kernels.conv3d_backward_tiled(
        im, w.reshape(-1), gy_buf.reshape(-1), None if gx is None else gx_buf, gw_parts if want_gw else None,
        work, _kernels.Geometry3d(g, N, C, K, groups), im_strides, gx_strides, gy_cl, td, tr, phases_d, phases_r,
        n_threads, blas,
    )  # fmt: skip
    return gw_parts.reshape(n_threads, K, Rg).sum(axis=0) if want_gw else None
