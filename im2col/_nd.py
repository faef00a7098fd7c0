"""The general path: 1-D, 2-D and 3-D im2col/col2im with padding modes, and conv3d.

:func:`im2col._functional.im2col` and ``col2im`` keep their 2-D zero-padding fast path and send
everything else here: another number of spatial axes, a padding mode other than zeros, a constant
``pad_value``, or ``reduce='mean'``. The padding never becomes a padded copy of the input: for each
spatial axis :func:`im2col._nd_drivers.axis_table` lists which input index every (kernel tap,
output position) reads, already reflected, replicated or wrapped (or -1 for the constant), and one
kernel (``csrc/_nd_kernels.pyx``) gathers or scatter-adds through those tables for any mode and 1 to
3 axes (the drivers are in im2col/_nd_drivers.py).

conv1d and conv_transpose1d (im2col/_conv1d.py) run on the 2-D fast path as images of height 1,
after this module's argument checks; conv3d, its backward and conv_transpose3d multiply
cache-sized vol2col tiles (the 3-D im2col) as they are gathered, on the kernels' own threads
(``conv3d_forward_tiled`` / ``conv3d_backward_tiled`` in ``csrc/_kernels.pyx``), or, without a
BLAS they can call, one GEMM per group and chunk of images (the routes are in
im2col/_conv3d_routes.py). This module checks the arguments and shapes the results.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._autograd import autograd_call
from ._conv3d_routes import _conv3d_forward, _grad_input, _grad_weight
from ._geometry import AXES

# imported from here by im2col.nn and explain (they moved to _geometry, the one copy)
from ._geometry import col2im_dims as col2im_dims
from ._geometry import im2col_dims as im2col_dims
from ._geometry import out_sizes as out_sizes
from ._geometry import parse_padding as parse_padding
from ._geometry import transposed_size as transposed_size
from ._nd_drivers import NdGeometry, _col2im_into, _im2col_into
from ._validation import (
    as_int,
    as_tuple,
    batched,
    channels_last_like,
    check_alloc,
    check_float,
    check_same_dtype,
    from_channels_first,
    is_tensor,
    layout_dims,
    needs_grad,
    out_array,
    parse_layout,
    shape_in_layout,
    to_array,
    to_channels_first,
    wrap_like,
)

__all__ = ["conv3d", "conv3d_backward", "conv_transpose3d"]

#: What ``padding_mode`` may be. 'zeros' and 'constant' read ``pad_value`` (0 for 'zeros') outside
#: the input; the others read the input itself, as ``torch.nn.functional.pad`` does.
PADDING_MODES = ("zeros", "constant", "reflect", "replicate", "circular")
REDUCTIONS = ("sum", "mean")


# --- arguments --------------------------------------------------------------------------------


def check_mode(fn: str, padding_mode: Any, pad_value: Any) -> None:
    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{fn}(): argument 'padding_mode' must be one of {', '.join(map(repr, PADDING_MODES))}, "
            f"got {padding_mode!r}"
        )
    if not isinstance(pad_value, (bool, int, float, complex, np.number, np.bool_)):
        raise TypeError(f"{fn}(): argument 'pad_value' must be a number, got {pad_value!r}")
    if pad_value != 0 and padding_mode != "constant":
        raise ValueError(
            f"{fn}(): argument 'pad_value' is only read with padding_mode='constant', got "
            f"pad_value={pad_value!r} with padding_mode={padding_mode!r}"
        )


def _pad_value_for(fn: str, pad_value, dtype: np.dtype):
    """``pad_value`` in ``dtype``, refusing a value the dtype would change (0.5 in int, 300 in uint8,
    1e40 in float32, 1j in a real dtype)."""
    same = False
    if not (np.iscomplexobj(pad_value) and dtype.kind != "c"):
        try:
            # overflow or ComplexWarning while casting or comparing: judged by the comparison
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                back = np.array(pad_value).astype(dtype).item()  # compared as Python numbers: in the
                # dtype itself 1e40 would become inf on both sides and look representable in float32
                same = back == pad_value or (back != back and pad_value != pad_value)
        except (TypeError, ValueError, OverflowError):
            same = False
    if not same:
        raise ValueError(f"{fn}(): pad_value={pad_value!r} cannot be represented in the input's dtype {dtype}")
    return pad_value


# --- im2col / col2im (called from im2col._functional) -----------------------------------------


def im2col(
    x, like_tensor, kernel_size, dilation, padding, stride, padding_mode, pad_value, n, out=None, channels_last=False
):
    """:func:`im2col.im2col` for ``n`` spatial axes and any padding mode; ``x`` is the converted input.

    With ``out`` (the user's array or tensor) the columns are written there and ``out`` is returned."""
    fn = "im2col"
    xb, unbatched = batched(x, "input", fn, layout_dims(n, channels_last))
    xb = to_channels_first(xb, channels_last)
    k = as_tuple(kernel_size, "kernel_size", fn, n, minimum=1)
    d = as_tuple(dilation, "dilation", fn, n, minimum=1)
    s = as_tuple(stride, "stride", fn, n, minimum=1)
    pads = parse_padding(padding, fn, n, k, d, s)
    if padding_mode == "constant":
        _pad_value_for(fn, pad_value, xb.dtype)
    else:
        pad_value = 0  # not read (check_mode allows only a value equal to 0, such as -0.0)
    g = NdGeometry(fn, xb.shape[2:], k, s, pads, d, padding_mode)
    N, C = xb.shape[:2]
    shape = (N, C * g.taps, g.L)
    if out is not None:
        target = out_array(fn, out, shape[1:] if unbatched else shape, xb.dtype, x)
        _im2col_into(xb, g, target.reshape(shape), pad_value)
        return out
    check_alloc(fn, "column matrix", shape, xb.dtype)
    result = np.empty(shape, dtype=xb.dtype)
    _im2col_into(xb, g, result, pad_value)
    return wrap_like(result[0] if unbatched else result, like_tensor)


def col2im(
    cols, like_tensor, output_size, kernel_size, dilation, padding, stride, padding_mode, reduce, n, channels_last=False
):
    """:func:`im2col.col2im` for ``n`` spatial axes, any padding mode and reduction; ``cols`` is the
    converted, float input."""
    fn = "col2im"
    cols3, unbatched = batched(cols, "input", fn, "(N, C·taps, L)")
    size = as_tuple(output_size, "output_size", fn, n, minimum=1)
    k = as_tuple(kernel_size, "kernel_size", fn, n, minimum=1)
    d = as_tuple(dilation, "dilation", fn, n, minimum=1)
    s = as_tuple(stride, "stride", fn, n, minimum=1)
    pads = parse_padding(padding, fn, n, k, d, s)
    g = NdGeometry(fn, size, k, s, pads, d, padding_mode)
    N, R, L = cols3.shape
    if R % g.taps:
        raise ValueError(
            f"{fn}(): expected the size of dimension -2 of 'input' (C·taps) to be divisible by the kernel's "
            f"{'·'.join(map(str, k))} = {g.taps} taps, got {R}"
        )
    if L != g.L:
        raise ValueError(
            f"{fn}(): expected the size of dimension -1 of 'input' (L) to match the number of sliding windows, "
            f"{'·'.join(map(str, g.out))} = {g.L}, for output_size={size}, kernel_size={k}, dilation={d}, "
            f"padding={pads}, stride={s}; got L={L}"
        )
    C = R // g.taps
    check_alloc(fn, "output", (N, C, *size), cols3.dtype)
    out = np.empty(shape_in_layout((N, C, *size), channels_last), dtype=cols3.dtype)
    _col2im_into(cols3, g, to_channels_first(out, channels_last), reduce)
    return wrap_like(out[0] if unbatched else out, like_tensor)


def check_reduce(fn: str, reduce: Any) -> None:
    if not isinstance(reduce, str) or reduce not in REDUCTIONS:
        raise ValueError(f"{fn}(): argument 'reduce' must be 'sum' or 'mean', got {reduce!r}")


# --- conv1d and conv3d ------------------------------------------------------------------------


def _conv_args(fn: str, input, weight, bias, groups, n: int, channels_last: bool = False, transposed: bool = False):
    """Convert and check a convolution's input (N, C, *size), weight (K, C/groups, *k) and bias (K,).

    The input comes back as an (N, C, *size) view of the user's data, whatever its layout.
    ``transposed``: a transposed convolution's, whose weight is (C, K/groups, *k) and bias (K,)."""
    x = to_array(input, "input", fn, strided=True)
    w = to_array(weight, "weight", fn)
    check_float(x, "input", fn, input)
    check_same_dtype(x, "input", w, "weight", fn)
    xb, unbatched = batched(x, "input", fn, layout_dims(n, channels_last))
    xb = to_channels_first(xb, channels_last)
    if w.ndim != n + 2 or 0 in w.shape:
        dims = "C_in, C_out/groups" if transposed else "K, C/groups"
        raise ValueError(
            f"{fn}(): argument 'weight' must be a {n + 2}-D ({dims}, {', '.join('k' + a[0] for a in AXES[n])}) "
            f"array with non-zero sizes, got shape {w.shape}"
        )
    groups = as_int(groups, "groups", fn)
    if groups < 1:
        raise ValueError(f"{fn}(): argument 'groups' must be positive, got groups={groups}")
    C, (K, Cg) = xb.shape[1], w.shape[:2]
    where = " in its last axis (a channels-last layout)" if channels_last else ""
    if transposed:
        if C != K:
            raise ValueError(
                f"{fn}(): input has {C} channels{where} but weight of shape {w.shape} expects weight.shape[0] = {K} "
                f"input channels (weight is (C_in, C_out/groups, {', '.join('k' + a[0] for a in AXES[n])}))"
            )
        if C % groups:
            raise ValueError(f"{fn}(): input channels {C} must be divisible by groups={groups}")
        K = Cg * groups
    elif C != Cg * groups:
        raise ValueError(
            f"{fn}(): input has {C} channels{where} but weight of shape {w.shape} with groups={groups} expects "
            f"weight.shape[1]·groups = {Cg}·{groups} = {Cg * groups}"
        )
    elif K % groups:
        raise ValueError(f"{fn}(): weight.shape[0] = {K} output channels must be divisible by groups={groups}")
    b = None
    if bias is not None:
        b = to_array(bias, "bias", fn)
        check_same_dtype(x, "input", b, "bias", fn)
        if b.shape != (K,):
            raise ValueError(
                f"{fn}(): argument 'bias' must have shape ({K},), one per output channel, got shape {b.shape}"
            )
    return xb, unbatched, w, b, groups


def _conv_geometry(fn, xb, w, stride, padding, dilation, n):
    k = w.shape[2:]
    s = as_tuple(stride, "stride", fn, n, minimum=1)
    d = as_tuple(dilation, "dilation", fn, n, minimum=1)
    pads = parse_padding(padding, fn, n, k, d, s)
    g = NdGeometry(fn, xb.shape[2:], k, s, pads, d, "zeros")
    # refused under this function's name, not that of conv2d, which conv1d calls (and which checks
    # the columns of one image: with N = 0 nothing else would be too large)
    check_alloc(fn, "output", (xb.shape[0], w.shape[0], *g.out), xb.dtype)
    if n == 1:
        check_alloc(fn, "column matrix of one image", (xb.shape[1] * k[0], g.L), xb.dtype)
    return s, pads, d, g


def _check_grad_output(fn, gy, xb, unbatched, K, out, channels_last=False):
    expected = shape_in_layout((xb.shape[0], K, *out), channels_last)[unbatched:]
    if gy.shape != expected:
        axes = {1: ["OL"], 2: ["OH", "OW"], 3: ["OD", "OH", "OW"]}[len(out)]
        dims = "(" + ", ".join(["N", *axes, "K"] if channels_last else ["N", "K", *axes]) + ")"
        raise ValueError(
            f"{fn}(): argument 'grad_output' must have shape {expected}, the shape of the convolution's output "
            f"{dims}, got shape {gy.shape}"
        )


def conv3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    *,
    layout: str = "NCDHW",
) -> Any:
    """3-D convolution (``torch.nn.functional.conv3d``) as vol2col and one GEMM per group.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C, D, H, W) or (C, D, H, W), float32 or float64
    weight : ndarray or Tensor, shape (K, C/groups, kd, kh, kw), same dtype
    bias : ndarray or Tensor, shape (K,), optional
    stride, dilation : int or (int, int, int), default 1
    padding : int, 3 ints, 3 (before, after) pairs, 'valid' or 'same', default 0
    groups : int, default 1
    layout : {'NCDHW', 'NDHWC', 'channels_first', 'channels_last'}, default 'NCDHW'
        Of the input and the output: with 'NDHWC' the input is (N, D, H, W, C), read in place,
        and the output (N, OD, OH, OW, K). A tensor in ``torch.channels_last_3d`` memory format
        gives a channels_last_3d output, as torch does.

    Returns
    -------
    ndarray or Tensor, shape (N, K, OD, OH, OW) or (K, OD, OH, OW); (N, OD, OH, OW, K) with 'NDHWC'

    Notes
    -----
    vol2col (:func:`im2col.im2col` of a 5-D input) lays every ``kd×kh×kw`` window of the volume out
    as a column of ``C·kd·kh·kw`` values; the kernels flattened to ``K × C·kd·kh·kw`` multiply it.
    The column matrix is ``kd·kh·kw / (sd·sh·sw)`` times the input (27× for a 3×3×3 kernel at
    stride 1), so it is never built: each thread gathers a tile of a few hundred KiB (several output
    depths, or rows of one depth) and multiplies it at once.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> x = np.ones((1, 1, 4, 4, 4), np.float32)
    >>> y = im2col.conv3d(x, np.ones((2, 1, 3, 3, 3), np.float32), padding=1)
    >>> y.shape
    (1, 2, 4, 4, 4)
    >>> y[0, 0, 0, 0, 0], y[0, 0, 1, 1, 1]      # a corner sees 2·2·2 voxels, the inside 27
    (np.float32(8.0), np.float32(27.0))
    """
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv3d",
            input=input,
            weight=weight,
            bias=bias,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv3d"
    cl = parse_layout(fn, layout, 3)
    xb, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, 3, cl)
    _, _, _, g = _conv_geometry(fn, xb, w, stride, padding, dilation, 3)
    N, K = xb.shape[0], w.shape[0]
    # channels-last output (the layout asks for it, or torch would give it): an (N, L, K) array,
    # seen as (N, K, L); each GEMM writes outᵀ = colsᵀ · Wᵀ into a column block of it
    out_cl = cl or (is_tensor(input) and (channels_last_like(input) or channels_last_like(weight)))
    out = _conv3d_forward(fn, xb, w, g, groups, out_cl)
    if b is not None:
        out += b[:, None]
    out = out.transpose(0, 2, 1).reshape(N, *g.out, K) if out_cl else out.reshape(N, K, *g.out)
    out = out if cl else to_channels_first(out, out_cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))


