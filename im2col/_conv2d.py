"""The public 2-D convolutions: conv2d, conv2d_backward and conv_transpose2d.

Each converts its inputs (tensor → array, contiguous only when needed), checks them
(:mod:`im2col._validation`, :mod:`im2col._geometry`), and hands the checked arrays to a route in
:mod:`im2col._conv2d_routes`, which calls the Cython kernels on the kernels' own OpenMP threads.
Names, argument order and defaults follow ``torch.nn.functional``. conv2d first looks for a plan of
the same small call (:mod:`im2col._plans`); its full path is ``_conv2d`` right below it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _engine, _plans, _tiles
from ._autograd import autograd_call
from ._conv2d_routes import _conv_backward_tiled, _conv_forward, _conv_grad_input, _conv_grad_weight
from ._gemm import native_blas
from ._geometry import IntOrPair, PaddingArg, as_int, geometry, transposed_size
from ._plans import plain as _plain
from ._threads import threads_for_flops
from ._validation import (
    batched,
    channels_last_like,
    check_alloc,
    check_float,
    check_same_dtype,
    from_channels_first,
    is_tensor,
    layout_dims,
    needs_grad,
    parse_layout,
    shape_in_layout,
    to_array,
    to_channels_first,
    wrap_like,
)
from ._validation import conv2d_geometry as _conv2d_geometry

__all__ = ["conv2d", "conv2d_backward", "conv_transpose2d"]

# The plans of repeated small calls (im2col/_plans.py): key → plan, or None for "no plan, full path".
_CONV2D_PLANS = _plans.CONV2D.plans
_conv2d_plan_for = _CONV2D_PLANS.get
_ndarray = np.ndarray


# --- argument handling ------------------------------------------------------------------------


def _conv_args(
    fn: str, input: Any, weight: Any, bias: Any, groups: Any, channels_last: bool = False, transposed: bool = False
):
    """Convert and check input/weight/bias of a convolution; the shapes' agreement is checked later.

    The input comes back as an (N, C, H, W) view of the user's data, whatever its layout."""
    x = to_array(input, "input", fn, strided=True)
    w = to_array(weight, "weight", fn)
    check_float(x, "input", fn, input)
    check_same_dtype(x, "input", w, "weight", fn)
    x4, unbatched = batched(x, "input", fn, layout_dims(2, channels_last))
    x4 = to_channels_first(x4, channels_last)
    if w.ndim != 4:
        raise ValueError(f"{fn}(): argument 'weight' must be a 4-D array, got {w.ndim}-D of shape {w.shape}")
    if 0 in w.shape:
        raise ValueError(f"{fn}(): argument 'weight' must have non-zero sizes, got shape {w.shape}")
    groups = as_int(groups, "groups", fn)
    if groups < 1:
        raise ValueError(f"{fn}(): argument 'groups' must be positive, got groups={groups}")
    need = w.shape[0] if transposed else w.shape[1] * groups
    if channels_last and x4.shape[1] != need:  # say where the channels were read from
        raise ValueError(
            f"{fn}(): input has {x4.shape[1]} channels in its last axis (layout='NHWC') but weight of shape "
            f"{w.shape} expects {need}" + ("" if transposed else f" (weight.shape[1]·groups = {w.shape[1]}·{groups})")
        )
    b = None
    if bias is not None:
        b = to_array(bias, "bias", fn)
        check_same_dtype(x, "input", b, "bias", fn)
    return x4, unbatched, w, b, groups


def _check_bias(fn: str, b: np.ndarray | None, n_out: int, what: str) -> None:
    if b is not None and b.shape != (n_out,):
        raise ValueError(f"{fn}(): argument 'bias' must have shape ({n_out},), one per {what}, got shape {b.shape}")


