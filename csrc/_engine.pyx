# The convolution engine's thin Cython wrapper: the C drivers and micro-kernels of csrc/engine/,
# called with arrays the Python layer (im2col/_engine.py) has already checked and allocated.
from cython cimport floating
from libc.stdint cimport int64_t

cdef extern from "engine/ukernel.h":
    int ENGINE_PORTABLE, ENGINE_AVX2, ENGINE_AVX512
    ctypedef struct ukernel_info_f32:
        int mr, nr
        void (*f32)(int64_t, const float *, const float *, float *, int64_t, int, int,
                    const float *, int) noexcept nogil
    ctypedef struct ukernel_info_f64:
        int mr, nr
        void (*f64)(int64_t, const double *, const double *, double *, int64_t, int, int,
                    const double *, int) noexcept nogil
    int engine_best_isa() noexcept nogil
    ukernel_info_f32 engine_ukernel_f32(int isa) noexcept nogil
    ukernel_info_f64 engine_ukernel_f64(int isa) noexcept nogil

cdef extern from "engine/conv.h":
    ctypedef struct engine_geom:
        int64_t N, C, H, W, K, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, groups
    int engine_conv2d_f32(const float *, const float *, const float *, float *,
                          const engine_geom *, int, int) noexcept nogil
    int engine_conv2d_f64(const double *, const double *, const double *, double *,
                          const engine_geom *, int, int) noexcept nogil

cdef extern from "engine/depthwise.h":
    int engine_depthwise2d_f32(const float *, const float *, const float *, float *,
                               const engine_geom *, int, int) noexcept nogil
    int engine_depthwise2d_f64(const double *, const double *, const double *, double *,
                               const engine_geom *, int, int) noexcept nogil
    int engine_depthwise2d_backward_f32(const float *, const float *, const float *, float *,
                                        float *, const engine_geom *, int, int) noexcept nogil
    int engine_depthwise2d_backward_f64(const double *, const double *, const double *, double *,
                                        double *, const engine_geom *, int, int) noexcept nogil

cdef engine_geom _read_geom(g, int64_t K, int64_t groups) except *:
    # The C struct of a checked im2col._geometry.Geometry, each field read by its name (as
    # csrc/kernels/geometry.pxi does for the other kernels): a caller cannot put kh where kw
    # belongs. K and groups are the convolution's output channels and groups, which Geometry does
    # not hold.
    cdef engine_geom e
    e.N, e.C, e.H, e.W = g.N, g.C, g.H, g.W
    e.kh, e.kw, e.sh, e.sw = g.kh, g.kw, g.sh, g.sw
    e.pt, e.pl, e.dh, e.dw = g.pt, g.pl, g.dh, g.dw
    e.OH, e.OW = g.OH, g.OW
    e.K, e.groups = K, groups
    return e


cdef check_depthwise(str fn, const engine_geom *g):
    if g.groups != g.C or g.C < 1 or g.K % g.C:
        raise ValueError(f"{fn}: groups must equal C and divide K, "
                         f"got C={g.C}, K={g.K}, groups={g.groups}")


ISA_NAMES = {"portable": ENGINE_PORTABLE, "avx2": ENGINE_AVX2, "avx512": ENGINE_AVX512}


def best_isa():
    """The best instruction set this CPU runs: 'avx512', 'avx2' or 'portable'."""
    cdef int isa = engine_best_isa()
    return {ENGINE_PORTABLE: "portable", ENGINE_AVX2: "avx2", ENGINE_AVX512: "avx512"}[isa]


def ukernel_shape(int isa, bint double):
    """(MR, NR) of the micro-kernel of ``isa`` (the portable one's when the CPU lacks it)."""
    if double:
        d = engine_ukernel_f64(isa)
        return d.mr, d.nr
    f = engine_ukernel_f32(isa)
    return f.mr, f.nr


