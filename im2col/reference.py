"""The algorithmic reference: im2col, col2im and convolution as plain NumPy loops.

This is the version to read. It does exactly what the Cython kernels in ``csrc/_kernels.pyx`` do,
in the same row and column order, without any of their speed; the tests use it as an oracle
beside PyTorch. It never imports the kernels and does no input validation: pass 4-D float arrays
and tuples, as the public functions in :mod:`im2col` do after checking them.

Conventions (the same as ``torch.nn.functional.unfold``):

* ``x`` is ``(N, C, H, W)``; the kernel is ``kh × kw``; ``padding`` is ``((top, bottom), (left, right))``.
* The column matrix is ``(N, C·kh·kw, L)``. Row ``(c·kh + i)·kw + j`` holds kernel tap ``(i, j)`` of
  channel ``c``; column ``oh·OW + ow`` is output position ``(oh, ow)``.
* ``OH = (H + top + bottom − dh·(kh − 1) − 1) // sh + 1`` and likewise ``OW``.
"""

from __future__ import annotations

import numpy as np

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]


def out_size(size: int, k: int, stride: int, pad_before: int, pad_after: int, dilation: int) -> int:
    """Output length along one axis: ``(size + pads − dilation·(k − 1) − 1) // stride + 1``."""
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def im2col(x: np.ndarray, kernel_size: Pair, dilation: Pair, padding: Padding, stride: Pair) -> np.ndarray:
    """Unroll ``x`` (N, C, H, W) into columns (N, C·kh·kw, OH·OW)."""
    N, C, H, W = x.shape
    kh, kw = kernel_size
    (pt, pb), (pl, pr) = padding
    OH = out_size(H, kh, stride[0], pt, pb, dilation[0])
    OW = out_size(W, kw, stride[1], pl, pr, dilation[1])
    cols = np.zeros((N, C * kh * kw, OH * OW), dtype=x.dtype)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oh in range(OH):
                    for ow in range(OW):
                        h = oh * stride[0] - pt + i * dilation[0]  # input pixel under tap (i, j)
                        w = ow * stride[1] - pl + j * dilation[1]
                        if 0 <= h < H and 0 <= w < W:  # otherwise it is padding: stays 0
                            cols[:, row, oh * OW + ow] = x[:, c, h, w]
    return cols


def col2im(
    cols: np.ndarray,
    output_size: Pair,
    kernel_size: Pair,
    dilation: Pair,
    padding: Padding,
    stride: Pair,
    grid: Pair | None = None,
) -> np.ndarray:
    """Fold columns (N, C·kh·kw, OH·OW) back into an image (N, C, H, W), summing overlaps.

    The same loops as :func:`im2col` with the assignment reversed into ``+=``: col2im is the adjoint
    (transpose) of im2col, which is why it gives the gradient of the input. ``grid`` overrides the
    (OH, OW) output grid the columns come from (conv_transpose2d's ``output_padding`` needs it).
    """
    N, R, _ = cols.shape
    H, W = output_size
    kh, kw = kernel_size
    C = R // (kh * kw)
    (pt, pb), (pl, pr) = padding
    OH = out_size(H, kh, stride[0], pt, pb, dilation[0])
    OW = out_size(W, kw, stride[1], pl, pr, dilation[1])
    if grid is not None:
        OH, OW = grid
    x = np.zeros((N, C, H, W), dtype=cols.dtype)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for oh in range(OH):
                    for ow in range(OW):
                        h = oh * stride[0] - pt + i * dilation[0]
                        w = ow * stride[1] - pl + j * dilation[1]
                        if 0 <= h < H and 0 <= w < W:
                            x[:, c, h, w] += cols[:, row, oh * OW + ow]
    return x


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> np.ndarray:
    """Convolution as im2col then one matrix product per group.

    ``weight`` is (K, C/groups, kh, kw). Each group's weights flatten to a (K/groups, C/groups·kh·kw)
    matrix, which multiplies that group's rows of the column matrix.
    """
    N, C, H, W = x.shape
    K, Cg, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), dilation, padding, stride)  # (N, C·kh·kw, L)
    Kg, Rg = K // groups, Cg * kh * kw
    out = np.empty((N, K, cols.shape[2]), dtype=x.dtype)
    for g in range(groups):
        w_g = weight[g * Kg : (g + 1) * Kg].reshape(Kg, Rg)  # (K/g, C/g·kh·kw)
        out[:, g * Kg : (g + 1) * Kg] = w_g @ cols[:, g * Rg : (g + 1) * Rg]  # (N, K/g, L)
    if bias is not None:
        out += bias[None, :, None]
    (pt, pb), (pl, pr) = padding
    OH = out_size(H, kh, stride[0], pt, pb, dilation[0])
    OW = out_size(W, kw, stride[1], pl, pr, dilation[1])
    return out.reshape(N, K, OH, OW)


def conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` for the input, the weight and the bias.

    With ``Y = W · cols`` per group: ``dW = dY · colsᵀ`` and ``dcols = Wᵀ · dY``, then
    ``dX = col2im(dcols)``.
    """
    N, C, H, W = x.shape
    K, Cg, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), dilation, padding, stride)
    dY = grad_out.reshape(N, K, -1)  # (N, K, L)
    Kg, Rg = K // groups, Cg * kh * kw
    dcols = np.empty_like(cols)
    dW = np.empty((K, Rg), dtype=x.dtype)
    for g in range(groups):
        w_g = weight[g * Kg : (g + 1) * Kg].reshape(Kg, Rg)
        dY_g = dY[:, g * Kg : (g + 1) * Kg]  # (N, K/g, L)
        cols_g = cols[:, g * Rg : (g + 1) * Rg]  # (N, C/g·kh·kw, L)
        dW[g * Kg : (g + 1) * Kg] = np.einsum("nkl,nrl->kr", dY_g, cols_g)
        dcols[:, g * Rg : (g + 1) * Rg] = w_g.T @ dY_g
    dX = col2im(dcols, (H, W), (kh, kw), dilation, padding, stride)
    return dX, dW.reshape(weight.shape), grad_out.sum(axis=(0, 2, 3))


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: Pair,
    padding: Pair,
    output_padding: Pair,
    groups: int,
    dilation: Pair,
) -> np.ndarray:
    """Transposed convolution: the input gradient of a convolution, so a GEMM then col2im.

    ``weight`` is (C_in, C_out/groups, kh, kw). The output size is
    ``(H − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1``.
    """
    N, Cin, H, W = x.shape
    _, Cog, kh, kw = weight.shape
    Cig = Cin // groups
    OH = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    OW = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    Rg = Cog * kh * kw
    cols = np.empty((N, groups * Rg, H * W), dtype=x.dtype)
    xs = x.reshape(N, Cin, H * W)
    for g in range(groups):
        w_g = weight[g * Cig : (g + 1) * Cig].reshape(Cig, Rg)  # (C_in/g, C_out/g·kh·kw)
        cols[:, g * Rg : (g + 1) * Rg] = w_g.T @ xs[:, g * Cig : (g + 1) * Cig]
    pads = ((padding[0], padding[0]), (padding[1], padding[1]))
    # col2im's loops only visit the H×W grid of columns we have, so output_padding rows beyond the
    # last full window simply receive nothing (as in PyTorch).
    out = col2im(cols, (OH, OW), (kh, kw), dilation, pads, stride, grid=(H, W))
    if bias is not None:
        out += bias[None, :, None, None]
    return out
