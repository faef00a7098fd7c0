# The fast path: im2col and col2im over typed memoryviews, nogil, OpenMP over (image, channel) planes.
#
# These kernels trust their arguments. Every shape, size and dtype is checked once, above them, by
# im2col/_validation.py; the kernels only do index arithmetic (after Caffe's and PyTorch's im2col).
# The algorithmic reference, a plain NumPy version of the same loops, is im2col/reference.py.
#
# Layout. `im` is a 1-D buffer holding an (N, C, H, W) image batch with any non-negative element
# strides: pixel (n, c, h, w) lives at n*im_sn + c*im_sc + h*im_sh + w*im_sw. C-contiguous NCHW
# has im_sw = 1 (the fast, vectorised inner loops); channels-last NHWC has im_sc = 1, im_sw = C.
# `col` is flattened too; the element for image n, column-matrix row r = (c*kh + i)*kw + j and
# output position l = oh*OW + ow lives at   n*col_n_stride + r*col_row_stride + l.
#   torch's unfold layout (N, C*kh*kw, L):  col_n_stride = C*kh*kw*L, col_row_stride = L
#   batch folded into columns (C*kh*kw, N*L): col_n_stride = L,       col_row_stride = N*L
# The second one lets a convolution over the whole batch be a single GEMM.
#
# Compiler directives (bounds checks off, C division) are set in setup.py; IM2COL_DEBUG=1 turns
# bounds checking back on, which is why every access goes through a memoryview, not a raw pointer.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from cython.parallel cimport parallel, prange, threadid

cdef extern from "_omp_compat.h":
    int omp_get_max_threads() noexcept nogil
    int IM2COL_HAVE_OPENMP

# im2col only moves elements, so it runs on unsigned integers of the element's width: one kernel
# serves float32 (as uint32), float64, int64, complex64 (as uint64), float16, bool, ...
# A zero bit pattern is 0, 0.0, False and 0j alike, so padding is right for every dtype.
ctypedef fused moved_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

# The tiled convolution unrolls float tiles with the same routine, so it is also compiled for these.
ctypedef fused plane_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t
    float
    double

# The channels-last tiles move 4- and 8-byte elements through SSE2 registers (csrc/_transpose.h).
ctypedef fused wide_t:
    uint32_t
    uint64_t

# col2im adds, so it needs the real arithmetic type.
ctypedef fused real_t:
    float
    double

HAVE_OPENMP = bool(IM2COL_HAVE_OPENMP)


def max_threads():
    """Threads an OpenMP region would use now (``omp_get_max_threads``); 1 in a serial build."""
    return omp_get_max_threads()


cdef inline void _valid_range(Py_ssize_t offset, Py_ssize_t size, Py_ssize_t stride,
                              Py_ssize_t n_out, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Output positions o in [lo, hi) read input index o*stride + offset inside [0, size);
    # the others read padding. Computed once per kernel offset, so the inner loops never branch.
    cdef Py_ssize_t first = -offset               # need o*stride >= first
    cdef Py_ssize_t last = size - 1 - offset      # need o*stride <= last
    lo[0] = 0 if first <= 0 else (first + stride - 1) // stride
    hi[0] = 0 if last < 0 else last // stride + 1
    if lo[0] > n_out:
        lo[0] = n_out
    if hi[0] > n_out:
        hi[0] = n_out
    if hi[0] < lo[0]:
        hi[0] = lo[0]


cdef void _im2col_plane(const plane_t[::1] im, plane_t[::1] col,
                        Py_ssize_t im_base, Py_ssize_t im_sh, Py_ssize_t im_sw,
                        Py_ssize_t col_base, Py_ssize_t col_row_stride,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t oh_begin, Py_ssize_t oh_end, Py_ssize_t OW) noexcept nogil:
    # One input plane (n, c) of H*W, pixel (h, w) at im_base + h*im_sh + w*im_sw -> its kh*kw
    # column-matrix rows, the first at col_base, for output rows oh_begin <= oh < oh_end only (all
    # OH of them, or one tile of a tiled GEMM). Column (oh, ow) of a row sits at (oh - oh_begin)*OW + ow.
    cdef Py_ssize_t i, j, oh, ow, src, dst, row, lo, hi
    cdef Py_ssize_t step = sw * im_sw          # input elements between two output columns
    cdef Py_ssize_t oh_lo, oh_hi, ow_lo, ow_hi
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, oh_end, &oh_lo, &oh_hi)
        lo = oh_lo if oh_lo > oh_begin else oh_begin
        hi = oh_hi if oh_hi > lo else lo
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            row = col_base + (i * kw + j) * col_row_stride - oh_begin * OW
            for ow in range(oh_begin * OW, lo * OW):      # output rows above the image: padding
                col[row + ow] = 0
            for oh in range(lo, hi):
                dst = row + oh * OW
                # input index that output column 0 would read (h = oh*sh - pt + i*dh, w = j*dw - pl)
                src = im_base + (oh * sh - pt + i * dh) * im_sh + (j * dw - pl) * im_sw
                for ow in range(ow_lo):
                    col[dst + ow] = 0
                if step == 1:                             # contiguous: the compiler vectorises it
                    for ow in range(ow_lo, ow_hi):
                        col[dst + ow] = im[src + ow]
                else:                                     # horizontal stride, or channels-last
                    for ow in range(ow_lo, ow_hi):
                        col[dst + ow] = im[src + ow * step]
                for ow in range(ow_hi, OW):
                    col[dst + ow] = 0
            for ow in range(hi * OW, oh_end * OW):        # output rows below the image: padding
                col[row + ow] = 0


