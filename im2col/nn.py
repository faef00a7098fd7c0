"""PyTorch integration: this library's kernels as torch operators, autograd and ``torch.nn`` modules.

``import im2col.nn`` (it imports torch; ``import im2col`` does not) registers eight operators with
:func:`torch.library.custom_op`, each with a fake (shape-only) implementation and an autograd
formula, so they work under ``torch.compile(fullgraph=True)``, ``gradcheck`` and ``gradgradcheck``::

    im2col::conv2d(input, weight, bias?, stride, padding, dilation, groups)
    im2col::conv2d_backward(grad_output, input, weight, stride, padding, dilation, groups, output_mask)
    im2col::conv3d(input, weight, bias?, stride, padding, dilation, groups)
    im2col::conv3d_backward(grad_output, input, weight, stride, padding, dilation, groups, output_mask)
    im2col::conv_transpose2d(input, weight, bias?, stride, padding, output_padding, groups, dilation)
    im2col::conv_transpose3d(input, weight, bias?, stride, padding, output_padding, groups, dilation)
    im2col::unfold(input, kernel_size, dilation, padding, stride)
    im2col::fold(input, output_size, kernel_size, dilation, padding, stride)

Every backward is written with these same operators, so it is differentiable again (double
backward for gradient penalties and Hessian-vector products). The operators take batched tensors
and symmetric padding; the functions and modules below add what ``torch.nn.functional``
and ``torch.nn`` accept on top (unbatched input, ``padding='same'``, ``padding_mode``, 1-D) with
ordinary torch code that autograd and the compiler see through. ``unfold`` and ``fold`` take 1, 2
or 3 spatial axes (torch's are 2-D only).

In eager mode a 2-D or 1-D convolution of plain contiguous CPU float tensors takes a cheaper way in,
a ``torch.autograd.Function`` over the same kernels (the custom op's own dispatch cost more than
the work on small layers); see "the eager fast path" below. The NumPy-style functions
(``im2col.conv2d`` and the others) import this module lazily when a tensor argument requires grad
and run through it (see ``_autograd_call``), so they keep autograd too; ``import im2col`` alone
never imports torch, and nothing here is imported by the functional API at import time.

Modules ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d``, ``ConvTranspose2d``,
``ConvTranspose3d``, ``Unfold`` and ``Fold`` subclass their ``torch.nn`` twins and only replace the
computation: constructor arguments, parameters, their initialisation and ``state_dict`` are
torch's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import _functional, _nd
from ._validation import channels_last_like, layout_dims

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "unfold",
    "fold",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Unfold",
    "Fold",
]


def _out_len(fn: str, size, k: int, s: int, p: int, d: int):
    """Output length of one axis: ``(size + 2·p − d·(k − 1) − 1) // s + 1`` (SymInt-safe)."""
    n = (size + 2 * p - d * (k - 1) - 1) // s + 1
    if isinstance(n, int) and n < 1:
        raise ValueError(
            f"{fn}(): output size ({size} + 2·{p} − {d}·({k} − 1) − 1) // {s} + 1 = {n}, but it must be at least 1"
        )
    return n


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


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
    return gx, gw, gb


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


def _conv_transpose_autograd(conv: str, conv_backward: str):
    """Autograd of a transposed convolution, the adjoint of ``im2col::<conv>``: its input gradient is
    the convolution of the output gradient, and its weight gradient the convolution's weight gradient
    with the roles of input and output gradient swapped."""

    def setup(ctx, inputs, output):
        input, weight, bias, stride, padding, output_padding, groups, dilation = inputs
        ctx.save_for_backward(input, weight)
        ctx.conf = (stride, padding, dilation, groups)

    def grad(ctx, grad):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        fwd, bwd = getattr(torch.ops.im2col, conv), getattr(torch.ops.im2col, conv_backward)
        stride, padding, dilation, _ = ctx.conf
        # The convolution of the output gradient has n + output_padding // stride positions per
        # axis where x has n (more only when output_padding ≥ stride, allowed if dilation > stride):
        # the extra ones lie past x and get no gradient, and x is zero there for the weight's.
        m = [(o + 2 * p - d * (k - 1) - 1) // s + 1
             for o, k, s, p, d in zip(grad.shape[2:], w.shape[2:], stride, padding, dilation)]  # fmt: skip
        gx = gw = None
        if need_x:
            gx = fwd(grad, w, None, *ctx.conf)
            for axis, n in enumerate(x.shape[2:]):
                gx = gx.narrow(2 + axis, 0, n)
        if need_w:
            xp = F.pad(x, [q for mm, n in zip(reversed(m), reversed(x.shape[2:])) for q in (0, mm - n)])
            gw = bwd(xp, grad, w, *ctx.conf, [False, True, False])[1]
        gb = grad.sum([0, *range(2, grad.dim())]) if need_b else None
        return gx, gw, gb, None, None, None, None, None

    return grad, setup


_g, _s = _conv_transpose_autograd("conv2d", "conv2d_backward")
_conv_transpose2d_op.register_autograd(_g, setup_context=_s)
_TRANSPOSED_GRAD = {4: _g}  # by input rank; the eager twin's differentiable backward (below)
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


# --- the eager fast path ------------------------------------------------------------------------
#
# A torch.library.custom_op call costs about 70 µs per forward+backward before any work is done
# (its dispatch, schema checks and autograd wrapper), against about 40 µs for a plain
# torch.autograd.Function; on small layers that overhead was most of the time. So in eager mode a
# convolution (1-, 2- or 3-D, transposed or not) of plain contiguous CPU float tensors runs through
# the autograd.Functions below, which hand NumPy views to the public functions (whose per-signature
# plans skip the checks already passed, im2col/_plans.py); everything else — torch.compile,
# torch.func transforms, tensor subclasses (FakeTensor), channels-last or non-float inputs, double
# backward — takes the registered operators. The choice depends only on the call, never on timing.
#
# The transposed and 3-D ones call exactly the functions the operators call, on the same data, so
# they give the operators' bits; the 2-D one's small-problem backward is composed of planned calls
# (im2col, two matrix products, col2im), equal to the operator's within the test oracle's tolerance.

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


