# The sizes every kernel entry point takes, as one object instead of a run of positional scalars.
#
# Geometry2d and Geometry3d copy a checked geometry of the Python layer (im2col._validation.Geometry
# for 2-D, im2col._nd.NdGeometry for 3-D) into a C struct, reading each field by its name, here and
# nowhere else: a caller cannot pass kh where kw belongs, and a kernel reads plain C fields. They
# are the kernels' twin of the sizes reference.py computes at the top of each function.
# Built once per call (the plans of im2col/_plans.py build theirs once per plan).


cdef struct Geom:
    # input (N, C, H, W); kernel kh × kw; stride sh, sw; padding top pt, left pl (bottom and right
    # follow from the output size); dilation dh, dw; output (OH, OW); for a convolution, K output
    # channels in `groups` groups (0 and 1 for im2col and col2im, which do not read them)
    Py_ssize_t N, C, H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, K, groups


cdef struct Geom3:
    # the same for volumes: input (N, C, D, H, W), kernel kd × kh × kw, output (OD, OH, OW)
    Py_ssize_t N, C, D, H, W, kd, kh, kw, sd, sh, sw, pd, pt, pl, dd, dh, dw, OD, OH, OW, K, groups


cdef class Geometry2d:
    """The sizes a 2-D kernel reads, copied by field name from a checked ``Geometry``.

    ``g`` is an :class:`im2col._validation.Geometry`; ``N`` (if not negative) replaces ``g.N``,
    for a chunk of the batch; ``K`` and ``groups`` are a convolution's output channels and groups.
    """

    cdef Geom g

    def __init__(self, g, Py_ssize_t N=-1, Py_ssize_t K=0, Py_ssize_t groups=1):
        self.g.N = g.N if N < 0 else N
        self.g.C, self.g.H, self.g.W = g.C, g.H, g.W
        self.g.kh, self.g.kw, self.g.sh, self.g.sw = g.kh, g.kw, g.sh, g.sw
        self.g.pt, self.g.pl, self.g.dh, self.g.dw = g.pt, g.pl, g.dh, g.dw
        self.g.OH, self.g.OW = g.OH, g.OW
        self.g.K, self.g.groups = K, groups

    def __repr__(self):
        return f"Geometry2d({self.g})"


cdef class Geometry3d:
    """The sizes a 3-D kernel reads, copied by field name from a checked ``NdGeometry`` of 3 axes.

    ``g`` is an :class:`im2col._nd.NdGeometry` (its ``size``, ``k``, ``stride``, ``pads`` (the
    ``before`` of each pair is read), ``dilation`` and ``out``); it holds no batch or channel count,
    so ``N`` and ``C`` are given, and ``K``, ``groups`` as for :class:`Geometry2d`.
    """

    cdef Geom3 g

    def __init__(self, g, Py_ssize_t N, Py_ssize_t C, Py_ssize_t K=0, Py_ssize_t groups=1):
        (pd, _), (pt, _), (pl, _) = g.pads
        self.g.N, self.g.C = N, C
        self.g.D, self.g.H, self.g.W = g.size
        self.g.kd, self.g.kh, self.g.kw = g.k
        self.g.sd, self.g.sh, self.g.sw = g.stride
        self.g.pd, self.g.pt, self.g.pl = pd, pt, pl
        self.g.dd, self.g.dh, self.g.dw = g.dilation
        self.g.OD, self.g.OH, self.g.OW = g.out
        self.g.K, self.g.groups = K, groups

    def __repr__(self):
        return f"Geometry3d({self.g})"


cdef struct Blas:
    # a Fortran-style ?gemm of the element type, its integer width, and the function setting the
    # calling thread's BLAS thread count (0 if none): see gemm.pxi
    size_t gemm
    bint ilp64
    size_t set_threads


cdef Blas _blas(blas, bint double) except *:
    # The routine for float32 (double = False) or float64 of an im2col._gemm.NativeBlas, by name.
    cdef Blas b
    b.gemm = blas.dgemm if double else blas.sgemm
    b.ilp64 = blas.ilp64
    b.set_threads = blas.set_threads_local
    return b