def im2col(const moved_t[::1] im, moved_t[::1] col,
           Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
           Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Unroll every receptive field of ``im`` (N, C, H, W; element strides im_s*) into ``col``.

    Writes every element of the column matrix, padding included; ``col`` may be uninitialised.
    """
    cdef Py_ssize_t p, n, c
    cdef Py_ssize_t rows_per_channel = kh * kw
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=n_threads):
            n = p // C
            c = p % C
            _im2col_plane(im, col, n * im_sn + c * im_sc, im_sh, im_sw,
                          n * col_n_stride + c * rows_per_channel * col_row_stride,
                          col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW)


def vol2col(const moved_t[::1] im, moved_t[::1] col,
            Py_ssize_t N, Py_ssize_t C, Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
            Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
            Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
            Py_ssize_t pd, Py_ssize_t pt, Py_ssize_t pl,
            Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
            Py_ssize_t OD, Py_ssize_t OH, Py_ssize_t OW,
            Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sd, Py_ssize_t im_sh, Py_ssize_t im_sw,
            int n_threads):
    """The 3-D im2col with zero padding: ``col`` (N, C·kd·kh·kw, OD·OH·OW) from ``im`` (N, C, D, H, W).

    For channel c, depth tap a and output depth od, the kh·kw rows of input depth
    z = od·sd − pd + a·dd are the 2-D im2col of that (H, W) plane, or zeros where z is padding:
    so each (n, c, a, od) is one call of the plane routine, with its contiguous row copies.
    Writes every element of ``col``.
    """
    cdef Py_ssize_t u, n, c, a, od, z, at, r, q
    cdef Py_ssize_t S = OH * OW, L = OD * OH * OW, taps2 = kh * kw
    with nogil:
        for u in prange(N * C * kd * OD, schedule="static", num_threads=n_threads):
            od = u % OD
            a = (u // OD) % kd
            c = (u // (OD * kd)) % C
            n = u // (OD * kd * C)
            z = od * sd - pd + a * dd
            # row ((c·kd + a)·kh + i)·kw + j, column od·OH·OW + oh·OW + ow
            at = (n * C * kd + c * kd + a) * taps2 * L + od * S
            if z >= 0 and z < D:
                _im2col_plane(im, col, n * im_sn + c * im_sc + z * im_sd, im_sh, im_sw, at, L,
                              H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW)
            else:
                for r in range(taps2):
                    for q in range(S):
                        col[at + r * L + q] = 0


cdef void _col2im_plane(const real_t[::1] col, real_t[::1] im,
                        Py_ssize_t im_base, Py_ssize_t im_sh, Py_ssize_t im_sw,
                        Py_ssize_t col_base, Py_ssize_t col_row_stride,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t oh_begin, Py_ssize_t oh_end, Py_ssize_t OW,
                        bint zero_first) noexcept nogil:
    # The adjoint of _im2col_plane: add every column entry of output rows [oh_begin, oh_end) back
    # into the pixel of plane (n, c) it was read from (zeroing the plane first if zero_first).
    cdef Py_ssize_t i, j, oh, ow, src, dst, row, h, w, lo
    cdef Py_ssize_t oh_lo, oh_hi, ow_lo, ow_hi
    cdef Py_ssize_t step = sw * im_sw
    if zero_first:
        for h in range(H):
            for w in range(W):
                im[im_base + h * im_sh + w * im_sw] = 0
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, oh_end, &oh_lo, &oh_hi)
        lo = oh_lo if oh_lo > oh_begin else oh_begin
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            row = col_base + (i * kw + j) * col_row_stride - oh_begin * OW
            for oh in range(lo, oh_hi):
                src = row + oh * OW
                dst = im_base + (oh * sh - pt + i * dh) * im_sh + (j * dw - pl) * im_sw
                if step == 1:
                    for ow in range(ow_lo, ow_hi):
                        im[dst + ow] += col[src + ow]
                else:
                    for ow in range(ow_lo, ow_hi):
                        im[dst + ow * step] += col[src + ow]


cdef void _col2im_plane_phased(const real_t[::1] col, real_t[::1] im, real_t[::1] scratch,
                               Py_ssize_t scratch_base,
                               Py_ssize_t im_base, Py_ssize_t im_sh, Py_ssize_t im_sw,
                               Py_ssize_t col_base, Py_ssize_t col_row_stride,
                               Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                               Py_ssize_t dh, Py_ssize_t dw,
                               Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # _col2im_plane into a scratch plane, then one pass writing it into `im` (strides im_sh, im_sw).
    # For a horizontal stride sw > 1 each tap adds into every sw-th pixel of a row, one element at
    # a time (12 GB/s of columns against 34-46 with stride 1); so is every add into a channels-last
    # plane (im_sw = C). Here the plane is accumulated contiguously, split by column phase,
    # scratch[h, r, q] for pixel w = q*sw + r, where a tap's adds are contiguous (and vectorised).
    cdef Py_ssize_t Wq = (W + sw - 1) // sw
    cdef Py_ssize_t i, j, oh, ow, h, w, k, src, dst, row, w0, r
    cdef Py_ssize_t oh_lo, oh_hi, ow_lo, ow_hi
    for k in range(H * sw * Wq):
        scratch[scratch_base + k] = 0
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, OH, &oh_lo, &oh_hi)
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            w0 = j * dw - pl                      # pixel read by output column 0 (maybe negative)
            r = ((w0 % sw) + sw) % sw             # its phase; then q = (w0 - r)/sw + ow, exactly
            row = col_base + (i * kw + j) * col_row_stride
            for oh in range(oh_lo, oh_hi):
                h = oh * sh - pt + i * dh
                src = row + oh * OW
                dst = scratch_base + (h * sw + r) * Wq + (w0 - r) // sw
                for ow in range(ow_lo, ow_hi):
                    scratch[dst + ow] += col[src + ow]
    for h in range(H):
        for r in range(sw):                       # pixels w = q*sw + r < W of phase r
            src = scratch_base + (h * sw + r) * Wq
            dst = im_base + h * im_sh + r * im_sw
            for k in range((W - r + sw - 1) // sw):
                im[dst + k * sw * im_sw] = scratch[src + k]


def col2im(const real_t[::1] col, real_t[::1] im, real_t[::1] scratch,
           Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
           Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Fold ``col`` back into ``im`` (N, C, H, W; element strides im_s*), summing overlaps;
    overwrites all of ``im``.

    Parallel over (image, channel) planes: each plane is written by exactly one thread, so the
    accumulation never races (the rows of one channel all add into the same plane). With a
    horizontal stride above 1 or a plane whose rows are not contiguous (im_sw > 1, channels-last),
    ``scratch`` holds n_threads × H·sw·ceil(W/sw) elements (see _col2im_plane_phased); otherwise
    it is not used.
    """
    cdef Py_ssize_t p, n, c
    cdef Py_ssize_t rows_per_channel = kh * kw
    cdef Py_ssize_t scratch_size = H * sw * ((W + sw - 1) // sw)
    cdef int tid
    if sw == 1 and im_sw == 1:
        with nogil:
            for p in prange(N * C, schedule="static", num_threads=n_threads):
                n = p // C
                c = p % C
                _col2im_plane(col, im, n * im_sn + c * im_sc, im_sh, im_sw,
                              n * col_n_stride + c * rows_per_channel * col_row_stride,
                              col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW, True)
        return
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        for p in prange(N * C, schedule="static"):
            n = p // C
            c = p % C
            _col2im_plane_phased(col, im, scratch, tid * scratch_size,
                                 n * im_sn + c * im_sc, im_sh, im_sw,
                                 n * col_n_stride + c * rows_per_channel * col_row_stride,
                                 col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)


# --- Channels-last im2col and col2im: tiles of channels × pixels --------------------------------
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


def im2col_cl(const wide_t[::1] im, wide_t[::1] col,
              Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
              Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
              Py_ssize_t OH, Py_ssize_t OW,
              Py_ssize_t im_sn, Py_ssize_t im_sh, Py_ssize_t im_sw,
              Py_ssize_t col_n_stride, Py_ssize_t col_row_stride,
              Py_ssize_t tile_rows, Py_ssize_t tile_channels, int n_threads):
    """:func:`im2col` of a channels-last ``im`` (im_sc = 1): the same columns, written in tiles of
    ``tile_channels`` channels × ``tile_rows`` output rows of one image, one tile per task.

    Writes every element of the column matrix, padding included; ``col`` may be uninitialised.
    """
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
                          Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
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
                    im2col_scatter_add_f32(&col[src + ow_lo], c_stride, &im[dst + ow_lo * step], step,
                                           ow_hi - ow_lo, c1 - c0)
                else:
                    im2col_scatter_add_f64(&col[src + ow_lo], c_stride, &im[dst + ow_lo * step], step,
                                           ow_hi - ow_lo, c1 - c0)


def col2im_cl(const real_t[::1] col, real_t[::1] im,
              Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
              Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
              Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
              Py_ssize_t OH, Py_ssize_t OW,
              Py_ssize_t im_sn, Py_ssize_t im_sh, Py_ssize_t im_sw,
              Py_ssize_t col_n_stride, Py_ssize_t col_row_stride,
              Py_ssize_t tile_rows, Py_ssize_t tile_channels, int n_threads):
    """:func:`col2im` into a channels-last ``im`` (im_sc = 1); overwrites all of ``im``.

    One task per tile of ``tile_channels`` channels × ``tile_rows`` *input* rows of one image: the
    tiles share no pixel, so the threads never add into the same element, and each pixel gets its
    adds in the same order as in :func:`col2im` (the same sums, bit for bit).
    """
    cdef Py_ssize_t p
    cdef ClTile t
    with nogil:
        for p in prange(N * _cl_tasks_per_image(H, tile_rows, C, tile_channels), schedule="static",
                        num_threads=n_threads):
            t = _cl_tile(p, H, tile_rows, C, tile_channels)
            _col2im_tile_cl(col, im, t.n * im_sn, im_sh, im_sw, t.n * col_n_stride, col_row_stride,
                            t.c0, t.c1, t.r0, t.r1, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)


# --- Convolution forward with the GEMM inside the parallel loop --------------------------------
#
# The whole column matrix of a large layer is tens of MB: written once by im2col and read once by
# the GEMM, it costs as much memory traffic as the GEMM costs compute. Here each thread instead
# unrolls one tile (a few output rows of one image) into its own cache-sized buffer and multiplies
# it straight away with a single-threaded BLAS call, writing the result in place in the output.
#
# The BLAS is reached through a function pointer to a Fortran-style ?gemm (column-major), found
# by im2col/_gemm.py in a library the process already loaded (MKL inside torch, or NumPy's
# OpenBLAS), with 32- or 64-bit integers. Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ.

from libc.stdint cimport int64_t

ctypedef void (*gemm32_f)(const char*, const char*, const int*, const int*, const int*,
                          const float*, const float*, const int*, const float*, const int*,
                          const float*, float*, const int*) noexcept nogil
ctypedef void (*gemm64_f)(const char*, const char*, const int64_t*, const int64_t*, const int64_t*,
                          const float*, const float*, const int64_t*, const float*, const int64_t*,
                          const float*, float*, const int64_t*) noexcept nogil
ctypedef void (*gemm32_d)(const char*, const char*, const int*, const int*, const int*,
                          const double*, const double*, const int*, const double*, const int*,
                          const double*, double*, const int*) noexcept nogil
ctypedef void (*gemm64_d)(const char*, const char*, const int64_t*, const int64_t*, const int64_t*,
                          const double*, const double*, const int64_t*, const double*, const int64_t*,
                          const double*, double*, const int64_t*) noexcept nogil
ctypedef int (*set_threads_f)(int) noexcept nogil


cdef inline void _gemm_rowmajor(size_t fn, bint ilp64, bint trans_a, bint trans_b,
                                Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                                const real_t* A, Py_ssize_t lda, const real_t* B, Py_ssize_t ldb,
                                real_t beta, real_t* C, Py_ssize_t ldc) noexcept nogil:
    # C := op(A) · op(B) + beta·C, row-major: op(A) is M × K, op(B) is K × N, C is M × N, and
    # op(X) = Xᵀ when trans_x (X then stored as its transpose). Called as column-major
    # Cᵀ := op(B)ᵀ · op(A)ᵀ, so A and B swap places and the transpose flags stay with them.
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef real_t one = 1
    cdef int m32 = <int>N, n32 = <int>M, k32 = <int>K, lda32 = <int>ldb, ldb32 = <int>lda, ldc32 = <int>ldc
    cdef int64_t m64 = N, n64 = M, k64 = K, lda64 = ldb, ldb64 = lda, ldc64 = ldc
    if real_t is float:
        if ilp64:
            (<gemm64_f>fn)(&ta, &tb, &m64, &n64, &k64, &one, B, &lda64, A, &ldb64, &beta, C, &ldc64)
        else:
            (<gemm32_f>fn)(&ta, &tb, &m32, &n32, &k32, &one, B, &lda32, A, &ldb32, &beta, C, &ldc32)
    else:
        if ilp64:
            (<gemm64_d>fn)(&ta, &tb, &m64, &n64, &k64, &one, B, &lda64, A, &ldb64, &beta, C, &ldc64)
        else:
            (<gemm32_d>fn)(&ta, &tb, &m32, &n32, &k32, &one, B, &lda32, A, &ldb32, &beta, C, &ldc32)


def gemm(const real_t[:, ::1] a, bint trans_a, const real_t[:, ::1] b, bint trans_b,
         real_t[:, :] out, real_t beta, int n_threads,
         size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """``out := op(a) @ op(b) + beta·out``, the columns of ``out`` split over OpenMP threads.

    ``a`` and ``b`` are C-contiguous; ``op(x)`` is ``x.T`` when ``trans_x``. ``out`` may be a view
    whose rows are strided (its last axis must be contiguous). Each thread calls the BLAS
    single-threaded on its block of columns, so the BLAS's own thread pool never starts and
    never competes with OpenMP's (the clash described in im2col/_gemm.py).
    """
    cdef Py_ssize_t M = out.shape[0], N = out.shape[1]
    cdef Py_ssize_t K = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t ldc = out.strides[0] // sizeof(real_t)
    cdef Py_ssize_t block, j0, j1, t, n_blocks
    cdef int previous = 1
    if M == 0 or N == 0:
        return
    if out.strides[1] != sizeof(real_t):
        raise ValueError("gemm(): the last axis of 'out' must be contiguous")
    # Blocks of at least 64 columns, a multiple of 16, at most one per thread.
    n_blocks = n_threads if N >= 64 * n_threads else max(1, N // 64)
    block = ((N + n_blocks - 1) // n_blocks + 15) // 16 * 16
    n_blocks = (N + block - 1) // block
    with nogil, parallel(num_threads=n_blocks):
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        for t in prange(n_blocks, schedule="static"):
            j0 = t * block
            j1 = j0 + block
            if j1 > N:
                j1 = N
            _gemm_rowmajor(gemm_fn, ilp64, trans_a, trans_b, M, j1 - j0, K,
                           &a[0, 0], a.shape[1],
                           &b[j0, 0] if trans_b else &b[0, j0], b.shape[1],
                           beta, &out[0, j0], ldc)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


cdef inline const real_t* _at(const real_t[::1] im, real_t[::1] work, int pointwise,
                              Py_ssize_t cols, Py_ssize_t row, bint trans, Py_ssize_t ld) noexcept nogil:
    # Address of row `row` of a column block: in the input itself (pointwise) or in a tile.
    cdef Py_ssize_t offset = cols + (row if trans else row * ld)
    if pointwise:
        return &im[offset]
    return &work[offset]


def conv_forward_tiled(const real_t[::1] im, const real_t[::1] wmat, real_t[::1] out,
                       real_t[::1] work,
                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                       Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t OH, Py_ssize_t OW,
                       Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
                       Py_ssize_t K, Py_ssize_t groups,
                       Py_ssize_t tile_rows, int pointwise, bint out_cl, int n_threads,
                       size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """``out`` := per group W_g · im2col(im)_g, one output-row tile at a time.

    ``im`` is (N, C, H, W) with element strides im_s*. ``out`` is (N, K, OH·OW), or with
    ``out_cl`` channels-last (N, OH·OW, K), written as outᵀ = colsᵀ · W_gᵀ (ldc = K) so no
    transpose follows. ``wmat`` is (K, C/groups·kh·kw); ``work`` holds n_threads tiles of
    C·kh·kw × tile_rows·OW.
    ``pointwise`` (1×1 kernel, stride 1, no padding or dilation): the input already is the column
    matrix, so the GEMM reads it in place and ``work`` is not used. 1: each plane is contiguous
    (im_sw = 1, im_sh = W, so image n is C × H·W with row stride im_sc); 2: channels-last
    (im_sc = 1, im_sh = W·im_sw, so image n is H·W × C with row stride im_sw, the columns
    transposed); 0: not pointwise.
    ``set_threads_fn`` (0 if none) sets the calling thread's BLAS thread count; each worker
    asks for 1, since the tiles themselves are the parallelism.
    """
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t tiles_per_image = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t tile_size = R * tile_rows * OW
    cdef Py_ssize_t t, n, oh0, oh1, T, c, g, base, cols, ld_cols
    cdef bint trans_cols
    cdef int tid, previous = 1
    cdef real_t[::1] outv = out
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        base = tid * tile_size
        for t in prange(N * tiles_per_image, schedule="dynamic"):
            n = t // tiles_per_image
            oh0 = (t % tiles_per_image) * tile_rows
            oh1 = oh0 + tile_rows
            if oh1 > OH:
                oh1 = OH
            T = (oh1 - oh0) * OW
            # cols_g (Rg × T) of group g starts at cols + g*Rg*ld_cols (transposed: + g*Rg)
            if pointwise == 1:
                cols = n * im_sn + oh0 * OW
                ld_cols = im_sc
                trans_cols = False
            elif pointwise == 2:
                cols = n * im_sn + oh0 * OW * im_sw
                ld_cols = im_sw
                trans_cols = True
            else:
                cols = base
                ld_cols = T
                trans_cols = False
                for c in range(C):
                    _im2col_plane(im, work, n * im_sn + c * im_sc, im_sh, im_sw,
                                  base + c * kh * kw * T, T,
                                  H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW)
            for g in range(groups):
                if out_cl:                   # out[n, oh0·OW:, g·Kg:] (T × Kg) = cols_gᵀ · W_gᵀ
                    _gemm_rowmajor(gemm_fn, ilp64, not trans_cols, True, T, Kg, Rg,
                                   _at(im, work, pointwise, cols, g * Rg, trans_cols, ld_cols),
                                   ld_cols, &wmat[g * Kg * Rg], Rg,
                                   0, &outv[(n * L + oh0 * OW) * K + g * Kg], K)
                else:                        # out[n, g·Kg:, oh0·OW:] (Kg × T) = W_g · cols_g
                    _gemm_rowmajor(gemm_fn, ilp64, False, trans_cols, Kg, T, Rg,
                                   &wmat[g * Kg * Rg], Rg,
                                   _at(im, work, pointwise, cols, g * Rg, trans_cols, ld_cols),
                                   ld_cols, 0, &outv[(n * K + g * Kg) * L + oh0 * OW], L)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


def conv_backward_tiled(const real_t[::1] im, const real_t[::1] wmat, const real_t[::1] gy,
                        real_t[::1] gx, real_t[::1] gw_parts, real_t[::1] work,
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t OH, Py_ssize_t OW,
                        Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
                        Py_ssize_t gx_sn, Py_ssize_t gx_sc, Py_ssize_t gx_sh, Py_ssize_t gx_sw,
                        bint gy_cl, Py_ssize_t K, Py_ssize_t groups,
                        Py_ssize_t tile_rows, bint want_gx, bint want_gw, int n_threads,
                        size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """Both gradients of a convolution, one output-row tile at a time (see conv_forward_tiled).

    ``im`` is (N, C, H, W) with element strides im_s* (only read with want_gw). gy is
    (N, K, OH·OW), or with ``gy_cl`` channels-last (N, OH·OW, K), read as a transposed operand.
    With want_gw, each thread adds gy_tile · cols_tileᵀ into its own (K, C/groups·kh·kw) slab of
    ``gw_parts`` (n_threads slabs, zeroed by the caller; the caller sums them). With want_gx,
    ``gx`` (N, C, H, W, element strides gx_s*), zeroed by the caller, receives col2im(Wᵀ · gy_tile)
    for every tile. Two tiles of an image whose input rows overlap must not add into ``gx`` at
    once, so even tiles run first, then odd ones; the caller makes tiles tall enough
    (tile_rows·sh > dh·(kh − 1) − sh) that tiles two apart never share an input row.
    ``work`` holds 2 × n_threads tiles of C·kh·kw × tile_rows·OW.
    """
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t tiles_per_image = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t half = (tiles_per_image + 1) // 2
    cdef Py_ssize_t tile_size = R * tile_rows * OW
    cdef Py_ssize_t u, t, n, oh0, oh1, T, c, g, cols, dcols, gy_at, ld_gy
    cdef int tid, previous = 1, phase
    cdef real_t[::1] gxv = gx
    cdef real_t[::1] gwv = gw_parts
    ld_gy = K if gy_cl else L
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        cols = 2 * tid * tile_size
        dcols = cols + tile_size
        for phase in range(2):
            # static: the same tiles go to the same thread every call, so grad_weight's sum over
            # the threads' slabs is reproducible for a given thread count
            for u in prange(N * half, schedule="static"):
                n = u // half
                t = 2 * (u % half) + phase
                if t >= tiles_per_image:
                    continue
                oh0 = t * tile_rows
                oh1 = oh0 + tile_rows
                if oh1 > OH:
                    oh1 = OH
                T = (oh1 - oh0) * OW
                if want_gw:
                    for c in range(C):
                        _im2col_plane(im, work, n * im_sn + c * im_sc, im_sh, im_sw,
                                      cols + c * kh * kw * T, T,
                                      H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW)
                    for g in range(groups):          # gw_g += gy_g · cols_gᵀ
                        gy_at = ((n * L + oh0 * OW) * K + g * Kg) if gy_cl else ((n * K + g * Kg) * L + oh0 * OW)
                        _gemm_rowmajor(gemm_fn, ilp64, gy_cl, True, Kg, Rg, T,
                                       &gy[gy_at], ld_gy,
                                       &work[cols + g * Rg * T], T,
                                       1, &gwv[(tid * K + g * Kg) * Rg], Rg)
                if want_gx:
                    for g in range(groups):          # dcols_g = W_gᵀ · gy_g
                        gy_at = ((n * L + oh0 * OW) * K + g * Kg) if gy_cl else ((n * K + g * Kg) * L + oh0 * OW)
                        _gemm_rowmajor(gemm_fn, ilp64, True, gy_cl, Rg, T, Kg,
                                       &wmat[g * Kg * Rg], Rg,
                                       &gy[gy_at], ld_gy,
                                       0, &work[dcols + g * Rg * T], T)
                    for c in range(C):
                        _col2im_plane(work, gxv, n * gx_sn + c * gx_sc, gx_sh, gx_sw,
                                      dcols + c * kh * kw * T, T,
                                      H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW, False)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


# --- 3-D: the same tiles over volumes ------------------------------------------------------------
#
# A tile is a block of output positions of one image: depths od0 <= od < od1 and rows oh0 <= oh < oh1
# (all OW columns), with either one depth or all OH rows, so its positions are one contiguous run
# of the output. Its columns are gathered plane by plane with the 2-D routine: for channel c, depth
# tap a and output depth od, the kh·kw rows of input depth z = od·sd − pd + a·dd are a 2-D im2col of
# that (H, W) plane (or zeros where z is padding).

cdef void _vol2col_tile(const real_t[::1] im, real_t[::1] work, Py_ssize_t base, Py_ssize_t T,
                        Py_ssize_t im_base, Py_ssize_t C, Py_ssize_t im_sc, Py_ssize_t im_sd,
                        Py_ssize_t im_sh, Py_ssize_t im_sw,
                        Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t pd, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t od0, Py_ssize_t od1, Py_ssize_t oh0, Py_ssize_t oh1,
                        Py_ssize_t OW) noexcept nogil:
    # Row ((c·kd + a)·kh + b)·kw + e of the tile starts at base + row·T; column
    # ((od − od0)·(oh1 − oh0) + oh − oh0)·OW + ow.
    cdef Py_ssize_t c, a, od, z, r, q, at, slab = (oh1 - oh0) * OW
    for c in range(C):
        for a in range(kd):
            for od in range(od0, od1):
                z = od * sd - pd + a * dd
                at = base + (c * kd + a) * kh * kw * T + (od - od0) * slab
                if z >= 0 and z < D:
                    _im2col_plane(im, work, im_base + c * im_sc + z * im_sd, im_sh, im_sw, at, T,
                                  H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW)
                else:
                    for r in range(kh * kw):
                        for q in range(slab):
                            work[at + r * T + q] = 0


cdef void _col2vol_tile(const real_t[::1] work, real_t[::1] gx, Py_ssize_t base, Py_ssize_t T,
                        Py_ssize_t gx_base, Py_ssize_t C, Py_ssize_t gx_sc, Py_ssize_t gx_sd,
                        Py_ssize_t gx_sh, Py_ssize_t gx_sw,
                        Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t pd, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t od0, Py_ssize_t od1, Py_ssize_t oh0, Py_ssize_t oh1,
                        Py_ssize_t OW) noexcept nogil:
    # The adjoint of _vol2col_tile: add the tile's column entries into the voxels they came from.
    cdef Py_ssize_t c, a, od, z, slab = (oh1 - oh0) * OW
    for c in range(C):
        for a in range(kd):
            for od in range(od0, od1):
                z = od * sd - pd + a * dd
                if z >= 0 and z < D:
                    _col2im_plane(work, gx, gx_base + c * gx_sc + z * gx_sd, gx_sh, gx_sw,
                                  base + (c * kd + a) * kh * kw * T + (od - od0) * slab, T,
                                  H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW, False)


def conv3d_forward_tiled(const real_t[::1] im, const real_t[::1] wmat, real_t[::1] out,
                         real_t[::1] work,
                         Py_ssize_t N, Py_ssize_t C, Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                         Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t pd, Py_ssize_t pt, Py_ssize_t pl,
                         Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                         Py_ssize_t OD, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sd, Py_ssize_t im_sh,
                         Py_ssize_t im_sw, Py_ssize_t K, Py_ssize_t groups,
                         Py_ssize_t tile_depth, Py_ssize_t tile_rows, bint out_cl, int n_threads,
                         size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """conv_forward_tiled for volumes: ``out`` (N, K, OD·OH·OW), or with ``out_cl`` (N, OD·OH·OW, K),
    := per group W_g · vol2col(im)_g, one tile of tile_depth output depths × tile_rows output rows
    at a time (tile_depth == 1 or tile_rows == OH). ``im`` is (N, C, D, H, W) with element strides
    im_s*; ``wmat`` is (K, C/groups·kd·kh·kw); ``work`` holds n_threads tiles.
    """
    cdef Py_ssize_t R = C * kd * kh * kw, L = OD * OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t n_d = (OD + tile_depth - 1) // tile_depth, n_r = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t per_image = n_d * n_r
    cdef Py_ssize_t tile_size = R * tile_depth * tile_rows * OW
    cdef Py_ssize_t t, n, i, od0, od1, oh0, oh1, T, p0, g, base
    cdef int tid, previous = 1
    cdef real_t[::1] outv = out
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        base = tid * tile_size
        for t in prange(N * per_image, schedule="dynamic"):
            n = t // per_image
            i = t % per_image
            od0 = (i // n_r) * tile_depth
            od1 = od0 + tile_depth
            if od1 > OD:
                od1 = OD
            oh0 = (i % n_r) * tile_rows
            oh1 = oh0 + tile_rows
            if oh1 > OH:
                oh1 = OH
            T = (od1 - od0) * (oh1 - oh0) * OW
            p0 = (od0 * OH + oh0) * OW
            _vol2col_tile(im, work, base, T, n * im_sn, C, im_sc, im_sd, im_sh, im_sw, D, H, W,
                          kd, kh, kw, sd, sh, sw, pd, pt, pl, dd, dh, dw, od0, od1, oh0, oh1, OW)
            for g in range(groups):
                if out_cl:                   # out[n, p0:, g·Kg:] (T × Kg) = cols_gᵀ · W_gᵀ
                    _gemm_rowmajor(gemm_fn, ilp64, True, True, T, Kg, Rg,
                                   &work[base + g * Rg * T], T, &wmat[g * Kg * Rg], Rg,
                                   0, &outv[(n * L + p0) * K + g * Kg], K)
                else:                        # out[n, g·Kg:, p0:] (Kg × T) = W_g · cols_g
                    _gemm_rowmajor(gemm_fn, ilp64, False, False, Kg, T, Rg,
                                   &wmat[g * Kg * Rg], Rg, &work[base + g * Rg * T], T,
                                   0, &outv[(n * K + g * Kg) * L + p0], L)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


def conv3d_backward_tiled(const real_t[::1] im, const real_t[::1] wmat, const real_t[::1] gy,
                          real_t[::1] gx, real_t[::1] gw_parts, real_t[::1] work,
                          Py_ssize_t N, Py_ssize_t C, Py_ssize_t D, Py_ssize_t H, Py_ssize_t W,
                          Py_ssize_t kd, Py_ssize_t kh, Py_ssize_t kw,
                          Py_ssize_t sd, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t pd, Py_ssize_t pt, Py_ssize_t pl,
                          Py_ssize_t dd, Py_ssize_t dh, Py_ssize_t dw,
                          Py_ssize_t OD, Py_ssize_t OH, Py_ssize_t OW,
                          Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sd, Py_ssize_t im_sh,
                          Py_ssize_t im_sw,
                          Py_ssize_t gx_sn, Py_ssize_t gx_sc, Py_ssize_t gx_sd, Py_ssize_t gx_sh,
                          Py_ssize_t gx_sw,
                          bint gy_cl, Py_ssize_t K, Py_ssize_t groups,
                          Py_ssize_t tile_depth, Py_ssize_t tile_rows,
                          Py_ssize_t phases_d, Py_ssize_t phases_r,
                          bint want_gx, bint want_gw, int n_threads,
                          size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """conv_backward_tiled for volumes, tiled as conv3d_forward_tiled.

    Tiles whose input regions overlap must not add into ``gx`` at once. The caller picks
    ``phases_d`` so that depth blocks that many apart never share an input depth, and ``phases_r``
    likewise for row blocks; the tiles then run in phases_d·phases_r rounds, each round taking
    the blocks of one residue pair, so any two tiles of a round differ in depth block by a multiple
    of phases_d or, in the same depth block, in row block by a multiple of phases_r.
    ``work`` holds 2 × n_threads tiles; ``gw_parts`` n_threads zeroed (K, C/groups·kd·kh·kw) slabs.
    """
    cdef Py_ssize_t R = C * kd * kh * kw, L = OD * OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t n_d = (OD + tile_depth - 1) // tile_depth, n_r = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t tile_size = R * tile_depth * tile_rows * OW
    cdef Py_ssize_t u, v, n, db, rb, od0, od1, oh0, oh1, T, p0, g, cols, dcols, gy_at, ld_gy
    cdef Py_ssize_t phase, count_d, count_r
    cdef int tid, previous = 1
    cdef real_t[::1] gxv = gx
    cdef real_t[::1] gwv = gw_parts
    ld_gy = K if gy_cl else L
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        cols = 2 * tid * tile_size
        dcols = cols + tile_size
        for phase in range(phases_d * phases_r):
            # the depth blocks db ≡ phase // phases_r and row blocks rb ≡ phase % phases_r
            count_d = (n_d - phase // phases_r + phases_d - 1) // phases_d
            count_r = (n_r - phase % phases_r + phases_r - 1) // phases_r
            for u in prange(N * count_d * count_r, schedule="static"):
                n = u // (count_d * count_r)
                v = u % (count_d * count_r)
                db = phase // phases_r + (v // count_r) * phases_d
                rb = phase % phases_r + (v % count_r) * phases_r
                od0 = db * tile_depth
                od1 = od0 + tile_depth
                if od1 > OD:
                    od1 = OD
                oh0 = rb * tile_rows
                oh1 = oh0 + tile_rows
                if oh1 > OH:
                    oh1 = OH
                T = (od1 - od0) * (oh1 - oh0) * OW
                p0 = (od0 * OH + oh0) * OW
                if want_gw:
                    _vol2col_tile(im, work, cols, T, n * im_sn, C, im_sc, im_sd, im_sh, im_sw, D, H, W,
                                  kd, kh, kw, sd, sh, sw, pd, pt, pl, dd, dh, dw, od0, od1, oh0, oh1, OW)
                    for g in range(groups):          # gw_g += gy_g · cols_gᵀ
                        gy_at = ((n * L + p0) * K + g * Kg) if gy_cl else ((n * K + g * Kg) * L + p0)
                        _gemm_rowmajor(gemm_fn, ilp64, gy_cl, True, Kg, Rg, T,
                                       &gy[gy_at], ld_gy, &work[cols + g * Rg * T], T,
                                       1, &gwv[(tid * K + g * Kg) * Rg], Rg)
                if want_gx:
                    for g in range(groups):          # dcols_g = W_gᵀ · gy_g
                        gy_at = ((n * L + p0) * K + g * Kg) if gy_cl else ((n * K + g * Kg) * L + p0)
                        _gemm_rowmajor(gemm_fn, ilp64, True, gy_cl, Rg, T, Kg,
                                       &wmat[g * Kg * Rg], Rg, &gy[gy_at], ld_gy,
                                       0, &work[dcols + g * Rg * T], T)
                    _col2vol_tile(work, gxv, dcols, T, n * gx_sn, C, gx_sc, gx_sd, gx_sh, gx_sw, D, H, W,
                                  kd, kh, kw, sd, sh, sw, pd, pt, pl, dd, dh, dw, od0, od1, oh0, oh1, OW)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


# --- Channels-last convolution: tiles of colsᵀ, one output pixel per row -------------------------
#
# In NHWC the C channels of a pixel are contiguous, so the natural tile is the transposed column
# matrix colsᵀ (T pixels × R): for each output pixel, tap by tap, a contiguous copy of the channels
# that tap reads (zeros where it falls in the padding). Its columns are ordered (group, ki, kj, c in
# group), not torch's (c, ki, kj): a group's Rg columns are then one slice of every row, and the
# caller passes the weight permuted to match, (K, kh, kw, C/groups) flattened to (K, Rg). One GEMM
# per group gives out_tile (T × Kg, NHWC rows, ldc = K) = colsᵀ_g · W_perm_gᵀ.
#
# A tile is T consecutive output pixels p = n·L + oh·OW + ow, not whole output rows. With `span` a
# tile may run across images: every pixel-major operand (out, gy, and the input or grad_input read
# in place by a 1×1 convolution) has its pixels evenly spaced through the whole batch.

cdef inline Py_ssize_t _tile_start(Py_ssize_t t, Py_ssize_t tile_pixels, Py_ssize_t L,
                                   bint span) noexcept nogil:
    # First output pixel of tile t: of the whole batch (span) or of one image.
    cdef Py_ssize_t per_image
    if span:
        return t * tile_pixels
    per_image = (L + tile_pixels - 1) // tile_pixels
    return (t // per_image) * L + (t % per_image) * tile_pixels


cdef inline Py_ssize_t _tile_stop(Py_ssize_t p0, Py_ssize_t tile_pixels, Py_ssize_t L, Py_ssize_t N,
                                  bint span) noexcept nogil:
    # One past the last output pixel of the tile that starts at p0.
    cdef Py_ssize_t end = N * L if span else (p0 // L + 1) * L
    return p0 + tile_pixels if p0 + tile_pixels < end else end


cdef inline Py_ssize_t _n_pixel_tiles(Py_ssize_t tile_pixels, Py_ssize_t L, Py_ssize_t N,
                                      bint span) noexcept nogil:
    if span:
        return (N * L + tile_pixels - 1) // tile_pixels
    return N * ((L + tile_pixels - 1) // tile_pixels)


cdef void _pixel_rows_packed(const real_t[::1] im, real_t[::1] rows, real_t[::1] gim, bint add,
                             Py_ssize_t base, Py_ssize_t p0, Py_ssize_t p1,
                             Py_ssize_t im_sn, Py_ssize_t im_sh,
                             Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                             Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                             Py_ssize_t dh, Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # _pixel_rows for one group, no horizontal dilation and packed pixels (im_sc = 1, im_sw = C):
    # the kw taps of kernel row i then read kw adjacent input pixels, kw*C contiguous elements,
    # into kw*C adjacent columns (i*kw + j)*C + c, so each (pixel, kernel row) is a single run.
    cdef Py_ssize_t L = OH * OW, R = C * kh * kw, run = kw * C
    cdef Py_ssize_t p, n, oh, ow, i, h, w0, a, b, e, src, dst
    n = p0 // L
    oh = (p0 - n * L) // OW
    ow = p0 - n * L - oh * OW
    for p in range(p0, p1):
        w0 = ow * sw - pl                             # input column of tap j = 0
        for i in range(kh):
            h = oh * sh - pt + i * dh
            dst = base + (p - p0) * R + i * run
            src = n * im_sn + h * im_sh + w0 * C      # elements [a, b) of the run are inside
            if h < 0 or h >= H:
                a = run
                b = run
            else:
                a = 0 if w0 >= 0 else (-w0 * C if -w0 < kw else run)
                b = run if W - w0 >= kw else (W - w0) * C
                if b < a:
                    b = a
            if add:
                for e in range(a, b):
                    gim[src + e] += rows[dst + e]
            else:
                for e in range(a):
                    rows[dst + e] = 0
                for e in range(a, b):
                    rows[dst + e] = im[src + e]
                for e in range(b, run):
                    rows[dst + e] = 0
        ow += 1                                       # the next output pixel
        if ow == OW:
            ow = 0
            oh += 1
            if oh == OH:
                oh = 0
                n += 1


cdef void _pixel_rows(const real_t[::1] im, real_t[::1] rows, real_t[::1] gim, bint add,
                      Py_ssize_t base, Py_ssize_t p0, Py_ssize_t p1,
                      Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
                      Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                      Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                      Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW,
                      Py_ssize_t groups) noexcept nogil:
    # Output pixels p0 <= p < p1 <-> rows of colsᵀ, row p at base + (p - p0)*R; pixel (n, oh, ow),
    # tap (i, j) reads input pixel (h, w) = (oh*sh - pt + i*dh, ow*sw - pl + j*dw), whose channels
    # of group g go to columns g*Rg + (i*kw + j)*Cg + c. Not add: `rows` := those elements of `im`
    # (N, C, H, W, element strides im_s*), zeros for padding. add: the adjoint, `gim` (same
    # strides) += `rows`, padding entries dropped.
    cdef Py_ssize_t L = OH * OW, Cg = C // groups, R = C * kh * kw, Rg = R // groups
    cdef Py_ssize_t p, n, l, oh, ow0, ow1, ow, i, j, g, c, h, tap, src, dst, row, lo, hi
    if groups == 1 and dw == 1 and im_sc == 1 and im_sw == C:
        _pixel_rows_packed(im, rows, gim, add, base, p0, p1, im_sn, im_sh,
                           C, H, W, kh, kw, sh, sw, pt, pl, dh, OH, OW)
        return
    p = p0
    while p < p1:                                 # one output row (n, oh) at a time: ow0 <= ow < ow1
        n = p // L
        l = p - n * L
        oh = l // OW
        ow0 = l - oh * OW
        ow1 = OW if OW - ow0 <= p1 - p else ow0 + (p1 - p)
        row = base + (p - p0 - ow0) * R           # where output column 0's row would start
        for i in range(kh):
            h = oh * sh - pt + i * dh
            for j in range(kw):
                tap = (i * kw + j) * Cg
                if h < 0 or h >= H:
                    lo = ow1
                    hi = ow1
                else:
                    _valid_range(j * dw - pl, W, sw, OW, &lo, &hi)
                    lo = ow0 if lo < ow0 else (ow1 if lo > ow1 else lo)
                    hi = lo if hi < lo else (ow1 if hi > ow1 else hi)
                if not add:                       # padding: zero the tap's columns
                    for ow in range(ow0, lo):
                        for g in range(groups):
                            dst = row + ow * R + g * Rg + tap
                            for c in range(Cg):
                                rows[dst + c] = 0
                    for ow in range(hi, ow1):
                        for g in range(groups):
                            dst = row + ow * R + g * Rg + tap
                            for c in range(Cg):
                                rows[dst + c] = 0
                for ow in range(lo, hi):
                    src = n * im_sn + h * im_sh + (ow * sw - pl + j * dw) * im_sw
                    for g in range(groups):
                        dst = row + ow * R + g * Rg + tap
                        if add:
                            if im_sc == 1:        # channels-last: a contiguous run (vectorised)
                                for c in range(Cg):
                                    gim[src + g * Cg + c] += rows[dst + c]
                            else:
                                for c in range(Cg):
                                    gim[src + (g * Cg + c) * im_sc] += rows[dst + c]
                        elif im_sc == 1:
                            for c in range(Cg):
                                rows[dst + c] = im[src + g * Cg + c]
                        else:
                            for c in range(Cg):
                                rows[dst + c] = im[src + (g * Cg + c) * im_sc]
        p += ow1 - ow0


def conv_forward_nhwc(const real_t[::1] im, const real_t[::1] wperm, real_t[::1] out, real_t[::1] work,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                      Py_ssize_t OH, Py_ssize_t OW,
                      Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
                      Py_ssize_t K, Py_ssize_t groups,
                      Py_ssize_t tile_pixels, bint span, bint pointwise, bint out_cl, int n_threads,
                      size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """``out`` := per group colsᵀ_g · W_perm_gᵀ, one tile of output pixels at a time.

    ``im`` is (N, C, H, W) with element strides im_s* (fast when im_sc = 1, channels-last).
    ``wperm`` is (K, kh·kw·C/groups), the weight permuted to (K, kh, kw, C/groups). ``out`` is
    channels-last (N, OH·OW, K) with ``out_cl``, else (N, K, OH·OW) (then ``span`` must be off).
    ``work`` holds n_threads tiles of tile_pixels × C·kh·kw. ``pointwise`` (1×1, stride 1, no
    padding or dilation, im_sc = 1, pixel l of image n at n·im_sn + l·im_sw): the input already is
    colsᵀ, read in place with row stride im_sw, and ``work`` is not used.
    """
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups, Cg = C // groups
    cdef Py_ssize_t n_tiles = _n_pixel_tiles(tile_pixels, L, N, span)
    cdef Py_ssize_t t, n, p0, p1, T, g, base, a_at, lda
    cdef int tid, previous = 1
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        base = tid * tile_pixels * R
        for t in prange(n_tiles, schedule="dynamic"):
            p0 = _tile_start(t, tile_pixels, L, span)
            p1 = _tile_stop(p0, tile_pixels, L, N, span)
            T = p1 - p0
            n = p0 // L
            if pointwise:                   # colsᵀ_g (T × Cg) starts at a_at + g*Cg
                a_at = n * im_sn + (p0 - n * L) * im_sw
                lda = im_sw
            else:
                a_at = base
                lda = R
                _pixel_rows(im, work, work, False, base, p0, p1, im_sn, im_sc, im_sh, im_sw,
                            C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, groups)
            for g in range(groups):
                if out_cl:                  # out[p0:p1, g·Kg:] (T × Kg) = colsᵀ_g · W_perm_gᵀ
                    _gemm_rowmajor(gemm_fn, ilp64, False, True, T, Kg, Rg,
                                   &im[a_at + g * Cg] if pointwise else &work[a_at + g * Rg], lda,
                                   &wperm[g * Kg * Rg], Rg, 0, &out[p0 * K + g * Kg], K)
                else:                       # out[n, g·Kg:, l0:] (Kg × T) = W_perm_g · colsᵀ_gᵀ
                    _gemm_rowmajor(gemm_fn, ilp64, False, True, Kg, T, Rg,
                                   &wperm[g * Kg * Rg], Rg,
                                   &im[a_at + g * Cg] if pointwise else &work[a_at + g * Rg], lda,
                                   0, &out[(n * K + g * Kg) * L + p0 - n * L], L)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


def conv_backward_nhwc(const real_t[::1] im, const real_t[::1] wperm, const real_t[::1] gy,
                       real_t[::1] gx, real_t[::1] gw_parts, real_t[::1] work,
                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                       Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t OH, Py_ssize_t OW,
                       Py_ssize_t im_sn, Py_ssize_t im_sc, Py_ssize_t im_sh, Py_ssize_t im_sw,
                       Py_ssize_t gx_sn, Py_ssize_t gx_sc, Py_ssize_t gx_sh, Py_ssize_t gx_sw,
                       bint gy_cl, Py_ssize_t K, Py_ssize_t groups,
                       Py_ssize_t tile_pixels, bint span, bint pointwise,
                       bint want_gx, bint want_gw, int n_threads,
                       size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """Both gradients of conv_forward_nhwc, one tile of output pixels at a time.

    ``im`` (read only with want_gw) and ``gx`` are (N, C, H, W) with element strides im_s*, gx_s*.
    gy is (N, OH·OW, K) with ``gy_cl``, else (N, K, OH·OW) (then ``span`` must be off). With
    want_gw, each thread adds gy_tileᵀ · colsᵀ_tile into its own (K, kh·kw·C/groups) slab of
    ``gw_parts`` (n_threads slabs in the permuted order, zeroed by the caller, who sums and
    permutes them back). With want_gx, ``gx``, zeroed by the caller, receives the adjoint gather of
    dcolsᵀ = gy_tile · W_perm for every tile. Tiles whose input pixels overlap must not add into
    ``gx`` at once, so even tiles run first, then odd ones; the caller makes tiles long enough
    (tile_pixels ≥ (dh·(kh − 1) // sh + 1)·OW, or with kh = 1, where each output row reads its own
    input row, ≥ dw·(kw − 1) // sw + 1) that tiles two apart never share an input pixel.
    ``work`` holds 2 × n_threads tiles of tile_pixels × C·kh·kw. ``pointwise`` (as in
    conv_forward_nhwc, and gx_sc = 1, pixel l of image n at n·gx_sn + l·gx_sw): colsᵀ is the input
    and dcolsᵀ is grad_input itself, both used in place; ``work`` is not used.
    """
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups, Cg = C // groups
    cdef Py_ssize_t n_tiles = _n_pixel_tiles(tile_pixels, L, N, span)
    cdef Py_ssize_t tile_size = tile_pixels * R
    cdef Py_ssize_t u, t, n, p0, p1, T, g, cols, dcols, a_at, gy_at, ld_gy
    cdef int tid, previous = 1, phase
    ld_gy = K if gy_cl else L
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        cols = 2 * tid * tile_size
        dcols = cols + tile_size
        for phase in range(2):
            # static: the same tiles go to the same thread every call, so grad_weight's sum over
            # the threads' slabs is reproducible for a given thread count
            for u in prange((n_tiles - phase + 1) // 2, schedule="static"):
                t = 2 * u + phase
                p0 = _tile_start(t, tile_pixels, L, span)
                p1 = _tile_stop(p0, tile_pixels, L, N, span)
                T = p1 - p0
                n = p0 // L
                gy_at = p0 * K if gy_cl else n * K * L + p0 - n * L     # + g·Kg·(1 or L)
                if want_gw:
                    if pointwise:                    # colsᵀ_g (T × Cg) starts at a_at + g*Cg
                        a_at = n * im_sn + (p0 - n * L) * im_sw
                    else:
                        _pixel_rows(im, work, work, False, cols, p0, p1, im_sn, im_sc, im_sh, im_sw,
                                    C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, groups)
                    for g in range(groups):          # gw_g += gy_gᵀ · colsᵀ_g
                        _gemm_rowmajor(gemm_fn, ilp64, gy_cl, False, Kg, Rg, T,
                                       &gy[gy_at + g * Kg * (1 if gy_cl else L)], ld_gy,
                                       &im[a_at + g * Cg] if pointwise else &work[cols + g * Rg],
                                       im_sw if pointwise else R,
                                       1, &gw_parts[(tid * K + g * Kg) * Rg], Rg)
                if want_gx:
                    for g in range(groups):          # dcolsᵀ_g = gy_g · W_perm_g
                        if pointwise:                # straight into grad_input's pixels
                            _gemm_rowmajor(gemm_fn, ilp64, not gy_cl, False, T, Rg, Kg,
                                           &gy[gy_at + g * Kg * (1 if gy_cl else L)], ld_gy,
                                           &wperm[g * Kg * Rg], Rg,
                                           0, &gx[n * gx_sn + (p0 - n * L) * gx_sw + g * Cg], gx_sw)
                        else:
                            _gemm_rowmajor(gemm_fn, ilp64, not gy_cl, False, T, Rg, Kg,
                                           &gy[gy_at + g * Kg * (1 if gy_cl else L)], ld_gy,
                                           &wperm[g * Kg * Rg], Rg,
                                           0, &work[dcols + g * Rg], R)
                    if not pointwise:
                        _pixel_rows(work, work, gx, True, dcols, p0, p1, gx_sn, gx_sc, gx_sh, gx_sw,
                                    C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, groups)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


# --- Small problems: one thread, no parallel region --------------------------------------------
#
# On the 1×1×5×5 teaching shape the kernel call alone took 1.5 µs, of which the work is about
# 0.1: entering an OpenMP region cost about 0.55 µs even with num_threads=1 (with the GIL
# released and retaken around it), and a fused def function's type dispatch about 0.3 µs.
# These run the same plane routines serially, holding the GIL, for problems small enough that the
# callers would run them on one thread anyway; im2col/_plans.py calls them through their
# specialisations (``im2col_serial["float"]``), which skips the dispatch.

def im2col_serial(const plane_t[::1] im, plane_t[::1] col,
                  Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                  Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t OH, Py_ssize_t OW,
                  Py_ssize_t col_n_stride, Py_ssize_t col_row_stride):
    """:func:`im2col` on the calling thread: the same result, for small problems. ``im`` is
    C-contiguous (N, C, H, W)."""
    cdef Py_ssize_t p, n, c
    for p in range(N * C):
        n = p // C
        c = p % C
        _im2col_plane(im, col, p * H * W, W, 1, n * col_n_stride + c * kh * kw * col_row_stride,
                      col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW)


def col2im_serial(const real_t[::1] col, real_t[::1] im,
                  Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                  Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t OH, Py_ssize_t OW,
                  Py_ssize_t col_n_stride, Py_ssize_t col_row_stride):
    """:func:`col2im` on the calling thread, any stride (the adds into each pixel come in the
    same order as in col2im's phased route, so the sums are bit for bit the same)."""
    cdef Py_ssize_t p, n, c
    for p in range(N * C):
        n = p // C
        c = p % C
        _col2im_plane(col, im, p * H * W, W, 1, n * col_n_stride + c * kh * kw * col_row_stride,
                      col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW, True)


def conv_forward_serial(const real_t[::1] im, const real_t[::1] wmat, real_t[::1] out,
                        real_t[::1] work,
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t K, Py_ssize_t groups,
                        Py_ssize_t tile_rows, bint pointwise,
                        size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """:func:`conv_forward_tiled` with one thread: the same tiles and GEMM calls in the same
    order, so the same bits. ``work`` holds one tile of C·kh·kw × tile_rows·OW."""
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t tiles_per_image = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t t, n, oh0, oh1, T, c, g
    cdef int previous = 1
    if set_threads_fn:
        previous = (<set_threads_f>set_threads_fn)(1)
    for t in range(N * tiles_per_image):
        n = t // tiles_per_image
        oh0 = (t % tiles_per_image) * tile_rows
        oh1 = oh0 + tile_rows
        if oh1 > OH:
            oh1 = OH
        T = (oh1 - oh0) * OW
        if pointwise:
            for g in range(groups):
                _gemm_rowmajor(gemm_fn, ilp64, False, False, Kg, T, Rg,
                               &wmat[g * Kg * Rg], Rg,
                               &im[(n * C + g * Rg) * L + oh0 * OW], L,
                               0, &out[(n * K + g * Kg) * L + oh0 * OW], L)
            continue
        for c in range(C):
            _im2col_plane(im, work, (n * C + c) * H * W, W, 1, c * kh * kw * T, T,
                          H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW)
        for g in range(groups):
            _gemm_rowmajor(gemm_fn, ilp64, False, False, Kg, T, Rg,
                           &wmat[g * Kg * Rg], Rg, &work[g * Rg * T], T,
                           0, &out[(n * K + g * Kg) * L + oh0 * OW], L)
    if set_threads_fn:
        (<set_threads_f>set_threads_fn)(previous)


# --- 1×1 kernels: the column matrix is the image ----------------------------------------------

from libc.string cimport memcpy


def copy_bytes(const uint8_t[::1] src, uint8_t[::1] dst, int n_threads):
    """``dst[:] = src``, in one contiguous block per thread.

    im2col and col2im with a 1×1 kernel, stride 1 and no padding (any dilation) move each element
    once, to the same place: (N, C, H, W) and (N, C·1·1, H·W) are the same bytes. With a fresh
    output most of the time goes to first-touch page faults, which two threads take in parallel.
    """
    cdef Py_ssize_t n = src.shape[0], block, lo, hi, t
    if n == 0:
        return
    block = (n + n_threads - 1) // n_threads
    block = (block + 4095) // 4096 * 4096                 # whole pages per thread
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            lo = t * block
            hi = lo + block
            if hi > n:
                hi = n
            if lo < hi:
                memcpy(&dst[lo], &src[lo], hi - lo)


cdef extern from "_stream_copy.h":
    void im2col_stream_copy(void* dst, const void* src, size_t n) noexcept nogil


def stream_copy_bytes(const uint8_t[::1] src, uint8_t[::1] dst, int n_threads):
    """:func:`copy_bytes` with streaming stores (``csrc/_stream_copy.h``), for large copies."""
    cdef Py_ssize_t n = src.shape[0], block, lo, hi, t
    if n == 0:
        return
    block = (n + n_threads - 1) // n_threads
    block = (block + 4095) // 4096 * 4096
    with nogil:
        for t in prange(n_threads, schedule="static", num_threads=n_threads):
            lo = t * block
            hi = lo + block
            if hi > n:
                hi = n
            if lo < hi:
                im2col_stream_copy(&dst[lo], &src[lo], hi - lo)