def ukernel(int isa, int64_t k, floating[::1] A, floating[::1] B, floating[::1] C, int64_t ldc,
            int m, int n, floating[::1] bias, bint accumulate=False):
    """Test entry point: one micro-kernel call, C[i*ldc + j] = sum_p A[p*MR+i]·B[p*NR+j] + bias[i]
    for i < m, j < n (A, B packed and zero-padded by the caller; bias of length 0 means none);
    with ``accumulate``, the sums are added to C instead."""
    cdef const floating *bp = &bias[0] if bias.shape[0] else NULL
    if floating is float:
        engine_ukernel_f32(isa).f32(k, &A[0], &B[0], &C[0], ldc, m, n, bp, accumulate)
    else:
        engine_ukernel_f64(isa).f64(k, &A[0], &B[0], &C[0], ldc, m, n, bp, accumulate)


def conv2d(const floating[::1] x, const floating[::1] w, const floating[::1] bias, floating[::1] y,
           geom, int64_t K, int64_t groups, int isa, int n_threads):
    """y = conv2d(x, w) + bias for C-contiguous NCHW x, w, y (flattened); ``geom`` is the checked
    :class:`im2col._geometry.Geometry`, with ``K`` kernels in ``groups`` groups; bias of length 0
    means none."""
    cdef engine_geom g = _read_geom(geom, K, groups)
    cdef const floating *bp = &bias[0] if bias.shape[0] else NULL
    cdef int rc
    with nogil:
        if floating is float:
            rc = engine_conv2d_f32(&x[0], &w[0], bp, &y[0], &g, isa, n_threads)
        else:
            rc = engine_conv2d_f64(&x[0], &w[0], bp, &y[0], &g, isa, n_threads)
    if rc != 0:
        raise MemoryError("im2col engine: could not allocate the packed weights or column blocks")


def depthwise2d(const floating[::1] x, const floating[::1] w, const floating[::1] bias,
                floating[::1] y, geom, int64_t K, int64_t groups, int isa, int n_threads):
    """y = depthwise conv2d(x, w) + bias (groups == C, K = m·C) for C-contiguous NCHW x, w, y
    (flattened); ``geom``, ``K`` and ``groups`` as for :func:`conv2d`; bias of length 0 means
    none."""
    cdef engine_geom g = _read_geom(geom, K, groups)
    check_depthwise("depthwise2d", &g)
    cdef const floating *bp = &bias[0] if bias.shape[0] else NULL
    cdef int rc
    with nogil:
        if floating is float:
            rc = engine_depthwise2d_f32(&x[0], &w[0], bp, &y[0], &g, isa, n_threads)
        else:
            rc = engine_depthwise2d_f64(&x[0], &w[0], bp, &y[0], &g, isa, n_threads)
    if rc != 0:
        raise MemoryError("im2col engine: could not allocate the depthwise band buffers")


def depthwise2d_backward(const floating[::1] gy, const floating[::1] x, const floating[::1] w,
                         floating[::1] gx, floating[::1] gw, geom, int64_t K, int64_t groups,
                         int isa, int n_threads):
    """The gradients of :func:`depthwise2d` for grad_output ``gy`` (N, K, OH, OW), flattened:
    ``gx`` (N, C, H, W) and ``gw`` (K, 1, kh, kw) summed over the batch; an array of length 0 is
    not computed (and then ``x`` is not read for a length-0 ``gw``); ``geom``, ``K`` and ``groups``
    as for :func:`conv2d`."""
    cdef engine_geom g = _read_geom(geom, K, groups)
    check_depthwise("depthwise2d_backward", &g)
    if gy.shape[0] == 0 or (gw.shape[0] and x.shape[0] == 0):
        raise ValueError("depthwise2d_backward: gy (and x, for gw) must not be empty")
    cdef floating *gxp = &gx[0] if gx.shape[0] else NULL
    cdef floating *gwp = &gw[0] if gw.shape[0] else NULL
    cdef const floating *xp = &x[0] if x.shape[0] else NULL
    cdef int rc
    with nogil:
        if floating is float:
            rc = engine_depthwise2d_backward_f32(&gy[0], xp, &w[0], gxp, gwp, &g, isa, n_threads)
        else:
            rc = engine_depthwise2d_backward_f64(&gy[0], xp, &w[0], gxp, gwp, &g, isa, n_threads)
    if rc != 0:
        raise MemoryError("im2col engine: could not allocate the depthwise backward's buffers")
