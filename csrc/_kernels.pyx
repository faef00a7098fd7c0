# The fast path: im2col and col2im over typed memoryviews, nogil, OpenMP over (image, channel) planes.
#
# These kernels trust their arguments. Every shape, size and dtype is checked once, above them, by
# im2col/_validation.py; the kernels only do index arithmetic (after Caffe's and PyTorch's im2col).
# The algorithmic reference, a plain NumPy version of the same loops, is im2col/reference.py.
#
# Layout. `im` is a C-contiguous (N, C, H, W) array flattened to 1-D. `col` is flattened too; the
# element for image n, column-matrix row r = (c*kh + i)*kw + j and output position l = oh*OW + ow
# lives at   n*col_n_stride + r*col_row_stride + l.
#   torch's unfold layout (N, C*kh*kw, L):  col_n_stride = C*kh*kw*L, col_row_stride = L
#   batch folded into columns (C*kh*kw, N*L): col_n_stride = L,       col_row_stride = N*L
# The second one lets a convolution over the whole batch be a single GEMM.
#
# Compiler directives (bounds checks off, C division) are set in setup.py; IM2COL_DEBUG=1 turns
# bounds checking back on, which is why every access goes through a memoryview, not a raw pointer.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from cython.parallel cimport prange

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


cdef void _im2col_plane(const moved_t[::1] im, moved_t[::1] col,
                        Py_ssize_t im_base, Py_ssize_t col_base, Py_ssize_t col_row_stride,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # One input plane (n, c) of H*W at im_base -> its kh*kw column-matrix rows, the first at col_base.
    cdef Py_ssize_t i, j, oh, ow, src, dst, row
    cdef Py_ssize_t oh_lo, oh_hi, ow_lo, ow_hi
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, OH, &oh_lo, &oh_hi)
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            row = col_base + (i * kw + j) * col_row_stride
            for ow in range(oh_lo * OW):                  # output rows above the image: padding
                col[row + ow] = 0
            for oh in range(oh_lo, oh_hi):
                dst = row + oh * OW
                # input index that output column 0 would read (h = oh*sh - pt + i*dh, w = j*dw - pl)
                src = im_base + (oh * sh - pt + i * dh) * W + j * dw - pl
                for ow in range(ow_lo):
                    col[dst + ow] = 0
                if sw == 1:                               # contiguous: the compiler vectorises it
                    for ow in range(ow_lo, ow_hi):
                        col[dst + ow] = im[src + ow]
                else:
                    for ow in range(ow_lo, ow_hi):
                        col[dst + ow] = im[src + ow * sw]
                for ow in range(ow_hi, OW):
                    col[dst + ow] = 0
            for ow in range(oh_hi * OW, OH * OW):         # output rows below the image: padding
                col[row + ow] = 0


def im2col(const moved_t[::1] im, moved_t[::1] col,
           Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Unroll every receptive field of ``im`` (N, C, H, W) into ``col`` (see the file header).

    Writes every element of the column matrix, padding included; ``col`` may be uninitialised.
    """
    cdef Py_ssize_t p, n, c
    cdef Py_ssize_t plane = H * W, rows_per_channel = kh * kw
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=n_threads):
            n = p // C
            c = p % C
            _im2col_plane(im, col, p * plane,
                          n * col_n_stride + c * rows_per_channel * col_row_stride,
                          col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)


cdef void _col2im_plane(const real_t[::1] col, real_t[::1] im,
                        Py_ssize_t im_base, Py_ssize_t col_base, Py_ssize_t col_row_stride,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # The adjoint of _im2col_plane: zero plane (n, c), then add back every column entry read from it.
    cdef Py_ssize_t i, j, oh, ow, src, dst, row, k
    cdef Py_ssize_t oh_lo, oh_hi, ow_lo, ow_hi
    for k in range(H * W):
        im[im_base + k] = 0
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, OH, &oh_lo, &oh_hi)
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            row = col_base + (i * kw + j) * col_row_stride
            for oh in range(oh_lo, oh_hi):
                src = row + oh * OW
                dst = im_base + (oh * sh - pt + i * dh) * W + j * dw - pl
                if sw == 1:
                    for ow in range(ow_lo, ow_hi):
                        im[dst + ow] += col[src + ow]
                else:
                    for ow in range(ow_lo, ow_hi):
                        im[dst + ow * sw] += col[src + ow]


def col2im(const real_t[::1] col, real_t[::1] im,
           Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Fold ``col`` back into ``im`` (N, C, H, W), summing overlaps; overwrites all of ``im``.

    Parallel over (image, channel) planes: each plane is written by exactly one thread, so the
    accumulation never races (the rows of one channel all add into the same plane).
    """
    cdef Py_ssize_t p, n, c
    cdef Py_ssize_t plane = H * W, rows_per_channel = kh * kw
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=n_threads):
            n = p // C
            c = p % C
            _col2im_plane(col, im, p * plane,
                          n * col_n_stride + c * rows_per_channel * col_row_stride,
                          col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)
