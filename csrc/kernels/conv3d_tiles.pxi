# 3-D convolution and its gradients: conv_tiles.pxi's tiles over volumes.
#
# The fast twins of im2col/reference.py's conv2d and conv2d_backward with a depth axis added: the
# reference has no 3-D loop; tests check these against torch's conv3d.
#
# A tile is a block of output positions of one image: depths od0 <= od < od1 and rows
# oh0 <= oh < oh1 (all OW columns), with either one depth or all OH rows, so its positions are one
# contiguous run of the output. Its columns are gathered plane by plane with the 2-D routine: for
# channel c, depth tap a and output depth od, the kh·kw rows of input depth z = od·sd − pd + a·dd
# are a 2-D im2col of that (H, W) plane (or zeros where z is padding).

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
                         real_t[::1] work, Geometry3d geom not None, tuple im_strides,
                         Py_ssize_t tile_depth, Py_ssize_t tile_rows, bint out_cl, int n_threads,
                         blas):
    """conv_forward_tiled for volumes: ``out`` (N, K, OD·OH·OW), or with ``out_cl``
    (N, OD·OH·OW, K), := per group W_g · vol2col(im)_g, one tile of tile_depth output depths ×
    tile_rows output rows at a time (tile_depth == 1 or tile_rows == OH). ``im`` is
    (N, C, D, H, W) with element strides ``im_strides``; ``wmat`` is (K, C/groups·kd·kh·kw);
    ``work`` holds n_threads tiles. ``blas`` is an im2col._gemm.NativeBlas.
    """
    cdef Geom3 sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, D = sz.D, H = sz.H, W = sz.W, kd = sz.kd, kh = sz.kh
    cdef Py_ssize_t kw = sz.kw, sd = sz.sd, sh = sz.sh, sw = sz.sw, pd = sz.pd, pt = sz.pt
    cdef Py_ssize_t pl = sz.pl, dd = sz.dd, dh = sz.dh, dw = sz.dw, OD = sz.OD, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW, K = sz.K, groups = sz.groups
    cdef Py_ssize_t im_sn, im_sc, im_sd, im_sh, im_sw
    im_sn, im_sc, im_sd, im_sh, im_sw = im_strides
    cdef Blas lib = _blas(blas, real_t is double)
    cdef size_t gemm_fn = lib.gemm, set_threads_fn = lib.set_threads
    cdef bint ilp64 = lib.ilp64
    cdef Py_ssize_t R = C * kd * kh * kw, L = OD * OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t n_d = (OD + tile_depth - 1) // tile_depth
    cdef Py_ssize_t n_r = (OH + tile_rows - 1) // tile_rows
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
                          Geometry3d geom not None, tuple im_strides, tuple gx_strides, bint gy_cl,
                          Py_ssize_t tile_depth, Py_ssize_t tile_rows,
                          Py_ssize_t phases_d, Py_ssize_t phases_r, int n_threads, blas):
    """conv_backward_tiled for volumes, tiled as conv3d_forward_tiled.

    Tiles whose input regions overlap must not add into ``gx`` at once. The caller picks
    ``phases_d`` so that depth blocks that many apart never share an input depth, and ``phases_r``
    likewise for row blocks; the tiles then run in phases_d·phases_r rounds, each round taking
    the blocks of one residue pair, so any two tiles of a round differ in depth block by a multiple
    of phases_d or, in the same depth block, in row block by a multiple of phases_r.
    ``work`` holds 2 × n_threads tiles; ``gw_parts`` n_threads zeroed (K, C/groups·kd·kh·kw) slabs.
    ``gx`` or ``gw_parts`` is None when that gradient is not wanted.
    """
    cdef Geom3 sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, D = sz.D, H = sz.H, W = sz.W, kd = sz.kd, kh = sz.kh
    cdef Py_ssize_t kw = sz.kw, sd = sz.sd, sh = sz.sh, sw = sz.sw, pd = sz.pd, pt = sz.pt
    cdef Py_ssize_t pl = sz.pl, dd = sz.dd, dh = sz.dh, dw = sz.dw, OD = sz.OD, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW, K = sz.K, groups = sz.groups
    cdef Py_ssize_t im_sn, im_sc, im_sd, im_sh, im_sw
    im_sn, im_sc, im_sd, im_sh, im_sw = im_strides
    cdef Py_ssize_t gx_sn, gx_sc, gx_sd, gx_sh, gx_sw
    gx_sn, gx_sc, gx_sd, gx_sh, gx_sw = gx_strides
    cdef Blas lib = _blas(blas, real_t is double)
    cdef size_t gemm_fn = lib.gemm, set_threads_fn = lib.set_threads
    cdef bint ilp64 = lib.ilp64
    cdef bint want_gx = gx is not None, want_gw = gw_parts is not None
    cdef Py_ssize_t R = C * kd * kh * kw, L = OD * OH * OW, Kg = K // groups, Rg = R // groups
    cdef Py_ssize_t n_d = (OD + tile_depth - 1) // tile_depth
    cdef Py_ssize_t n_r = (OH + tile_rows - 1) // tile_rows
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
                    _vol2col_tile(im, work, cols, T, n * im_sn, C, im_sc, im_sd, im_sh, im_sw,
                                  D, H, W, kd, kh, kw, sd, sh, sw, pd, pt, pl, dd, dh, dw,
                                  od0, od1, oh0, oh1, OW)
                    for g in range(groups):          # gw_g += gy_g · cols_gᵀ
                        gy_at = (((n * L + p0) * K + g * Kg) if gy_cl
                                 else ((n * K + g * Kg) * L + p0))
                        _gemm_rowmajor(gemm_fn, ilp64, gy_cl, True, Kg, Rg, T,
                                       &gy[gy_at], ld_gy, &work[cols + g * Rg * T], T,
                                       1, &gwv[(tid * K + g * Kg) * Rg], Rg)
                if want_gx:
                    for g in range(groups):          # dcols_g = W_gᵀ · gy_g
                        gy_at = (((n * L + p0) * K + g * Kg) if gy_cl
                                 else ((n * K + g * Kg) * L + p0))
                        _gemm_rowmajor(gemm_fn, ilp64, True, gy_cl, Rg, T, Kg,
                                       &wmat[g * Kg * Rg], Rg, &gy[gy_at], ld_gy,
                                       0, &work[dcols + g * Rg * T], T)
                    _col2vol_tile(work, gxv, dcols, T, n * gx_sn, C, gx_sc, gx_sd, gx_sh, gx_sw,
                                  D, H, W, kd, kh, kw, sd, sh, sw, pd, pt, pl, dd, dh, dw,
                                  od0, od1, oh0, oh1, OW)
        if set_threads_fn:
            (<set_threads_f>set_threads_fn)(previous)
