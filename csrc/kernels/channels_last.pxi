# Channels-last im2col and col2im (im_sc = 1): tiles of channels × pixels, through SSE2 transposes.
#
# The fast twins, for NHWC images, of the loops of im2col/reference.py's im2col and col2im: the
# same column matrix as planes.pxi, written (or folded back) a tile of channels × rows at a time.
#
# With im_sc = 1 the planes above read one element out of every C (a cache line holds 16 channels
# of one float32 pixel and gives one of them to each plane), so every line comes back C times.
# These read a block of channels [c0, c1) of a tile of image rows instead: each (tap, output row)
# is a small transpose of (pixels × channels, read contiguously) into (channels × pixels, rows of
# the column matrix), small enough that both sides stay in L1. The column matrix is the same.

cdef extern from "_transpose.h":
    void im2col_gather32(const uint32_t* src, Py_ssize_t step, uint32_t* dst, Py_ssize_t ld,
                         Py_ssize_t n_pix, Py_ssize_t n_ch) noexcept nogil
    void im2col_gather64(const uint64_t* src, Py_ssize_t step, uint64_t* dst, Py_ssize_t ld,
                         Py_ssize_t n_pix, Py_ssize_t n_ch) noexcept nogil
    void im2col_scatter_add_f32(const float* col, Py_ssize_t ld, float* im, Py_ssize_t step,
                                Py_ssize_t n_pix, Py_ssize_t n_ch) noexcept nogil
    void im2col_scatter_add_f64(const double* col, Py_ssize_t ld, double* im, Py_ssize_t step,
                                Py_ssize_t n_pix, Py_ssize_t n_ch) noexcept nogil


cdef void _im2col_tile_cl(const wide_t[::1] im, wide_t[::1] col,
                          Py_ssize_t im_base, Py_ssize_t im_sh, Py_ssize_t im_sw,
                          Py_ssize_t col_base, Py_ssize_t col_row_stride,
                          Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t oh0, Py_ssize_t oh1,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                          Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                          Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OW) noexcept nogil:
    # Channels c0 <= c < c1 of image n (pixel (h, w, c) at im_base + h*im_sh + w*im_sw + c) -> their
    # column-matrix rows (c*kh + i)*kw + j, output rows oh0 <= oh < oh1 (columns oh*OW + ow).
    cdef Py_ssize_t c_stride = kh * kw * col_row_stride     # between the rows of channels c, c+1
    cdef Py_ssize_t step = sw * im_sw                      # input elements between output columns
    cdef Py_ssize_t i, j, c, oh, ow, lo, hi, ow_lo, ow_hi, tap, dst, src
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, oh1, &lo, &hi)
        lo = oh0 if lo < oh0 else lo
        hi = lo if hi < lo else hi
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            tap = col_base + (c0 * kh * kw + i * kw + j) * col_row_stride
            for c in range(c1 - c0):                       # output rows above and below the image
                dst = tap + c * c_stride
                for ow in range(oh0 * OW, lo * OW):
                    col[dst + ow] = 0
                for ow in range(hi * OW, oh1 * OW):
                    col[dst + ow] = 0
            for oh in range(lo, hi):
                dst = tap + oh * OW
                src = im_base + (oh * sh - pt + i * dh) * im_sh + (j * dw - pl) * im_sw + c0
                for c in range(c1 - c0):                   # left and right padding
                    for ow in range(ow_lo):
                        col[dst + c * c_stride + ow] = 0
                    for ow in range(ow_hi, OW):
                        col[dst + c * c_stride + ow] = 0
                if ow_hi == ow_lo:
                    continue
                if wide_t is uint32_t:                     # in 4×4 register blocks (_transpose.h)
                    im2col_gather32(&im[src + ow_lo * step], step, &col[dst + ow_lo], c_stride,
                                    ow_hi - ow_lo, c1 - c0)
                else:                                      # in 2×2 blocks
                    im2col_gather64(&im[src + ow_lo * step], step, &col[dst + ow_lo], c_stride,
                                    ow_hi - ow_lo, c1 - c0)


cdef struct ClTile:
    Py_ssize_t n, r0, r1, c0, c1   # image n, rows [r0, r1), channels [c0, c1)


