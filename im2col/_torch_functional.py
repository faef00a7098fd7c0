"""Functions with ``torch.nn.functional``'s signatures over this library's operators.

``conv1d``, ``conv2d``, ``conv3d``, ``conv_transpose1d/2d/3d``, ``unfold`` and ``fold`` (public as
``im2col.nn.conv2d`` and so on) accept what torch's accept on top of the operators of
im2col/_torch_ops.py — unbatched input, ``padding='same'``/``'valid'`` (an odd total padded
explicitly with F.pad, the extra pixel after, as torch does), 1-D convolutions as 2-D ones of
height 1 — with ordinary torch code that autograd and the compiler see through, and run through
the batched dispatchers of im2col/_torch_eager.py (the eager twin or the operator). ``unfold`` and
``fold`` take 1, 2 or 3 spatial axes (torch's are 2-D only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _nd
from ._torch_eager import _conv1d, _conv2d, _conv3d, _conv_transpose, _conv_transpose1d
from ._validation import layout_dims


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


def _pad_flat(sides) -> list[int]:
    """F.pad's order: last axis first, (before, after) each."""
    return [q for pair in reversed(sides) for q in pair]


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
        return stride, (0,) * n, dilation, tuple(_pad_flat(sides))
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
    y = _conv_transpose1d(x, weight, bias, s, p, op, groups, d)
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
