# One-thread twins of im2col, col2im and the tiled forward, for small problems: no OpenMP region.
#
# The same plane routines as planes.pxi and conv_tiles.pxi (so the same loops of
# im2col/reference.py's im2col, col2im and conv2d, and the same bits), run on the calling thread.
#
# On the 1×1×5×5 teaching shape the kernel call alone took 1.5 µs, of which the work is about
# 0.1: entering an OpenMP region cost about 0.55 µs even with num_threads=1 (with the GIL
# released and retaken around it), and a fused def function's type dispatch about 0.3 µs.
# These run the same plane routines serially, holding the GIL, for problems small enough that the
# callers would run them on one thread anyway; im2col/_plans.py calls them through their
# specialisations (``im2col_serial["float"]``), which skips the dispatch.

def im2col_serial(const plane_t[::1] im, plane_t[::1] col, Geometry2d geom not None,
                  Py_ssize_t col_n_stride, Py_ssize_t col_row_stride):
    """:func:`im2col` on the calling thread: the same result, for small problems. ``im`` is
    C-contiguous (N, C, H, W)."""
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t p, n, c
    for p in range(N * C):
        n = p // C
        c = p % C
        _im2col_plane(im, col, p * H * W, W, 1, n * col_n_stride + c * kh * kw * col_row_stride,
                      col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW)


def col2im_serial(const real_t[::1] col, real_t[::1] im, Geometry2d geom not None,
                  Py_ssize_t col_n_stride, Py_ssize_t col_row_stride):
    """:func:`col2im` on the calling thread, any stride (the adds into each pixel come in the
    same order as in col2im's phased route, so the sums are bit for bit the same)."""
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t p, n, c
    for p in range(N * C):
        n = p // C
        c = p % C
        _col2im_plane(col, im, p * H * W, W, 1, n * col_n_stride + c * kh * kw * col_row_stride,
                      col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW, True)


def conv_forward_serial(const real_t[::1] im, const real_t[::1] wmat, real_t[::1] out,
                        real_t[::1] work, Geometry2d geom not None, Py_ssize_t tile_rows,
                        bint pointwise, blas):
    """:func:`conv_forward_tiled` with one thread: the same tiles and GEMM calls in the same
    order, so the same bits. ``work`` holds one tile of C·kh·kw × tile_rows·OW."""
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW, K = sz.K, groups = sz.groups
    cdef Blas lib = _blas(blas, real_t is double)
    cdef size_t gemm_fn = lib.gemm, set_threads_fn = lib.set_threads
    cdef bint ilp64 = lib.ilp64
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