# --- public API -------------------------------------------------------------------------------


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> Any:
    """2-D convolution (cross-correlation, as in deep learning) as im2col and one GEMM per group.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C, H, W) or (C, H, W), float32 or float64
    weight : ndarray or Tensor, shape (K, C/groups, kh, kw), same dtype
    bias : ndarray or Tensor, shape (K,), optional
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same', default 0
        Zero padding as in :func:`im2col`; 'same' (stride 1 only) keeps the spatial size.
    groups : int, default 1
        Split channels into groups convolved separately; ``groups = C = K`` is a depthwise
        convolution.
    layout : {'NCHW', 'NHWC', 'channels_first', 'channels_last'}, default 'NCHW'
        Of the input and the output. With 'NHWC' the input is (N, H, W, C), read in place, and the
        output (N, OH, OW, K) is written directly in that layout (the weight stays
        (K, C/groups, kh, kw)). Independently of ``layout``, any strided view (such as
        ``x.transpose(0, 3, 1, 2)`` of an NHWC array) is read without a copy, and a tensor in
        ``torch.channels_last`` memory format (input or weight) gives a channels_last output,
        as torch does.

    Returns
    -------
    ndarray or Tensor, shape (N, K, OH, OW) or (K, OH, OW); (N, OH, OW, K) with 'NHWC'
        Of the input's type and dtype, with ``OH = (H + top + bottom − dh·(kh − 1) − 1) // sh + 1``.

    Notes
    -----
    For each group the weights flatten to a ``(K/groups) × (C/groups·kh·kw)`` matrix W and the columns
    of the whole batch lie side by side in a ``(C/groups·kh·kw) × (N·L)`` matrix, so the convolution
    is one GEMM: for the blog post's example ``(4 × 9) @ (9 × 43264) → (4 × 43264)``, rearranged to
    ``(64, 4, 26, 26)``.

    The fast path computes exactly that product by blocks of columns: each OpenMP thread unrolls a
    few output rows of one image (about 512 KiB of columns, so they stay in its cache) and
    multiplies W by that block at once, writing straight into the output. The full column matrix
    is never built, so the extra memory is a few tiles per thread, whatever the batch. A 1×1 kernel
    with stride 1 and no padding or dilation needs no im2col at all: the input already is the column
    matrix. Channels-last input is unrolled transposed, one row per output pixel in which each
    kernel tap is a contiguous copy of the pixel's channels, with the weight permuted to match.
    Without a BLAS the kernels can call (see :mod:`im2col._gemm`) it falls back to NumPy's
    ``matmul`` on the batch in chunks of at most ``WORKSPACE_BYTES`` (64 MiB) of columns.

    Examples
    --------
    The blog post's example: four 3×3 edge kernels over a batch of 64 digits of 28×28.

    >>> import numpy as np, im2col
    >>> top_edge = np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], np.float32)
    >>> x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    >>> weight = np.stack([top_edge, top_edge.T, -top_edge, -top_edge.T])[:, None]
    >>> weight.shape
    (4, 1, 3, 3)
    >>> im2col.conv2d(x, weight).shape
    (64, 4, 26, 26)

    It is exactly im2col followed by a matrix product:

    >>> cols = im2col.im2col(x, 3)                       # (64, 9, 676)
    >>> y = (weight.reshape(4, 9) @ cols).reshape(64, 4, 26, 26)
    >>> bool(np.allclose(im2col.conv2d(x, weight), y, atol=1e-6))
    True

    The same batch stored channels-last, (N, H, W, C), gives the output channels-last:

    >>> x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    >>> y_nhwc = im2col.conv2d(x_nhwc, weight, layout="NHWC")
    >>> y_nhwc.shape
    (64, 26, 26, 4)
    >>> bool(np.allclose(y_nhwc.transpose(0, 3, 1, 2), y, atol=1e-6))
    True
    """
    # A repeated small call runs the plan its first call kept (im2col/_plans.py): the same kernel on
    # the same arguments, without redoing the checks that signature passed.
    if type(input) is _ndarray and type(weight) is _ndarray and layout == "NCHW":
        if bias is None or type(bias) is _ndarray:
            bkey = None if bias is None else (bias.shape, bias.dtype, bias.strides)
            if _plain(stride, padding, dilation, groups):
                key = (input.shape, input.dtype, input.strides, weight.shape, weight.dtype, weight.strides, bkey,
                       stride, padding, dilation, groups)  # fmt: skip
                plan = _conv2d_plan_for(key)
                if plan is not None:
                    return plan(input, weight, bias)
                if key not in _CONV2D_PLANS:
                    args = (input, weight, bias, stride, padding, dilation, groups)
                    return _plans.first_call(_plans.CONV2D, key, _conv2d, _plans.conv2d_plan, *args)
    return _conv2d(input, weight, bias, stride, padding, dilation, groups, layout)


def _conv2d(input, weight, bias, stride, padding, dilation, groups, layout="NCHW"):
    """:func:`conv2d` in full: every check, then the kernels."""
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv2d",
            input=input,
            weight=weight,
            bias=bias,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv2d"
    cl = parse_layout(fn, layout, 2)
    x4, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, cl)
    g = _conv2d_geometry(fn, x4, w, stride, padding, dilation, groups)
    _check_bias(fn, b, w.shape[0], "output channel (weight.shape[0])")
    out = _conv_forward(x4, w, b, g, groups, cl or _tensor_channels_last(input, weight))
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))