def _c_apply(cls: type) -> object:
    """``cls.apply`` without ``torch.autograd.Function.apply``'s Python wrapper: with no functorch
    transform active (which :func:`_eager` has checked) that wrapper only unwraps dead functorch
    wrappers — the callers do that with ``_unwrap_if_dead`` — and calls this."""
    return super(torch.autograd.Function, cls).apply


def _array(t: Tensor):
    return t.detach().numpy()


def _eager_forward(ctx, conv, x: Tensor, w: Tensor, b: Tensor | None, conf: tuple) -> Tensor:
    """The forward of an eager conv Function: ``conv`` (conv2d or conv3d on arrays) on NumPy views,
    saving what the backward needs. ``conf`` = (stride, padding, dilation, groups) as tuples."""
    y = conv(_array(x), _array(w), None if b is None else _array(b), *conf)
    ctx.save_for_backward(x, w)
    ctx.conf = conf
    return torch.from_numpy(y)


def _grads_through_operator(op, ctx, gy: Tensor) -> tuple:
    """create_graph: a differentiable backward, through the registered ``op`` (conv2d_backward or
    conv3d_backward); the gradients of an eager conv Function's seven inputs."""
    x, w = ctx.saved_tensors
    stride, padding, dilation, groups = ctx.conf
    need = ctx.needs_input_grad[:3]
    gx, gw, gb = op(gy, x, w, list(stride), list(padding), list(dilation), groups, list(need))
    return (gx if need[0] else None, gw if need[1] else None, gb if need[2] else None) + (None,) * 4


class _Conv2dEager(torch.autograd.Function):
    """``im2col::conv2d`` for eager calls (see above): same values, a cheaper way in."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        # x (N, C, H, W), w (K, C/groups, kh, kw) -> (N, K, OH, OW); conf as tuples, the plans' keys
        return _eager_forward(ctx, _functional.conv2d, x, w, b, (stride, padding, dilation, groups))

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled():
            return _grads_through_operator(torch.ops.im2col.conv2d_backward, ctx, gy)
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad[:3]
        gx, gw, gb = _conv2d_grads(gy.contiguous().numpy(), _array(x), _array(w), ctx.conf)
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
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad[:3]
        # what im2col::conv3d_backward computes; gy's strides only change how it is read
        gx, gw, gb = _nd._conv3d_backward(_array(gy), _array(x), _array(w), *ctx.conf, need[0], need[1])
        return (None if gx is None else torch.from_numpy(gx), None if gw is None else torch.from_numpy(gw),
                torch.from_numpy(gb) if need[2] else None, None, None, None, None)  # fmt: skip


def _conv2d_backward_weight(gy, x, w, stride, padding, dilation, groups):
    return _functional.conv2d_backward(gy, x, w, stride, padding, dilation, groups)[1]


def _conv3d_backward_weight(gy, x, w, stride, padding, dilation, groups):
    return _nd._conv3d_backward(gy, x, w, stride, padding, dilation, groups, False, True)[1]


#: input rank -> (transposed convolution, convolution, convolution's weight gradient), on arrays:
#: what im2col::conv_transpose2d/3d and the operators of their autograd formula call
_TRANSPOSED_FNS = {
    4: (_functional.conv_transpose2d, _functional.conv2d, _conv2d_backward_weight),
    5: (_nd.conv_transpose3d, _nd.conv3d, _conv3d_backward_weight),
}


class _ConvTransposeEager(torch.autograd.Function):
    """``im2col::conv_transpose2d`` and ``conv_transpose3d`` for eager calls: the functions the
    operator and its autograd formula (``_conv_transpose_autograd``) call, on NumPy views."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, groups, dilation):
        # x (N, C_in, *size), w (C_in, C_out/groups, *k) -> (N, C_out, *out)
        y = _TRANSPOSED_FNS[x.dim()][0](
            _array(x), _array(w), None if b is None else _array(b), stride, padding, output_padding, groups, dilation
        )
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, dilation, groups)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, gy):
        if torch.is_grad_enabled() or (not gy.is_contiguous() and channels_last_like(gy)):
            # create_graph (a differentiable backward), or a channels-last gy, whose layout the
            # operators' convolution of it passes on: the operators' own formula
            return _TRANSPOSED_GRAD[gy.dim()](ctx, gy)
        x, w = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        _, conv, conv_weight = _TRANSPOSED_FNS[x.dim()]
        g, wa = _array(gy), _array(w)
        gx = gw = None
        if need_x:  # the convolution of gy, cut to x's size (see _conv_transpose_autograd)
            gx = torch.from_numpy(conv(g, wa, None, stride, padding, dilation, groups))
            for axis, n in enumerate(x.shape[2:]):
                gx = gx.narrow(2 + axis, 0, n)
        if need_w:  # the convolution's weight gradient with x as its output gradient, x zero-padded
            m = [(o + 2 * p - d * (k - 1) - 1) // s + 1
                 for o, k, s, p, d in zip(gy.shape[2:], w.shape[2:], stride, padding, dilation)]  # fmt: skip
            pads = [q for mm, n in zip(reversed(m), reversed(x.shape[2:])) for q in (0, mm - n)]
            xp = F.pad(x.detach(), pads) if any(pads) else x.detach()
            gw = torch.from_numpy(conv_weight(xp.numpy(), g, wa, stride, padding, dilation, groups))
        gb = gy.sum([0, *range(2, gy.dim())]) if need_b else None
        return gx, gw, gb, None, None, None, None, None


_conv2d_apply = _c_apply(_Conv2dEager)
_conv3d_apply = _c_apply(_Conv3dEager)
_conv_transpose_apply = _c_apply(_ConvTransposeEager)


