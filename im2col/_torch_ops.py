"""The torch operators of this library: registration, fake (shape-only) kernels and autograd formulas.

Importing this module (``im2col.nn`` does, once) registers the eight operators that
:mod:`im2col.nn`'s docstring lists with their signatures (``im2col::conv2d``, ``conv2d_backward``,
``conv3d``, ``conv3d_backward``, ``conv_transpose2d``, ``conv_transpose3d``, ``unfold``, ``fold``)
with :func:`torch.library.custom_op`, each with a fake implementation, so that FakeTensor and
``torch.compile(fullgraph=True)`` can trace them, and an autograd formula.

Every backward is written with these same operators, so it is differentiable again (double
backward, ``gradgradcheck``). The operators take batched tensors and symmetric padding; what
``torch.nn.functional`` accepts on top is im2col/_torch_functional.py's, and the cheaper eager way
into the same kernels im2col/_torch_eager.py's (it shares :func:`transposed_grads` with the
transposed convolutions' formula here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _functional, _nd
from ._validation import channels_last_like


def _out_len(fn: str, size, k: int, s: int, p: int, d: int):
    """Output length of one axis: ``(size + 2·p − d·(k − 1) − 1) // s + 1`` (SymInt-safe)."""
    n = (size + 2 * p - d * (k - 1) - 1) // s + 1
    if isinstance(n, int) and n < 1:
        raise ValueError(
            f"{fn}(): output size ({size} + 2·{p} − {d}·({k} − 1) − 1) // {s} + 1 = {n}, but it must be at least 1"
        )
    return n


def _memory_format(*tensors: Tensor) -> torch.memory_format:
    """The memory format of a convolution's output as torch picks it, and as the kernels write it:
    channels-last when the input or the weight is (the fake implementations must agree)."""
    if any(channels_last_like(t) for t in tensors):
        return torch.channels_last if tensors[0].dim() == 4 else torch.channels_last_3d
    return torch.contiguous_format


# --- the operators ----------------------------------------------------------------------------