def conv3d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
    *,
    layout: str = "NCDHW",
):
    """Gradients of :func:`conv3d`: ``col2im(Wᵀ · gy)``, ``Σ gy · colsᵀ`` and ``Σ gy``.

    ``layout`` is that of ``input``, ``grad_output`` and ``grad_input``, as in the forward.

    Returns
    -------
    (grad_input, grad_weight, grad_bias)
        Shaped like ``input``, ``weight`` and ``(K,)``.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> x = np.ones((1, 1, 3, 3, 3))
    >>> gx, gw, gb = im2col.conv3d_backward(np.ones((1, 1, 1, 1, 1)), x, np.full((1, 1, 3, 3, 3), 2.0))
    >>> gx.shape, float(gx.sum()), float(gw.sum()), gb
    ((1, 1, 3, 3, 3), 54.0, 27.0, array([1.]))
    """
    return _conv3d_backward(grad_output, input, weight, stride, padding, dilation, groups, True, True, layout)


def _conv3d_backward(grad_output, input, weight, stride, padding, dilation, groups, want_input, want_weight,
                     layout="NCDHW"):  # fmt: skip
    """:func:`conv3d_backward`, computing only the gradients asked for (None in place of the others)."""
    if needs_grad(grad_output, input, weight):  # keep autograd: through im2col.nn's operators
        return autograd_call(
            "conv3d_backward",
            grad_output=grad_output,
            input=input,
            weight=weight,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            layout=layout,
        )
    fn = "conv3d_backward"
    cl = parse_layout(fn, layout, 3)
    xb, unbatched, w, _, groups = _conv_args(fn, input, weight, None, groups, 3, cl)
    _, _, _, g = _conv_geometry(fn, xb, w, stride, padding, dilation, 3)
    gy = to_array(grad_output, "grad_output", fn, strided=True)
    check_same_dtype(xb, "input", gy, "grad_output", fn)
    K = w.shape[0]
    _check_grad_output(fn, gy, xb, unbatched, K, g.out, cl)
    gy3 = to_channels_first(gy[None] if unbatched else gy, cl).reshape(
        xb.shape[0], K, g.L
    )  # a view unless oddly strided
    like = is_tensor(input)
    gx = gw = None
    if want_input:
        gx = _grad_input(fn, gy3, w, g, groups, xb.shape[1], cl or channels_last_like(input))
        gx = from_channels_first(gx, cl)
        gx = wrap_like(gx[0] if unbatched else gx, like)
    if want_weight:
        gw = wrap_like(_grad_weight(gy3, xb, w.shape, g, groups), like)
    return gx, gw, wrap_like(gy3.sum(axis=(0, 2)), like)


