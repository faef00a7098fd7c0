# 2-D convolution and its gradients with the GEMM inside the parallel loop, a tile of output rows
# at a time: each thread unrolls a tile with planes.pxi's routines into its own cache-sized buffer
# and multiplies it at once (gemm.pxi), so the column matrix never exists in full.
#
# The fast twins of im2col/reference.py's conv2d (im2col, then `w_mat @ cols` per group) and
# conv2d_backward (grad_weight = gy · colsᵀ, grad_input = col2im(Wᵀ · gy)), tile by tile.


cdef inline const real_t* _at(const real_t[::1] im, real_t[::1] work, int pointwise,
                              Py_ssize_t cols, Py_ssize_t row, bint trans,
                              Py_ssize_t ld) noexcept nogil:
    # Address of row `row` of a column block: in the input itself (pointwise) or in a tile.
    cdef Py_ssize_t offset = cols + (row if trans else row * ld)
    if pointwise:
        return &im[offset]
    return &work[offset]


def conv_forward_tiled(const real_t[::1] im, const real_t[::1] wmat, real_t[::1] out,
                       real_t[::1] work, Geometry2d geom not None, tuple im_strides,
                       Py_ssize_t tile_rows, int pointwise, bint out_cl, int n_threads, blas):
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
    ``blas`` is an im2col._gemm.NativeBlas; its ``set_threads_local`` (0 if none) sets the calling
    thread's BLAS thread count, and each worker asks for 1, since the tiles are the parallelism.
    """
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW, K = sz.K, groups = sz.groups
    cdef Py_ssize_t im_sn, im_sc, im_sh, im_sw
    im_sn, im_sc, im_sh, im_sw = im_strides
    cdef Blas lib = _blas(blas, real_t is double)
    cdef size_t gemm_fn = lib.gemm, set_threads_fn = lib.set_threads
    cdef bint ilp64 = lib.ilp64
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
                        Geometry2d geom not None, tuple im_strides, tuple gx_strides, bint gy_cl,
                        Py_ssize_t tile_rows, int n_threads, blas):
    """Both gradients of a convolution, one output-row tile at a time (see conv_forward_tiled).

    ``gx`` or ``gw_parts`` is None when that gradient is not wanted (want_gx, want_gw below).
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
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW, K = sz.K, groups = sz.groups
    cdef Py_ssize_t im_sn, im_sc, im_sh, im_sw
    im_sn, im_sc, im_sh, im_sw = im_strides
    cdef Py_ssize_t gx_sn, gx_sc, gx_sh, gx_sw
    gx_sn, gx_sc, gx_sh, gx_sw = gx_strides
    cdef Blas lib = _blas(blas, real_t is double)
    cdef size_t gemm_fn = lib.gemm, set_threads_fn = lib.set_threads
    cdef bint ilp64 = lib.ilp64
    cdef bint want_gx = gx is not None, want_gw = gw_parts is not None
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
                        gy_at = (((n * L + oh0 * OW) * K + g * Kg) if gy_cl
                                 else ((n * K + g * Kg) * L + oh0 * OW))
                        _gemm_rowmajor(gemm_fn, ilp64, gy_cl, True, Kg, Rg, T,
                                       &gy[gy_at], ld_gy,
                                       &work[cols + g * Rg * T], T,
                                       1, &gwv[(tid * K + g * Kg) * Rg], Rg)
                if want_gx:
                    for g in range(groups):          # dcols_g = W_gᵀ · gy_g
                        gy_at = (((n * L + oh0 * OW) * K + g * Kg) if gy_cl
                                 else ((n * K + g * Kg) * L + oh0 * OW))
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
