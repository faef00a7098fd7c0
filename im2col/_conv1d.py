"""The 1-D convolutions: conv1d, its backward and conv_transpose1d, each a 2-D one of height 1.

A length-L signal is a 1×L image and a length-k kernel a 1×k one, so these functions check their
arguments under their own names (:mod:`im2col._nd`'s checks, which know every rank), view the
data as 2-D without copying and call :mod:`im2col._functional`'s conv2d, conv2d_backward and
conv_transpose2d. They sit above both modules, which is what keeps the imports one way
(tests/test_imports.py).
"""

from __future__ import annotations

from typing import Any

from . import _functional
from ._autograd import autograd_call
from ._geometry import transposed_size
from ._nd import _check_grad_output, _conv_args, _conv_geometry
from ._validation import (
    check_alloc,
    check_same_dtype,
    from_channels_first,
    is_tensor,
    needs_grad,
    parse_layout,
    to_array,
    wrap_like,
)

__all__ = ["conv1d", "conv1d_backward", "conv_transpose1d"]


def conv1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    *,
    layout: str = "NCL",
) -> Any:
    """1-D convolution (``torch.nn.functional.conv1d``), run as a 2-D convolution of height 1.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C, L) or (C, L), float32 or float64
    weight : ndarray or Tensor, shape (K, C/groups, k), same dtype
    bias : ndarray or Tensor, shape (K,), optional
    stride, dilation : int or (int,), default 1
    padding : int, (int,), ((before, after),), 'valid' or 'same', default 0
    groups : int, default 1
    layout : {'NCL', 'NLC', 'channels_first', 'channels_last'}, default 'NCL'
        Of the input and the output: with 'NLC' the input is (N, L, C), read in place, and the
        output is (N, OL, K).

    Returns
    -------
    ndarray or Tensor, shape (N, K, OL) or (K, OL); (N, OL, K) with 'NLC'
        ``OL = (L + before + after − d·(k − 1) − 1) // s + 1``.

    Notes
    -----
    A length-L signal is a 1×L image and a length-k kernel a 1×k one, so this is :func:`im2col.conv2d`
    with a unit height: the same im2col, the same one GEMM per group.

    Examples
    --------
    A moving sum of three samples:

    >>> import numpy as np, im2col
    >>> x = np.arange(6.0).reshape(1, 1, 6)
    >>> im2col.conv1d(x, np.ones((1, 1, 3)))
    array([[[ 3.,  6.,  9., 12.]]])
    >>> im2col.conv1d(x, np.ones((1, 1, 3)), padding="same")
    array([[[ 1.,  3.,  6.,  9., 12.,  9.]]])
    """
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv1d",
            input=input,
            weight=weight,
            bias=bias,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv1d"
    cl = parse_layout(fn, layout, 1)
    xb, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, 1, cl)
    s, pads, d, _ = _conv_geometry(fn, xb, w, stride, padding, dilation, 1)
    # (N, C, 1, L) or, channels-last, (N, 1, L, C): views of the input
    x4 = from_channels_first(xb[:, :, None], cl)
    args = ((1, s[0]), ((0, 0), pads[0]), (1, d[0]), groups)
    y = _functional.conv2d(x4, w[:, :, None], b, *args, layout="NHWC" if cl else "NCHW")
    y = y[:, 0] if cl else y[:, :, 0]
    return wrap_like(y[0] if unbatched else y, is_tensor(input))


