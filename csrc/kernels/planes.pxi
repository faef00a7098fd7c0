# NCHW im2col, col2im and vol2col: one (image, channel) plane per task, any element strides.
#
# The fast twins of the loops of im2col/reference.py's im2col and col2im (vol2col adds a depth
# axis): _im2col_plane is the loop over (i, j, oh, ow) of one channel, its padding split off per
# kernel offset so the inner copy never branches; _col2im_plane is its adjoint (the same walk,
# adding back) and _col2im_plane_phased the same sums through a contiguous scratch plane.


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
    # OH of them, or one tile of a tiled GEMM). Column (oh, ow) of a row sits at
    # (oh - oh_begin)*OW + ow.
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


def im2col(const moved_t[::1] im, moved_t[::1] col, Geometry2d geom not None, tuple im_strides,
           Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Unroll every receptive field of ``im`` (N, C, H, W; element strides im_s*) into ``col``.

    Writes every element of the column matrix, padding included; ``col`` may be uninitialised.
    """
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t im_sn, im_sc, im_sh, im_sw
    im_sn, im_sc, im_sh, im_sw = im_strides
    cdef Py_ssize_t p, n, c
    cdef Py_ssize_t rows_per_channel = kh * kw
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=n_threads):
            n = p // C
            c = p % C
            _im2col_plane(im, col, n * im_sn + c * im_sc, im_sh, im_sw,
                          n * col_n_stride + c * rows_per_channel * col_row_stride,
                          col_row_stride, H, W, kh, kw, sh, sw, pt, pl, dh, dw, 0, OH, OW)


def vol2col(const moved_t[::1] im, moved_t[::1] col, Geometry3d geom not None, tuple im_strides,
            int n_threads):
    """The 3-D im2col with zero padding: ``col`` (N, C·kd·kh·kw, OD·OH·OW) from ``im``
    (N, C, D, H, W).

    For channel c, depth tap a and output depth od, the kh·kw rows of input depth
    z = od·sd − pd + a·dd are the 2-D im2col of that (H, W) plane, or zeros where z is padding:
    so each (n, c, a, od) is one call of the plane routine, with its contiguous row copies.
    Writes every element of ``col``.
    """
    cdef Geom3 sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, D = sz.D, H = sz.H, W = sz.W, kd = sz.kd, kh = sz.kh
    cdef Py_ssize_t kw = sz.kw, sd = sz.sd, sh = sz.sh, sw = sz.sw, pd = sz.pd, pt = sz.pt
    cdef Py_ssize_t pl = sz.pl, dd = sz.dd, dh = sz.dh, dw = sz.dw, OD = sz.OD, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t im_sn, im_sc, im_sd, im_sh, im_sw
    im_sn, im_sc, im_sd, im_sh, im_sw = im_strides
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


def col2im(const real_t[::1] col, real_t[::1] im, real_t[::1] scratch, Geometry2d geom not None,
           tuple im_strides, Py_ssize_t col_n_stride, Py_ssize_t col_row_stride, int n_threads):
    """Fold ``col`` back into ``im`` (N, C, H, W; element strides im_s*), summing overlaps;
    overwrites all of ``im``.

    Parallel over (image, channel) planes: each plane is written by exactly one thread, so the
    accumulation never races (the rows of one channel all add into the same plane). With a
    horizontal stride above 1 or a plane whose rows are not contiguous (im_sw > 1, channels-last),
    ``scratch`` holds n_threads × H·sw·ceil(W/sw) elements (see _col2im_plane_phased); otherwise
    it is not used.
    """
    cdef Geom sz = geom.g
    cdef Py_ssize_t N = sz.N, C = sz.C, H = sz.H, W = sz.W, kh = sz.kh, kw = sz.kw, sh = sz.sh
    cdef Py_ssize_t sw = sz.sw, pt = sz.pt, pl = sz.pl, dh = sz.dh, dw = sz.dw, OH = sz.OH
    cdef Py_ssize_t OW = sz.OW
    cdef Py_ssize_t im_sn, im_sc, im_sh, im_sw
    im_sn, im_sc, im_sh, im_sw = im_strides
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
