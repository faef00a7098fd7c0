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
                        Py_ssize_t im_base, Py_ssize_t col_base, Py_ssize_t col_row_stride,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t oh_begin, Py_ssize_t oh_end, Py_ssize_t OW) noexcept nogil:
    # One input plane (n, c) of H*W at im_base -> its kh*kw column-matrix rows, the first at col_base,
    # for output rows oh_begin <= oh < oh_end only (all OH of them, or one tile of a tiled GEMM).
    # Column (oh, ow) of a row sits at (oh - oh_begin)*OW + ow.
    cdef Py_ssize_t i, j, oh, ow, src, dst, row, lo, hi
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
            for ow in range(hi * OW, oh_end * OW):        # output rows below the image: padding
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
                          col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW)


cdef void _col2im_plane(const real_t[::1] col, real_t[::1] im,
                        Py_ssize_t im_base, Py_ssize_t col_base, Py_ssize_t col_row_stride,
                        Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t oh_begin, Py_ssize_t oh_end, Py_ssize_t OW,
                        bint zero_first) noexcept nogil:
    # The adjoint of _im2col_plane: add every column entry of output rows [oh_begin, oh_end) back
    # into the pixel of plane (n, c) it was read from (zeroing the plane first if zero_first).
    cdef Py_ssize_t i, j, oh, ow, src, dst, row, k, lo
    cdef Py_ssize_t oh_lo, oh_hi, ow_lo, ow_hi
    if zero_first:
        for k in range(H * W):
            im[im_base + k] = 0
    for i in range(kh):
        _valid_range(i * dh - pt, H, sh, oh_end, &oh_lo, &oh_hi)
        lo = oh_lo if oh_lo > oh_begin else oh_begin
        for j in range(kw):
            _valid_range(j * dw - pl, W, sw, OW, &ow_lo, &ow_hi)
            row = col_base + (i * kw + j) * col_row_stride - oh_begin * OW
            for oh in range(lo, oh_hi):
                src = row + oh * OW
                dst = im_base + (oh * sh - pt + i * dh) * W + j * dw - pl
                if sw == 1:
                    for ow in range(ow_lo, ow_hi):
                        im[dst + ow] += col[src + ow]
                else:
                    for ow in range(ow_lo, ow_hi):
                        im[dst + ow * sw] += col[src + ow]


