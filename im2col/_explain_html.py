"""The static HTML view of an explained 2-D convolution: the tables notebooks show without JavaScript.

:func:`to_html` draws the padded input (padding shaded, one output's receptive field outlined),
the unrolled matrix (padding shaded, that output's column highlighted), the weight matrix, the
GEMM, the cost and the sparse-matrix view. It is what Jupyter shows when the interactive explorer
(``im2col/explorer.py``) cannot draw the configuration; 1-D, 3-D and transposed explanations get
their text report in a ``<pre>``.

``to_html`` takes ``self``: it is bound in the class body of Explanation, and its docstring is the method's.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ._explain_format import PAD_MARK, elide, fmt_num, fmt_shape, focus, values_integral
from ._geometry import span

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation


def to_html(
    self: Explanation, highlight: tuple[int, int] | None = None, *, max_rows: int = 18, max_cols: int = 24
) -> str:
    """HTML for notebooks: the padded input (padding shaded, the receptive field of output
    ``highlight`` outlined), the unrolled matrix (padding shaded, that output's column
    highlighted), the weight matrix, the GEMM, the cost and the sparse-matrix view."""
    if self.ndim != 2 or self.transposed:  # the tables below are drawn for 2-D images
        return '<div class="im2col-explanation"><pre>' + html.escape(self.to_text()) + "</pre></div>"
    oh, ow = self.highlight if highlight is None else highlight
    self._check_index(oh, self.OH, "oh")
    self._check_index(ow, self.OW, "ow")
    hcol = oh * self.OW + ow
    esc = html.escape
    out = [
        '<div class="im2col-explanation">',
        "<style>"
        ".im2col-explanation table{border-collapse:collapse;margin:4px 0 10px 0}"
        ".im2col-explanation td,.im2col-explanation th{border:1px solid #ccc;padding:1px 4px;"
        "text-align:right;font-family:monospace;font-size:12px}"
        ".im2col-explanation th{background:#f4f4f4;font-weight:normal}"
        ".im2col-explanation .pad{background:#d9d9d9;color:#666}"
        ".im2col-explanation .hi{background:#ffe08a}"
        ".im2col-explanation .pad.hi{background:#e8c872}"
        ".im2col-explanation .rf{outline:2px solid #d62728;outline-offset:-2px}"
        "</style>",
        f"<p><b>Convolution</b> of input {esc(fmt_shape(self.input.shape))} by weight "
        f"{esc(fmt_shape(self.weight.shape))}: stride {esc(str(self.stride))}, padding "
        f"{esc(str(self.padding))}, dilation {esc(str(self.dilation))}, groups "
        f"{self.groups}</p>",
        "<p><b>Output size</b>: "
        + "<br>".join(esc(s) for s in self.output_size_steps())
        + f"<br>output {esc(fmt_shape(self.output_shape))} = (N, K, OH, OW)</p>",
    ]

    def cell(text: str, classes: str = "", tag: str = "td") -> str:
        cls = f' class="{classes.strip()}"' if classes.strip() else ""
        return f"<{tag}{cls}>{esc(text)}</{tag}>"

    # The padded input, channel 0 of image 0, around the highlighted window.
    (pt, pb), (pl, pr) = self.padding
    Hp, Wp = self.H + pt + pb, self.W + pl + pr
    field_px = {s.index for s in self.receptive_field(oh, ow) if s.c == 0}  # (h, w): 2-D here
    h0, w0 = oh * self.stride[0], ow * self.stride[1]  # window's corner, padded coordinates
    span_h, span_w = span(self.kh, self.dilation[0]), span(self.kw, self.dilation[1])
    x = self.input[0, 0]
    integral = values_integral(x)
    out.append(
        f"<p>Image 0, channel 0, padding in grey; outlined: the receptive field of output ({oh}, {ow})</p><table>"
    )
    for hp in focus(Hp, max_rows, h0, h0 + span_h):
        row = []
        for wp in focus(Wp, max_cols, w0, w0 + span_w):
            if hp is None or wp is None:
                row.append(cell("…"))
                continue
            h, w = hp - pt, wp - pl
            inside = 0 <= h < self.H and 0 <= w < self.W
            classes = ("" if inside else "pad") + (" rf hi" if (h, w) in field_px else "")
            row.append(cell(fmt_num(x[h, w], integral) if inside else PAD_MARK, classes))
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</table>")
    # The unrolled matrix of image 0.
    cols = self.columns[0]
    mask = self.padding_mask
    integral = values_integral(cols)
    cids = focus(self.L, max_cols, hcol, hcol + 1)
    out.append(
        f"<p><b>Unrolled matrix</b> {self.rows} × {self.L} (image 0 of "
        f"{fmt_shape(self.columns_shape)}): rows (channel, kernel row, kernel col), columns (out "
        f"row, out col); padding grey; column ({oh}, {ow}) highlighted</p><table>"
    )
    head = [cell("c,i,j", tag="th")]
    for c in cids:
        label = "…" if c is None else "{},{}".format(*self.column_label(c))
        head.append(cell(label, "hi" if c == hcol else "", tag="th"))
    out.append("<tr>" + "".join(head) + "</tr>")
    for r in elide(self.rows, max_rows):
        if r is None:
            out.append("<tr>" + cell("⋮", tag="th") + cell("⋮") * len(cids) + "</tr>")
            continue
        row = [cell("{},{},{}".format(*self.row_label(r)), tag="th")]
        for c in cids:
            if c is None:
                row.append(cell("…"))
                continue
            classes = ("pad" if mask[r, c] else "") + (" hi" if c == hcol else "")
            text = PAD_MARK if mask[r, c] else fmt_num(cols[r, c], integral)
            row.append(cell(text, classes))
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</table>")
    # The weight matrix.
    wm = self.weight_matrix
    integral = values_integral(wm)
    out.append(
        f"<p><b>Weight matrix</b> K × (C/groups)·kh·kw = {wm.shape[0]} × {wm.shape[1]}, one "
        "flattened kernel per row</p><table>"
    )
    wcols = elide(wm.shape[1], max_cols)
    for k in elide(self.K, max_rows):
        if k is None:
            out.append("<tr>" + cell("⋮", tag="th") + cell("⋮") * len(wcols) + "</tr>")
            continue
        vals = "".join(cell("…" if j is None else fmt_num(wm[k, j], integral)) for j in wcols)
        out.append("<tr>" + cell(str(k), tag="th") + vals + "</tr>")
    out.append("</table>")
    out.append("<p><b>GEMM</b>: " + "<br>".join(esc(s) for s in self.gemm_lines()) + "</p>")
    out.append("<p><b>Cost</b>: " + "<br>".join(esc(s) for s in self.cost_lines()) + "</p>")
    r, c = self.conv_matrix_shape
    out.append(
        f"<p><b>Sparse-matrix view</b>: conv = C @ x.ravel() with C of shape {r} × {c} "
        f"({self.conv_matrix_nnz:,} weight entries, the rest zeros); transposed conv = "
        "Cᵀ @ y.ravel(). im2col copies the input, C copies the weights.</p>"
    )
    out.append("</div>")
    return "\n".join(out)
