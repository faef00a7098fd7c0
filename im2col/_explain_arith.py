"""The arithmetic of the forward convolution: the output size, the unrolled matrix, the GEMM and the matrix C.

These are the numbers behind sections 1–4 and 7 of an explanation: the output-size formula
worked out per axis, the unrolled (im2col) matrix made by the fast :func:`im2col.im2col`, the
weight matrix and the per-group GEMM with its shapes, one output worked out as a dot product,
and the sparse-matrix view, one matrix C that copies the weights where im2col copies the input.

The functions taking ``self`` are methods of :class:`~im2col.explain.Explanation`, bound in its
class body (``gemm_lines = _explain_arith.gemm_lines``), so their docstrings are the methods'.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._explain_args import FN
from ._explain_format import AXES, KSIZE, TAPS, dot_terms, fmt_bytes, fmt_num, fmt_shape, values_integral
from ._functional import im2col
from ._geometry import span

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation

#: The matrix C of the sparse-matrix view is refused beyond this many bytes when stored dense (it is
#: mostly zeros).
CONV_MATRIX_MAX_BYTES = 256 * 2**20


def axis_groups(self: Explanation, values: list[tuple]) -> list[tuple[str, tuple]]:
    """Axis names with their values, equal axes merged: 'height and width'."""
    names = list(AXES[self.ndim])
    if len(set(values)) == 1 and len(values) > 1:
        return [(", ".join(names[:-1]) + " and " + names[-1], values[0])]
    return list(zip(names, values))


def output_size_steps(self: Explanation) -> list[str]:
    """The output size worked out per axis, with the numbers.

    The result each line ends with is the one the explanation holds (``out_size``, from
    :func:`im2col._geometry.out_sizes` or :func:`~im2col._geometry.transposed_size`): the steps
    before it show the same formula worked out for a student.

    Examples
    --------
    >>> import im2col
    >>> im2col.explain((1, 1, 5, 5), 3, padding=2).output_size_steps()
    ['height and width: (5 + 2·2 − 3) // 1 + 1 = 7']
    >>> for line in im2col.explain((1, 1, 28, 28), 3, stride=2).output_size_steps():
    ...     print(line)
    height and width: (28 + 2·0 − 3) // 2 + 1 = 13
    height and width: 25 = 28 + 2·0 − 1·(3 − 1) − 1 is how far the window can travel;
      25 % 2 = 1 pixel is left over and never read
    >>> im2col.explain((1, 1, 5, 5), 3, stride=2, padding=1, transposed=True).output_size_steps()
    ['height and width: (5 − 1)·2 − 2·1 + 1·(3 − 1) + 0 + 1 = 9']
    """
    vals = [
        (n, k, s, p, d, o, op)
        for n, k, s, p, d, o, op in zip(
            self.size, self.kernel_size, self.stride, self.padding, self.dilation,
            self.out_size, self.output_padding,
        )
    ]  # fmt: skip
    lines = []
    for name, (n, k, s, (before, after), d, out, op) in axis_groups(self, vals):
        if self.transposed:
            lines.append(f"{name}: ({n} − 1)·{s} − 2·{before} + {d}·({k} − 1) + {op} + 1 = {out}")
            continue
        k_eff = span(k, d)
        if d != 1:
            lines.append(f"{name}: effective kernel = d·(k − 1) + 1 = {d}·({k} − 1) + 1 = {k_eff}")
        pads = f"2·{before}" if before == after else f"{before} + {after}"
        lines.append(f"{name}: ({n} + {pads} − {k_eff}) // {s} + 1 = {out}")
        travel = n + before + after - k_eff
        left = travel % s
        if left:
            px = "pixel is" if left == 1 else "pixels are"
            lines.append(f"{name}: {travel} = {n} + {pads} − {d}·({k} − 1) − 1 is how far the window can travel;")
            lines.append(f"  {travel} % {s} = {left} {px} left over and never read")
    return lines


def columns(self: Explanation) -> np.ndarray:
    """The batch's unrolled matrix (N, rows, L).

    Made by the fast :func:`im2col.im2col`; when transposed, the product ``Wᵀ·x`` (per group)
    whose columns col2im adds back into the output.
    """
    if not self.transposed:
        ks = self.kernel_size if self.ndim != 2 else tuple(self.kernel_size)
        return im2col(self.input, ks, self.dilation, self.padding, self.stride)
    g = self.groups
    Cg = self.C // g
    x = self.input.reshape(self.N, self.C, self.L)
    parts = [self.weight[q * Cg : (q + 1) * Cg].reshape(Cg, -1).T @ x[:, q * Cg : (q + 1) * Cg] for q in range(g)]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def weight_matrix(self: Explanation) -> np.ndarray:
    """The kernels flattened to rows, (K, C/groups·kh·kw), in the unrolled rows' order.

    When transposed, (C, K/groups·kh·kw): its transpose, per group, makes the columns.
    """
    return self.weight.reshape(self.weight.shape[0], -1)


def output(self: Explanation) -> np.ndarray:
    """The result ``(N, K, *out_size)``: weight matrix @ unrolled matrix per group; col2im of
    the columns when transposed (equal to conv_transpose)."""
    if self.transposed:
        return self._fold(self.columns)
    g, Kg = self.groups, self.K // self.groups
    Rg = self.rows // g
    out = np.empty((self.N, self.K, self.L), dtype=self.input.dtype)
    for q in range(g):
        out[:, q * Kg : (q + 1) * Kg] = (
            self.weight_matrix[q * Kg : (q + 1) * Kg] @ self.columns[:, q * Rg : (q + 1) * Rg]
        )
    return out.reshape(self.output_shape)


def _grid_str(self: Explanation) -> str:
    return ", ".join(str(v) for v in self.grid)


def gemm_lines(self: Explanation) -> list[str]:
    """The GEMM with its shapes, per image and with the batch folded in."""
    K, R, L, N, g = self.K, self.rows, self.L, self.N, self.groups
    each = f" (once per group, {g} groups)" if g > 1 else ""
    if self.transposed:
        Cg, Rg = self.C // g, R // g
        return [
            f"per image{each}: Wᵀ·x = ({Rg} × {Cg}) @ ({Cg} × {L}) → ({Rg} × {L}) columns,",
            f"  then col2im adds them into the output {fmt_shape((K, *self.out_size))}",
        ]
    Kg, Rg = K // g, R // g
    lines = [
        f"per image{each}: ({Kg} × {Rg}) @ ({Rg} × {L}) → ({Kg} × {L}) → ({Kg}, {_grid_str(self)})",
    ]
    if N > 1:
        lines.append(f"batch of {N}: the {N} column matrices side by side, one GEMM{each}:")
        lines.append(
            f"  ({Kg} × {Rg}) @ ({Rg} × {N}·{L} = {N * L}) → ({Kg} × {N * L}) → {fmt_shape(self.output_shape)}"
        )
    else:
        lines.append(f"a batch of N images: ({Kg} × {Rg}) @ ({Rg} × N·{L}) → (N, {K}, {_grid_str(self)})")
    return lines


def group_lines(self: Explanation) -> list[str]:
    """With groups: which input channels, rows and kernels belong to which group."""
    g = self.groups
    if g == 1:
        return []
    Cg, Kg, Rg = self.C // g, self.K // g, self.rows // g
    lines = [f"{g} groups: each kernel sees only its group's {Cg} input channel(s)"]
    if self.transposed:
        Cg, Kg = self.K // g, self.C // g
    for q in range(min(g, 8)):
        ins, outs = (q * Kg, (q + 1) * Kg - 1), (q * Cg, (q + 1) * Cg - 1)
        if not self.transposed:
            ins, outs = (q * Cg, (q + 1) * Cg - 1), (q * Kg, (q + 1) * Kg - 1)
        lines.append(
            f"  group {q}: input channels {ins[0]}..{ins[1]}, rows {q * Rg}..{(q + 1) * Rg - 1}"
            f", output channels {outs[0]}..{outs[1]}"
        )
    if g > 8:
        lines.append(f"  … ({g} groups)")
    return lines


def dot_lines(self: Explanation) -> list[str]:
    """One output worked out as a dot product with its numbers, and the flipped kernel's.

    Deep learning's "convolution" is a cross-correlation: the kernel slides unflipped. A true
    (signal-processing) convolution flips it along every axis; the second line gives the
    value that would have, so the difference is visible.
    """
    if self.transposed:
        return []
    pos = self.highlight
    col = int(np.ravel_multi_index(pos, self.grid))
    every_kernel = (slice(None), *pos)
    k = int(np.argmax(np.abs(self.output[0][every_kernel])))
    Rg = self.rows // self.groups
    q = k // (self.K // self.groups)
    x = self.columns[0, q * Rg : (q + 1) * Rg, col]
    real = ~self.padding_mask[q * Rg : (q + 1) * Rg, col]
    w = self.weight_matrix[k]
    flipped = np.flip(self.weight[k], axis=tuple(range(1, self.ndim + 1))).reshape(-1)
    integral = values_integral(w) and values_integral(x)
    where = ", ".join(str(v) for v in pos)
    at_output = (0, k, *pos)
    v = self.output[at_output]
    vf = float(flipped @ x)
    flip = ", ".join(f"{n} − 1 − {t}" for n, t in zip(KSIZE[self.ndim], TAPS[self.ndim]))
    return [
        f"output[0, {k}, {where}] = Σ w·x over column ({where}), padding left out:",
        f"  = {dot_terms(w[real], x[real], integral)} = {fmt_num(v, integral)}",
        "this is a cross-correlation, as in every deep-learning library: the kernel is not flipped.",
        f"a true convolution flips it (w[c, {flip}]) and would give {fmt_num(vf, integral)} here",
    ]


def conv_matrix_shape(self: Explanation) -> tuple[int, int]:
    """``(K·L, C·H·W)`` (the product of the input's size in 1-D and 3-D)."""
    return (self.K * self.L, self.C * math.prod(self.size))


def conv_matrix_nnz(self: Explanation) -> int:
    """Weights in C: each non-padding unrolled cell, once per kernel of its group."""
    return int((~self.padding_mask).sum()) * (self.K // self.groups)


def conv_matrix(self: Explanation) -> np.ndarray:
    """The convolution as one matrix C (dense, mostly zeros) of shape (K·L, C·H·W).

    Row ``k·L + oh·OW + ow`` of C holds kernel k's weights at the input pixels of that output's
    receptive field, so for one image ``x`` (C, H, W):
    ``conv2d(x)[k, oh, ow] = (C @ x.ravel())[k·L + oh·OW + ow]`` and the transposed convolution
    (the input gradient, col2im of ``Wᵀ·y``) is ``Cᵀ @ y.ravel()``. Where im2col copies the
    input into a bigger matrix, C copies the weights.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> e = im2col.explain((1, 1, 3, 3), 2)            # weight = demo values 1..4
    >>> C = e.conv_matrix()
    >>> C.shape
    (4, 9)
    >>> C[0]                                          # output (0, 0): taps 1, 2 / 3, 4
    array([1., 2., 0., 3., 4., 0., 0., 0., 0.], dtype=float32)
    >>> bool(np.array_equal(C @ e.input[0].ravel(), e.output[0].ravel()))
    True
    """
    if self.transposed:
        raise ValueError(
            f"{FN}(): conv_matrix() is the forward convolution's matrix; explain it without "
            "transposed=True (the transposed convolution is its transpose Cᵀ)"
        )
    rows, cols = self.conv_matrix_shape
    nbytes = rows * cols * self.weight.dtype.itemsize
    if nbytes > CONV_MATRIX_MAX_BYTES:
        raise ValueError(
            f"{FN}(): the dense conv matrix C would be {rows} × {cols} = {fmt_bytes(nbytes)} "
            f"(limit {fmt_bytes(CONV_MATRIX_MAX_BYTES)}); use a smaller input to see it"
        )
    Cm = np.zeros((rows, cols), dtype=self.weight.dtype)
    Kg, Cg = self.K // self.groups, self.C // self.groups
    r = np.arange(self.rows)
    c, tap = r // self.taps, r % self.taps
    rr, ll = np.nonzero(~self.padding_mask)  # cells of the unrolled matrix that copy a pixel
    pixel = self._pixel[rr, ll]
    wflat = self.weight.reshape(self.K, Cg, self.taps)
    for k in range(self.K):
        q = k // Kg
        in_group = (c[rr] >= q * Cg) & (c[rr] < (q + 1) * Cg)
        sel_r, sel_l, sel_p = rr[in_group], ll[in_group], pixel[in_group]
        wk = wflat[k, c[sel_r] - q * Cg, tap[sel_r]]
        np.add.at(Cm, (k * self.L + sel_l, sel_p), wk)
    return Cm