def _conv2d(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """``im2col::conv2d`` or its eager twin (same values); x is batched."""
    if _eager(x, w, b) and w.dim() == 4 and x.dim() == 4:
        b = None if b is None else _unwrap_if_dead(b)
        return _conv2d_apply(_unwrap_if_dead(x), _unwrap_if_dead(w), b, stride, padding, dilation, groups)
    return torch.ops.im2col.conv2d(x, w, b, list(stride), list(padding), list(dilation), groups)


def _conv1d(x: Tensor, w: Tensor, b: Tensor | None, stride: tuple, padding: tuple, dilation: tuple, groups: int):
    """A batched 1-D convolution as a 2-D one of height 1."""
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


# --- functions with torch.nn.functional's signatures -------------------------------------------


def _same_padding(fn: str, padding, kernel_size, stride, dilation) -> list[tuple[int, int]]:
    """Per-axis (before, after) padding for an int, a tuple, 'valid' or 'same' (extra pixel after)."""
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * len(kernel_size)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{fn}(): padding='same' needs stride=1, got stride={tuple(stride)}")
            return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel_size, dilation)]
        raise ValueError(
            f"{fn}(): argument 'padding' must be an int, a tuple of ints, 'valid' or 'same', got {padding!r}"
        )
    return [(p, p) for p in padding]


def _conv_conf(fn: str, n: int, stride, padding, dilation, kernel_size) -> tuple:
    """Checked ``(stride, padding, dilation, pad)`` of an n-D convolution: the first three tuples of n
    ints, the padding symmetric; ``pad`` is F.pad's argument for an odd 'same' total (the extra
    pixel after, as torch pads it), to apply before convolving, else None."""
    stride = _tuple(fn, "stride", stride, n)
    dilation = _tuple(fn, "dilation", dilation, n)
    if not isinstance(padding, str):
        padding = _tuple(fn, "padding", padding, n)
    sides = _same_padding(fn, padding, kernel_size, stride, dilation)
    if any(a != b for a, b in sides):
        return stride, (0,) * n, dilation, tuple(q for pair in reversed(sides) for q in pair)
    return stride, tuple(a for a, _ in sides), dilation, None


def _batched(fn: str, input: Tensor, dims: int, layout: str) -> tuple[Tensor, bool]:
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() not in (dims + 1, dims + 2):
        raise ValueError(
            f"{fn}(): argument 'input' must be a {dims + 1}-D (unbatched) or {dims + 2}-D {layout} tensor, "
            f"got a {input.dim()}-D tensor of shape {tuple(input.shape)}"
        )
    unbatched = input.dim() == dims + 1
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _tuple(fn: str, name: str, value, n: int) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise TypeError(f"{fn}(): argument '{name}' must be an int or a tuple of {n} ints, got {value!r}")


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """``torch.nn.functional.conv2d`` through im2col and one GEMM per group, differentiable.

    Parameters
    ----------
    input : Tensor, shape (N, C, H, W) or (C, H, W), float32 or float64
    weight : Tensor, shape (K, C/groups, kh, kw)
    bias : Tensor, shape (K,), optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), 'valid' or 'same'
        Zero padding; 'same' with an even total pads one more pixel at the bottom/right, as torch.
    groups : int

    Returns
    -------
    Tensor, shape (N, K, OH, OW) or (K, OH, OW)
        ``OH = (H + 2·ph − dh·(kh − 1) − 1) // sh + 1``. Gradients flow to input, weight and bias
        (twice differentiable), and the call compiles under ``torch.compile(fullgraph=True)``.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> y = im2col.nn.conv2d(x, w, padding="same")
    >>> y.shape
    torch.Size([2, 4, 8, 8])
    >>> torch.allclose(y, torch.nn.functional.conv2d(x, w, padding="same"))
    True
    >>> y.sum().backward()
    >>> w.grad.shape
    torch.Size([4, 3, 3, 3])
    """
    fn = "conv2d"
    x, unbatched = _batched(fn, input, 2, "(N, C, H, W)")
    stride, padding, dilation, pad = _conv_conf(fn, 2, stride, padding, dilation, weight.shape[2:])
    if pad is not None:  # odd 'same' total: pad the extra pixel explicitly, as torch does
        x = F.pad(x, pad)
    y = _conv2d(x, weight, bias, stride, padding, dilation, groups)
    return y.squeeze(0) if unbatched else y


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """``torch.nn.functional.conv1d`` as a 2-D convolution of height 1, differentiable.

    Parameters
    ----------
    input : Tensor, shape (N, C, L) or (C, L)
    weight : Tensor, shape (K, C/groups, k)
    bias : Tensor, shape (K,), optional
    stride, padding, dilation : int or (int,); padding may be 'valid' or 'same'
    groups : int

    Returns
    -------
    Tensor, shape (N, K, OL) or (K, OL)

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x, w = torch.randn(2, 3, 10), torch.randn(5, 3, 4)
    >>> y = im2col.nn.conv1d(x, w, stride=2, padding=1)
    >>> y.shape
    torch.Size([2, 5, 5])
    >>> torch.allclose(y, torch.nn.functional.conv1d(x, w, stride=2, padding=1), atol=1e-5)
    True
    """
    fn = "conv1d"
    x, unbatched = _batched(fn, input, 1, "(N, C, L)")
    if weight.dim() != 3:
        raise ValueError(f"{fn}(): argument 'weight' must be 3-D (K, C/groups, k), got shape {tuple(weight.shape)}")
    stride, padding, dilation, pad = _conv_conf(fn, 1, stride, padding, dilation, weight.shape[2:])
    if pad is not None:
        x = F.pad(x, pad)
    y = _conv1d(x, weight, bias, stride, padding, dilation, groups)
    return y.squeeze(0) if unbatched else y


