"""The eager fast path into the kernels: ``torch.autograd.Function`` twins of the registered operators.

A torch.library.custom_op call costs about 70 µs per forward+backward before any work is done
(its dispatch, schema checks and autograd wrapper), against about 40 µs for a plain
torch.autograd.Function; on small layers that overhead was most of the time. So in eager mode a
convolution (1-, 2- or 3-D, transposed or not) of plain contiguous CPU float tensors runs through
the autograd.Functions below, which hand NumPy views to the public functions (whose per-signature
plans skip the checks already passed, im2col/_plans.py); everything else — torch.compile,
torch.func transforms, tensor subclasses (FakeTensor), channels-last or non-float inputs, double
backward — takes the registered operators. The choice depends only on the call, never on timing.

The transposed and 3-D ones call exactly the functions the operators call, on the same data, so
they give the operators' bits; the 2-D one's small-problem backward is composed of planned calls
(im2col, two matrix products, col2im), equal to the operator's within the test oracle's tolerance;
the 1-D one is the 2-D one of height 1 inside a single node. Each forward keeps its NumPy views on
``ctx`` for the backward, which still unpacks the saved tensors (autograd's in-place check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import _functional, _nd
from ._torch_ops import _TRANSPOSED_GRAD, _transposed_grads
from ._validation import channels_last_like

_FLOATS = (torch.float32, torch.float64)
_Parameter = torch.nn.Parameter
#: Below this many bytes of columns, the eager 2-D backward is im2col, two matrix products and
#: col2im (each a planned call); above it, the library's tiled conv2d_backward, whose memory is bounded.
COMPOSED_BACKWARD_BYTES = 1 << 20


_is_compiling = torch.compiler.is_compiling
_functorch_active = torch._C._are_functorch_transforms_active
_unwrap_if_dead = torch._C._functorch.unwrap_if_dead


def _eager(x: Tensor, w: Tensor, b: Tensor | None) -> bool:
    if _is_compiling() or _functorch_active():
        return False
    dtype = x.dtype
    for t in (x, w) if b is None else (x, w, b):
        cls = type(t)
        if (cls is not Tensor and cls is not _Parameter) or t.dtype != dtype or not t.is_contiguous():
            return False
    return dtype in _FLOATS and x.is_cpu and w.is_cpu


def _c_apply(cls: type[torch.autograd.Function]) -> Callable[..., Any]:
    """``cls.apply`` without ``torch.autograd.Function.apply``'s Python wrapper: with no functorch
    transform active (which :func:`_eager` has checked) that wrapper only unwraps dead functorch
    wrappers — the callers do that with ``_unwrap_if_dead`` — and calls this."""
    return super(torch.autograd.Function, cls).apply  # type: ignore[misc]  # a C base method mypy cannot see


def _array(t: Tensor):
    return t.detach().numpy()


def _eager_forward(ctx, conv, x: Tensor, w: Tensor, b: Tensor | None, conf: tuple) -> Tensor:
    """The forward of an eager conv Function: ``conv`` (conv2d or conv3d on arrays) on NumPy views,
    saving what the backward needs. ``conf`` = (stride, padding, dilation, groups) as tuples."""
    xa, wa = _array(x), _array(w)
    y = conv(xa, wa, None if b is None else _array(b), *conf)
    _save(ctx, x, w, xa, wa)
    ctx.conf = conf
    return torch.from_numpy(y)


def _save(ctx, x: Tensor, w: Tensor, xa, wa) -> None:
    """Save x and w for the backward, and their NumPy views: the backward unpacks the tensors (so an
    in-place change of either since the forward raises autograd's error, as it would) but computes on
    the views, which saves converting each tensor again (about 10k instructions apiece)."""
    ctx.save_for_backward(x, w)
    ctx.arrays = (xa, wa)


def _saved_arrays(ctx) -> tuple:
    """The NumPy views of x and w that :func:`_save` kept, after autograd's check of the tensors."""
    ctx.saved_tensors  # noqa: B018  (unpacking checks their versions: raises if changed in place)
    return ctx.arrays


def _grads_through_operator(op, ctx, gy: Tensor) -> tuple:
    """create_graph: a differentiable backward, through the registered ``op`` (conv2d_backward or
    conv3d_backward); the gradients of an eager conv Function's seven inputs."""
    x, w = ctx.saved_tensors
    stride, padding, dilation, groups = ctx.conf
    need = ctx.needs_input_grad[:3]
    gx, gw, gb = op(gy, x, w, list(stride), list(padding), list(dilation), groups, list(need))
    return (gx if need[0] else None, gw if need[1] else None, gb if need[2] else None) + (None,) * 4


class _Conv2dEager(torch.autograd.Function):
    """``im2col::conv2d`` for eager calls (see the module docstring): same values, a cheaper way in."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        # x (N, C, H, W), w (K, C/groups, kh, kw) -> (N, K, OH, OW); conf as tuples, the plans' keys
        return _eager_forward(ctx, _functional.conv2d, x, w, b, (stride, padding, dilation, groups))

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled():
            return _grads_through_operator(torch.ops.im2col.conv2d_backward, ctx, gy)
        x, w = _saved_arrays(ctx)
        need = ctx.needs_input_grad[:3]
        gx, gw, gb = _conv2d_grads(gy.contiguous().numpy(), x, w, ctx.conf)
        return (torch.from_numpy(gx) if need[0] else None, torch.from_numpy(gw) if need[1] else None,
                torch.from_numpy(gb) if need[2] else None, None, None, None, None)  # fmt: skip


def _conv2d_grads(gy, x, w, conf):
    """(grad_input, grad_weight, grad_bias) of conv2d as NumPy arrays; gy (N, K, OH, OW)."""
    stride, padding, dilation, groups = conf
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    L = gy.shape[2] * gy.shape[3]
    R = C * kh * kw
    if groups != 1 or N * R * L * x.itemsize > COMPOSED_BACKWARD_BYTES or N == 0:
        return _functional.conv2d_backward(gy, x, w, stride, padding, dilation, groups)
    # grad_weight = Σₙ gy·colsᵀ and grad_input = col2im(Wᵀ·gy): the definitions, on planned calls
    cols = _functional.im2col(x, (kh, kw), dilation, padding, stride)  # (N, R, L)
    gy3 = gy.reshape(N, K, L)
    gw = np.matmul(gy3, cols.transpose(0, 2, 1))
    gw = (gw[0] if N == 1 else gw.sum(0)).reshape(w.shape)
    gx = _functional.col2im(np.matmul(w.reshape(K, R).T, gy3), (H, W), (kh, kw), dilation, padding, stride)
    return gx, gw, np.add.reduce(gy3, (0, 2))  # what gy3.sum((0, 2)) calls


class _Conv1dEager(torch.autograd.Function):
    """A 1-D convolution as ``_Conv2dEager``'s of height 1, the unit axis added to and taken from the
    NumPy views inside (the same arrays, the same strides, the same calls): one autograd node where
    unsqueezing the tensors around the 2-D one made four."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        # x (N, C, L), w (K, C/groups, k) -> (N, K, OL); conf as the 2-D one's tuples (height 1)
        xa, wa = _array(x), _array(w)
        xa, wa = xa.reshape(xa.shape[0], xa.shape[1], 1, xa.shape[2]), wa.reshape(*wa.shape[:2], 1, wa.shape[2])
        y = _functional.conv2d(xa, wa, None if b is None else _array(b), stride, padding, dilation, groups)
        _save(ctx, x, w, xa, wa)
        ctx.conf = (stride, padding, dilation, groups)
        return torch.from_numpy(y.reshape(y.shape[0], y.shape[1], y.shape[3]))

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled():
            x, w = ctx.saved_tensors
            stride, padding, dilation, groups = ctx.conf
            need = ctx.needs_input_grad[:3]
            gx, gw, gb = torch.ops.im2col.conv2d_backward(
                gy.unsqueeze(2), x.unsqueeze(2), w.unsqueeze(2), list(stride), list(padding), list(dilation), groups,
                list(need),
            )  # fmt: skip
            return (gx.squeeze(2) if need[0] else None, gw.squeeze(2) if need[1] else None,
                    gb if need[2] else None, None, None, None, None)  # fmt: skip
        x, w = _saved_arrays(ctx)
        need = ctx.needs_input_grad[:3]
        g = gy.contiguous().numpy()
        gx, gw, gb = _conv2d_grads(g.reshape(g.shape[0], g.shape[1], 1, g.shape[2]), x, w, ctx.conf)
        return (torch.from_numpy(gx.reshape(x.shape[0], x.shape[1], x.shape[3])) if need[0] else None,
                torch.from_numpy(gw.reshape(w.shape[0], w.shape[1], w.shape[3])) if need[1] else None,
                torch.from_numpy(gb) if need[2] else None, None, None, None, None)  # fmt: skip


class _Conv3dEager(torch.autograd.Function):
    """``im2col::conv3d`` for eager calls: the functions its operators call, on NumPy views."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        # x (N, C, D, H, W), w (K, C/groups, kd, kh, kw) -> (N, K, OD, OH, OW)
        return _eager_forward(ctx, _nd.conv3d, x, w, b, (stride, padding, dilation, groups))

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled():
            return _grads_through_operator(torch.ops.im2col.conv3d_backward, ctx, gy)
        x, w = _saved_arrays(ctx)
        need = ctx.needs_input_grad[:3]
        # what im2col::conv3d_backward computes; gy's strides only change how it is read
        stride, padding, dilation, groups = ctx.conf
        gx, gw, gb = _nd._conv3d_backward(_array(gy), x, w, stride, padding, dilation, groups, need[0], need[1])
        return (None if gx is None else torch.from_numpy(gx), None if gw is None else torch.from_numpy(gw),
                torch.from_numpy(gb) if need[2] else None, None, None, None, None)  # fmt: skip


def _conv2d_of(g, w, stride, padding, dilation, groups) -> Tensor:
    return torch.from_numpy(_functional.conv2d(g, w, None, stride, padding, dilation, groups))


def _conv3d_of(g, w, stride, padding, dilation, groups) -> Tensor:
    return torch.from_numpy(_nd.conv3d(g, w, None, stride, padding, dilation, groups))


def _padded(x: np.ndarray, pads: list[int]) -> np.ndarray:
    """x zero-padded by F.pad's ``pads`` (last axis first, (before, after) each): the same values."""
    if not any(pads):
        return x
    sides = [(pads[i], pads[i + 1]) for i in range(len(pads) - 2, -1, -2)]
    return np.pad(x, [(0, 0)] * (x.ndim - len(sides)) + sides)


def _conv2d_weight_grad(x, pads, g, w, stride, padding, dilation, groups) -> Tensor:
    gw = _functional.conv2d_backward(_padded(x, pads), g, w, stride, padding, dilation, groups)[1]
    return torch.from_numpy(gw)


def _conv3d_weight_grad(x, pads, g, w, stride, padding, dilation, groups) -> Tensor:
    gw = _nd._conv3d_backward(_padded(x, pads), g, w, stride, padding, dilation, groups, False, True)[1]
    return torch.from_numpy(gw)


#: input rank -> (transposed convolution, convolution, convolution's weight gradient): on arrays, what
#: im2col::conv_transpose2d/3d and the operators of their autograd formula call (the last two in the
#: form :func:`_transposed_grads` calls them)
_TRANSPOSED_FNS = {
    4: (_functional.conv_transpose2d, _conv2d_of, _conv2d_weight_grad),
    5: (_nd.conv_transpose3d, _conv3d_of, _conv3d_weight_grad),
}


class _ConvTransposeEager(torch.autograd.Function):
    """``im2col::conv_transpose2d`` and ``conv_transpose3d`` for eager calls: the functions the
    operator and its autograd formula (:func:`_transposed_grads`) call, on NumPy views."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, groups, dilation):
        # x (N, C_in, *size), w (C_in, C_out/groups, *k) -> (N, C_out, *out)
        xa, wa = _array(x), _array(w)
        y = _TRANSPOSED_FNS[x.dim()][0](
            xa, wa, None if b is None else _array(b), stride, padding, output_padding, groups, dilation
        )
        _save(ctx, x, w, xa, wa)
        ctx.conf = (stride, padding, dilation, groups)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled() or (not gy.is_contiguous() and channels_last_like(gy)):
            # create_graph (a differentiable backward), or a channels-last gy, whose layout the
            # operators' convolution of it passes on: the operators' own formula
            return _TRANSPOSED_GRAD[gy.dim()](ctx, gy)
        x, w = _saved_arrays(ctx)
        _, conv, conv_weight = _TRANSPOSED_FNS[x.ndim]
        return _transposed_grads(x, w, gy, _array(gy), ctx.conf, ctx.needs_input_grad[:3], conv, conv_weight)


_conv2d_apply = _c_apply(_Conv2dEager)
_conv1d_apply = _c_apply(_Conv1dEager)
_conv3d_apply = _c_apply(_Conv3dEager)
_conv_transpose_apply = _c_apply(_ConvTransposeEager)


def _conv2d(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """``im2col::conv2d`` or its eager twin (same values); x is batched."""
    if _eager(x, w, b) and w.dim() == 4 and x.dim() == 4:
        b = None if b is None else _unwrap_if_dead(b)
        return _conv2d_apply(_unwrap_if_dead(x), _unwrap_if_dead(w), b, stride, padding, dilation, groups)
    return torch.ops.im2col.conv2d(x, w, b, list(stride), list(padding), list(dilation), groups)


def _conv1d(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """A batched 1-D convolution as a 2-D one of height 1 (in eager mode inside one autograd.Function)."""
    if _eager(x, w, b) and w.dim() == 3 and x.dim() == 3:
        b = None if b is None else _unwrap_if_dead(b)
        return _conv1d_apply(_unwrap_if_dead(x), _unwrap_if_dead(w), b, (1, stride[0]), (0, padding[0]),
                             (1, dilation[0]), groups)  # fmt: skip
    y = _conv2d(x.unsqueeze(2), w.unsqueeze(2), b, (1, stride[0]), (0, padding[0]), (1, dilation[0]), groups)
    return y.squeeze(2)


def _conv3d(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """``im2col::conv3d`` or its eager twin (same bits); x is batched."""
    if _eager(x, w, b) and w.dim() == 5 and x.dim() == 5:
        b = None if b is None else _unwrap_if_dead(b)
        return _conv3d_apply(_unwrap_if_dead(x), _unwrap_if_dead(w), b, stride, padding, dilation, groups)
    return torch.ops.im2col.conv3d(x, w, b, list(stride), list(padding), list(dilation), groups)


#: number of spatial axes -> the batched convolution, its arguments checked
_CONV_BATCHED = {1: _conv1d, 2: _conv2d, 3: _conv3d}


def _conv_transpose(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple,
                    output_padding: tuple, groups: int, dilation: tuple):  # fmt: skip
    """``im2col::conv_transpose2d`` (4-D x) or ``conv_transpose3d`` (5-D), or their eager twin (same
    bits); x is batched."""
    if _eager(x, w, b) and w.dim() == x.dim():
        b = None if b is None else _unwrap_if_dead(b)
        return _conv_transpose_apply(
            _unwrap_if_dead(x), _unwrap_if_dead(w), b, stride, padding, output_padding, groups, dilation
        )
    op = torch.ops.im2col.conv_transpose2d if x.dim() == 4 else torch.ops.im2col.conv_transpose3d
    return op(x, w, b, list(stride), list(padding), list(output_padding), groups, list(dilation))


def _conv_transpose1d(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple,
                      output_padding: tuple, groups: int, dilation: tuple):  # fmt: skip
    """A batched 1-D transposed convolution as a 2-D one of height 1."""
    y = _conv_transpose(x.unsqueeze(2), w.unsqueeze(2), b, (1, stride[0]), (0, padding[0]), (0, output_padding[0]),
                        groups, (1, dilation[0]))  # fmt: skip
    return y.squeeze(2)


#: number of spatial axes -> the batched transposed convolution, its arguments checked
_TRANSPOSED_BATCHED = {1: _conv_transpose1d, 2: _conv_transpose, 3: _conv_transpose}