def _tensor_channels_last(*tensors: Any) -> bool:
    """Torch's rule: a convolution of a tensor is channels-last if its input or weight is."""
    return is_tensor(tensors[0]) and any(channels_last_like(t) for t in tensors)


def conv2d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    layout: str = "NCHW",
) -> tuple[Any, Any, Any]:
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : ndarray or Tensor, shape (N, K, OH, OW) or (K, OH, OW)
        Gradient of the loss with respect to ``conv2d(input, weight, ...)``.
    input, weight, stride, padding, dilation, groups
        The arguments of the forward :func:`conv2d`.
    layout : {'NCHW', 'NHWC', 'channels_first', 'channels_last'}, default 'NCHW'
        Of ``input``, ``grad_output`` and ``grad_input``, as in :func:`conv2d`: with 'NHWC'
        grad_output is (N, OH, OW, K) and grad_input comes back (N, H, W, C).

    Returns
    -------
    grad_input : shape of ``input``
        ``col2im(Wᵀ · grad_output)``: the columns' gradient folded back into the image.
    grad_weight : shape of ``weight``
        ``grad_output · colsᵀ`` summed over the batch (one GEMM per group and chunk).
    grad_bias : shape (K,)
        ``grad_output`` summed over the batch and the output grid.

    All three are torch tensors when ``input`` is a tensor, else arrays.

    Examples
    --------
    The gradient of ``sum(conv2d(x, w))`` with respect to ``w`` is the sum of each kernel tap's
    inputs:

    >>> import numpy as np, im2col
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 3, 3))
    >>> gy = np.ones((1, 1, 2, 2))
    >>> gx, gw, gb = im2col.conv2d_backward(gy, x, w)
    >>> gw[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    >>> gb
    array([4.])
    """
    if needs_grad(grad_output, input, weight):  # keep autograd: through im2col.nn's operators
        return autograd_call(
            "conv2d_backward",
            grad_output=grad_output,
            input=input,
            weight=weight,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv2d_backward"
    cl = parse_layout(fn, layout, 2)
    x4, unbatched, w, _, groups = _conv_args(fn, input, weight, None, groups, cl)
    g = _conv2d_geometry(fn, x4, w, stride, padding, dilation, groups)
    gy = to_array(grad_output, "grad_output", fn, strided=True)
    check_same_dtype(x4, "input", gy, "grad_output", fn)
    K = w.shape[0]
    expected = shape_in_layout((g.N, K, g.OH, g.OW), cl)[unbatched:]
    if gy.shape != expected:
        given = shape_in_layout(x4.shape, cl)[unbatched:]
        raise ValueError(
            f"{fn}(): argument 'grad_output' must have shape {expected}, the shape of conv2d's output "
            f"{'(N, OH, OW, K)' if cl else '(N, K, OH, OW)'} for input of shape {given} and weight of shape "
            f"{w.shape}, got shape {gy.shape}"
        )
    gy4 = to_channels_first(gy[None] if unbatched else gy, cl)
    gy3 = gy4.reshape(g.N, K, g.L)  # a view for C-contiguous and channels-last alike
    gx_cl = cl or channels_last_like(input)
    if _engine.route(x4, w, g, groups, gx_cl, op="backward") == "depthwise":
        # the engine's direct depthwise kernels, as in the forward (im2col/_engine.py, route())
        flops = 4 * g.N * K * g.kh * g.kw * g.L
        gx, gw = _engine.depthwise2d_backward(np.ascontiguousarray(gy4), x4, w, g, threads_for_flops(flops))
    elif (blas := native_blas(gy3, x4, w)) is not None:  # grad_input: as many elements as x4
        gx, gw = _conv_backward_tiled(gy3, x4, w, g, groups, blas, want_gx=True, want_gw=True, gx_cl=gx_cl)
        assert gw is not None  # asked for: want_gw
        gw = gw.reshape(w.shape)
    else:
        gx = _conv_grad_input(gy3, w, g, groups, x4.dtype, gx_cl)
        gw = _conv_grad_weight(gy3, x4, w.shape, g, groups)
    assert gx is not None and gw is not None  # every route was asked for both
    gb = gy3.sum(axis=(0, 2))
    gx = from_channels_first(gx, cl)
    like = is_tensor(input)
    return wrap_like(gx[0] if unbatched else gx, like), wrap_like(gw, like), wrap_like(gb, like)


def conv_transpose2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
    *,
    layout: str = "NCHW",
) -> Any:
    """Transposed convolution (``torch.nn.functional.conv_transpose2d``) as a GEMM then col2im.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C_in, H, W) or (C_in, H, W), float32 or float64
    weight : ndarray or Tensor, shape (C_in, C_out/groups, kh, kw), same dtype
    bias : ndarray or Tensor, shape (C_out,), optional
    stride, padding, dilation : int or (int, int)
        Those of the convolution this one transposes; ``padding`` removes rows and columns from
        the output's borders.
    output_padding : int or (int, int), default 0
        Extra rows/columns at the bottom/right, to pick among the sizes a strided convolution maps
        to the same output; each must be smaller than the stride or the dilation.
    groups : int, default 1
    layout : {'NCHW', 'NHWC', 'channels_first', 'channels_last'}, default 'NCHW'
        Of the input and the output, as in :func:`conv2d`.

    Returns
    -------
    ndarray or Tensor, shape (N, C_out, OH, OW) or (C_out, OH, OW)
        With ``OH = (H − 1)·sh − 2·ph + dh·(kh − 1) + output_padding + 1``.

    Notes
    -----
    A transposed convolution is the input gradient of a convolution: each input pixel's channels
    are multiplied by the weights (``(C_out/groups·kh·kw) × (C_in/groups)`` per group, the weight
    matrix transposed) and the resulting columns are summed into the output with :func:`col2im`.

    Examples
    --------
    A stride-2 transposed convolution doubles the size of a 3×3 map (with ``output_padding=1``):

    >>> import numpy as np, im2col
    >>> x = np.ones((1, 1, 3, 3), np.float32)
    >>> w = np.ones((1, 1, 3, 3), np.float32)
    >>> im2col.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).shape
    (1, 1, 6, 6)
    >>> im2col.conv_transpose2d(x, w)[0, 0]          # counts of overlapping 3×3 stamps
    array([[1., 2., 3., 2., 1.],
           [2., 4., 6., 4., 2.],
           [3., 6., 9., 6., 3.],
           [2., 4., 6., 4., 2.],
           [1., 2., 3., 2., 1.]], dtype=float32)
    """
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv_transpose2d",
            input=input,
            weight=weight,
            bias=bias,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
            layout=layout,
        )
    fn = "conv_transpose2d"
    cl = parse_layout(fn, layout, 2)
    x4, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, cl, transposed=True)
    N, Cin, H, W = x4.shape
    wCin, Cog, kh, kw = w.shape
    if wCin != Cin:
        raise ValueError(
            f"{fn}(): input has {Cin} channels but weight of shape {w.shape} expects weight.shape[0] = {wCin} "
            f"input channels (weight is (C_in, C_out/groups, kh, kw))"
        )
    if Cin % groups:
        raise ValueError(f"{fn}(): input channels {Cin} must be divisible by groups={groups}")
    s, p, op, d, size = transposed_size(fn, (H, W), (kh, kw), stride, padding, output_padding, dilation)
    Cout = Cog * groups
    _check_bias(fn, b, Cout, "output channel (weight.shape[1]·groups)")
    # The convolution this transposes maps an (OH, OW) image with C_out channels to our (H, W) grid.
    g = geometry(fn, (N, Cout, *size), (kh, kw), s, ((p[0], p[0]), (p[1], p[1])), d, grid=(H, W))
    check_alloc(fn, "output", (N, Cout, *size), x4.dtype)
    check_alloc(fn, "column matrix of one chunk", (g.rows, _tiles.chunk(g, x4.dtype.itemsize) * g.L), x4.dtype)
    out_cl = cl or _tensor_channels_last(input, weight)
    # x4 as the (N, C_in, H·W) "grad_output" of that convolution: a view when x4 is C-contiguous
    # or channels-last, else a copy
    x3 = x4.reshape(N, Cin, H * W)
    blas = native_blas(x3, w, elements=N * Cout * size[0] * size[1])
    if _engine.route(x4, w, g, groups, out_cl, op="grad_input") == "depthwise":
        # one output channel per group: the engine's depthwise grad input (im2col/_engine.py, route())
        flops = 2 * N * Cin * kh * kw * H * W
        out, _ = _engine.depthwise2d_backward(x4, x4, w, g, threads_for_flops(flops), want_gw=False)
    elif blas is not None:
        out, _ = _conv_backward_tiled(x3, None, w, g, groups, blas, want_gx=True, want_gw=False, gx_cl=out_cl)
    else:
        out = _conv_grad_input(x3, w, g, groups, x4.dtype, out_cl)
    assert out is not None  # every route was asked for grad_input
    if b is not None:
        out += b[:, None, None]
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))