def conv3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """``torch.nn.functional.conv3d`` through vol2col and one GEMM per group, differentiable.

    Parameters
    ----------
    input : Tensor, shape (N, C, D, H, W) or (C, D, H, W), float32 or float64
    weight : Tensor, shape (K, C/groups, kd, kh, kw)
    bias : Tensor, shape (K,), optional
    stride, dilation : int or (int, int, int)
    padding : int, (int, int, int), 'valid' or 'same'
    groups : int

    Returns
    -------
    Tensor, shape (N, K, OD, OH, OW) or (K, OD, OH, OW)

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x, w = torch.randn(1, 2, 4, 5, 6), torch.randn(3, 2, 3, 3, 3)
    >>> y = im2col.nn.conv3d(x, w, padding="same")
    >>> y.shape
    torch.Size([1, 3, 4, 5, 6])
    >>> torch.allclose(y, torch.nn.functional.conv3d(x, w, padding="same"), atol=1e-5)
    True
    """
    fn = "conv3d"
    x, unbatched = _batched(fn, input, 3, "(N, C, D, H, W)")
    stride, padding, dilation, pad = _conv_conf(fn, 3, stride, padding, dilation, weight.shape[2:])
    if pad is not None:  # odd 'same' total: pad the extra voxel explicitly, as torch does
        x = F.pad(x, pad)
    y = _conv3d(x, weight, bias, stride, padding, dilation, groups)
    return y.squeeze(0) if unbatched else y


def _transpose_conf(fn: str, n: int, stride, padding, output_padding, dilation) -> list[tuple[int, ...]]:
    """[stride, padding, output_padding, dilation] of an n-D transposed convolution, as tuples."""
    s, p, op, d = (_tuple(fn, name, v, n) for name, v in
                   (("stride", stride), ("padding", padding), ("output_padding", output_padding),
                    ("dilation", dilation)))  # fmt: skip
    for o, ss, dd in zip(op, s, d):
        if o >= max(ss, dd):
            raise ValueError(
                f"{fn}(): output_padding must be smaller than either stride or dilation, got "
                f"output_padding={tuple(op)}, stride={tuple(s)}, dilation={tuple(d)}"
            )
    return [s, p, op, d]


def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """``torch.nn.functional.conv_transpose1d`` as a 2-D one of height 1, differentiable.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, L) or (C_in, L)
    weight : Tensor, shape (C_in, C_out/groups, k)
    bias : Tensor, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int,)
    groups : int

    Returns
    -------
    Tensor, shape (N, C_out, OL) or (C_out, OL)
        ``OL = (L − 1)·s − 2·p + d·(k − 1) + output_padding + 1``.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x, w = torch.randn(2, 4, 10), torch.randn(4, 3, 5)
    >>> y = im2col.nn.conv_transpose1d(x, w, stride=2, padding=2, output_padding=1)
    >>> y.shape
    torch.Size([2, 3, 20])
    >>> torch.allclose(y, torch.nn.functional.conv_transpose1d(x, w, stride=2, padding=2, output_padding=1),
    ...                atol=1e-5)
    True
    """
    fn = "conv_transpose1d"
    x, unbatched = _batched(fn, input, 1, "(N, C_in, L)")
    if weight.dim() != 3:
        raise ValueError(
            f"{fn}(): argument 'weight' must be 3-D (C_in, C_out/groups, k), got shape {tuple(weight.shape)}"
        )
    s, p, op, d = _transpose_conf(fn, 1, stride, padding, output_padding, dilation)
    y = _conv_transpose(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, *s), (0, *p), (0, *op), groups, (1, *d))
    y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """``torch.nn.functional.conv_transpose2d`` as a GEMM and col2im, differentiable.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
    weight : Tensor, shape (C_in, C_out/groups, kh, kw)
    bias : Tensor, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int)
    groups : int

    Returns
    -------
    Tensor, shape (N, C_out, OH, OW) or (C_out, OH, OW)
        ``OH = (H − 1)·sh − 2·ph + dh·(kh − 1) + output_padding + 1``.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x, w = torch.randn(1, 4, 5, 5), torch.randn(4, 2, 3, 3)
    >>> im2col.nn.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).shape
    torch.Size([1, 2, 10, 10])
    """
    fn = "conv_transpose2d"
    x, unbatched = _batched(fn, input, 2, "(N, C_in, H, W)")
    s, p, op, d = _transpose_conf(fn, 2, stride, padding, output_padding, dilation)
    y = _conv_transpose(x, weight, bias, s, p, op, groups, d)
    return y.squeeze(0) if unbatched else y


def conv_transpose3d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """``torch.nn.functional.conv_transpose3d`` as a GEMM and col2im, differentiable.

    Parameters
    ----------
    input : Tensor, shape (N, C_in, D, H, W) or (C_in, D, H, W)
    weight : Tensor, shape (C_in, C_out/groups, kd, kh, kw)
    bias : Tensor, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int, int)
    groups : int

    Returns
    -------
    Tensor, shape (N, C_out, OD, OH, OW) or (C_out, OD, OH, OW)
        ``OD = (D − 1)·sd − 2·pd + dd·(kd − 1) + output_padding + 1``, and so on.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x, w = torch.randn(1, 4, 3, 4, 5), torch.randn(4, 2, 3, 3, 3)
    >>> y = im2col.nn.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1)
    >>> y.shape
    torch.Size([1, 2, 6, 8, 10])
    >>> torch.allclose(y, torch.nn.functional.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1),
    ...                atol=1e-5)
    True
    """
    fn = "conv_transpose3d"
    x, unbatched = _batched(fn, input, 3, "(N, C_in, D, H, W)")
    s, p, op, d = _transpose_conf(fn, 3, stride, padding, output_padding, dilation)
    y = _conv_transpose(x, weight, bias, s, p, op, groups, d)
    return y.squeeze(0) if unbatched else y


