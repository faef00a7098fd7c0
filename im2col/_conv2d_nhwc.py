"""Channels-last 2-D convolutions: tiles of colsᵀ, a row per output pixel (csrc/_kernels.pyx).

In a channels-last image each kernel tap of an output pixel is a contiguous run of channels, so
the tiles here unroll the column matrix transposed (one row per output pixel, columns in
(group, ki, kj, c) order) and multiply them by the weight permuted to (K, kh, kw, C/groups), on the
kernels' own threads (``conv_forward_nhwc`` / ``conv_backward_nhwc``). im2col/_conv2d_routes.py
sends a convolution here (:func:`im2col._tiles.takes_cols_t`, ``groups_of_channels``).
"""

from __future__ import annotations

import numpy as np

from . import _kernels, _tiles
from ._gemm import workspace
from ._geometry import Geometry
from ._im2col_drivers import _empty_image, _pointwise
from ._threads import threads_for_flops
from ._validation import strided_buffer


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
    if want_gw and x is None:
        raise ValueError("grad_weight is computed from the input: want_gw needs x")
    N, C, K, L = g.N, g.C, w.shape[0], g.L
    Cg, Rg = C // groups, g.rows // groups
    dtype = gy.dtype
    wperm = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    n_threads = threads_for_flops(4 * N * K * Rg * L)
    gx = _empty_image((N, C, g.H, g.W), dtype, gx_cl, zero=True) if want_gx else np.empty((1,) * 4, dtype=dtype)
    gw_parts = np.zeros(n_threads * K * Rg if want_gw else 1, dtype=dtype)
    if N:
        gy_buf, gy_cl = _tiles.grad_output_buffer(gy)
        # x is read only for grad_weight
        im, im_strides = strided_buffer(x) if want_gw and x is not None else (gy_buf.reshape(-1), (0,) * 4)
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
