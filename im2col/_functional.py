"""The public column transforms: im2col, col2im and output_size.

Each function converts its inputs (tensor → array, contiguous only when needed), validates them
(:mod:`im2col._validation`), allocates the output and calls a driver that picks the Cython kernel
(:mod:`im2col._im2col_drivers` for 2-D zero padding, :mod:`im2col._nd` for every other case), which
trusts what it is given. Names, argument order and defaults follow ``torch.nn.functional`` so code
ports by changing the import.

im2col and col2im first look for a plan of the same small call (:mod:`im2col._plans`); their full
path is the private function of the same name right below each (``_im2col``, ``_col2im``). The 2-D
convolutions live in :mod:`im2col._conv2d` and are importable from here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _nd, _plans
from ._autograd import autograd_call

# imported from here by im2col.nn, _conv1d, plots and the CLI, and (with _conv2d_geometry) the tests
from ._conv2d import _conv2d as _conv2d
from ._conv2d import _conv2d_geometry as _conv2d_geometry
from ._conv2d import conv2d as conv2d
from ._conv2d import conv2d_backward as conv2d_backward
from ._conv2d import conv_transpose2d as conv_transpose2d
from ._geometry import IntOrPair, PaddingArg, as_pair, col2im_dims, geometry, im2col_dims, parse_padding
from ._im2col_drivers import _MOVER, _col2im_into, _empty_image, _im2col_into
from ._plans import plain as _plain
from ._validation import (
    batched,
    check_alloc,
    check_float,
    from_channels_first,
    is_tensor,
    layout_dims,
    needs_grad,
    out_array,
    parse_layout,
    to_array,
    to_channels_first,
    wrap_like,
)

__all__ = ["im2col", "col2im", "conv2d", "conv2d_backward", "conv_transpose2d", "output_size"]

# The plans of repeated small calls (im2col/_plans.py): key → plan, or None for "no plan, full path".
_IM2COL_PLANS, _COL2IM_PLANS = _plans.IM2COL.plans, _plans.COL2IM.plans
_im2col_plan_for, _col2im_plan_for = _IM2COL_PLANS.get, _COL2IM_PLANS.get
_ndarray = np.ndarray
# im2col's defaults, compared by identity (the cheapest test): any other value, even "zeros" built at
# run time or 0.0, takes the full path, which gives the same result
_ZEROS, _ZERO = "zeros", 0


def output_size(
    input_size: int | tuple[int, ...],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
) -> tuple[int, int]:
    """Spatial size of a convolution's output: ``(n + 2·pad − dilation·(k − 1) − 1) // stride + 1``.

    Parameters
    ----------
    input_size : int or (int, int)
        Input height and width (an int means a square input).
    kernel_size, stride, dilation : int or (int, int)
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same'
        As in :func:`conv2d`; per-side padding adds ``top + bottom`` in place of ``2·pad``.

    Returns
    -------
    (int, int)
        Output height and width.

    Raises
    ------
    ValueError
        If the kernel does not fit in the padded input, with the formula and its numbers.

    Examples
    --------
    The blog post's 28×28 digit and a 3×3 kernel give 26×26; full padding on a 5×5 input gives 7×7:

    >>> import im2col
    >>> im2col.output_size(28, 3)
    (26, 26)
    >>> im2col.output_size((5, 5), 3, padding=2)
    (7, 7)
    >>> im2col.output_size((224, 224), 7, stride=2, padding=3)
    (112, 112)
    """
    fn = "output_size"
    size = as_pair(input_size, "input_size", fn, minimum=1)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    p = parse_padding(padding, fn, 2, k, d, s)
    g = geometry(fn, (1, 1, *size), k, s, p, d)
    return (g.OH, g.OW)


def im2col(
    input: Any,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: PaddingArg = 0,
    stride: IntOrPair = 1,
    *,
    padding_mode: str = "zeros",
    pad_value: Any = 0,
    out: Any = None,
    layout: str | None = None,
) -> Any:
    """Unroll every receptive field of an image batch into a column: ``torch.nn.functional.unfold``.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C, H, W) or (C, H, W); (N, C, L) or (C, L); (N, C, D, H, W)
        Any dtype NumPy and the kernels can move (float, int, bool, complex); any memory layout.
        It is never written to. A 5-D input is a batch of volumes (3-D im2col, "vol2col"); a
        one-element ``kernel_size`` such as ``(3,)`` makes it 1-D.
    kernel_size : int or tuple of ints
        Kernel height and width ``(kh, kw)`` (one size per spatial axis in 1-D and 3-D).
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same', default 0
        The same on all sides, per axis ``(ph, pw)``, or per side ``((top, bottom), (left, right))``.
        'same' needs stride 1.
    stride : int or (int, int), default 1
    padding_mode : {'zeros', 'constant', 'reflect', 'replicate', 'circular'}, default 'zeros'
        What the padding reads, as ``torch.nn.functional.pad``'s modes: zeros, ``pad_value``, the
        input mirrored about its edge pixels, the edge pixels repeated, or the input wrapped around.
        Done inside the kernel: no padded copy of the input is made.
    pad_value : number, default 0
        The value of the padding with ``padding_mode='constant'``.
    out : ndarray or Tensor, optional
        Where to write the result: C-contiguous, writable, of the result's shape and dtype, not
        overlapping the input. Reusing one buffer across calls saves the page faults of a fresh
        allocation, which measured 1.6–1.7× the time of the copy itself on 55 MiB column matrices
        (``benchmarks/floor_breakdown.py``).
    layout : {None, 'NCHW', 'NHWC', 'NCL', 'NLC', 'NCDHW', 'NDHWC', 'channels_first', 'channels_last'}
        The input's layout. None (the default) and the channels-first names mean (N, C, H, W);
        'NHWC' (1-D 'NLC', 3-D 'NDHWC') or 'channels_last' mean (N, H, W, C). Channels-last data is
        read in place, without a copy. The columns are in the same layout either way.

    Returns
    -------
    ndarray or Tensor, shape (N, C·kh·kw, L) or (C·kh·kw, L)
        The column matrix (``out`` when given, else a new array) of the input's type and dtype.
        Row ``(c·kh + i)·kw + j`` is kernel tap ``(i, j)`` of channel ``c``; column ``oh·OW + ow`` is output position
        ``(oh, ow)``; ``L = OH·OW`` with ``OH = (H + top + bottom − dh·(kh − 1) − 1) // sh + 1``.

    See Also
    --------
    col2im : the adjoint, which sums columns back into an image.
    im2col.reference.im2col : the same in plain loops.

    Notes
    -----
    The column matrix holds every input pixel about ``kh·kw / (sh·sw)`` times. For the blog post's batch
    of 64 digits of 28×28 and a 3×3 kernel that is (64, 9, 676): 389,376 float32 values, 1.5 MiB,
    from 196 KiB of input. For an 8×64×56×56 float32 batch and a 3×3 kernel with padding 1 it is
    8·576·3136 values, 55 MiB.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> cols = im2col.im2col(x, kernel_size=3)
    >>> cols.shape
    (1, 9, 4)
    >>> cols[0, :, 0]          # the first 3×3 window, read row by row
    array([ 0.,  1.,  2.,  4.,  5.,  6.,  8.,  9., 10.], dtype=float32)

    The blog post's batch: 64 one-channel 28×28 images give 676 columns of 9 values each.

    >>> im2col.im2col(np.zeros((64, 1, 28, 28), np.float32), 3).shape
    (64, 9, 676)

    Writing into a buffer that is reused across calls:

    >>> buf = np.empty((1, 9, 4), np.float32)
    >>> im2col.im2col(x, 3, out=buf) is buf
    True

    A channels-last (N, H, W, C) batch gives the same columns:

    >>> x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))     # (1, 4, 4, 1)
    >>> np.array_equal(im2col.im2col(x_nhwc, 3, layout="NHWC"), cols)
    True
    """
    # A repeated small call runs the plan its first call kept (im2col/_plans.py): the same kernel on
    # the same arguments, without redoing the checks that signature passed.
    if type(input) is _ndarray and out is None and layout is None and padding_mode is _ZEROS and pad_value is _ZERO:
        if _plain(kernel_size, dilation, padding, stride):
            key = (input.shape, input.dtype, input.strides, kernel_size, dilation, padding, stride)
            plan = _im2col_plan_for(key)
            if plan is not None:
                return plan(input)
            if key not in _IM2COL_PLANS:
                args = (input, kernel_size, dilation, padding, stride)
                return _plans.first_call(_plans.IM2COL, key, _im2col, _plans.im2col_plan, *args)
    return _im2col(input, kernel_size, dilation, padding, stride, padding_mode, pad_value, out, layout)


def _im2col(input, kernel_size, dilation, padding, stride, padding_mode="zeros", pad_value=0, out=None,
            layout=None):  # fmt: skip
    """:func:`im2col` in full: every check, then the kernels."""
    if needs_grad(input):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "im2col",
            input=input,
            kernel_size=kernel_size,
            dilation=dilation,
            padding=padding,
            stride=stride,
            padding_mode=padding_mode,
            pad_value=pad_value,
            out=out,
            layout=layout,
        )
    fn = "im2col"
    x = to_array(input, "input", fn, strided=True)
    if x.dtype.kind not in "biufc" or (x.dtype.itemsize not in _MOVER and x.dtype.kind != "c"):
        raise TypeError(
            f"{fn}(): argument 'input' has dtype {x.dtype}; supported are bool, integers, float16/32/64 "
            f"and complex64/128"
        )
    _nd.check_mode(fn, padding_mode, pad_value)
    n = im2col_dims(x.ndim, kernel_size)
    cl = parse_layout(fn, layout, n)
    if n != 2 or padding_mode not in ("zeros", "constant") or pad_value != 0:
        return _nd.im2col(
            x, is_tensor(input), kernel_size, dilation, padding, stride, padding_mode, pad_value, n, out=out,
            channels_last=cl,
        )  # fmt: skip
    x4, unbatched = batched(x, "input", fn, layout_dims(2, cl))
    x4 = to_channels_first(x4, cl)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    p = parse_padding(padding, fn, 2, k, d, s)
    g = geometry(fn, x4.shape, k, s, p, d)
    shape = (g.rows, g.L) if unbatched else (g.N, g.rows, g.L)
    if out is not None:
        _im2col_into(x4, g, out_array(fn, out, shape, x4.dtype, x).reshape(g.N, g.rows, g.L), folded=False)
        return out
    check_alloc(fn, "column matrix", (g.N, g.rows, g.L), x4.dtype)
    result = np.empty((g.N, g.rows, g.L), dtype=x4.dtype)
    _im2col_into(x4, g, result, folded=False)
    return wrap_like(result[0] if unbatched else result, is_tensor(input))


def col2im(
    input: Any,
    output_size: IntOrPair,
    kernel_size: IntOrPair,
    dilation: IntOrPair = 1,
    padding: PaddingArg = 0,
    stride: IntOrPair = 1,
    *,
    padding_mode: str = "zeros",
    reduce: str = "sum",
    layout: str | None = None,
) -> Any:
    """Sum columns back into an image batch: ``torch.nn.functional.fold``, the adjoint of :func:`im2col`.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C·kh·kw, L) or (C·kh·kw, L), float32 or float64
        A column matrix in :func:`im2col`'s layout.
    output_size : int or tuple of ints
        The image's ``(H, W)``; ``(L,)`` or ``(D, H, W)`` for 1-D or 3-D columns (a one- or
        three-element ``output_size`` or ``kernel_size`` chooses the number of spatial axes).
    kernel_size, dilation, padding, stride
        As in :func:`im2col`; ``L`` must equal the number of windows they give on ``output_size``.
    padding_mode : {'zeros', 'constant', 'reflect', 'replicate', 'circular'}, default 'zeros'
        The padding of the :func:`im2col` this is the adjoint of: entries read from reflected,
        replicated or wrapped padding are added into the pixel they were read from; entries read
        from zero or constant padding are dropped.
    reduce : {'sum', 'mean'}, default 'sum'
        'sum' as torch's fold; 'mean' divides each pixel by the number of column entries added
        into it, so ``col2im(im2col(x), reduce='mean') = x`` wherever a window covers x.
    layout : {None, 'NCHW', 'NHWC', ...}, default None
        The layout of the *output* image, as in :func:`im2col`: 'NHWC' (or 'NLC', 'NDHWC',
        'channels_last') returns (N, H, W, C), folded straight into that layout.

    Returns
    -------
    ndarray or Tensor, shape (N, C, H, W) or (C, H, W) (or channels-last, see ``layout``)
        Every column entry added into the pixel it was read from; entries that came from padding
        are dropped. Pixels covered by several windows receive the sum, so
        ``col2im(im2col(x)) = count · x`` where ``count`` is the number of windows covering each pixel.

    Notes
    -----
    col2im is the transpose of im2col: ``⟨col2im(Y), X⟩ = ⟨Y, im2col(X)⟩`` for all X, Y. That is why
    it gives the gradient with respect to a convolution's input. It runs in parallel over images
    and channels (never over column rows, which add into the same pixels).

    Examples
    --------
    Folding the columns of an all-ones 4×4 image counts how many 3×3 windows cover each pixel:

    >>> import numpy as np, im2col
    >>> ones = np.ones((1, 1, 4, 4))
    >>> im2col.col2im(im2col.im2col(ones, 3), (4, 4), 3)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    # A repeated small call runs the plan its first call kept (im2col/_plans.py).
    if type(input) is _ndarray and padding_mode == "zeros" and reduce == "sum" and layout is None:
        if _plain(output_size, kernel_size, dilation, padding, stride):
            key = (input.shape, input.dtype, input.strides, output_size, kernel_size, dilation, padding, stride)
            plan = _col2im_plan_for(key)
            if plan is not None:
                return plan(input)
            if key not in _COL2IM_PLANS:
                args = (input, output_size, kernel_size, dilation, padding, stride)
                return _plans.first_call(_plans.COL2IM, key, _col2im, _plans.col2im_plan, *args)
    return _col2im(input, output_size, kernel_size, dilation, padding, stride, padding_mode, reduce, layout)


