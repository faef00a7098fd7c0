# Channels-last convolution and its gradients: tiles of colsᵀ, one row per output pixel.
#
# The fast twins of im2col/reference.py's conv2d and conv2d_backward for NHWC images, with the
# column matrix transposed (a tile's rows are output pixels) and its columns in (group, ki, kj, c)
# order; _pixel_rows is reference.im2col's loop for a run of output pixels, and its adjoint.
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
    cdef Py_ssize_t p, n, pos, oh, ow0, ow1, ow, i, j, g, c, h, tap, src, dst, row, lo, hi
    if groups == 1 and dw == 1 and im_sc == 1 and im_sw == C:
        _pixel_rows_packed(im, rows, gim, add, base, p0, p1, im_sn, im_sh,
                           C, H, W, kh, kw, sh, sw, pt, pl, dh, OH, OW)
        return
    p = p0
    while p < p1:                             # one output row (n, oh) at a time: ow0 <= ow < ow1
        n = p // L
        pos = p - n * L
        oh = pos // OW
        ow0 = pos - oh * OW
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


def conv_forward_nhwc(const real_t[::1] im, const real_t[::1] wperm, real_t[::1] out,
                      real_t[::1] work, Geometry2d geom not None, tuple im_strides,
                      Py_ssize_t tile_pixels, bint span, bint pointwise, bint out_cl, int n_threads,
                      blas):
    """``out`` := per group colsᵀ_g · W_perm_gᵀ, one tile of output pixels at a time.

    ``im`` is (N, C, H, W) with element strides im_s* (fast when im_sc = 1, channels-last).
    ``wperm`` is (K, kh·kw·C/groups), the weight permuted to (K, kh, kw, C/groups). ``out`` is
    channels-last (N, OH·OW, K) with ``out_cl``, else (N, K, OH·OW) (then ``span`` must be off).
    ``work`` holds n_threads tiles of tile_pixels × C·kh·kw. ``pointwise`` (1×1, stride 1, no
    padding or dilation, im_sc = 1, pixel l of image n at n·im_sn + l·im_sw): the input already is
    colsᵀ, read in place with row stride im_sw, and ``work`` is not used.
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
    cdef Py_ssize_t Cg = C // groups
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
                       Geometry2d geom not None, tuple im_strides, tuple gx_strides, bint gy_cl,
                       Py_ssize_t tile_pixels, bint span, bint pointwise, int n_threads, blas):
    """Both gradients of conv_forward_nhwc, one tile of output pixels at a time.

    ``gx`` or ``gw_parts`` is None when that gradient is not wanted (want_gx, want_gw below).
    ``im`` (read only with want_gw) and ``gx`` are (N, C, H, W), element strides im_s*, gx_s*.
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
    cdef Py_ssize_t Cg = C // groups
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
