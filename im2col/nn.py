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
and symmetric padding; the functions and modules here add what ``torch.nn.functional``
and ``torch.nn`` accept on top (unbatched input, ``padding='same'``, ``padding_mode``, 1-D) with
ordinary torch code that autograd and the compiler see through. ``unfold`` and ``fold`` take 1, 2
or 3 spatial axes (torch's are 2-D only).

In eager mode a 2-D or 1-D convolution of plain contiguous CPU float tensors takes a cheaper way in,
a ``torch.autograd.Function`` over the same kernels (the custom op's own dispatch cost more than
the work on small layers). The NumPy-style functions (``im2col.conv2d`` and the others) import this
module lazily when a tensor argument requires grad and run through it (``_autograd_call``), so they
keep autograd too; ``import im2col`` alone never imports torch, and nothing here is imported by the
functional API at import time.

Modules ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d``, ``ConvTranspose2d``,
``ConvTranspose3d``, ``Unfold`` and ``Fold`` subclass their ``torch.nn`` twins and only replace the
computation: constructor arguments, parameters, their initialisation and ``state_dict`` are
torch's own.

The code is in private modules, by role; this one holds the modules and re-exports the rest:

* im2col/_torch_ops.py — the operators' registration, fake kernels and autograd formulas;
* im2col/_torch_eager.py — the eager fast path (autograd.Functions) and the batched dispatchers;
* im2col/_torch_functional.py — the functions with ``torch.nn.functional``'s signatures;
* im2col/_torch_route.py — the NumPy-style functions' autograd route (``_autograd_call``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _torch_ops  # noqa: F401  (importing it registers the operators, once per process)
from ._torch_eager import _CONV_BATCHED, _TRANSPOSED_BATCHED, _is_compiling
from ._torch_functional import (
    _conv_conf,
    _transpose_conf,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
    fold,
    unfold,
)
from ._torch_route import _autograd_call as _autograd_call

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


# A module call checks and normalises its arguments as the functions do, then keeps the result on
# the module (``_im2col_conf``) with the attribute objects it was computed from. A later call
# reuses it while those are the very same objects (tuples and strings: immutable), the input has
# the same rank and, for string padding (which depends on the kernel), the weight the same shape;
# anything else, and every call under torch.compile, takes the full path again.

_CONV_FUNCTIONS = {1: conv1d, 2: conv2d, 3: conv3d}  # number of spatial axes -> the function
_TRANSPOSED_FUNCTIONS = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}
_CONF = "_im2col_conf"


class _ConvConf:
    """A ConvNd module's checked arguments (``conv_*``, what the batched convolution takes) and the
    attributes they were computed from: ``stride``, ``padding``, ``dilation``, ``padding_mode``
    themselves, ``reversed_padding`` (the padding-mode pad's attribute, None for zeros) with a copy
    of its value, and the ``weight_shape`` a string padding was resolved for (else None). ``pad``
    and ``pad_mode`` are F.pad's arguments, applied first (``pad`` None: no pad)."""

    __slots__ = ("stride", "padding", "dilation", "padding_mode", "reversed_padding", "reversed_padding_value",
                 "weight_shape", "pad", "pad_mode", "conv_stride", "conv_padding", "conv_dilation")  # fmt: skip

    def __init__(self, stride, padding, dilation, padding_mode, reversed_padding, reversed_padding_value,
                 weight_shape, pad, pad_mode, conv_stride, conv_padding, conv_dilation):  # fmt: skip
        self.stride, self.padding, self.dilation, self.padding_mode = stride, padding, dilation, padding_mode
        self.reversed_padding, self.reversed_padding_value = reversed_padding, reversed_padding_value
        self.weight_shape, self.pad, self.pad_mode = weight_shape, pad, pad_mode
        self.conv_stride, self.conv_padding, self.conv_dilation = conv_stride, conv_padding, conv_dilation