def _col2im(input, output_size, kernel_size, dilation, padding, stride, padding_mode="zeros", reduce="sum",
            layout=None):  # fmt: skip
    """:func:`col2im` in full: every check, then the kernels."""
    if needs_grad(input):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "col2im",
            input=input,
            output_size=output_size,
            kernel_size=kernel_size,
            dilation=dilation,
            padding=padding,
            stride=stride,
            padding_mode=padding_mode,
            reduce=reduce,
            layout=layout,
        )
    fn = "col2im"
    cols = to_array(input, "input", fn)
    check_float(cols, "input", fn, input)
    _nd.check_mode(fn, padding_mode, 0)
    _nd.check_reduce(fn, reduce)
    n = col2im_dims(output_size, kernel_size)
    cl = parse_layout(fn, layout, n)
    if n != 2 or padding_mode not in ("zeros", "constant") or reduce != "sum":
        return _nd.col2im(
            cols, is_tensor(input), output_size, kernel_size, dilation, padding, stride, padding_mode, reduce, n,
            channels_last=cl,
        )  # fmt: skip
    cols3, unbatched = batched(cols, "input", fn, "(N, C·kh·kw, L)")
    size = as_pair(output_size, "output_size", fn, minimum=1)
    k = as_pair(kernel_size, "kernel_size", fn, minimum=1)
    d = as_pair(dilation, "dilation", fn, minimum=1)
    s = as_pair(stride, "stride", fn, minimum=1)
    p = parse_padding(padding, fn, 2, k, d, s)
    N, R, L = cols3.shape
    if R % (k[0] * k[1]):
        raise ValueError(
            f"{fn}(): expected the size of dimension -2 of 'input' (C·kh·kw) to be divisible by "
            f"kh·kw = {k[0]}·{k[1]} = {k[0] * k[1]}, got {R}"
        )
    C = R // (k[0] * k[1])
    g = geometry(fn, (N, C, *size), k, s, p, d)
    if L != g.L:
        raise ValueError(
            f"{fn}(): expected the size of dimension -1 of 'input' (L) to match the number of sliding "
            f"windows, {g.OH}·{g.OW} = {g.L}, for output_size={size}, kernel_size={k}, dilation={d}, "
            f"padding={p}, stride={s}; got L={L}"
        )
    check_alloc(fn, "output", (N, C, *size), cols3.dtype)
    out = _empty_image((N, C, *size), cols3.dtype, cl)
    _col2im_into(cols3, g, out, folded=False)
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))