cdef inline Py_ssize_t _cl_tasks_per_image(Py_ssize_t rows, Py_ssize_t tile_rows, Py_ssize_t C,
                                           Py_ssize_t tile_channels) noexcept nogil:
    # Tiles per image of the channels-last im2col/col2im: row blocks × channel blocks.
    return ((rows + tile_rows - 1) // tile_rows) * ((C + tile_channels - 1) // tile_channels)


cdef inline ClTile _cl_tile(Py_ssize_t p, Py_ssize_t rows, Py_ssize_t tile_rows, Py_ssize_t C,
                            Py_ssize_t tile_channels) noexcept nogil:
    # Task p: channel blocks vary fastest, then row blocks, then images. Returned by value, so the
    # prange loops that assign it keep it thread-private.
    cdef Py_ssize_t channel_tiles = (C + tile_channels - 1) // tile_channels
    cdef Py_ssize_t per_image = _cl_tasks_per_image(rows, tile_rows, C, tile_channels)
    cdef Py_ssize_t r = p % per_image
    cdef ClTile t
    t.n = p // per_image
    t.r0 = r // channel_tiles * tile_rows
    t.r1 = t.r0 + tile_rows if t.r0 + tile_rows < rows else rows
    t.c0 = r % channel_tiles * tile_channels
    t.c1 = t.c0 + tile_channels if t.c0 + tile_channels < C else C
    return t


def im2col_cl(const wide_t[::1] im, wide_t[::1] col, Geometry2d geom not None, tuple im_strides,
              Py_ssize_t col_n_stride, Py_ssize_t col_row_stride,
              Py_ssize_t tile_rows, Py_ssize_t tile_channels, int n_threads):
    """:func:`im2col` of a channels-last ``im`` (im_sc = 1): the same columns, written in tiles of
    ``tile_channels`` channels × ``tile_rows`` output rows of one image, one tile per task.

    Writes every element of the column matrix, padding included; ``col`` may be uninitialised.
    """
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t im_sn, im_sh, im_sw
    im_sn, _, im_sh, im_sw = im_strides
    cdef Py_ssize_t p
    cdef ClTile t
    with nogil:
        for p in prange(N * _cl_tasks_per_image(OH, tile_rows, C, tile_channels), schedule="static",
                        num_threads=n_threads):
            t = _cl_tile(p, OH, tile_rows, C, tile_channels)
            _im2col_tile_cl(im, col, t.n * im_sn, im_sh, im_sw, t.n * col_n_stride, col_row_stride,
                            t.c0, t.c1, t.r0, t.r1, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OW)


cdef void _col2im_tile_cl(const real_t[::1] col, real_t[::1] im,
                          Py_ssize_t im_base, Py_ssize_t im_sh, Py_ssize_t im_sw,
                          Py_ssize_t col_base, Py_ssize_t col_row_stride,
                          Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t h0, Py_ssize_t h1,
                          Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                          Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                          Py_ssize_t dh, Py_ssize_t dw,
                          Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # The adjoint of _im2col_tile_cl, tiled by *input* rows: zero pixels h0 <= h < h1, channels
    # [c0, c1), then add every column entry read from them. Taps run in the order of _col2im_plane
    # (i, then j; each tap adds at most once into a pixel), so every sum is the same, bit for bit.
    cdef Py_ssize_t c_stride = kh * kw * col_row_stride
    cdef Py_ssize_t step = sw * im_sw
    cdef Py_ssize_t i, j, c, h, w, oh, ow, lo, hi, ow_lo, ow_hi, tap, dst, src
    for h in range(h0, h1):
        for w in range(W):
            dst = im_base + h * im_sh + w * im_sw
            for c in range(c0, c1):
                im[dst + c] = 0
    for i in range(kh):
        # output rows whose kernel row i reads an input row in [h0, h1)
        _valid_range(i * dh - pt - h0, h1 - h0, sh, OH, &lo, &hi)
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            tap = col_base + (c0 * kh * kw + i * kw + j) * col_row_stride
            for oh in range(lo, hi):
                src = tap + oh * OW
                dst = im_base + (oh * sh - pt + i * dh) * im_sh + (j * dw - pl) * im_sw + c0
                if ow_hi == ow_lo:
                    continue
                if real_t is float:                        # in 4×4 register blocks (_transpose.h)
                    im2col_scatter_add_f32(&col[src + ow_lo], c_stride,
                                           &im[dst + ow_lo * step], step, ow_hi - ow_lo, c1 - c0)
                else:
                    im2col_scatter_add_f64(&col[src + ow_lo], c_stride,
                                           &im[dst + ow_lo * step], step, ow_hi - ow_lo, c1 - c0)


def col2im_cl(const real_t[::1] col, real_t[::1] im, Geometry2d geom not None, tuple im_strides,
              Py_ssize_t col_n_stride, Py_ssize_t col_row_stride,
              Py_ssize_t tile_rows, Py_ssize_t tile_channels, int n_threads):
    """:func:`col2im` into a channels-last ``im`` (im_sc = 1); overwrites all of ``im``.

    One task per tile of ``tile_channels`` channels × ``tile_rows`` *input* rows of one image: the
    tiles share no pixel, so the threads never add into the same element, and each pixel gets its
    adds in the same order as in :func:`col2im` (the same sums, bit for bit).
    """
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t im_sn, im_sh, im_sw
    im_sn, _, im_sh, im_sw = im_strides
    cdef Py_ssize_t p
    cdef ClTile t
    with nogil:
        for p in prange(N * _cl_tasks_per_image(H, tile_rows, C, tile_channels), schedule="static",
                        num_threads=n_threads):
            t = _cl_tile(p, H, tile_rows, C, tile_channels)
            _col2im_tile_cl(col, im, t.n * im_sn, im_sh, im_sw, t.n * col_n_stride, col_row_stride,
                            t.c0, t.c1, t.r0, t.r1, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
