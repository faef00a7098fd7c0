"""How a checked 2-D convolution runs: the routes from conv2d, its backward and conv_transpose2d
to the kernels.

* :func:`_conv_forward`: the engine's routes first (im2col/_engine.py), else the tiled forward
  (``conv_forward_tiled`` in csrc/_kernels.pyx: each thread unrolls a cache-sized tile of columns
  and multiplies it at once, the GEMM inside the parallel loop) or the channels-last tiles
  (im2col/_conv2d_nhwc.py), else, without a BLAS the kernels can call, im2col and NumPy's matmul
  on chunks of images (:func:`_conv_forward_matmul`).
* :func:`_conv_backward_tiled`: grad_input and grad_weight in one pass over tiles
  (``conv_backward_tiled``), or the channels-last tiles; :func:`_conv_grad_input` and
  :func:`_conv_grad_weight` are its fallbacks without a BLAS.

The arguments are checked (im2col/_conv2d.py); nothing here raises for user input.
"""

from __future__ import annotations

import numpy as np

from . import _engine, _kernels, _tiles
from ._conv2d_nhwc import _conv_backward_nhwc, _conv_forward_nhwc
from ._gemm import matmul, native_blas, workspace
from ._geometry import Geometry
from ._im2col_drivers import _col2im_into, _empty_image, _im2col_into, _pointwise
from ._threads import threads_for_flops
from ._validation import from_channels_first, strided_buffer, to_channels_first


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
        # One image: its (K, L) result is already in place in `out`, no rearranging needed (there
        # is no y_buf only when nb = 1, every chunk one image).
        y = out[n0] if m == 1 or y_buf is None else y_buf[: K * m * L].reshape(K, m * L)
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
    if want_gw and x is None:
        raise ValueError("grad_weight is computed from the input: want_gw needs x")
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
        xc = None  # x is read only for grad_weight
        if want_gw and x is not None:
            xc = to_channels_first(np.ascontiguousarray(from_channels_first(x, True)), True)
        return _conv_backward_nhwc(gy, xc, w, g, groups, blas, want_gx=want_gx, want_gw=want_gw, gx_cl=gx_cl)
    gx = _empty_image((N, g.C, g.H, g.W), dtype, gx_cl, zero=True) if want_gx else np.empty((1,) * 4, dtype=dtype)
    gw_parts = np.zeros(n_threads * K * Rg if want_gw else 1, dtype=dtype)
    work = workspace("tiles", 2 * n_threads * g.rows * rows * g.OW, dtype)
    if N:
        gy_buf, gy_cl = _tiles.grad_output_buffer(gy)
        # x is read only for grad_weight
        im, im_strides = strided_buffer(x) if want_gw and x is not None else (gy_buf.reshape(-1), (0,) * 4)
        gx_buf, gx_strides = strided_buffer(gx) if want_gx else (gx.reshape(-1), (0,) * 4)
        _kernels.conv_backward_tiled(
            im, w.reshape(-1), gy_buf.reshape(-1), gx_buf if want_gx else None, gw_parts if want_gw else None, work,
            _kernels.Geometry2d(g, N, K, groups), im_strides, gx_strides, gy_cl, rows, n_threads, blas,
        )  # fmt: skip
    gw = gw_parts.reshape(n_threads, K, Rg).sum(axis=0) if want_gw else None
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