def _spatial_dims(kernel_size, input_dim: int) -> int:
    """1, 2 or 3: the length of a tuple ``kernel_size``; for an int, 3 for a 5-D input, else 2 (torch's
    rule for ``unfold``, where a 3-D input is one unbatched image)."""
    if isinstance(kernel_size, (list, tuple)):
        return len(kernel_size) if len(kernel_size) in (1, 2, 3) else 2  # a bad length is refused below
    return 3 if input_dim == 5 else 2


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``torch.nn.functional.unfold`` (im2col), for 1, 2 or 3 spatial axes; differentiable, its gradient
    is :func:`fold`.

    Parameters
    ----------
    input : Tensor, shape ``(N, C, *size)`` or ``(C, *size)``
        ``size`` is (L,), (H, W) or (D, H, W).
    kernel_size : int or tuple of 1, 2 or 3 ints
        Its length sets the number of spatial axes; an int means 2-D (3-D for a 5-D input), as torch.
    dilation, padding, stride : int or tuple of as many ints

    Returns
    -------
    Tensor, shape (N, C·prod(kernel_size), L) or (C·prod(kernel_size), L)
        One column per window, rows in torch's order (channel slowest, last kernel axis fastest).

    Examples
    --------
    >>> import torch, im2col.nn
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> im2col.nn.unfold(x, 3).shape
    torch.Size([1, 9, 4])
    >>> torch.equal(im2col.nn.unfold(x, 3), torch.nn.functional.unfold(x, 3))
    True
    >>> im2col.nn.unfold(torch.randn(2, 3, 10), (4,), stride=2).shape              # 1-D
    torch.Size([2, 12, 4])
    >>> im2col.nn.unfold(torch.randn(1, 2, 4, 5, 6), (2, 2, 2)).shape              # 3-D
    torch.Size([1, 16, 60])
    """
    fn = "unfold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' must be a torch.Tensor, got {type(input).__name__}")
    n = _spatial_dims(kernel_size, input.dim())
    x, unbatched = _batched(fn, input, n, layout_dims(n, False))
    args = (("kernel_size", kernel_size), ("dilation", dilation), ("padding", padding), ("stride", stride))
    conf = [list(_tuple(fn, arg, v, n)) for arg, v in args]
    y = torch.ops.im2col.unfold(x, *conf)
    return y.squeeze(0) if unbatched else y


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """``torch.nn.functional.fold`` (col2im, overlaps summed), for 1, 2 or 3 spatial axes;
    differentiable, its gradient is :func:`unfold`.

    Parameters
    ----------
    input : Tensor, shape (N, C·prod(kernel_size), L) or (C·prod(kernel_size), L)
    output_size : int or tuple of 1, 2 or 3 ints
        The spatial size of the result; the length of ``output_size`` (or else of ``kernel_size``)
        sets the number of spatial axes, 2 for ints.
    kernel_size, dilation, padding, stride : int or tuple of as many ints

    Returns
    -------
    Tensor, shape ``(N, C, *output_size)`` or ``(C, *output_size)``

    Examples
    --------
    >>> import torch, im2col.nn
    >>> cols = torch.ones(1, 9, 4)
    >>> im2col.nn.fold(cols, (4, 4), 3)[0, 0]
    tensor([[1., 2., 2., 1.],
            [2., 4., 4., 2.],
            [2., 4., 4., 2.],
            [1., 2., 2., 1.]])
    >>> im2col.nn.fold(torch.ones(1, 3, 4), (6,), (3,))                              # 1-D
    tensor([[[1., 2., 3., 3., 2., 1.]]])
    """
    fn = "fold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{fn}(): argument 'input' must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() not in (2, 3):
        raise ValueError(
            f"{fn}(): argument 'input' must be a 2-D (unbatched) or 3-D (N, C·taps, L) tensor, "
            f"got a {input.dim()}-D tensor of shape {tuple(input.shape)}"
        )
    n = _nd.col2im_dims(output_size, kernel_size)
    unbatched = input.dim() == 2
    x = input.unsqueeze(0) if unbatched else input
    conf = [list(_tuple(fn, name, v, n)) for name, v in
            (("output_size", output_size), ("kernel_size", kernel_size), ("dilation", dilation),
             ("padding", padding), ("stride", stride))]  # fmt: skip
    y = torch.ops.im2col.fold(x, *conf)
    return y.squeeze(0) if unbatched else y


# --- modules ----------------------------------------------------------------------------------


# A module call checks and normalises its arguments as the functions above do, then keeps the
# result on the module (``_im2col_conf``) with the attribute objects it was computed from. A later
# call reuses it while those are the very same objects (tuples and strings: immutable), the input
# has the same rank and, for string padding (which depends on the kernel), the weight the same
# shape; anything else, and every call under torch.compile, takes the full path again.

_CONV_FUNCTIONS: dict = {}  # number of spatial axes -> conv1d, conv2d, conv3d (filled below)
_CONF = "_im2col_conf"


def _module_conv(module, input: Tensor, weight: Tensor, bias: Tensor | None, n: int) -> Tensor:
    """A torch.nn ConvNd's forward with its padding and padding_mode (n spatial axes)."""
    if _is_compiling():
        return _module_conv_checked(module, input, weight, bias, n)
    c = module.__dict__.get(_CONF)
    if (
        c is not None
        and c[0] is module.stride
        and c[1] is module.padding
        and c[2] is module.dilation
        and c[3] is module.padding_mode
        and (c[4] is None or (c[4] is module._reversed_padding_repeated_twice and c[4] == c[5]))
        and (c[6] is None or c[6] == weight.shape)
        and isinstance(input, Tensor)
        and weight.dim() == n + 2
    ):
        dim = input.dim()
        if dim == n + 2 or dim == n + 1:
            x = input if dim == n + 2 else input.unsqueeze(0)
            if c[7] is not None:
                x = F.pad(x, c[7], mode=c[8])
            y = _CONV_BATCHED[n](x, weight, bias, c[9], c[10], c[11], module.groups)
            return y if dim == n + 2 else y.squeeze(0)
    y = _module_conv_checked(module, input, weight, bias, n)  # every check, and its errors
    stride, padding, dilation, mode = module.stride, module.padding, module.dilation, module.padding_mode
    if type(stride) is tuple and type(dilation) is tuple and type(padding) in (tuple, str) and type(mode) is str:
        fn = _CONV_FUNCTIONS[n].__name__
        if mode != "zeros":
            rp = module._reversed_padding_repeated_twice
            s, p, d, _ = _conv_conf(fn, n, stride, 0, dilation, weight.shape[2:])
            c = (stride, padding, dilation, mode, rp, list(rp), None, rp, mode, s, p, d)
        else:
            s, p, d, pad = _conv_conf(fn, n, stride, padding, dilation, weight.shape[2:])
            shape = weight.shape if isinstance(padding, str) else None
            c = (stride, padding, dilation, mode, None, None, shape, pad, "constant", s, p, d)
        module.__dict__[_CONF] = c
    return y


