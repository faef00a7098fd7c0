"""The NumPy-style functions' autograd route: ``im2col.conv2d`` and its siblings on tensors that require grad.

``im2col.conv2d`` and its siblings (im2col/_functional.py, im2col/_nd.py) never import torch. When
one of their tensor arguments requires grad (and grad mode is on), their first line imports
``im2col.nn`` lazily and calls ``_autograd_call`` (defined here, re-exported there): the call is
re-expressed with the functions of im2col/_torch_functional.py, hence the registered operators,
plus ordinary torch code (F.pad for per-side padding and padding modes, movedim for channels-last
layouts), so autograd, gradcheck and torch.compile see it. The dependency stays one way at import
time (this module imports the functional API, never the reverse) and costs nothing on arrays.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from . import _functional
from ._torch_functional import (
    _pad_flat,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    fold,
    unfold,
)


def _as_tensors(fn: str, *values):
    """Arrays beside a tensor that requires grad, as constant tensors (copied only when read-only
    byte-swapped or reversed, which torch.from_numpy cannot take); tensors and None as they are."""
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


_CONV = {"conv1d": (1, conv1d), "conv2d": (2, conv2d), "conv3d": (3, conv3d)}
_TRANSPOSED = {"conv_transpose1d": (1, conv_transpose1d), "conv_transpose2d": (2, conv_transpose2d),
               "conv_transpose3d": (3, conv_transpose3d)}  # fmt: skip


def _autograd_call(fn: str, **kwargs):
    """``im2col.<fn>(**kwargs)`` (every argument named) for tensors that require grad, through the
    registered operators."""
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
        n, transposed = _TRANSPOSED[fn]
        input, weight, bias, stride, padding, output_padding, groups, dilation = _get(
            kwargs, "input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"
        )
        input, weight, bias = _as_tensors(fn, input, weight, bias)
        cl = parse_layout(fn, kwargs.get("layout"), n)
        s, d = as_tuple(stride, "stride", fn, n, minimum=1), as_tuple(dilation, "dilation", fn, n, minimum=1)
        p = as_tuple(padding, "padding", fn, n, minimum=0)
        op = as_tuple(output_padding, "output_padding", fn, n, minimum=0)
        y = transposed(_to_first(input, n, cl), weight, bias, s, p, op, as_int(groups, "groups", fn), d)
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
    unfold_ = partial(_functional.im2col, kernel_size=k, dilation=d, padding=sides, stride=s, padding_mode=mode)
    fold_ = partial(_functional.col2im, output_size=size, kernel_size=k, dilation=d, padding=sides, stride=s,
                    padding_mode=mode)  # fmt: skip
    return _LinearPair.apply(x, unfold_, fold_) if fn == "im2col" else _LinearPair.apply(x, fold_, unfold_)


def _backward_call(fn: str, grad_output, input, weight, stride, padding, dilation, groups, layout):
    """``conv*_backward`` as the vector-Jacobian product of the forward, with ``create_graph``:
    the same three gradients, and differentiable again (each is made of the registered operators)."""
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
