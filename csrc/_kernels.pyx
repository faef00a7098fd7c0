# The fast path: im2col, col2im and the tiled convolutions over typed memoryviews, nogil, OpenMP.
#
# These kernels trust their arguments. Every shape, size and dtype is checked once, above them, by
# im2col/_validation.py; the kernels only do index arithmetic (after Caffe's and PyTorch's im2col).
# The algorithmic reference, a plain NumPy version of the same loops, is im2col/reference.py.
# One extension module (`im2col._kernels`), its code split by concern into the files included at
# the bottom, each opening with what it holds and the loop of reference.py it is the fast twin of:
#
#   kernels/geometry.pxi       the sizes every entry point takes, as one object (Geometry2d, 3d)
#   kernels/planes.pxi         NCHW im2col, col2im and vol2col, one (image, channel) plane a task
#   kernels/channels_last.pxi  channels-last im2col and col2im, tiles of channels × pixels
#   kernels/gemm.pxi           the BLAS behind a function pointer; gemm() over OpenMP threads
#   kernels/conv_tiles.pxi     2-D convolution and its gradients, a GEMM per tile of output rows
#   kernels/conv3d_tiles.pxi   the same tiles over volumes
#   kernels/conv_nhwc.pxi      channels-last convolution, tiles of colsᵀ (a row per output pixel)
#   kernels/serial.pxi         one-thread twins of im2col, col2im and the tiled forward
#   kernels/copies.pxi         1×1 kernels: the column matrix is the image, so one copy
#
# Layout. `im` is a 1-D buffer holding an (N, C, H, W) image batch with any non-negative element
# strides: pixel (n, c, h, w) lives at n*im_sn + c*im_sc + h*im_sh + w*im_sw. C-contiguous NCHW
# has im_sw = 1 (the fast, vectorised inner loops); channels-last NHWC has im_sc = 1, im_sw = C.
# The strides come as one tuple (im_sn, im_sc, im_sh, im_sw), numpy's axis order, element units.
# `col` is flattened too; the element for image n, column-matrix row r = (c*kh + i)*kw + j and
# output position l = oh*OW + ow lives at   n*col_n_stride + r*col_row_stride + l.
#   torch's unfold layout (N, C*kh*kw, L):  col_n_stride = C*kh*kw*L, col_row_stride = L
#   batch folded into columns (C*kh*kw, N*L): col_n_stride = L,       col_row_stride = N*L
# The second one lets a convolution over the whole batch be a single GEMM.
#
# Compiler directives (bounds checks off, C division) are set in setup.py; IM2COL_DEBUG=1 turns
# bounds checking back on, which is why every access goes through a memoryview, not a raw pointer.

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
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

# The channels-last tiles move 4- and 8-byte elements through SSE2 registers (csrc/_transpose.h).
ctypedef fused wide_t:
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


include "kernels/geometry.pxi"
include "kernels/planes.pxi"
include "kernels/channels_last.pxi"
include "kernels/gemm.pxi"
include "kernels/conv_tiles.pxi"
include "kernels/conv3d_tiles.pxi"
include "kernels/conv_nhwc.pxi"
include "kernels/serial.pxi"
include "kernels/copies.pxi"