cdef void _col2im_plane_phased(const real_t[::1] col, real_t[::1] im, real_t[::1] scratch,
                               Py_ssize_t scratch_base, Py_ssize_t im_base, Py_ssize_t col_base,
                               Py_ssize_t col_row_stride,
                               Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                               Py_ssize_t dh, Py_ssize_t dw,
                               Py_ssize_t OH, Py_ssize_t OW) noexcept nogil:
    # _col2im_plane for a horizontal stride sw > 1. There each tap adds into every sw-th pixel of a
    # row, one element at a time (12 GB/s of columns against 34-46 with stride 1). Here the plane
    # is first accumulated split by column phase, scratch[h, r, q] for pixel w = q*sw + r, where a
    # tap's adds are contiguous (and vectorised); one pass then interleaves the phases into `im`.
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
            dst = im_base + h * W + r
            for k in range((W - r + sw - 1) // sw):
                im[dst + k * sw] = scratch[src + k]


def col2im(const real_t[::1] col, real_t[::1] im, real_t[::1] scratch,
           Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Fold ``col`` back into ``im`` (N, C, H, W), summing overlaps; overwrites all of ``im``.

    Parallel over (image, channel) planes: each plane is written by exactly one thread, so the
    accumulation never races (the rows of one channel all add into the same plane). With a
    horizontal stride above 1, ``scratch`` holds n_threads × H·sw·ceil(W/sw) elements (see
    _col2im_plane_phased); otherwise it is not used.
    """
    cdef Py_ssize_t p, n, c
    cdef Py_ssize_t plane = H * W, rows_per_channel = kh * kw
    cdef Py_ssize_t scratch_size = H * sw * ((W + sw - 1) // sw)
    cdef int tid
    if sw == 1:
        with nogil:
            for p in prange(N * C, schedule="static", num_threads=n_threads):
                n = p // C
                c = p % C
                _col2im_plane(col, im, p * plane,
                              n * col_n_stride + c * rows_per_channel * col_row_stride,
                              col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW, True)
        return
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        for p in prange(N * C, schedule="static"):
            n = p // C
            c = p % C
            _col2im_plane_phased(col, im, scratch, tid * scratch_size, p * plane,
                                 n * col_n_stride + c * rows_per_channel * col_row_stride,
                                 col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW)


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


def conv_forward_tiled(const real_t[::1] im, const real_t[::1] wmat, real_t[::1] out,
                       real_t[::1] work,
                       Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                       Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t K, Py_ssize_t groups,
                       Py_ssize_t tile_rows, bint pointwise, int n_threads,
                       size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """``out`` (N, K, OH·OW) := per group W_g · im2col(im)_g, one output-row tile at a time.

    ``wmat`` is (K, C/groups·kh·kw); ``work`` holds n_threads tiles of C·kh·kw × tile_rows·OW.
    ``pointwise`` (1×1 kernel, stride 1, no padding or dilation): the input already is the column
    matrix, so the GEMM reads it in place and ``work`` is not used.
    ``set_threads_fn`` (0 if none) sets the calling thread's BLAS thread count; each worker
    asks for 1, since the tiles themselves are the parallelism.
    """
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t tiles_per_image = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t tile_size = R * tile_rows * OW
    cdef Py_ssize_t t, n, oh0, oh1, T, c, g, base
    cdef int tid, previous = 1
    cdef real_t[::1] outv = out
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        if set_threads_fn:
            previous = (<set_threads_f>set_threads_fn)(1)
        for t in prange(N * tiles_per_image, schedule="dynamic"):
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
                                   0, &outv[(n * K + g * Kg) * L + oh0 * OW], L)
                continue
            base = tid * tile_size
            for c in range(C):
                _im2col_plane(im, work, (n * C + c) * H * W, base + c * kh * kw * T, T,
                              H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW)
            for g in range(groups):
                _gemm_rowmajor(gemm_fn, ilp64, False, False, Kg, T, Rg,
                               &wmat[g * Kg * Rg], Rg,
                               &work[base + g * Rg * T], T,
                               0, &outv[(n * K + g * Kg) * L + oh0 * OW], L)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)


def conv_backward_tiled(const real_t[::1] im, const real_t[::1] wmat, const real_t[::1] gy,
                        real_t[::1] gx, real_t[::1] gw_parts, real_t[::1] work,
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t K, Py_ssize_t groups,
                        Py_ssize_t tile_rows, bint want_gx, bint want_gw, int n_threads,
                        size_t gemm_fn, bint ilp64, size_t set_threads_fn):
    """Both gradients of a convolution, one output-row tile at a time (see conv_forward_tiled).

    gy is (N, K, OH·OW). With want_gw, each thread adds gy_tile · cols_tileᵀ into its own
    (K, C/groups·kh·kw) slab of ``gw_parts`` (n_threads slabs, zeroed by the caller; the caller sums
    them). With want_gx, ``gx`` (N, C, H, W), zeroed by the caller, receives
    col2im(Wᵀ · gy_tile) for every tile. Two tiles of an image whose input rows overlap must not
    add into ``gx`` at once, so even tiles run first, then odd ones; the caller makes tiles tall
    enough (tile_rows·sh > dh·(kh − 1) − sh) that tiles two apart never share an input row.
    ``work`` holds 2 × n_threads tiles of C·kh·kw × tile_rows·OW.
    """
    cdef Py_ssize_t R = C * kh * kw, L = OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t tiles_per_image = (OH + tile_rows - 1) // tile_rows
    cdef Py_ssize_t half = (tiles_per_image + 1) // 2
    cdef Py_ssize_t tile_size = R * tile_rows * OW
    cdef Py_ssize_t u, t, n, oh0, oh1, T, c, g, cols, dcols
    cdef int tid, previous = 1, phase
    cdef real_t[::1] gxv = gx
    cdef real_t[::1] gwv = gw_parts
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
                        _im2col_plane(im, work, (n * C + c) * H * W, cols + c * kh * kw * T, T,
                                      H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW)
                    for g in range(groups):          # gw_g += gy_g · cols_gᵀ
                        _gemm_rowmajor(gemm_fn, ilp64, False, True, Kg, Rg, T,
                                       &gy[(n * K + g * Kg) * L + oh0 * OW], L,
                                       &work[cols + g * Rg * T], T,
                                       1, &gwv[(tid * K + g * Kg) * Rg], Rg)
                if want_gx:
                    for g in range(groups):          # dcols_g = W_gᵀ · gy_g
                        _gemm_rowmajor(gemm_fn, ilp64, True, False, Rg, T, Kg,
                                       &wmat[g * Kg * Rg], Rg,
                                       &gy[(n * K + g * Kg) * L + oh0 * OW], L,
                                       0, &work[dcols + g * Rg * T], T)
                    for c in range(C):
                        _col2im_plane(work, gxv, (n * C + c) * H * W, dcols + c * kh * kw * T, T,
                                      H, W, kh, kw, sh, sw, pt, pl, dh, dw, oh0, oh1, OW, False)
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
    """:func:`im2col` on the calling thread: the same result, for small problems."""
    cdef Py_ssize_t p, n, c
    for p in range(N * C):
        n = p // C
        c = p % C
        _im2col_plane(im, col, p * H * W, n * col_n_stride + c * kh * kw * col_row_stride,
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
        _col2im_plane(col, im, p * H * W, n * col_n_stride + c * kh * kw * col_row_stride,
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
            _im2col_plane(im, work, (n * C + c) * H * W, c * kh * kw * T, T,
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