@torch.library.custom_op("im2col::conv2d", mutates_args=())
def _conv2d_op(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> Tensor:
    # input (N, C, H, W), weight (K, C/groups, kh, kw) -> (N, K, OH, OW)
    return _functional.conv2d(input, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups)


@_conv2d_op.register_fake
def _(input, weight, bias, stride, padding, dilation, groups):
    N, _, H, W = input.shape
    K, _, kh, kw = weight.shape
    OH = _out_len("conv2d", H, kh, stride[0], padding[0], dilation[0])
    OW = _out_len("conv2d", W, kw, stride[1], padding[1], dilation[1])
    return input.new_empty((N, K, OH, OW)).contiguous(memory_format=_memory_format(input, weight))


@torch.library.custom_op("im2col::conv2d_backward", mutates_args=())
def _conv2d_backward_op(
    grad_output: Tensor,
    input: Tensor,
    weight: Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    output_mask: Sequence[bool],
) -> tuple[Tensor, Tensor, Tensor]:
    # Gradients of conv2d w.r.t. (input, weight, bias); those not asked for in output_mask are zeros.
    want_x, want_w, want_b = output_mask
    s, p, d = tuple(stride), tuple(padding), tuple(dilation)
    gx = gw = None
    if want_w:
        gx, gw, _ = _functional.conv2d_backward(grad_output, input, weight, s, p, d, groups)
    elif want_x:
        # grad_input alone is a transposed convolution; output_padding restores the rows a strided
        # convolution dropped: (H + 2p − d(k − 1) − 1) mod s.
        H, W = input.shape[2:]
        OH, OW = grad_output.shape[2:]
        kh, kw = weight.shape[2:]
        op = tuple(
            n - ((o - 1) * ss - 2 * pp + dd * (k - 1) + 1)
            for n, o, k, ss, pp, dd in zip((H, W), (OH, OW), (kh, kw), s, p, d)
        )
        gx = _functional.conv_transpose2d(grad_output, weight, None, s, p, op, groups, d)
        gx = gx.contiguous(memory_format=_memory_format(input))  # as conv2d_backward's (no copy if it is)
    gx = gx if want_x else torch.zeros_like(input, memory_format=torch.contiguous_format)
    gw = gw if want_w else torch.zeros_like(weight, memory_format=torch.contiguous_format)
    gb = grad_output.sum((0, 2, 3)) if want_b else grad_output.new_zeros(weight.shape[0])
    return cast(Tensor, gx), cast(Tensor, gw), gb  # (tensors now: the zeros stand in for the gradients not asked for)


@_conv2d_backward_op.register_fake
def _(grad_output, input, weight, stride, padding, dilation, groups, output_mask):
    return (
        input.new_empty(input.shape).contiguous(
            memory_format=_memory_format(input) if output_mask[0] else torch.contiguous_format
        ),
        weight.new_empty(weight.shape),
        weight.new_empty(weight.shape[0]),
    )


@torch.library.custom_op("im2col::conv_transpose2d", mutates_args=())
def _conv_transpose2d_op(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    groups: int,
    dilation: Sequence[int],
) -> Tensor:
    # input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw) -> (N, C_out, OH, OW)
    return _functional.conv_transpose2d(
        input, weight, bias, tuple(stride), tuple(padding), tuple(output_padding), groups, tuple(dilation)
    )


def _transposed_size(input, weight, stride, padding, output_padding, dilation) -> list:
    """A transposed convolution's output size per axis: ``(n − 1)·s − 2·p + d·(k − 1) + o + 1``."""
    return [
        (n - 1) * s - 2 * p + d * (k - 1) + o + 1
        for n, k, s, p, d, o in zip(input.shape[2:], weight.shape[2:], stride, padding, dilation, output_padding)
    ]


@_conv_transpose2d_op.register_fake
def _conv_transpose_fake(input, weight, bias, stride, padding, output_padding, groups, dilation):
    size = _transposed_size(input, weight, stride, padding, output_padding, dilation)
    out = input.new_empty((input.shape[0], weight.shape[1] * groups, *size))
    return out.contiguous(memory_format=_memory_format(input, weight))


@torch.library.custom_op("im2col::conv_transpose3d", mutates_args=())
def _conv_transpose3d_op(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    groups: int,
    dilation: Sequence[int],
) -> Tensor:
    # input (N, C_in, D, H, W), weight (C_in, C_out/groups, kd, kh, kw) -> (N, C_out, OD, OH, OW)
    return _nd.conv_transpose3d(
        input, weight, bias, tuple(stride), tuple(padding), tuple(output_padding), groups, tuple(dilation)
    )


_conv_transpose3d_op.register_fake(_conv_transpose_fake)


@torch.library.custom_op("im2col::unfold", mutates_args=())
def _unfold_op(
    input: Tensor, kernel_size: Sequence[int], dilation: Sequence[int], padding: Sequence[int], stride: Sequence[int]
) -> Tensor:
    # (N, C, *size) -> (N, C·taps, L), with 1, 2 or 3 spatial axes (the length of kernel_size)
    return _functional.im2col(input, tuple(kernel_size), tuple(dilation), tuple(padding), tuple(stride))


@_unfold_op.register_fake
def _(input, kernel_size, dilation, padding, stride):
    N, C = input.shape[:2]
    L = 1
    for n, k, s, p, d in zip(input.shape[2:], kernel_size, stride, padding, dilation):
        L = L * _out_len("unfold", n, k, s, p, d)
    return input.new_empty((N, C * math.prod(kernel_size), L))


@torch.library.custom_op("im2col::fold", mutates_args=())
def _fold_op(
    input: Tensor,
    output_size: Sequence[int],
    kernel_size: Sequence[int],
    dilation: Sequence[int],
    padding: Sequence[int],
    stride: Sequence[int],
) -> Tensor:
    # (N, C·taps, L) -> (N, C, *output_size), overlapping windows summed
    return _functional.col2im(
        input, tuple(output_size), tuple(kernel_size), tuple(dilation), tuple(padding), tuple(stride)
    )


@_fold_op.register_fake
def _(input, output_size, kernel_size, dilation, padding, stride):
    N, R, _ = input.shape
    return input.new_empty((N, R // math.prod(kernel_size), *output_size))


@torch.library.custom_op("im2col::conv3d", mutates_args=())
def _conv3d_op(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> Tensor:
    # input (N, C, D, H, W), weight (K, C/groups, kd, kh, kw) -> (N, K, OD, OH, OW)
    return _nd.conv3d(input, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups)


@_conv3d_op.register_fake
def _(input, weight, bias, stride, padding, dilation, groups):
    size = [_out_len("conv3d", n, k, s, p, d)
            for n, k, s, p, d in zip(input.shape[2:], weight.shape[2:], stride, padding, dilation)]  # fmt: skip
    out = input.new_empty((input.shape[0], weight.shape[0], *size))
    return out.contiguous(memory_format=_memory_format(input, weight))


@torch.library.custom_op("im2col::conv3d_backward", mutates_args=())
def _conv3d_backward_op(
    grad_output: Tensor,
    input: Tensor,
    weight: Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    output_mask: Sequence[bool],
) -> tuple[Tensor, Tensor, Tensor]:
    # Gradients of conv3d w.r.t. (input, weight, bias); those not asked for in output_mask are zeros.
    want_x, want_w, want_b = output_mask
    gx, gw, gb = _nd._conv3d_backward(
        grad_output, input, weight, tuple(stride), tuple(padding), tuple(dilation), groups, want_x, want_w
    )
    gx = gx if want_x else torch.zeros_like(input, memory_format=torch.contiguous_format)
    gw = gw if want_w else torch.zeros_like(weight, memory_format=torch.contiguous_format)
    return gx, gw, gb if want_b else grad_output.new_zeros(weight.shape[0])


@_conv3d_backward_op.register_fake
def _(grad_output, input, weight, stride, padding, dilation, groups, output_mask):
    return (
        input.new_empty(input.shape).contiguous(
            memory_format=_memory_format(input) if output_mask[0] else torch.contiguous_format
        ),
        weight.new_empty(weight.shape),
        weight.new_empty(weight.shape[0]),
    )


# --- autograd: every backward in terms of the operators above, hence differentiable again ------


def _conv_autograd(forward: str, backward: str):
    """Autograd of ``im2col::<forward>`` and of its ``im2col::<backward>``, both written with these two
    operators, so gradients of any order exist. Shared by the 2-D and 3-D convolutions."""

    def setup(ctx, inputs, output):
        input, weight, bias, stride, padding, dilation, groups = inputs
        ctx.save_for_backward(input, weight)
        ctx.conf = (stride, padding, dilation, groups)

    def grad(ctx, grad):
        input, weight = ctx.saved_tensors
        mask = list(ctx.needs_input_grad[:3])
        if not any(mask):
            return (None,) * 7
        gx, gw, gb = getattr(torch.ops.im2col, backward)(grad, input, weight, *ctx.conf, mask)
        return (gx if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None, None, None, None, None)

    def backward_setup(ctx, inputs, output):
        grad_output, input, weight, stride, padding, dilation, groups, output_mask = inputs
        ctx.save_for_backward(grad_output, input, weight)
        ctx.conf = (stride, padding, dilation, groups)
        ctx.mask = tuple(output_mask)

    def backward_grad(ctx, ggx, ggw, ggb):
        # gx = convᵀ(gy, w), gw = gy · cols(x)ᵀ, gb = Σ gy: bilinear, so each derivative is one conv op.
        fwd, bwd = getattr(torch.ops.im2col, forward), getattr(torch.ops.im2col, backward)
        gy, x, w = ctx.saved_tensors
        conf = ctx.conf
        ggx, ggw, ggb = (g if m else None for g, m in zip((ggx, ggw, ggb), ctx.mask))  # zeros out there
        need_gy, need_x, need_w = ctx.needs_input_grad[:3]
        d_gy = d_x = d_w = None
        if need_gy:
            d_gy = torch.zeros_like(gy)
            if ggx is not None:
                d_gy = d_gy + fwd(ggx, w, None, *conf)
            if ggw is not None:
                d_gy = d_gy + fwd(x, ggw, None, *conf)
            if ggb is not None:
                d_gy = d_gy + ggb.reshape(1, -1, *([1] * (gy.dim() - 2)))
        if need_x and ggw is not None:
            d_x = bwd(gy, x, ggw, *conf, [True, False, False])[0]
        if need_w and ggx is not None:
            d_w = bwd(gy, ggx, w, *conf, [False, True, False])[1]
        return d_gy, d_x, d_w, None, None, None, None, None

    return (grad, setup), (backward_grad, backward_setup)


(_g, _s), (_bg, _bs) = _conv_autograd("conv2d", "conv2d_backward")
_conv2d_op.register_autograd(_g, setup_context=_s)
_conv2d_backward_op.register_autograd(_bg, setup_context=_bs)
(_g, _s), (_bg, _bs) = _conv_autograd("conv3d", "conv3d_backward")
_conv3d_op.register_autograd(_g, setup_context=_s)
_conv3d_backward_op.register_autograd(_bg, setup_context=_bs)


def _transposed_grads(x, w, gy: Tensor, g, conf: tuple, need, conv, conv_weight) -> tuple:
    """The gradients of a transposed convolution's eight inputs: the one formula of the operators'
    autograd (tensors, through the operators) and of the eager twin (arrays, through the functions).

    A transposed convolution is the adjoint of the convolution with the same ``conf`` = (stride,
    padding, dilation, groups): its input gradient is that convolution of the output gradient, and its
    weight gradient that convolution's weight gradient with the roles of input and output gradient
    swapped. gy (N, C_out, *out) is a tensor, x (N, C_in, *size) a tensor or (eager) an array;
    ``g`` and ``w`` are gy and the
    weight (C_in, C_out/groups, *k) as ``conv(g, w, *conf)`` (the convolution, a tensor) and
    ``conv_weight(x, pads, g, w, *conf)`` (its weight gradient with x, zero-padded by F.pad's
    ``pads``, as output gradient) take them; ``need`` the three ``needs_input_grad`` flags.
    """
    stride, padding, dilation, _ = conf
    gx = gw = None
    if need[0]:  # the convolution of gy, cut to x's size
        gx = conv(g, w, *conf)
        for axis, n in enumerate(x.shape[2:]):
            if gx.shape[2 + axis] != n:  # (a narrow to the full size would be a no-op view)
                gx = gx.narrow(2 + axis, 0, n)
    if need[1]:
        # The convolution of the output gradient has n + output_padding // stride positions per
        # axis where x has n (more only when output_padding ≥ stride, allowed if dilation > stride):
        # the extra ones lie past x and get no gradient, and x is zero there for the weight's.
        m = [(o + 2 * p - d * (k - 1) - 1) // s + 1
             for o, k, s, p, d in zip(gy.shape[2:], w.shape[2:], stride, padding, dilation)]  # fmt: skip
        gw = conv_weight(x, [q for mm, n in zip(reversed(m), reversed(x.shape[2:])) for q in (0, mm - n)], g, w, *conf)
    gb = gy.sum([0, *range(2, gy.dim())]) if need[2] else None
    return gx, gw, gb, None, None, None, None, None


def _conv_transpose_autograd(conv: str, conv_backward: str):
    """Autograd of a transposed convolution, the adjoint of ``im2col::<conv>``, in terms of it and of
    ``im2col::<conv_backward>`` (see :func:`_transposed_grads`)."""

    def setup(ctx, inputs, output):
        input, weight, bias, stride, padding, output_padding, groups, dilation = inputs
        ctx.save_for_backward(input, weight)
        ctx.conf = (stride, padding, dilation, groups)

    def convolve(gy, w, *conf):
        return getattr(torch.ops.im2col, conv)(gy, w, None, *conf)

    def weight_grad(x, pads, gy, w, *conf):
        return getattr(torch.ops.im2col, conv_backward)(F.pad(x, pads), gy, w, *conf, [False, True, False])[1]

    def grad(ctx, grad):
        x, w = ctx.saved_tensors
        return _transposed_grads(x, w, grad, grad, ctx.conf, ctx.needs_input_grad[:3], convolve, weight_grad)

    return grad, setup


_g, _s = _conv_transpose_autograd("conv2d", "conv2d_backward")
_conv_transpose2d_op.register_autograd(_g, setup_context=_s)
_TRANSPOSED_GRAD = {4: _g}  # by input rank; the eager twin's differentiable backward (im2col/_torch_eager.py)
_g, _s = _conv_transpose_autograd("conv3d", "conv3d_backward")
_conv_transpose3d_op.register_autograd(_g, setup_context=_s)
_TRANSPOSED_GRAD[5] = _g


def _unfold_setup(ctx, inputs, output):
    input, kernel_size, dilation, padding, stride = inputs
    ctx.size = tuple(input.shape[2:])
    ctx.conf = (kernel_size, dilation, padding, stride)


def _unfold_grad(ctx, grad):
    return torch.ops.im2col.fold(grad, ctx.size, *ctx.conf), None, None, None, None


_unfold_op.register_autograd(_unfold_grad, setup_context=_unfold_setup)


def _fold_setup(ctx, inputs, output):
    input, output_size, kernel_size, dilation, padding, stride = inputs
    ctx.conf = (kernel_size, dilation, padding, stride)


def _fold_grad(ctx, grad):
    return torch.ops.im2col.unfold(grad, *ctx.conf), None, None, None, None, None


_fold_op.register_autograd(_fold_grad, setup_context=_fold_setup)
