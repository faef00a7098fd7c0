"""``explain()``: one convolution taken apart, with every number shown.

:func:`explain` computes, for a concrete input and weight, everything the README's story talks about
and keeps it in an :class:`Explanation`:

1. the output size, worked step by step: ``(5 + 2·2 − 3) // 1 + 1 = 7``;
2. the unrolled (im2col) matrix, made by the fast :func:`im2col.im2col`, with rows labelled
   (channel, kernel row, kernel col), columns labelled (out row, out col), and every cell traced to
   the input pixel it copies or to padding (:meth:`Explanation.source`,
   :meth:`Explanation.receptive_field`);
3. the weight matrix and the GEMM with its shapes, and how the batch folds into it;
4. the cost: bytes of the column matrix against bytes of the input, and FLOPs;
5. the dual view: the same convolution as one sparse matrix ``C`` of shape (K·L) × (C·H·W) that
   copies the *weights* (``conv = C @ x.ravel()``, transposed conv ``= Cᵀ @ y.ravel()``), where
   im2col copies the *input*.

``str(explanation)`` is an aligned text table that fits a 100-column terminal; in Jupyter the
explanation shows as HTML with padding shaded and one output's receptive field highlighted.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from ._validation import as_pair, geometry, is_tensor, parse_padding

__all__ = ["explain", "Explanation", "Source"]

_FN = "explain"
PAD_MARK = "·"
#: The dense dual matrix C is refused beyond this many bytes (it is mostly zeros).
CONV_MATRIX_MAX_BYTES = 256 * 2**20


class Source(NamedTuple):
    """Where one cell of the unrolled matrix comes from: input pixel (c, h, w), or padding.

    For padding, ``h`` and ``w`` are the coordinates the tap would read if the input extended
    that far (negative, or ≥ H / W), so they still say *where* the padding is.
    """

    c: int
    h: int
    w: int
    padding: bool

    def __str__(self) -> str:
        where = f"({self.c}, {self.h}, {self.w})"
        return f"padding at {where}" if self.padding else f"input pixel {where}"


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _shape(t: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(v) for v in t) + ")"


def _fmt_num(v: float, integers: bool) -> str:
    if integers:
        return str(int(v))
    if v == 0:
        return "0"
    s = f"{v:.2f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def _elide(n: int, keep: int) -> list[int | None]:
    """Indices 0..n-1, or the first and last few with ``None`` for the gap: at most ``keep``."""
    if n <= keep:
        return list(range(n))
    head = (keep - 1 + 1) // 2
    tail = keep - 1 - head
    return list(range(head)) + [None] + list(range(n - tail, n))


def _focus(n: int, keep: int, lo: int, hi: int) -> list[int | None]:
    """Indices 0..n-1 elided to about ``keep``, always showing ``lo..hi-1`` and both ends."""
    if n <= keep:
        return list(range(n))
    lo, hi = max(0, lo - 1), min(n, hi + 1)
    ends = max(1, (keep - (hi - lo) - 2) // 2)
    ids = sorted(set(range(min(ends, n))) | set(range(lo, hi)) | set(range(max(0, n - ends), n)))
    out: list[int | None] = []
    for i in ids:
        if out and out[-1] is not None and i != out[-1] + 1:
            out.append(None)
        out.append(i)
    return out


def _to_numpy(obj: Any, name: str) -> np.ndarray:
    if is_tensor(obj):
        obj = obj.detach().cpu().numpy()
    if not isinstance(obj, np.ndarray):
        raise TypeError(
            f"{_FN}(): argument '{name}' must be an array, a tensor or a shape, got {obj!r}"
        )
    if obj.dtype.kind not in "biuf":
        raise TypeError(f"{_FN}(): argument '{name}' must hold real numbers, got dtype {obj.dtype}")
    return obj


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


@dataclass(eq=False)
class Explanation:
    """One convolution, taken apart. Make it with :func:`explain`.

    Attributes
    ----------
    input : ndarray, shape (N, C, H, W)
        The images (float32 or float64).
    weight : ndarray, shape (K, C/groups, kh, kw)
    stride, dilation : (int, int)
    padding : ((int, int), (int, int))
        ``((top, bottom), (left, right))``.
    groups : int
    demo_input, demo_weight : bool
        Whether the values were made up by :func:`explain` from a shape (``arange``), so that
        each cell is easy to trace by eye.
    highlight : (int, int)
        The output position (oh, ow) whose receptive field the text and HTML trace; default
        (0, 0). Set it to follow another output: ``e.highlight = (4, 11)``.
    N, C, H, W, K, kh, kw, OH, OW, L : int
        The sizes; ``L = OH·OW`` output positions per image.
    """

    input: np.ndarray
    weight: np.ndarray
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    dilation: tuple[int, int]
    groups: int
    demo_input: bool = False
    demo_weight: bool = False
    highlight: tuple[int, int] = (0, 0)
    N: int = field(init=False)
    C: int = field(init=False)
    H: int = field(init=False)
    W: int = field(init=False)
    K: int = field(init=False)
    kh: int = field(init=False)
    kw: int = field(init=False)
    OH: int = field(init=False)
    OW: int = field(init=False)

    def __post_init__(self) -> None:
        self.N, self.C, self.H, self.W = self.input.shape
        self.K, _, self.kh, self.kw = self.weight.shape
        g = geometry(
            _FN, self.input.shape, (self.kh, self.kw), self.stride, self.padding, self.dilation
        )
        self.OH, self.OW = g.OH, g.OW

    # --- sizes -----------------------------------------------------------------------------------

    @property
    def L(self) -> int:
        """Output positions per image, ``OH·OW``: the number of columns."""
        return self.OH * self.OW

    @property
    def rows(self) -> int:
        """Rows of the unrolled matrix, ``C·kh·kw``."""
        return self.C * self.kh * self.kw

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(N, K, OH, OW)``."""
        return (self.N, self.K, self.OH, self.OW)

    @property
    def columns_shape(self) -> tuple[int, int, int]:
        """``(N, C·kh·kw, L)``: torch's ``unfold`` layout."""
        return (self.N, self.rows, self.L)

    def output_size_steps(self) -> list[str]:
        """The output size worked out per axis, with the numbers.

        Examples
        --------
        >>> import im2col
        >>> im2col.explain((1, 1, 5, 5), 3, padding=2).output_size_steps()
        ['height and width: (5 + 2·2 − 3) // 1 + 1 = 7']
        >>> for line in im2col.explain((1, 1, 28, 28), 3, stride=2, dilation=2).output_size_steps():
        ...     print(line)
        height and width: effective kernel = d·(k − 1) + 1 = 2·(3 − 1) + 1 = 5
        height and width: (28 + 2·0 − 5) // 2 + 1 = 12
        height and width: 1 row/column of the padded input is past the last window (23 % 2)
        """
        axes = [
            ("height", self.H, self.kh, self.stride[0], self.padding[0], self.dilation[0], self.OH),
            ("width", self.W, self.kw, self.stride[1], self.padding[1], self.dilation[1], self.OW),
        ]
        if axes[0][1:] == axes[1][1:]:
            axes = [("height and width", *axes[0][1:])]
        lines = []
        for name, n, k, s, (before, after), d, out in axes:
            k_eff = d * (k - 1) + 1
            if d != 1:
                lines.append(
                    f"{name}: effective kernel = d·(k − 1) + 1 = {d}·({k} − 1) + 1 = {k_eff}"
                )
            pads = f"2·{before}" if before == after else f"{before} + {after}"
            lines.append(f"{name}: ({n} + {pads} − {k_eff}) // {s} + 1 = {out}")
            left = (n + before + after - k_eff) % s
            if left:
                lines.append(
                    f"{name}: {left} row/column{'s' if left > 1 else ''} of the padded input "
                    f"{'are' if left > 1 else 'is'} past the last window "
                    f"({n + before + after - k_eff} % {s})"
                )
        return lines

    # --- the unrolled matrix ---------------------------------------------------------------------

    @cached_property
    def columns(self) -> np.ndarray:
        """The batch's unrolled matrix (N, C·kh·kw, L), made by the fast :func:`im2col.im2col`."""
        from ._functional import im2col

        return im2col(self.input, (self.kh, self.kw), self.dilation, self.padding, self.stride)

    def row_label(self, row: int) -> tuple[int, int, int]:
        """``(channel, kernel row, kernel col)`` of a row: row = (c·kh + i)·kw + j."""
        self._check_index(row, self.rows, "row")
        c, rest = divmod(row, self.kh * self.kw)
        return (c, *divmod(rest, self.kw))

    def column_label(self, col: int) -> tuple[int, int]:
        """``(out row, out col)`` of a column of the unrolled matrix: col = oh·OW + ow."""
        self._check_index(col, self.L, "col")
        return divmod(col, self.OW)

    def source(self, row: int, col: int) -> Source:
        """Where cell (row, col) of the unrolled matrix is copied from.

        The tap (i, j) of channel c at output (oh, ow) reads input pixel
        ``h = oh·sh − top + i·dh``, ``w = ow·sw − left + j·dw``; outside the input it is padding
        (0).

        Examples
        --------
        >>> import im2col
        >>> e = im2col.explain((1, 1, 5, 5), 3, padding=2)
        >>> e.source(0, 0)                       # top-left tap of the top-left window
        Source(c=0, h=-2, w=-2, padding=True)
        >>> e.source(8, 0)                       # its bottom-right tap: the input's corner
        Source(c=0, h=0, w=0, padding=False)
        >>> print(e.source(4, 3 * 7 + 3))        # centre tap of the centre output
        input pixel (0, 2, 2)
        """
        c, i, j = self.row_label(row)
        oh, ow = self.column_label(col)
        h = oh * self.stride[0] - self.padding[0][0] + i * self.dilation[0]
        w = ow * self.stride[1] - self.padding[1][0] + j * self.dilation[1]
        return Source(c, h, w, not (0 <= h < self.H and 0 <= w < self.W))

    def receptive_field(self, oh: int, ow: int) -> list[Source]:
        """The input pixels (or padding) under output (oh, ow): column ``oh·OW + ow``, in order.

        Examples
        --------
        >>> import im2col
        >>> e = im2col.explain((1, 1, 5, 5), 3, padding=2)
        >>> [(s.h, s.w) for s in e.receptive_field(0, 0) if not s.padding]
        [(0, 0)]
        >>> sum(not s.padding for s in e.receptive_field(3, 3))
        9
        """
        self._check_index(oh, self.OH, "oh")
        self._check_index(ow, self.OW, "ow")
        col = oh * self.OW + ow
        return [self.source(r, col) for r in range(self.rows)]

    @cached_property
    def padding_mask(self) -> np.ndarray:
        """Boolean (C·kh·kw, L): True where the unrolled matrix holds padding, not a pixel."""
        r = np.arange(self.rows)
        i = (r // self.kw) % self.kh
        j = r % self.kw
        col = np.arange(self.L)
        oh, ow = col // self.OW, col % self.OW
        h = oh[None, :] * self.stride[0] - self.padding[0][0] + i[:, None] * self.dilation[0]
        w = ow[None, :] * self.stride[1] - self.padding[1][0] + j[:, None] * self.dilation[1]
        return ~((h >= 0) & (h < self.H) & (w >= 0) & (w < self.W))

    def _check_index(self, value: Any, n: int, name: str) -> None:
        if not _is_int(value):
            raise TypeError(f"{_FN}(): '{name}' must be an int, got {value!r}")
        if not 0 <= value < n:
            raise IndexError(f"{_FN}(): '{name}' must be in 0..{n - 1}, got {value}")

    # --- the GEMM --------------------------------------------------------------------------------

    @property
    def weight_matrix(self) -> np.ndarray:
        """The kernels flattened to rows, (K, C/groups·kh·kw), in the unrolled rows' order."""
        return self.weight.reshape(self.K, -1)

    @cached_property
    def output(self) -> np.ndarray:
        """The convolution (N, K, OH, OW) as weight matrix @ unrolled matrix, per group."""
        g, Kg = self.groups, self.K // self.groups
        Rg = self.rows // g
        out = np.empty((self.N, self.K, self.L), dtype=self.input.dtype)
        for q in range(g):
            out[:, q * Kg : (q + 1) * Kg] = (
                self.weight_matrix[q * Kg : (q + 1) * Kg] @ self.columns[:, q * Rg : (q + 1) * Rg]
            )
        return out.reshape(self.output_shape)

    def gemm_lines(self) -> list[str]:
        """The GEMM with its shapes, per image and with the batch folded in."""
        K, R, L, N, g = self.K, self.rows, self.L, self.N, self.groups
        Kg, Rg = K // g, R // g
        each = f" (once per group, {g} groups)" if g > 1 else ""
        lines = [
            f"per image{each}: ({Kg} × {Rg}) @ ({Rg} × {L}) → ({Kg} × {L}) → ({Kg}, {self.OH}, "
            f"{self.OW})",
        ]
        if N > 1:
            lines.append(f"batch of {N}: the {N} column matrices side by side, one GEMM{each}:")
            lines.append(
                f"  ({Kg} × {Rg}) @ ({Rg} × {N}·{L} = {N * L}) → ({Kg} × {N * L}) → "
                f"{_shape(self.output_shape)}"
            )
        else:
            lines.append(
                f"a batch of N images: ({Kg} × {Rg}) @ ({Rg} × N·{L}) → (N, {K}, {self.OH}, "
                f"{self.OW})"
            )
        return lines

    # --- the cost --------------------------------------------------------------------------------

    @property
    def flops(self) -> int:
        """Floating-point operations, ``2·N·K·(C/groups)·kh·kw·L`` (a multiply and an add each)."""
        return 2 * self.N * self.K * (self.rows // self.groups) * self.L

    def cost_lines(self) -> list[str]:
        item = self.input.dtype.itemsize
        col_vals, in_vals = self.N * self.rows * self.L, self.N * self.C * self.H * self.W
        ratio = col_vals / in_vals
        approx = self.kh * self.kw / (self.stride[0] * self.stride[1])
        s = f"{self.stride[0]}·{self.stride[1]}"
        return [
            f"columns: {_shape(self.columns_shape)} = {col_vals:,} values, "
            f"{_fmt_bytes(col_vals * item)} "
            f"({self.input.dtype})",
            f"input:   {_shape(self.input.shape)} = {in_vals:,} values, "
            f"{_fmt_bytes(in_vals * item)}",
            f"the columns hold {ratio:.2f}× the input: about kh·kw / (sh·sw) = "
            f"{self.kh}·{self.kw} / {s} = "
            f"{approx:.2f},",
            "  more with padding, less where windows skip the border",
            "FLOPs: 2·N·K·(C/groups)·kh·kw·L = "
            f"2·{self.N}·{self.K}·{self.C // self.groups}·{self.kh}·{self.kw}·"
            f"{self.L} = {self.flops:,}",
        ]

    # --- the dual view: one sparse matrix C -----------------------------------------------------

    @property
    def conv_matrix_shape(self) -> tuple[int, int]:
        """``(K·L, C·H·W)``."""
        return (self.K * self.L, self.C * self.H * self.W)

    @cached_property
    def conv_matrix_nnz(self) -> int:
        """Weights in C: each non-padding unrolled cell, once per kernel of its group."""
        return int((~self.padding_mask).sum()) * (self.K // self.groups)

    def conv_matrix(self) -> np.ndarray:
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
        rows, cols = self.conv_matrix_shape
        nbytes = rows * cols * self.weight.dtype.itemsize
        if nbytes > CONV_MATRIX_MAX_BYTES:
            raise ValueError(
                f"{_FN}(): the dense conv matrix C would be {rows} × {cols} = {_fmt_bytes(nbytes)} "
                f"(limit {_fmt_bytes(CONV_MATRIX_MAX_BYTES)}); use a smaller input to see it"
            )
        Cm = np.zeros((rows, cols), dtype=self.weight.dtype)
        Kg, Cg = self.K // self.groups, self.C // self.groups
        r = np.arange(self.rows)
        c, i, j = r // (self.kh * self.kw), (r // self.kw) % self.kh, r % self.kw
        col = np.arange(self.L)
        oh, ow = col // self.OW, col % self.OW
        h = oh[None, :] * self.stride[0] - self.padding[0][0] + i[:, None] * self.dilation[0]
        w = ow[None, :] * self.stride[1] - self.padding[1][0] + j[:, None] * self.dilation[1]
        keep = ~self.padding_mask
        rr, ll = np.nonzero(keep)  # cells of the unrolled matrix that copy a pixel
        pixel = (c[rr] * self.H + h[rr, ll]) * self.W + w[rr, ll]
        for k in range(self.K):
            q = k // Kg
            in_group = (c[rr] >= q * Cg) & (c[rr] < (q + 1) * Cg)
            sel_r, sel_l, sel_p = rr[in_group], ll[in_group], pixel[in_group]
            wk = self.weight[k, c[sel_r] - q * Cg, i[sel_r], j[sel_r]]
            np.add.at(Cm, (k * self.L + sel_l, sel_p), wk)
        return Cm

    # --- text ------------------------------------------------------------------------------------

    def _values_integral(self, a: np.ndarray) -> bool:
        return a.dtype.kind in "biu" or bool(
            np.all(np.mod(a, 1) == 0) and np.abs(a).max(initial=0) < 1e6
        )

    def matrix_table(self, *, image: int = 0, width: int = 100, max_rows: int = 18) -> list[str]:
        """One image's unrolled matrix as aligned text, elided to ``width``; padding ``·``."""
        cols = self.columns[image]
        mask = self.padding_mask
        integral = self._values_integral(cols)
        row_ids = _elide(self.rows, max_rows)
        row_lab = {r: "{},{},{}".format(*self.row_label(r)) for r in row_ids if r is not None}
        lab_w = max(len("c,i,j"), *(len(v) for v in row_lab.values()))
        cells = [_fmt_num(v, integral) for v in cols[[r for r in row_ids if r is not None]].ravel()]
        col_lab_w = len(f"{self.OH - 1},{self.OW - 1}")
        cell_w = max(col_lab_w, *(len(s) for s in cells), 1)
        fit = max(3, (width - lab_w - 3) // (cell_w + 1))
        col_ids = _elide(self.L, fit)
        hcol = self.highlight[0] * self.OW + self.highlight[1]
        if hcol not in col_ids:  # show the highlighted column and its neighbours between the ends
            ends = max(1, (fit - 7) // 2)
            mid = list(range(max(ends + 1, hcol - 2), min(self.L - ends - 1, hcol + 3)))
            col_ids = list(range(ends)) + [None] + mid + [None] + list(range(self.L - ends, self.L))

        def cell(r: int, col: int | None) -> str:
            if col is None:
                return "…".rjust(cell_w)
            if mask[r, col]:
                return PAD_MARK.rjust(cell_w)
            return _fmt_num(cols[r, col], integral).rjust(cell_w)

        head = " ".join(
            ("…" if c is None else "{},{}".format(*self.column_label(c))).rjust(cell_w)
            for c in col_ids
        )
        lines = ["c,i,j".rjust(lab_w) + " │ " + head, "─" * lab_w + "─┼─" + "─" * len(head)]
        for r in row_ids:
            if r is None:
                lines.append(
                    "⋮".rjust(lab_w) + " │ " + " ".join("⋮".rjust(cell_w) for _ in col_ids)
                )
                continue
            lines.append(row_lab[r].rjust(lab_w) + " │ " + " ".join(cell(r, c) for c in col_ids))
        return lines

    def padded_input_lines(
        self, *, image: int = 0, channel: int = 0, max_side: int = 16
    ) -> list[str]:
        """One channel of the input with its padding (``·``), if it is small enough to print."""
        (pt, pb), (pl, pr) = self.padding
        Hp, Wp = self.H + pt + pb, self.W + pl + pr
        if Hp > max_side or Wp > max_side:
            return []
        x = self.input[image, channel]
        integral = self._values_integral(x)
        cells = [[PAD_MARK] * Wp for _ in range(Hp)]
        for h in range(self.H):
            for w in range(self.W):
                cells[h + pt][w + pl] = _fmt_num(x[h, w], integral)
        cw = max(len(s) for row in cells for s in row)
        return [" ".join(s.rjust(cw) for s in row) for row in cells]

    def to_text(self, *, width: int = 100, max_rows: int = 18, conv_matrix: bool = False) -> str:
        """The whole explanation as text at most about ``width`` wide (``str()``: the defaults)."""
        k = (self.kh, self.kw)
        (pt, pb), (pl, pr) = self.padding
        pad = f"{pt}" if pt == pb == pl == pr else f"{self.padding}"

        def one(pair: tuple[int, int]) -> str:
            return str(pair[0]) if pair[0] == pair[1] else str(pair)

        lines = [
            f"Convolution of input {_shape(self.input.shape)} by weight "
            f"{_shape(self.weight.shape)}:",
            f"  stride {one(self.stride)}, "
            f"padding {pad}, "
            f"dilation {one(self.dilation)}, "
            f"groups {self.groups}",
        ]
        if self.demo_input:
            lines.append(
                "  input values are 1, 2, 3, … in row-major order, so each cell can be traced by "
                "eye"
            )
        if self.demo_weight:
            lines.append("  weight values are 1, 2, 3, …")
        lines += ["", "1. Output size: (in + 2·pad − kernel) // stride + 1"]
        lines += ["   " + s for s in self.output_size_steps()]
        if self.padding == ((0, 0), (0, 0)) and self.stride == (1, 1) and self.dilation == (1, 1):
            for name, n, kk in (("height", self.H, self.kh), ("width", self.W, self.kw)):
                if name == "width" and (self.H, self.kh) == (self.W, self.kw):
                    continue
                lines.append(
                    f"   no padding: a {kk}-wide window fits {n} − {kk} + 1 = {n - kk + 1} times "
                    f"in {n} pixels "
                    f"(the border loses k − 1 = {kk - 1})"
                )
        lines.append(f"   output: {_shape(self.output_shape)} = (N, K, OH, OW)")
        padded = self.padded_input_lines()
        what = (
            f"with its padding ({PAD_MARK} = padding, read as 0)"
            if any(sum(self.padding, ()))
            else "(no padding)"
        )
        if padded:
            lines += [
                "",
                f"   input image 0, channel 0 {what}:",
            ]
            lines += ["     " + s for s in padded]
        lines += [
            "",
            f"2. Unrolled matrix (im2col): C·kh·kw × OH·OW = {self.C}·{k[0]}·{k[1]} × "
            f"{self.OH}·{self.OW} = "
            f"{self.rows} × {self.L} per image",
            f"   the batch: {_shape(self.columns_shape)}, torch's unfold layout (N, C·kh·kw, L)",
            f"   rows (c,i,j): channel, kernel row, kernel col; columns (oh,ow): output position; "
            f"{PAD_MARK} = padding",
        ]
        lines += ["   " + s for s in self.matrix_table(width=width - 3, max_rows=max_rows)]
        oh, ow = self.highlight
        rf = [s for s in self.receptive_field(oh, ow)]
        real = [s for s in rf if not s.padding]
        lines.append(
            f"   column ({oh},{ow}) is the receptive field of output ({oh}, {ow}): {len(real)} "
            "input "
            f"pixel{'s' if len(real) != 1 else ''}, {len(rf) - len(real)} padding"
        )
        wm = self.weight_matrix
        lines += [
            "",
            f"3. Weight matrix: K × (C/groups)·kh·kw = {wm.shape[0]} × {wm.shape[1]}",
            "   each kernel flattened to one row, in the same (c,i,j) order as the unrolled "
            "matrix's rows",
        ]
        integral = self._values_integral(wm)
        shown = _elide(self.K, 8)
        cw = max(len(_fmt_num(v, integral)) for v in wm.ravel()[:4096])
        fit = max(3, (width - 10) // (cw + 1))
        wcols = _elide(wm.shape[1], fit)
        for kk in shown:
            if kk is None:
                lines.append("      ⋮")
                continue
            vals = " ".join(
                "…".rjust(cw) if j is None else _fmt_num(wm[kk, j], integral).rjust(cw)
                for j in wcols
            )
            lines.append(f"   {kk:>3} │ {vals}")
        lines += ["", "4. The GEMM: weight matrix @ unrolled matrix"]
        lines += ["   " + s for s in self.gemm_lines()]
        if self.groups == 1:
            vals = ", ".join(
                _fmt_num(v, self._values_integral(self.output)) for v in self.output[0, :8, oh, ow]
            )
            more = ", …" if self.K > 8 else ""
            lines.append(
                f"   e.g. output ({oh}, {ow}) of image 0 = weight matrix @ column ({oh},{ow}) = "
                f"[{vals}{more}]"
            )
        lines += ["", "5. Cost"]
        lines += ["   " + s for s in self.cost_lines()]
        r, c = self.conv_matrix_shape
        nnz = self.conv_matrix_nnz
        lines += [
            "",
            f"6. Dual view: one sparse matrix C, K·L × C·H·W = {self.K}·{self.L} × "
            f"{self.C}·{self.H}·{self.W}"
            f" = {r} × {c}",
            "   conv = C @ x.ravel() per image; transposed conv = Cᵀ @ y.ravel()",
            f"   {nnz:,} of its {r * c:,} entries are weights ({100 * nnz / (r * c):.1f}%), the "
            "rest zeros",
            f"   im2col copies the input ({self.rows * self.L:,} values per image); "
            f"C copies the weights ({nnz:,} values)",
        ]
        if conv_matrix:
            Cm = self.conv_matrix()
            integral = self._values_integral(Cm)
            cw = max(len(_fmt_num(v, integral)) for v in np.unique(Cm))
            fit = max(3, (width - 12) // (cw + 1))
            ccols = _elide(c, fit)
            lines.append(
                "   row k·L + oh·OW + ow (kernel k, output (oh, ow)); column c·H·W + h·W + w; . = "
                "zero"
            )
            for rr in _elide(r, max_rows):
                if rr is None:
                    lines.append("        ⋮")
                    continue
                vals = " ".join(
                    (
                        "…"
                        if j is None
                        else ("." if Cm[rr, j] == 0 else _fmt_num(Cm[rr, j], integral))
                    ).rjust(cw)
                    for j in ccols
                )
                lines.append(f"   {rr:>5} │ {vals}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (
            f"<Explanation input {_shape(self.input.shape)} weight {_shape(self.weight.shape)} → "
            f"output {_shape(self.output_shape)}, columns {_shape(self.columns_shape)}>"
        )

    # --- HTML ------------------------------------------------------------------------------------

    def to_html(
        self, highlight: tuple[int, int] | None = None, *, max_rows: int = 18, max_cols: int = 24
    ) -> str:
        """HTML for notebooks: the padded input (padding shaded, the receptive field of output
        ``highlight`` outlined), the unrolled matrix (padding shaded, that output's column
        highlighted), the weight matrix, the GEMM, the cost and the dual view."""
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
            f"<p><b>Convolution</b> of input {esc(_shape(self.input.shape))} by weight "
            f"{esc(_shape(self.weight.shape))}: stride {esc(str(self.stride))}, padding "
            f"{esc(str(self.padding))}, dilation {esc(str(self.dilation))}, groups "
            f"{self.groups}</p>",
            "<p><b>Output size</b>: "
            + "<br>".join(esc(s) for s in self.output_size_steps())
            + f"<br>output {esc(_shape(self.output_shape))} = (N, K, OH, OW)</p>",
        ]

        def cell(text: str, classes: str = "", tag: str = "td") -> str:
            cls = f' class="{classes.strip()}"' if classes.strip() else ""
            return f"<{tag}{cls}>{esc(text)}</{tag}>"

        # The padded input, channel 0 of image 0, around the highlighted window.
        (pt, pb), (pl, pr) = self.padding
        Hp, Wp = self.H + pt + pb, self.W + pl + pr
        field_px = {(s.h, s.w) for s in self.receptive_field(oh, ow) if s.c == 0}
        h0, w0 = oh * self.stride[0], ow * self.stride[1]  # window's corner, padded coordinates
        span_h, span_w = self.dilation[0] * (self.kh - 1) + 1, self.dilation[1] * (self.kw - 1) + 1
        x = self.input[0, 0]
        integral = self._values_integral(x)
        out.append(
            "<p>Image 0, channel 0, padding in grey; outlined: the receptive field of output "
            f"({oh}, {ow})</p><table>"
        )
        for hp in _focus(Hp, max_rows, h0, h0 + span_h):
            row = []
            for wp in _focus(Wp, max_cols, w0, w0 + span_w):
                if hp is None or wp is None:
                    row.append(cell("…"))
                    continue
                h, w = hp - pt, wp - pl
                inside = 0 <= h < self.H and 0 <= w < self.W
                classes = ("" if inside else "pad") + (" rf hi" if (h, w) in field_px else "")
                row.append(cell(_fmt_num(x[h, w], integral) if inside else PAD_MARK, classes))
            out.append("<tr>" + "".join(row) + "</tr>")
        out.append("</table>")
        # The unrolled matrix of image 0.
        cols = self.columns[0]
        mask = self.padding_mask
        integral = self._values_integral(cols)
        cids = _focus(self.L, max_cols, hcol, hcol + 1)
        out.append(
            f"<p><b>Unrolled matrix</b> {self.rows} × {self.L} (image 0 of "
            f"{_shape(self.columns_shape)}): rows (channel, kernel row, kernel col), columns (out "
            f"row, out col); padding grey; column ({oh}, {ow}) highlighted</p><table>"
        )
        head = [cell("c,i,j", tag="th")]
        for c in cids:
            label = "…" if c is None else "{},{}".format(*self.column_label(c))
            head.append(cell(label, "hi" if c == hcol else "", tag="th"))
        out.append("<tr>" + "".join(head) + "</tr>")
        for r in _elide(self.rows, max_rows):
            if r is None:
                out.append("<tr>" + cell("⋮", tag="th") + cell("⋮") * len(cids) + "</tr>")
                continue
            row = [cell("{},{},{}".format(*self.row_label(r)), tag="th")]
            for c in cids:
                if c is None:
                    row.append(cell("…"))
                    continue
                classes = ("pad" if mask[r, c] else "") + (" hi" if c == hcol else "")
                text = PAD_MARK if mask[r, c] else _fmt_num(cols[r, c], integral)
                row.append(cell(text, classes))
            out.append("<tr>" + "".join(row) + "</tr>")
        out.append("</table>")
        # The weight matrix.
        wm = self.weight_matrix
        integral = self._values_integral(wm)
        out.append(
            f"<p><b>Weight matrix</b> K × (C/groups)·kh·kw = {wm.shape[0]} × {wm.shape[1]}, one "
            "flattened kernel per row</p><table>"
        )
        wcols = _elide(wm.shape[1], max_cols)
        for k in _elide(self.K, max_rows):
            if k is None:
                out.append("<tr>" + cell("⋮", tag="th") + cell("⋮") * len(wcols) + "</tr>")
                continue
            vals = "".join(cell("…" if j is None else _fmt_num(wm[k, j], integral)) for j in wcols)
            out.append("<tr>" + cell(str(k), tag="th") + vals + "</tr>")
        out.append("</table>")
        out.append("<p><b>GEMM</b>: " + "<br>".join(esc(s) for s in self.gemm_lines()) + "</p>")
        out.append("<p><b>Cost</b>: " + "<br>".join(esc(s) for s in self.cost_lines()) + "</p>")
        r, c = self.conv_matrix_shape
        out.append(
            f"<p><b>Dual view</b>: conv = C @ x.ravel() with C of shape {r} × {c} "
            f"({self.conv_matrix_nnz:,} weight entries, the rest zeros); transposed conv = "
            "Cᵀ @ y.ravel(). im2col copies the input, C copies the weights.</p>"
        )
        out.append("</div>")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self.to_html()

    # --- the explorer (im2col/explorer.py) -------------------------------------------------------

    def explorer_html(self, *, image: int = 0) -> str:
        """The interactive explorer page of image ``image`` (:func:`im2col.explorer.explorer_html`)."""
        from .explorer import explorer_html

        return explorer_html(self, image=image)

    def save_html(self, path: Any, *, image: int = 0) -> str:
        """Write the explorer page to ``path``; open it in any browser, offline."""
        from .explorer import save_html

        return save_html(self, path, image=image)

    def show(self, *, height: int = 900, image: int = 0) -> Any:
        """The explorer for Jupyter, isolated in an ``<iframe srcdoc>`` so that its CSS and JS and
        the notebook's cannot clash: make it a cell's last line, ``e.show()``."""
        from .explorer import Frame

        return Frame(self, height=height, image=image)


def _parse_input(obj: Any) -> tuple[np.ndarray, bool]:
    """(N, C, H, W) float array and whether it was made up from a shape."""
    if isinstance(obj, (tuple, list)) and all(_is_int(v) for v in obj):
        shape = tuple(int(v) for v in obj)
        if not 2 <= len(shape) <= 4 or min(shape) < 1:
            raise ValueError(
                f"{_FN}(): a shape for 'input_or_shape' must be (H, W), (C, H, W) or (N, C, H, W) "
                "of "
                f"positive ints, got {obj!r}"
            )
        shape = (1,) * (4 - len(shape)) + shape
        n = int(np.prod(shape))
        if n > 2**26:
            raise ValueError(
                f"{_FN}(): input shape {shape} has {n:,} values; pass at most 2**26 for a demo "
                "input"
            )
        return np.arange(1, n + 1, dtype=np.float32).reshape(shape), True
    x = _to_numpy(obj, "input_or_shape")
    if x.ndim not in (2, 3, 4):
        raise ValueError(
            f"{_FN}(): argument 'input_or_shape' must be 2-D (H, W), 3-D (C, H, W) or 4-D (N, C, "
            "H, W), "
            f"got shape {x.shape}"
        )
    x = x.reshape((1,) * (4 - x.ndim) + x.shape)
    if x.dtype != np.float64:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x), False


def _parse_weight(obj: Any, C: int, groups: int, dtype: np.dtype) -> tuple[np.ndarray, bool]:
    if _is_int(obj) or (
        isinstance(obj, (tuple, list)) and len(obj) == 2 and all(_is_int(v) for v in obj)
    ):
        kh, kw = as_pair(obj, "weight_or_kernel_size", _FN, minimum=1)
        Cg = C // groups
        K = groups
        w = np.arange(1, K * Cg * kh * kw + 1, dtype=dtype).reshape(K, Cg, kh, kw)
        return w, True
    w = _to_numpy(obj, "weight_or_kernel_size")
    if w.ndim == 2:
        w = w[None, None]
    elif w.ndim == 3:  # a stack of one-channel kernels, as the seed's (4, 3, 3)
        w = w[:, None]
    if w.ndim != 4:
        raise ValueError(
            f"{_FN}(): argument 'weight_or_kernel_size' must be a kernel size, or a weight of "
            "shape "
            f"(kh, kw), (K, kh, kw) or (K, C/groups, kh, kw), got shape {w.shape}"
        )
    if w.shape[1] * groups != C:
        raise ValueError(
            f"{_FN}(): weight of shape {w.shape} with groups={groups} expects "
            f"{w.shape[1] * groups} input "
            f"channels, but the input has {C}"
        )
    if w.shape[0] % groups:
        raise ValueError(
            f"{_FN}(): weight has {w.shape[0]} kernels, not divisible by groups={groups}"
        )
    return np.ascontiguousarray(w.astype(dtype)), False


def explain(
    input_or_shape: Any,
    weight_or_kernel_size: Any,
    stride: int | tuple[int, int] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Explanation:
    """Take one convolution apart: output size, unrolled matrix, GEMM, cost and the dual view.

    Parameters
    ----------
    input_or_shape : ndarray, Tensor, or tuple of ints
        Images (N, C, H, W), (C, H, W) or (H, W); or just a shape, in which case the input is
        1, 2, 3, … so that each cell of the unrolled matrix shows which pixel it copies (and no
        pixel reads 0, like padding).
    weight_or_kernel_size : ndarray, Tensor, int or (int, int)
        A weight (K, C/groups, kh, kw), a stack of one-channel kernels (K, kh, kw) or one kernel
        (kh, kw); or just a kernel size, in which case the weight is one kernel per group holding
        1, 2, 3, ….
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), ((int, int), (int, int)), 'valid' or 'same', default 0
        As in :func:`im2col.conv2d`.
    groups : int, default 1

    Returns
    -------
    Explanation
        ``print()`` it, show it in Jupyter, or ask it questions (:meth:`Explanation.source`,
        :meth:`Explanation.receptive_field`, :meth:`Explanation.conv_matrix`, ...).

    Raises
    ------
    ValueError
        If the shapes do not fit together or the kernel does not fit in the padded input (the
        message shows the formula with the numbers).
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    The seed's "full padding" example: a 5×5 input, a 3×3 kernel and padding 2 give 7×7.

    >>> import im2col
    >>> e = im2col.explain((1, 1, 5, 5), 3, padding=2)
    >>> e.output_size_steps()
    ['height and width: (5 + 2·2 − 3) // 1 + 1 = 7']
    >>> e.columns.shape
    (1, 9, 49)
    >>> e.gemm_lines()[0]
    'per image: (1 × 9) @ (9 × 49) → (1 × 49) → (1, 7, 7)'
    >>> e.source(0, 0).padding, e.source(8, 0)
    (True, Source(c=0, h=0, w=0, padding=False))

    The seed's batch: 64 digits, the four edge kernels.

    >>> from im2col import data, kernels
    >>> e = im2col.explain(data.digit_batch(), kernels.edge_kernels())
    >>> e.output_size_steps()
    ['height and width: (28 + 2·0 − 3) // 1 + 1 = 26']
    >>> e.columns.shape, e.output.shape
    ((64, 9, 676), (64, 4, 26, 26))
    >>> e.gemm_lines()[0]
    'per image: (4 × 9) @ (9 × 676) → (4 × 676) → (4, 26, 26)'
    """
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{_FN}(): argument 'groups' must be a positive int, got {groups!r}")
    x, demo_x = _parse_input(input_or_shape)
    if x.shape[1] % groups:
        raise ValueError(
            f"{_FN}(): the input's {x.shape[1]} channels are not divisible by groups={groups}"
        )
    w, demo_w = _parse_weight(weight_or_kernel_size, x.shape[1], groups, x.dtype)
    kh, kw = w.shape[2:]
    s = as_pair(stride, "stride", _FN, minimum=1)
    d = as_pair(dilation, "dilation", _FN, minimum=1)
    p = parse_padding(padding, _FN, (kh, kw), d, s)
    return Explanation(x, w, s, p, d, int(groups), demo_input=demo_x, demo_weight=demo_w)