def _module_conv_checked(module, input: Tensor, weight: Tensor, bias: Tensor | None, n: int) -> Tensor:
    fn = _CONV_FUNCTIONS[n]
    if module.padding_mode != "zeros":
        # torch's own rule: pad by the mode, then convolve without padding
        input = F.pad(input, module._reversed_padding_repeated_twice, mode=module.padding_mode)
        return fn(input, weight, bias, module.stride, 0, module.dilation, module.groups)
    return fn(input, weight, bias, module.stride, module.padding, module.dilation, module.groups)


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by this library's im2col + GEMM; same arguments and state_dict.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> ours = im2col.nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect")
    >>> twin = torch.nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect")
    >>> _ = twin.load_state_dict(ours.state_dict())
    >>> x = torch.randn(2, 3, 16, 16)
    >>> torch.allclose(ours(x), twin(x), atol=1e-5)
    True
    """

    def forward(self, input: Tensor) -> Tensor:
        return _module_conv(self, input, self.weight, self.bias, 2)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _module_conv(self, input, weight, bias, 2)


class Conv1d(torch.nn.Conv1d):
    """``torch.nn.Conv1d`` computed as a 2-D convolution of height 1; same arguments and state_dict.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> m = im2col.nn.Conv1d(2, 4, 5, padding="same", padding_mode="circular")
    >>> m(torch.randn(3, 2, 20)).shape
    torch.Size([3, 4, 20])
    """

    def forward(self, input: Tensor) -> Tensor:
        return _module_conv(self, input, self.weight, self.bias, 1)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _module_conv(self, input, weight, bias, 1)


class Conv3d(torch.nn.Conv3d):
    """``torch.nn.Conv3d`` computed by vol2col + GEMM; same arguments and state_dict.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> m = im2col.nn.Conv3d(2, 4, 3, stride=2, padding=1, padding_mode="replicate")
    >>> m(torch.randn(1, 2, 6, 6, 6)).shape
    torch.Size([1, 4, 3, 3, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return _module_conv(self, input, self.weight, self.bias, 3)

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return _module_conv(self, input, weight, bias, 3)


def _module_transpose(module, input: Tensor, output_size: list[int] | None, n: int) -> Tensor:
    """A torch.nn ConvTransposeNd's forward, with its ``output_size`` rule (n spatial axes); the
    arguments checked on a first call are kept as for :func:`_module_conv`."""
    if module.padding_mode != "zeros":
        raise ValueError(
            f"{type(module).__name__}(): only padding_mode='zeros' is supported (as in torch), "
            f"got {module.padding_mode!r}"
        )
    if output_size is not None or _is_compiling():
        return _module_transpose_checked(module, input, output_size, n)
    weight, c = module.weight, module.__dict__.get(_CONF)
    if (
        c is not None
        and c[0] is module.stride
        and c[1] is module.padding
        and c[2] is module.output_padding
        and c[3] is module.dilation
        and isinstance(input, Tensor)
        and weight.dim() == n + 2
    ):
        dim = input.dim()
        if dim == n + 2 or dim == n + 1:
            x = input if dim == n + 2 else input.unsqueeze(0)
            if n == 1:
                y = _conv_transpose(x.unsqueeze(2), weight.unsqueeze(2), module.bias, *c[4:7], module.groups, c[7])
                y = y.squeeze(2)
            else:
                y = _conv_transpose(x, weight, module.bias, *c[4:7], module.groups, c[7])
            return y if dim == n + 2 else y.squeeze(0)
    y = _module_transpose_checked(module, input, None, n)  # every check, and its errors
    stride, padding, output_padding, dilation = module.stride, module.padding, module.output_padding, module.dilation
    if all(type(v) is tuple for v in (stride, padding, output_padding, dilation)):
        fn = _TRANSPOSED_FUNCTIONS[n].__name__
        s, p, op, d = _transpose_conf(fn, n, stride, padding, output_padding, dilation)
        if n == 1:
            s, p, op, d = (1, *s), (0, *p), (0, *op), (1, *d)
        module.__dict__[_CONF] = (stride, padding, output_padding, dilation, s, p, op, d)
    return y


def _module_transpose_checked(module, input: Tensor, output_size: list[int] | None, n: int) -> Tensor:
    output_padding = module._output_padding(
        input, output_size, module.stride, module.padding, module.kernel_size, n, module.dilation
    )
    return _TRANSPOSED_FUNCTIONS[n](
        input, module.weight, module.bias, module.stride, module.padding, output_padding, module.groups, module.dilation
    )


class ConvTranspose1d(torch.nn.ConvTranspose1d):
    """``torch.nn.ConvTranspose1d`` as a GEMM and col2im of height 1; same arguments, ``output_size``
    and state_dict.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> up = im2col.nn.ConvTranspose1d(4, 2, 5, stride=2, padding=2)
    >>> up(torch.randn(3, 4, 8), output_size=[16]).shape
    torch.Size([3, 2, 16])
    """

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        return _module_transpose(self, input, output_size, 1)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` as a GEMM and col2im; same arguments, ``output_size`` and state_dict.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> up = im2col.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    >>> up(torch.randn(1, 4, 5, 5), output_size=(10, 10)).shape
    torch.Size([1, 2, 10, 10])
    """

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        return _module_transpose(self, input, output_size, 2)


class ConvTranspose3d(torch.nn.ConvTranspose3d):
    """``torch.nn.ConvTranspose3d`` as a GEMM and col2im over volumes; same arguments, ``output_size``
    and state_dict.

    Examples
    --------
    >>> import torch, im2col.nn
    >>> up = im2col.nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1)
    >>> up(torch.randn(1, 2, 4, 4, 4), output_size=(8, 8, 8)).shape
    torch.Size([1, 3, 8, 8, 8])
    """

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        return _module_transpose(self, input, output_size, 3)


_CONV_FUNCTIONS.update({1: conv1d, 2: conv2d, 3: conv3d})
_TRANSPOSED_FUNCTIONS = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}


class Unfold(torch.nn.Unfold):
    """``torch.nn.Unfold`` through this library's im2col kernel, also for 1-D and 3-D inputs: a
    ``kernel_size`` of 1 or 3 ints (see :func:`unfold`).

    Examples
    --------
    >>> import torch, im2col.nn
    >>> im2col.nn.Unfold(kernel_size=(2, 3))(torch.randn(2, 5, 3, 4)).shape
    torch.Size([2, 30, 4])
    >>> im2col.nn.Unfold(kernel_size=(3, 3, 3), padding=1)(torch.randn(1, 2, 4, 4, 4)).shape
    torch.Size([1, 54, 64])
    """

    def forward(self, input: Tensor) -> Tensor:
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(torch.nn.Fold):
    """``torch.nn.Fold`` through this library's col2im kernel, also for 1-D and 3-D outputs: an
    ``output_size`` of 1 or 3 ints (see :func:`fold`).

    Examples
    --------
    >>> import torch, im2col.nn
    >>> im2col.nn.Fold(output_size=(4, 5), kernel_size=(2, 2))(torch.randn(1, 12, 12)).shape
    torch.Size([1, 3, 4, 5])
    >>> im2col.nn.Fold(output_size=(6,), kernel_size=(3,))(torch.randn(2, 6, 4)).shape
    torch.Size([2, 2, 6])
    """

    def forward(self, input: Tensor) -> Tensor:
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)


# --- the NumPy-style functional API's autograd route --------------------------------------------
#
# ``im2col.conv2d`` and its siblings (im2col/_functional.py, im2col/_nd.py) never import torch. When
# one of their tensor arguments requires grad (and grad mode is on), their first line imports this
# module lazily and calls ``_autograd_call``: the call is re-expressed with the operators above plus
# ordinary torch code (F.pad for per-side padding and padding modes, movedim for channels-last
# layouts), so autograd, gradcheck and torch.compile see it. The dependency stays one way at import
# time (this module imports the functional API, never the reverse) and costs nothing on arrays.


def _as_tensors(fn: str, *values):
    """Arrays beside a tensor that requires grad, as constant tensors (copied only when read-only
    byte-swapped or reversed, which torch.from_numpy cannot take); tensors and None as they are."""
    import numpy as np

    out = []
    for v in values:
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.require(v, v.dtype.newbyteorder("="), ["W", "C"]))
        out.append(v)
    return out


def _to_first(x: Tensor, n: int, cl: bool) -> Tensor:
    return x.movedim(-1, -n - 1) if cl else x  # (…, *size, C) → (…, C, *size), a view


def _to_last(y: Tensor, n: int, cl: bool) -> Tensor:
    return y.movedim(-n - 1, -1) if cl else y


def _pad_flat(sides) -> list[int]:
    """F.pad's order: last axis first, (before, after) each."""
    return [q for pair in reversed(sides) for q in pair]


_CONV = {"conv1d": (1, conv1d), "conv2d": (2, conv2d), "conv3d": (3, conv3d)}
_TRANSPOSED = {"conv_transpose1d": (1, conv_transpose1d), "conv_transpose2d": (2, conv_transpose2d),
               "conv_transpose3d": (3, conv_transpose3d)}  # fmt: skip


def _autograd_call(fn: str, **kwargs):
    """``im2col.<fn>(**kwargs)`` (every argument named) for tensors that require grad, through the
    operators above."""
    from ._nd import PADDING_MODES, im2col_dims, parse_padding
    from ._validation import as_int, as_tuple, parse_layout

    if fn in _CONV:
        n, conv = _CONV[fn]
        input, weight, bias, stride, padding, dilation, groups = _get(
            kwargs, "input", "weight", "bias", "stride", "padding", "dilation", "groups"
        )
        input, weight, bias = _as_tensors(fn, input, weight, bias)
        cl = parse_layout(fn, kwargs.get("layout"), n)
        x = _to_first(input, n, cl)
        s, d = as_tuple(stride, "stride", fn, n, minimum=1), as_tuple(dilation, "dilation", fn, n, minimum=1)
        groups = as_int(groups, "groups", fn)
        if not isinstance(padding, str) and weight.dim() == n + 2:
            sides = parse_padding(padding, fn, n, tuple(weight.shape[2:]), d, s)
            if any(a != b for a, b in sides):  # per-side padding: pad explicitly, as 'same' does
                x = F.pad(x, _pad_flat(sides))
                padding = 0
            else:
                padding = tuple(a for a, _ in sides)
        return _to_last(conv(x, weight, bias, s, padding, d, groups), n, cl)
    if fn in _TRANSPOSED:
        n, conv = _TRANSPOSED[fn]
        input, weight, bias, stride, padding, output_padding, groups, dilation = _get(
            kwargs, "input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"
        )
        input, weight, bias = _as_tensors(fn, input, weight, bias)
        cl = parse_layout(fn, kwargs.get("layout"), n)
        s, d = as_tuple(stride, "stride", fn, n, minimum=1), as_tuple(dilation, "dilation", fn, n, minimum=1)
        p = as_tuple(padding, "padding", fn, n, minimum=0)
        op = as_tuple(output_padding, "output_padding", fn, n, minimum=0)
        y = conv(_to_first(input, n, cl), weight, bias, s, p, op, as_int(groups, "groups", fn), d)
        return _to_last(y, n, cl)
    if fn == "im2col":
        input, kernel_size, dilation, padding, stride = _get(
            kwargs, "input", "kernel_size", "dilation", "padding", "stride"
        )
        mode, value = kwargs.get("padding_mode", "zeros"), kwargs.get("pad_value", 0)
        if kwargs.get("out") is not None:
            raise TypeError(f"{fn}(): argument 'out' cannot be used when 'input' requires grad (as in torch)")
        (input,) = _as_tensors(fn, input)
        n = im2col_dims(input.dim(), kernel_size)
        cl = parse_layout(fn, kwargs.get("layout"), n)
        x = _to_first(input, n, cl)
        k = as_tuple(kernel_size, "kernel_size", fn, n, minimum=1)
        d, s = as_tuple(dilation, "dilation", fn, n, minimum=1), as_tuple(stride, "stride", fn, n, minimum=1)
        sides = parse_padding(padding, fn, n, k, d, s)
        if mode not in PADDING_MODES:
            raise ValueError(f"{fn}(): argument 'padding_mode' must be one of {PADDING_MODES}, got {mode!r}")
        if mode in ("reflect", "replicate", "circular"):
            return _mode_pair("im2col", x, tuple(x.shape[-n:]), k, d, sides, s, mode)
        if mode != "zeros" or value != 0 or any(a != b for a, b in sides):
            unbatched = x.dim() == n + 1
            xb = x.unsqueeze(0) if unbatched else x
            xb = F.pad(xb, _pad_flat(sides), value=value)
            y = unfold(xb, k, d, 0, s)
            return y.squeeze(0) if unbatched else y
        return unfold(x, k, d, tuple(a for a, _ in sides), s)
    if fn == "col2im":
        input, output_size, kernel_size, dilation, padding, stride = _get(
            kwargs, "input", "output_size", "kernel_size", "dilation", "padding", "stride"
        )
        mode, reduce = kwargs.get("padding_mode", "zeros"), kwargs.get("reduce", "sum")
        (input,) = _as_tensors(fn, input)
        from ._nd import col2im_dims

        n = col2im_dims(output_size, kernel_size)
        size = as_tuple(output_size, "output_size", fn, n, minimum=1)
        k = as_tuple(kernel_size, "kernel_size", fn, n, minimum=1)
        d, s = as_tuple(dilation, "dilation", fn, n, minimum=1), as_tuple(stride, "stride", fn, n, minimum=1)
        sides = parse_padding(padding, fn, n, k, d, s)
        # fold onto the padded grid, then crop: the adjoint of zero padding, whatever the sides
        padded = [m + a + b for m, (a, b) in zip(size, sides)]
        if mode in ("reflect", "replicate", "circular"):
            y = _mode_pair("col2im", input, size, k, d, sides, s, mode)
        else:
            y = fold(input, padded, k, d, 0, s)
            for axis, (m, (a, _)) in enumerate(zip(size, sides)):
                y = y.narrow(y.dim() - n + axis, a, m)
        if reduce == "mean":
            with torch.no_grad():
                ones = torch.ones_like(input)
                count = _autograd_call(
                    fn, input=ones, output_size=output_size, kernel_size=kernel_size, dilation=dilation,
                    padding=padding, stride=stride, padding_mode=mode, reduce="sum", layout=None,
                )  # fmt: skip
            y = y / count.clamp(min=1)
        elif reduce != "sum":
            raise ValueError(f"{fn}(): argument 'reduce' must be 'sum' or 'mean', got {reduce!r}")
        cl = parse_layout(fn, kwargs.get("layout"), n)
        return _to_last(y, n, cl)
    if fn in ("conv1d_backward", "conv2d_backward", "conv3d_backward"):
        return _backward_call(fn, **kwargs)
    raise TypeError(f"{fn}() does not keep autograd on tensors that require grad; pass detached tensors")


class _LinearPair(torch.autograd.Function):
    """A linear map ``forward`` of this library with its adjoint ``adjoint`` (im2col and col2im with
    the same reflected, replicated or wrapped padding are each other's adjoint): the gradient of one
    is the other, so gradients of any order exist. Eager only (torch.compile breaks the graph here);
    zero and constant padding go through the registered operators instead."""

    @staticmethod
    def forward(ctx, x, forward, adjoint):
        ctx.pair = (adjoint, forward)
        return forward(x.detach())

    @staticmethod
    def backward(ctx, grad):
        return _LinearPair.apply(grad, *ctx.pair), None, None


def _mode_pair(fn: str, x: Tensor, size, k, d, sides, s, mode: str) -> Tensor:
    """im2col (``fn='im2col'``, x an image of spatial ``size``) or col2im (x columns, output ``size``)
    with padding ``mode``, differentiable through :class:`_LinearPair`."""
    from functools import partial

    from . import _functional

    unfold_ = partial(_functional.im2col, kernel_size=k, dilation=d, padding=sides, stride=s, padding_mode=mode)
    fold_ = partial(_functional.col2im, output_size=size, kernel_size=k, dilation=d, padding=sides, stride=s,
                    padding_mode=mode)  # fmt: skip
    return _LinearPair.apply(x, unfold_, fold_) if fn == "im2col" else _LinearPair.apply(x, fold_, unfold_)


def _backward_call(fn: str, grad_output, input, weight, stride, padding, dilation, groups, layout):
    """``conv*_backward`` as the vector-Jacobian product of the forward, with ``create_graph``:
    the same three gradients, and differentiable again (each is made of the operators above)."""
    gy, x, w = _as_tensors(fn, grad_output, input, weight)
    x = x if x.requires_grad else x.detach().requires_grad_()
    w = w if w.requires_grad else w.detach().requires_grad_()
    b = w.new_zeros(w.shape[0], requires_grad=True)
    with torch.enable_grad():
        y = _autograd_call(
            fn[: -len("_backward")], input=x, weight=w, bias=b, stride=stride, padding=padding,
            dilation=dilation, groups=groups, layout=layout,
        )  # fmt: skip
        if y.shape != gy.shape:
            raise ValueError(
                f"{fn}(): argument 'grad_output' must have shape {tuple(y.shape)}, the shape of the forward's "
                f"output, got shape {tuple(gy.shape)}"
            )
        return torch.autograd.grad(y, (x, w, b), gy, create_graph=True)


def _get(kwargs: dict, *names: str) -> list:
    return [kwargs[name] for name in names]
