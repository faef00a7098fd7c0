# The general path: im2col and col2im over 1, 2 or 3 spatial axes with any padding mode.
#
# These kernels trust their arguments; im2col/_nd.py checks everything and
# im2col/_nd_drivers.py builds the tables.
#
# The padding mode never reaches the kernels. For each spatial axis, _nd_drivers.py builds a table
# src[k, o]: the input index that kernel tap k reads at output position o, already reflected,
# replicated or wrapped, or -1 where it reads the constant pad value. The kernels then only gather
# (im2col) or scatter-add (col2im) through three tables, so no padded copy of the input is made and
# one loop serves every mode and 1-D (D = H = 1), 2-D (D = 1) and 3-D inputs.
#
# The fast twin of im2col/reference.py's im2col and col2im loops, for any rank and padding mode:
# the reference's `if 0 <= h < H and 0 <= w < W` becomes a table lookup.
#
# Layout. `im` is a 1-D buffer holding an (N, C, D, H, W) batch with any non-negative element
# strides (sN, sC, sD, sH, sW) (C-contiguous, channels-last, or a strided view); `col` is
# (N, C*kd*kh*kw, L) with row ((c*kd + a)*kh + b)*kw + e and column (od*OH + oh)*OW + ow: torch's
# unfold layout, with channel slowest and the last kernel axis fastest.

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from cython.parallel cimport prange

# im2col moves elements as unsigned integers of the element's width (any dtype, bit for bit).
ctypedef fused moved_t:
    uint8_t
    uint16_t
    uint32_t
    uint64_t

# col2im adds, so it needs the arithmetic type.
ctypedef fused real_t:
    float
    double


def im2col_nd(const moved_t[::1] im, moved_t[::1] col, tables, tuple w_span,
              Py_ssize_t N, Py_ssize_t C, tuple im_strides, moved_t pad_value, int n_threads):
    """col[n, row, l] = im[n, c, td[a, od], th[b, oh], tw[e, ow]], or pad_value where a table is -1;
    ``tables`` is (td, th, tw) (NdGeometry.tables), im's element strides are
    ``im_strides`` = (s_n, s_c, s_d, s_h, s_w).

    Along the last axis the table is affine inside the input, whatever the mode: for
    w_lo[e] <= ow < w_hi[e], tw[e, ow] = ow·w_step + w_off[e], ``w_span`` = (w_lo, w_hi, w_off,
    w_step) (NdGeometry.w_span). That stretch is copied without the table (a contiguous copy when
    w_step and s_w are 1); only the borders are looked up."""
    cdef const int64_t[:, ::1] td, th, tw
    cdef const int64_t[::1] w_lo, w_hi, w_off
    cdef Py_ssize_t w_step, s_n, s_c, s_d, s_h, s_w
    td, th, tw = tables
    w_lo, w_hi, w_off, w_step = w_span
    s_n, s_c, s_d, s_h, s_w = im_strides
    cdef Py_ssize_t kd = td.shape[0], kh = th.shape[0], kw = tw.shape[0]
    cdef Py_ssize_t OD = td.shape[1], OH = th.shape[1], OW = tw.shape[1]
    cdef Py_ssize_t L = OD * OH * OW, taps = kd * kh * kw
    cdef Py_ssize_t p, a, b, e, od, oh, ow, src_base, dst, sd, sh, sw, row, lo, hi, off
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=n_threads):
            # plane p = n*C + c: its rows start at p*taps*L in (N, C*taps, L)
            src_base = (p // C) * s_n + (p % C) * s_c
            dst = p * taps * L
            for a in range(kd):
                for b in range(kh):
                    for e in range(kw):
                        lo, hi, off = w_lo[e], w_hi[e], w_off[e]
                        for od in range(OD):
                            sd = td[a, od]
                            for oh in range(OH):
                                sh = th[b, oh]
                                if sd < 0 or sh < 0:
                                    for ow in range(OW):
                                        col[dst + ow] = pad_value
                                    dst = dst + OW
                                    continue
                                row = src_base + sd * s_d + sh * s_h
                                for ow in range(lo):
                                    sw = tw[e, ow]
                                    col[dst + ow] = pad_value if sw < 0 else im[row + sw * s_w]
                                if w_step == 1 and s_w == 1:
                                    for ow in range(lo, hi):
                                        col[dst + ow] = im[row + off + ow]
                                else:
                                    for ow in range(lo, hi):
                                        col[dst + ow] = im[row + (ow * w_step + off) * s_w]
                                for ow in range(hi, OW):
                                    sw = tw[e, ow]
                                    col[dst + ow] = pad_value if sw < 0 else im[row + sw * s_w]
                                dst = dst + OW


def col2im_nd(const real_t[::1] col, real_t[::1] im, tables, tuple w_span,
              Py_ssize_t N, Py_ssize_t C, tuple dhw, tuple im_strides, int n_threads):
    """The adjoint of im2col_nd: zero ``im`` (spatial size ``dhw`` = (D, H, W), element strides
    ``im_strides``), then add every column entry into the pixel it was read from (the same affine
    stretch along the last axis)."""
    cdef const int64_t[:, ::1] td, th, tw
    cdef const int64_t[::1] w_lo, w_hi, w_off
    cdef Py_ssize_t w_step, D, H, W, s_n, s_c, s_d, s_h, s_w
    td, th, tw = tables
    w_lo, w_hi, w_off, w_step = w_span
    D, H, W = dhw
    s_n, s_c, s_d, s_h, s_w = im_strides
    cdef Py_ssize_t kd = td.shape[0], kh = th.shape[0], kw = tw.shape[0]
    cdef Py_ssize_t OD = td.shape[1], OH = th.shape[1], OW = tw.shape[1]
    cdef Py_ssize_t L = OD * OH * OW, taps = kd * kh * kw
    cdef Py_ssize_t p, z, y, x, a, b, e, od, oh, ow, dst_base, src, sd, sh, sw, row, lo, hi, off
    with nogil:
        # Parallel over (image, channel) planes only: every write of plane p lands in plane p.
        for p in prange(N * C, schedule="static", num_threads=n_threads):
            dst_base = (p // C) * s_n + (p % C) * s_c
            for z in range(D):
                for y in range(H):
                    for x in range(W):
                        im[dst_base + z * s_d + y * s_h + x * s_w] = 0
            src = p * taps * L
            for a in range(kd):
                for b in range(kh):
                    for e in range(kw):
                        lo, hi, off = w_lo[e], w_hi[e], w_off[e]
                        for od in range(OD):
                            sd = td[a, od]
                            for oh in range(OH):
                                sh = th[b, oh]
                                if sd < 0 or sh < 0:
                                    src = src + OW
                                    continue
                                row = dst_base + sd * s_d + sh * s_h
                                # in ow order, as one loop over the table would add them
                                for ow in range(lo):
                                    sw = tw[e, ow]
                                    if sw >= 0:
                                        im[row + sw * s_w] += col[src + ow]
                                if w_step == 1 and s_w == 1:
                                    for ow in range(lo, hi):
                                        im[row + off + ow] += col[src + ow]
                                else:
                                    for ow in range(lo, hi):
                                        im[row + (ow * w_step + off) * s_w] += col[src + ow]
                                for ow in range(hi, OW):
                                    sw = tw[e, ow]
                                    if sw >= 0:
                                        im[row + sw * s_w] += col[src + ow]
                                src = src + OW
