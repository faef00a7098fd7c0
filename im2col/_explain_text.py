"""The text report of an explained convolution: what ``print(explanation)`` shows.

:func:`to_text` writes the numbered sections (output size, unrolled matrix, weight matrix, GEMM,
output, cost, sparse-matrix view, fast path; a transposed convolution has its own order) at most
about ``width`` columns wide, and the tables in it: the unrolled matrix with padding as ``·``,
the padded input, and the output map as numbers or as shades. The numbers come from the
explanation's own methods; this module only lays them out.

The functions taking ``self`` are methods of :class:`~im2col.explain.Explanation`, bound in its
class body (``to_text = _explain_text.to_text``), so their docstrings are the methods'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._explain_arith import axis_groups
from ._explain_format import (
    AXES,
    KSIZE,
    OSIZE,
    PAD_MARK,
    POS,
    TAPS,
    comma_label,
    elide,
    fmt_num,
    fmt_shape,
    values_integral,
    wrap,
)
from .data import ascii_art

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation


def matrix_table(self: Explanation, *, image: int = 0, width: int = 100, max_rows: int = 18) -> list[str]:
    """One image's unrolled matrix as aligned text, elided to ``width``; padding ``·``."""
    cols = self.columns[image]
    mask = self.padding_mask
    integral = values_integral(cols)
    row_ids = elide(self.rows, max_rows)
    row_lab = {r: comma_label(self.row_label(r)) for r in row_ids if r is not None}
    head_lab = ",".join(("c",) + TAPS[self.ndim])
    lab_w = max(len(head_lab), *(len(v) for v in row_lab.values()))
    cells = [fmt_num(v, integral) for v in cols[[r for r in row_ids if r is not None]].ravel()]
    col_lab_w = len(comma_label(tuple(n - 1 for n in self.grid)))
    cell_w = max(col_lab_w, *(len(s) for s in cells), 1)
    fit = max(3, (width - lab_w - 3) // (cell_w + 1))
    col_ids = elide(self.L, fit)
    hcol = int(np.ravel_multi_index(self.highlight, self.grid))
    if hcol not in col_ids:  # show the highlighted column and its neighbours between the ends
        ends = max(1, (fit - 7) // 2)
        mid = list(range(max(ends + 1, hcol - 2), min(self.L - ends - 1, hcol + 3)))
        col_ids = list(range(ends)) + [None] + mid + [None] + list(range(self.L - ends, self.L))

    def cell(r: int, col: int | None) -> str:
        if col is None:
            return "…".rjust(cell_w)
        if mask[r, col]:
            return PAD_MARK.rjust(cell_w)
        return fmt_num(cols[r, col], integral).rjust(cell_w)

    head = " ".join(("…" if c is None else comma_label(self.column_label(c))).rjust(cell_w) for c in col_ids)
    lines = [head_lab.rjust(lab_w) + " │ " + head, "─" * lab_w + "─┼─" + "─" * len(head)]
    for r in row_ids:
        if r is None:
            lines.append("⋮".rjust(lab_w) + " │ " + " ".join("⋮".rjust(cell_w) for _ in col_ids))
            continue
        lines.append(row_lab[r].rjust(lab_w) + " │ " + " ".join(cell(r, c) for c in col_ids))
    return lines


def padded_input_lines(self: Explanation, *, image: int = 0, channel: int = 0, max_side: int = 16) -> list[str]:
    """One channel of the input with its padding (``·``), if it is small enough to print.

    2-D: the padded grid; 1-D: one line; 3-D: nothing (see the output map's slices).
    """
    if self.ndim == 3 or self.transposed:
        return []
    pads = self.padding if self.ndim == 2 else ((0, 0), *self.padding)
    (pt, pb), (pl, pr) = pads
    H, W = self._last2(self.size)
    Hp, Wp = H + pt + pb, W + pl + pr
    if Hp > max_side or Wp > (max_side if self.ndim == 2 else 30):
        return []
    x = self.input[image, channel].reshape(H, W)
    integral = values_integral(x)
    cells = [[PAD_MARK] * Wp for _ in range(Hp)]
    for h in range(H):
        for w in range(W):
            cells[h + pt][w + pl] = fmt_num(x[h, w], integral)
    cw = max(len(s) for row in cells for s in row)
    return [" ".join(s.rjust(cw) for s in row) for row in cells]


def output_map_lines(self: Explanation, *, image: int = 0, kernel: int | None = None) -> list[str]:
    """One output map as text: numbers if it is small, else shades ``" .:-=+*#%@"`` of ``|y|``.

    The kernel defaults to the one with the largest output at :attr:`highlight`.
    """
    if kernel is None:
        pos = self.highlight if not self.transposed else (0,) * self.ndim
        every_kernel = (slice(None), *pos)
        kernel = int(np.argmax(np.abs(self.output[image][every_kernel])))
    y = self.output[image, kernel]
    y2 = y.reshape(-1, y.shape[-1]) if self.ndim != 3 else y.reshape(-1, y.shape[-1])
    integral = values_integral(y2)
    cw = max(len(fmt_num(v, integral)) for v in y2.ravel())
    if y2.shape[1] * (cw + 1) <= 90 and y2.shape[0] <= 24:
        lines = [" ".join(fmt_num(v, integral).rjust(cw) for v in row) for row in y2]
        how = "values"
    else:
        top = float(np.abs(y2).max()) or 1.0
        lines = ascii_art(np.abs(y2) / top).split("\n")
        lines = [ln if ln.strip() else "" for ln in lines[:40]]
        how = f'|value| / {fmt_num(top, False)} as " .:-=+*#%@"'
    if self.ndim == 3:
        how += f"; the {y.shape[0]} depth slices one under another"
    return [f"output map: image {image}, kernel {kernel}, {fmt_shape(y.shape)}, {how}"] + lines


def padding_lines(self: Explanation) -> list[str]:
    return [self.padding_note] if self.padding_note else []


def to_text(self: Explanation, *, width: int = 100, max_rows: int = 18, conv_matrix: bool = False) -> str:
    """The whole explanation as text at most about ``width`` wide (``str()``: the defaults)."""
    if self.transposed:
        return _transposed_text(self, width=width, max_rows=max_rows)
    n = self.ndim
    pads = [p for pair in self.padding for p in pair]
    pad = f"{pads[0]}" if len(set(pads)) == 1 else f"{self.padding}"

    def one(t: tuple[int, ...]) -> str:
        return str(t[0]) if len(set(t)) == 1 else str(t)

    lines = [
        f"Convolution of input {fmt_shape(self.input.shape)} by weight {fmt_shape(self.weight.shape)}:",
        f"  stride {one(self.stride)}, padding {pad}, dilation {one(self.dilation)}, groups {self.groups}",
    ]
    lines += ["  " + s for s in self.padding_lines()]
    if self.demo_input:
        lines.append("  input values are 1, 2, 3, … in row-major order, so each cell can be traced by eye")
    if self.demo_weight:
        lines.append("  weight values are 1, 2, 3, …")
    lines += ["", "1. Output size: (in + 2·pad − kernel) // stride + 1"]
    lines += ["   " + s for s in self.output_size_steps()]
    if not any(pads) and set(self.stride) == {1} and set(self.dilation) == {1}:
        # stride 1, dilation 1, no padding: the output size (from _geometry.out_sizes) is m − kk + 1
        sizes = list(zip(self.size, self.kernel_size, self.out_size))
        for _name, (m, kk, fits) in axis_groups(self, sizes):
            lines.append(
                f"   no padding: a {kk}-wide window fits {m} − {kk} + 1 = {fits} times "
                f"in {m} pixels (the border loses k − 1 = {kk - 1})"
            )
    osz = ", ".join(OSIZE[n])
    lines.append(f"   output: {fmt_shape(self.output_shape)} = (N, K, {osz})")
    padded = self.padded_input_lines()
    what = f"with its padding ({PAD_MARK} = padding, read as 0)" if any(pads) else "(no padding)"
    if padded:
        lines += ["", f"   input image 0, channel 0 {what}:"]
        lines += ["     " + s for s in padded]
    ks = "·".join(KSIZE[n])
    lines += [
        "",
        f"2. Unrolled matrix (im2col): C·{ks} × {'·'.join(OSIZE[n])} = {self.C}·"
        f"{'·'.join(map(str, self.kernel_size))} × {'·'.join(map(str, self.grid))} = "
        f"{self.rows} × {self.L} per image",
        f"   the batch: {fmt_shape(self.columns_shape)}, torch's unfold layout (N, C·{ks}, L)",
        f"   row = {self.row_layout()}, column = {self.column_layout()}",
        f"   rows ({','.join(('c',) + TAPS[n])}): channel, kernel "
        f"{'tap' if n == 1 else 'taps'}; columns ({','.join(POS[n])}): output position; "
        f"{PAD_MARK} = padding",
    ]
    lines += ["   " + s for s in self.group_lines()]
    lines += ["   " + s for s in self.matrix_table(width=width - 3, max_rows=max_rows)]
    rf = self.receptive_field(*self.highlight)
    real = [s for s in rf if not s.padding]
    where = comma_label(self.highlight)
    lines.append(
        f"   column ({where}) is the receptive field of output ({', '.join(map(str, self.highlight))}): "
        f"{len(real)} input pixel{'s' if len(real) != 1 else ''}, {len(rf) - len(real)} padding"
    )
    wm = self.weight_matrix
    lines += [
        "",
        f"3. Weight matrix: K × (C/groups)·{ks} = {wm.shape[0]} × {wm.shape[1]}",
        f"   each kernel flattened to one row, in the same ({','.join(('c',) + TAPS[n])}) "
        "order as the unrolled matrix's rows",
    ]
    integral = values_integral(wm)
    cw = max(len(fmt_num(v, integral)) for v in wm.ravel()[:4096])
    fit = max(3, (width - 10) // (cw + 1))
    wcols = elide(wm.shape[1], fit)
    for kk in elide(self.K, 8):
        if kk is None:
            lines.append("      ⋮")
            continue
        vals = " ".join("…".rjust(cw) if j is None else fmt_num(wm[kk, j], integral).rjust(cw) for j in wcols)
        lines.append(f"   {kk:>3} │ {vals}")
    lines += ["", "4. The GEMM: weight matrix @ unrolled matrix"]
    lines += ["   " + s for s in self.gemm_lines()]
    if self.groups == 1:
        at = (slice(None, 8), *self.highlight)
        vals = ", ".join(fmt_num(v, values_integral(self.output)) for v in self.output[0][at])
        more = ", …" if self.K > 8 else ""
        lines.append(
            f"   e.g. output ({', '.join(map(str, self.highlight))}) of image 0 = weight matrix @"
            f" column ({where}) = [{vals}{more}]"
        )
    lines += ["   " + s for s in self.dot_lines()]
    lines += ["", "5. The output"]
    lines += ["   " + s for s in self.output_map_lines()]
    lines += ["", "6. Cost"]
    lines += ["   " + s for s in self.cost_lines()]
    r, c = self.conv_matrix_shape
    nnz = self.conv_matrix_nnz
    lines += [
        "",
        f"7. Sparse-matrix view: one sparse matrix C, K·L × C·{'·'.join(AXES[n][a][0].upper() for a in range(n))}"
        f" = {self.K}·{self.L} × {self.C}·{'·'.join(map(str, self.size))} = {r} × {c}",
        "   conv = C @ x.ravel() per image; transposed conv = Cᵀ @ y.ravel()",
        f"   {nnz:,} of its {r * c:,} entries are weights ({100 * nnz / (r * c):.1f}%), the rest zeros",
        f"   im2col copies the input ({self.rows * self.L:,} values per image); C copies the weights ({nnz:,} values)",
    ]
    if conv_matrix:
        Cm = self.conv_matrix()
        integral = values_integral(Cm)
        cw = max(len(fmt_num(v, integral)) for v in np.unique(Cm))
        fit = max(3, (width - 12) // (cw + 1))
        ccols = elide(c, fit)
        lines.append(
            f"   row k·L + {self.column_layout()} (kernel k, output ({', '.join(POS[n])})); "
            "column c·H·W + h·W + w; . = zero"
            if n == 2
            else "   row k·L + column of the output; column: the flat input index; . = zero"
        )
        for rr in elide(r, max_rows):
            if rr is None:
                lines.append("        ⋮")
                continue
            vals = " ".join(
                ("…" if j is None else ("." if Cm[rr, j] == 0 else fmt_num(Cm[rr, j], integral))).rjust(cw)
                for j in ccols
            )
            lines.append(f"   {rr:>5} │ {vals}")
    lines += ["", "8. The fast path"]
    lines += ["   " + s for s in self.route_lines()]
    return wrap(lines, width)


def _transposed_text(self: Explanation, *, width: int, max_rows: int) -> str:
    n = self.ndim
    pads = [p[0] for p in self.padding]
    lines = [
        f"Transposed convolution of input {fmt_shape(self.input.shape)} by weight "
        f"{fmt_shape(self.weight.shape)} (C_in, C_out/groups, {', '.join(KSIZE[n])}):",
        f"  stride {self.stride}, padding {tuple(pads)}, output_padding "
        f"{self.output_padding}, dilation {self.dilation}, groups {self.groups}",
        "  it runs the convolution backwards: each input pixel spreads a copy of the kernel,",
        "  scaled by its value, over the output; it is conv's input gradient (the adjoint).",
        "",
        "1. Output size: (in − 1)·stride − 2·pad + dilation·(kernel − 1) + output_padding + 1",
    ]
    lines += ["   " + s for s in self.output_size_steps()]
    lines.append(
        f"   output: {fmt_shape(self.output_shape)}; a convolution with the same kernel, stride "
        f"and padding maps {fmt_shape(self.out_size)} back to {fmt_shape(self.size)}"
    )
    lines += ["", "2. The GEMM Wᵀ·x: one column per input position"]
    lines += ["   " + s for s in self.gemm_lines()]
    lines.append(
        f"   columns: {fmt_shape(self.columns_shape)}, row = {self.row_layout()} (output "
        f"channel c, kernel taps), column = input position"
    )
    lines += ["   " + s for s in self.group_lines()]
    lines += ["   " + s for s in self.matrix_table(width=width - 3, max_rows=max_rows)]
    lines += [
        "",
        "3. col2im: each column's cell is added to the output pixel its tap lands on:",
        f"   pixel = position·stride − pad + tap·dilation, per axis; cells past the border ({PAD_MARK}) are dropped",
    ]
    counts = self.overlap_counts()[0]
    lo, hi = int(counts.min()), int(counts.max())
    lines.append(f"   each output pixel receives between {lo} and {hi} values (overlap counts)")
    pos = self.highlight
    col = int(np.ravel_multi_index(pos, self.grid))
    hit = [self.source(r, col) for r in range(self.taps)]
    real = [s for s in hit if not s.padding]
    lines.append(
        f"   input position ({', '.join(map(str, pos))}) spreads over {len(real)} output pixels"
        f" of channel 0: {', '.join(str(s.index) for s in real[:6])}{' …' if len(real) > 6 else ''}"
    )
    lines += ["", "4. The output"]
    lines += ["   " + s for s in self.output_map_lines()]
    lines += ["", "5. Cost"]
    lines += ["   " + s for s in self.cost_lines()]
    lines += ["", "6. The fast path"]
    lines += ["   " + s for s in self.route_lines()]
    return wrap(lines, width)
