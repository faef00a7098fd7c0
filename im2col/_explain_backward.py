"""The backward pass of an explained convolution: grad weight = dY·colsᵀ, grad input = col2im(Wᵀ·dY).

:meth:`Explanation.backward <im2col.explain.Explanation.backward>` computes both gradients from
the explanation's own unrolled matrix (equal to torch's autograd) and writes them out as text:
the GEMMs with their shapes, and one entry of each worked out with its numbers. It returns a
:class:`Backward`. A transposed convolution's gradients are those of the ordinary convolution of dY.

``backward`` takes ``self``: it is bound in the class body of Explanation, and its docstring is the method's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._explain_args import FN, to_numpy
from ._explain_format import dot_terms, fmt_num, fmt_shape, values_integral
from ._functional import im2col

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation


@dataclass(eq=False)
class Backward:
    """The backward pass of an :class:`Explanation`: made by :meth:`Explanation.backward`.

    Attributes
    ----------
    grad_output : ndarray, the output's shape
    grad_input : ndarray, the input's shape
    grad_weight : ndarray, the weight's shape
    lines : list of str
        The explanation as text (``str()`` joins them).
    """

    grad_output: np.ndarray
    grad_input: np.ndarray
    grad_weight: np.ndarray
    lines: list[str]

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        gx, gw = fmt_shape(self.grad_input.shape), fmt_shape(self.grad_weight.shape)
        return f"<Backward grad_input {gx}, grad_weight {gw}>"


def backward(self: Explanation, grad_output: Any) -> Backward:
    """The backward pass: grad weight = dY·colsᵀ, grad input = col2im(Wᵀ·dY).

    Parameters
    ----------
    grad_output : ndarray or Tensor, shape ``output_shape``
        The gradient of the loss with respect to :attr:`output` (``dY``).

    Returns
    -------
    Backward
        ``.grad_input`` and ``.grad_weight`` (equal to torch's autograd), and the explanation
        as text: the shapes, and one entry of each worked out with its numbers.

    Examples
    --------
    >>> import numpy as np, im2col
    >>> e = im2col.explain((1, 1, 4, 4), 3)
    >>> b = e.backward(np.ones(e.output_shape, np.float32))
    >>> b.grad_weight.shape, b.grad_input.shape
    ((1, 1, 3, 3), (1, 1, 4, 4))
    >>> print(b.lines[1])
    grad weight = dY·colsᵀ: (1 × 4) @ (4 × 9) → (1 × 9) → (1, 1, 3, 3), summed over 1 image(s)
    >>> print(b.grad_input[0, 0])
    [[ 1.  3.  5.  3.]
     [ 5. 12. 16.  9.]
     [11. 24. 28. 15.]
     [ 7. 15. 17.  9.]]
    """
    gy = to_numpy(grad_output, "grad_output").astype(self.input.dtype)
    if gy.shape != self.output_shape:
        raise ValueError(
            f"{FN}(): argument 'grad_output' must have the output's shape "
            f"{fmt_shape(self.output_shape)}, got {fmt_shape(gy.shape)}"
        )
    if self.transposed:
        return _backward_transposed(self, gy)
    g, Kg, Rg, N = self.groups, self.K // self.groups, self.rows // self.groups, self.N
    dy = gy.reshape(N, self.K, self.L)
    cols = self.columns
    gw = np.zeros((self.K, Rg), dtype=self.input.dtype)
    gcols = np.empty((N, self.rows, self.L), dtype=self.input.dtype)
    for q in range(g):
        ks, rs = slice(q * Kg, (q + 1) * Kg), slice(q * Rg, (q + 1) * Rg)
        gw[ks] = np.einsum("nkl,nrl->kr", dy[:, ks], cols[:, rs])
        gcols[:, rs] = self.weight_matrix[ks].T @ dy[:, ks]
    grad_w = gw.reshape(self.weight.shape)
    grad_x = self._fold(gcols)
    integral = values_integral(dy) and values_integral(cols)
    # One entry of each, with its numbers: weight row 0, tap 0; the traced input pixel.
    r0 = self.taps // 2  # the kernel's centre tap of channel 0: the fewest padding cells
    real = ~self.padding_mask[r0]
    terms = dot_terms(dy[0, 0][real], cols[0, r0][real], integral)
    tap = ", ".join(str(v) for v in self.row_label(r0))
    pix = next((s for s in self.receptive_field(*self.highlight) if not s.padding), None) or self.source(0, 0)
    flat = int(np.ravel_multi_index((pix.c, *pix.index), (self.C, *self.size)))
    rr, ll = np.nonzero(self._pixel == flat)
    where = ", ".join(str(v) for v in pix.index)
    contrib = gcols[0, rr, ll]
    lines = [
        f"Backward pass of {fmt_shape(self.input.shape)} ⊛ {fmt_shape(self.weight.shape)}, "
        f"dY = grad_output {fmt_shape(gy.shape)}",
        f"grad weight = dY·colsᵀ: ({Kg} × {self.L}) @ ({self.L} × {Rg}) → ({Kg} × {Rg}) → "
        f"{fmt_shape(self.weight.shape)}, summed over {N} image(s)",
        f"  e.g. grad_weight[0, {tap}] = Σ over the columns of dY[n, 0, ·]·cols[n, {r0}, ·], padding left out:",
        f"  = {terms}{' + (the other images)' if N > 1 else ''} = {fmt_num(grad_w.reshape(-1)[r0], integral)}",
        f"grad input = col2im(Wᵀ·dY): ({Rg} × {Kg}) @ ({Kg} × {self.L}) → ({Rg} × {self.L}) "
        f"per image{' and group' if g > 1 else ''},",
        f"  then col2im adds each cell back into the pixel it was copied from → {fmt_shape(self.input.shape)}",
        f"  e.g. grad_input[0, {pix.c}, {where}]: the pixel is copied into {len(rr)} cells; their Wᵀ·dY values",
        f"  {' + '.join(fmt_num(v, integral) for v in contrib[:6])}"
        f"{' + …' if len(contrib) > 6 else ''} = "
        f"{fmt_num(grad_x[(0, pix.c, *pix.index)], integral)}",
    ]
    return Backward(gy, grad_x, grad_w, lines)


def _backward_transposed(self: Explanation, gy: np.ndarray) -> Backward:
    # conv_transpose is the adjoint of conv: its input gradient is the convolution of dY.
    g, Cg, Rg, N = self.groups, self.C // self.groups, self.rows // self.groups, self.N
    cols = im2col(gy, self.kernel_size, self.dilation, self.padding, self.stride)
    if cols.shape[2] != self.L:  # output_padding past the stride: the extra rows are unread
        cols = cols[:, :, : self.L]
    gx = np.empty((N, self.C, self.L), dtype=gy.dtype)
    gw = np.zeros((self.C, Rg), dtype=gy.dtype)
    x = self.input.reshape(N, self.C, self.L)
    for q in range(g):
        cs, rs = slice(q * Cg, (q + 1) * Cg), slice(q * Rg, (q + 1) * Rg)
        gx[:, cs] = self.weight_matrix[cs] @ cols[:, rs]
        gw[cs] = np.einsum("ncl,nrl->cr", x[:, cs], cols[:, rs])
    lines = [
        f"Backward pass of the transposed convolution, dY = grad_output {fmt_shape(gy.shape)}",
        f"grad input = W·im2col(dY): ({Cg} × {Rg}) @ ({Rg} × {self.L}) → "
        f"{fmt_shape(self.input.shape)}: the ordinary convolution of dY",
        f"grad weight = x·im2col(dY)ᵀ: ({Cg} × {self.L}) @ ({self.L} × {Rg}) → {fmt_shape(self.weight.shape)}",
    ]
    return Backward(gy, gx.reshape(self.input.shape), gw.reshape(self.weight.shape), lines)