# --- transposed convolutions ------------------------------------------------------------------


def conv_transpose3d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
    *,
    layout: str = "NCDHW",
) -> Any:
    """Transposed 3-D convolution (``torch.nn.functional.conv_transpose3d``): one GEMM, then col2im.

    Parameters
    ----------
    input : ndarray or Tensor, shape (N, C_in, D, H, W) or (C_in, D, H, W), float32 or float64
    weight : ndarray or Tensor, shape (C_in, C_out/groups, kd, kh, kw), same dtype
    bias : ndarray or Tensor, shape (C_out,), optional
    stride, padding, dilation : int or (int, int, int)
        Those of the convolution this one transposes; ``padding`` removes voxels from the borders.
    output_padding : int or (int, int, int), default 0
        Extra voxels at the far end of each axis; each smaller than the stride or the dilation.
    groups : int, default 1
    layout : {'NCDHW', 'NDHWC', 'channels_first', 'channels_last'}, default 'NCDHW'
        Of the input and the output: with 'NDHWC' the input is (N, D, H, W, C_in), read in place,
        and the output (N, OD, OH, OW, C_out). A tensor (input or weight) in
        ``torch.channels_last_3d`` memory format gives a channels_last_3d output, as torch does.

    Returns
    -------
    ndarray or Tensor, shape (N, C_out, OD, OH, OW) or (C_out, OD, OH, OW); channels last with 'NDHWC'
        ``OD = (D − 1)·sd − 2·pd + dd·(kd − 1) + output_padding + 1``, and so on.

    Notes
    -----
    The input gradient of :func:`conv3d`, with the roles swapped: each input voxel's channels are
    multiplied by the weight matrix transposed (``C_out/groups·kd·kh·kw × C_in/groups`` per group),
    giving one column per input voxel, and col2im sums the columns into the output volume.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> x = np.ones((1, 1, 2, 2, 2), np.float32)
    >>> y = im2col.conv_transpose3d(x, np.ones((1, 1, 3, 3, 3), np.float32), stride=2, padding=1, output_padding=1)
    >>> y.shape
    (1, 1, 4, 4, 4)
    >>> y[0, 0, 0]                          # 1 under one 3×3×3 stamp, 2 where two overlap, 4 where four
    array([[1., 2., 1., 1.],
           [2., 4., 2., 2.],
           [1., 2., 1., 1.],
           [1., 2., 1., 1.]], dtype=float32)
    >>> y[0, 0, 1]                          # the depth where the two layers of stamps overlap
    array([[2., 4., 2., 2.],
           [4., 8., 4., 4.],
           [2., 4., 2., 2.],
           [2., 4., 2., 2.]], dtype=float32)
    """
    if needs_grad(input, weight, bias):  # keep autograd: through im2col.nn's registered operators
        return autograd_call(
            "conv_transpose3d",
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
    fn = "conv_transpose3d"
    cl = parse_layout(fn, layout, 3)
    xb, unbatched, w, b, groups = _conv_args(fn, input, weight, bias, groups, 3, cl, transposed=True)
    s, p, op, d, size = transposed_size(fn, xb.shape[2:], w.shape[2:], stride, padding, output_padding, dilation)
    # The convolution this transposes maps the output volume to our input's grid.
    g = NdGeometry(fn, size, w.shape[2:], s, tuple((q, q) for q in p), d, "zeros", grid=xb.shape[2:])
    N, C = xb.shape[:2]
    out_cl = cl or (is_tensor(input) and (channels_last_like(input) or channels_last_like(weight)))
    # xb as the (N, C_in, D·H·W) output gradient of that convolution: a view when it is
    # C-contiguous or channels-last
    out = _grad_input(fn, xb.reshape(N, C, g.L), w, g, groups, w.shape[1] * groups, out_cl)
    if b is not None:
        out += b.reshape(-1, 1, 1, 1)
    out = from_channels_first(out, cl)
    return wrap_like(out[0] if unbatched else out, is_tensor(input))
