# The BLAS behind a thin layer: a Fortran-style ?gemm reached through a function pointer, and
# gemm(), one product's columns split over OpenMP threads, each calling the BLAS single-threaded.
#
# No loop of im2col/reference.py: it multiplies with NumPy's `@` (`w_mat @ cols` in its conv2d).
# The tiled convolutions (conv_tiles.pxi, conv3d_tiles.pxi, conv_nhwc.pxi, serial.pxi) call
# _gemm_rowmajor on each tile, inside their parallel loop, for this reason:
#
# The whole column matrix of a large layer is tens of MB: written once by im2col and read once by
# the GEMM, it costs as much memory traffic as the GEMM costs compute. Here each thread instead
# unrolls one tile (a few output rows of one image) into its own cache-sized buffer and multiplies
# it straight away with a single-threaded BLAS call, writing the result in place in the output.
#
# The BLAS is reached through a function pointer to a Fortran-style ?gemm (column-major), found
# by im2col/_gemm.py in a library the process already loaded (MKL inside torch, or NumPy's
# OpenBLAS), with 32- or 64-bit integers. Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ.

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
                          const double*, const double*, const int64_t*,
                          const double*, const int64_t*,
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
    cdef int m32 = <int>N, n32 = <int>M, k32 = <int>K
    cdef int lda32 = <int>ldb, ldb32 = <int>lda, ldc32 = <int>ldc
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