def _module_conv(module, input: Tensor, weight: Tensor, bias: Tensor | None, n: int) -> Tensor:
    """A torch.nn ConvNd's forward with its padding and padding_mode (n spatial axes)."""
    if _is_compiling():
        return _module_conv_checked(module, input, weight, bias, n)
    c = module.__dict__.get(_CONF)
    if (
        type(c) is _ConvConf  # (not a conf another version of this module pickled)
        and c.stride is module.stride
        and c.padding is module.padding
        and c.dilation is module.dilation
        and c.padding_mode is module.padding_mode
        and (
            c.reversed_padding is None
            or (
                c.reversed_padding is module._reversed_padding_repeated_twice
                and c.reversed_padding == c.reversed_padding_value
            )
        )
        and (c.weight_shape is None or c.weight_shape == weight.shape)
        and isinstance(input, Tensor)
        and weight.dim() == n + 2
    ):
        dim = input.dim()
        if dim == n + 2 or dim == n + 1:
            x = input if dim == n + 2 else input.unsqueeze(0)
            if c.pad is not None:
                x = F.pad(x, c.pad, mode=c.pad_mode)
            y = _CONV_BATCHED[n](x, weight, bias, c.conv_stride, c.conv_padding, c.conv_dilation, module.groups)
            return y if dim == n + 2 else y.squeeze(0)
    y = _module_conv_checked(module, input, weight, bias, n)  # every check, and its errors
    stride, padding, dilation, mode = module.stride, module.padding, module.dilation, module.padding_mode
    if type(stride) is tuple and type(dilation) is tuple and type(padding) in (tuple, str) and type(mode) is str:
        fn = _CONV_FUNCTIONS[n].__name__
        if mode != "zeros":
            rp = module._reversed_padding_repeated_twice
            s, p, d, _ = _conv_conf(fn, n, stride, 0, dilation, weight.shape[2:])
            c = _ConvConf(stride, padding, dilation, mode, rp, list(rp), None, rp, mode, s, p, d)
        else:
            s, p, d, pad = _conv_conf(fn, n, stride, padding, dilation, weight.shape[2:])
            shape = weight.shape if isinstance(padding, str) else None
            c = _ConvConf(stride, padding, dilation, mode, None, None, shape, pad, "constant", s, p, d)
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


class _TransposeConf:
    """A ConvTransposeNd module's checked arguments (``conv_*``, what the batched transposed
    convolution takes) and the attributes ``stride``, ``padding``, ``output_padding`` and
    ``dilation`` they were computed from."""

    __slots__ = ("stride", "padding", "output_padding", "dilation",
                 "conv_stride", "conv_padding", "conv_output_padding", "conv_dilation")  # fmt: skip

    def __init__(self, stride, padding, output_padding, dilation, conv_stride, conv_padding, conv_output_padding,
                 conv_dilation):  # fmt: skip
        self.stride, self.padding, self.output_padding, self.dilation = stride, padding, output_padding, dilation
        self.conv_stride, self.conv_padding = conv_stride, conv_padding
        self.conv_output_padding, self.conv_dilation = conv_output_padding, conv_dilation


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
        type(c) is _TransposeConf
        and c.stride is module.stride
        and c.padding is module.padding
        and c.output_padding is module.output_padding
        and c.dilation is module.dilation
        and isinstance(input, Tensor)
        and weight.dim() == n + 2
    ):
        dim = input.dim()
        if dim == n + 2 or dim == n + 1:
            x = input if dim == n + 2 else input.unsqueeze(0)
            y = _TRANSPOSED_BATCHED[n](x, weight, module.bias, c.conv_stride, c.conv_padding, c.conv_output_padding,
                                       module.groups, c.conv_dilation)  # fmt: skip
            return y if dim == n + 2 else y.squeeze(0)
    y = _module_transpose_checked(module, input, None, n)  # every check, and its errors
    stride, padding, output_padding, dilation = module.stride, module.padding, module.output_padding, module.dilation
    if all(type(v) is tuple for v in (stride, padding, output_padding, dilation)):
        fn = _TRANSPOSED_FUNCTIONS[n].__name__
        s, p, op, d = _transpose_conf(fn, n, stride, padding, output_padding, dilation)
        module.__dict__[_CONF] = _TransposeConf(stride, padding, output_padding, dilation, s, p, op, d)
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