def conv1d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    *,
    layout: str = "NCL",
):
    """Gradients of :func:`conv1d` with respect to its input, weight and bias (through conv2d_backward).

    ``layout`` is that of ``input``, ``grad_output`` and ``grad_input``, as in the forward.

    Returns
    -------
    (grad_input, grad_weight, grad_bias)
        Shaped like ``input``, ``weight`` and ``(K,)``.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> gx, gw, gb = im2col.conv1d_backward(np.ones((1, 1, 4)), np.arange(6.0).reshape(1, 1, 6), np.ones((1, 1, 3)))
    >>> gx
    array([[[1., 2., 3., 3., 2., 1.]]])
    >>> gw, gb
    (array([[[ 6., 10., 14.]]]), array([4.]))
    """
    if needs_grad(grad_output, input, weight):  # keep autograd: through im2col.nn's operators
        return autograd_call(
            "conv1d_backward",
            grad_output=grad_output,
            input=input,
            weight=weight,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv1d_backward"
    cl = parse_layout(fn, layout, 1)
    xb, unbatched, w, _, groups = _conv_args(fn, input, weight, None, groups, 1, cl)
    s, pads, d, g = _conv_geometry(fn, xb, w, stride, padding, dilation, 1)
    gy = to_array(grad_output, "grad_output", fn, strided=True)
    check_same_dtype(xb, "input", gy, "grad_output", fn)
    _check_grad_output(fn, gy, xb, unbatched, w.shape[0], g.out, cl)
    gy = gy[None] if unbatched else gy
    # as 2-D with height 1: (N, K, 1, OL) or, channels-last, (N, 1, OL, K), views
    gy4, x4 = (gy[:, None], from_channels_first(xb[:, :, None], True)) if cl else (gy[:, :, None], xb[:, :, None])
    gx, gw, gb = _functional.conv2d_backward(
        gy4, x4, w[:, :, None], (1, s[0]), ((0, 0), pads[0]), (1, d[0]), groups, layout="NHWC" if cl else "NCHW"
    )
    like = is_tensor(input)
    gx = gx[:, 0] if cl else gx[:, :, 0]
    return wrap_like(gx[0] if unbatched else gx, like), wrap_like(gw[:, :, 0], like), wrap_like(gb, like)


def conv_transpose1d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
    *,
    layout: str = "NCL",
) -> Any:
    """Transposed 1-D convolution (``torch.nn.functional.conv_transpose1d``), as a 2-D one of height 1.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C_in, L) or (C_in, L), float32 or float64
    weight : ndarray or Tensor, shape (C_in, C_out/groups, k), same dtype
    bias : ndarray or Tensor, shape (C_out,), optional
    stride, padding, dilation : int or (int,)
        Those of the convolution this one transposes.
    output_padding : int or (int,), default 0
        Extra samples at the end; smaller than the stride or the dilation.
    groups : int, default 1
    layout : {'NCL', 'NLC', 'channels_first', 'channels_last'}, default 'NCL'
        Of the input and the output: with 'NLC' the input is (N, L, C_in), read in place, and the
        output is (N, OL, C_out).

    Returns
    -------
    ndarray or Tensor, shape (N, C_out, OL) or (C_out, OL); (N, OL, C_out) with 'NLC'
        ``OL = (L − 1)·s − 2·p + d·(k − 1) + output_padding + 1``.

    See Also
    --------
    im2col.conv_transpose2d : the 2-D version, which this calls with a unit height.

    Examples
    --------
    Each input sample stamps the kernel into the output, ``stride`` samples apart:

    >>> import numpy as np, im2col
    >>> im2col.conv_transpose1d(np.array([[[1.0, 10.0]]]), np.array([[[1.0, 2.0, 3.0]]]), stride=2)
    array([[[ 1.,  2., 13., 20., 30.]]])
    """
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv_transpose1d",
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
    fn = "conv_transpose1d"
    cl = parse_layout(fn, layout, 1)
    xb, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, 1, cl, transposed=True)
    s, p, op, d, size = transposed_size(fn, xb.shape[2:], w.shape[2:], stride, padding, output_padding, dilation)
    check_alloc(fn, "output", (xb.shape[0], w.shape[1] * groups, *size), xb.dtype)
    check_alloc(fn, "column matrix of one image", (w.shape[1] * groups * w.shape[2], xb.shape[2]), xb.dtype)
    # as 2-D with height 1: (N, C, 1, L) or, channels-last, (N, 1, L, C), views of the input
    x4 = from_channels_first(xb[:, :, None], cl)
    args = ((1, s[0]), (0, p[0]), (0, op[0]), groups, (1, d[0]))
    y = _functional.conv_transpose2d(x4, w[:, :, None], b, *args, layout="NHWC" if cl else "NCHW")
    y = y[:, 0] if cl else y[:, :, 0]
    return wrap_like(y[0] if unbatched else y, is_tensor(input))
