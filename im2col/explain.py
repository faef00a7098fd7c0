"""``explain()``: one convolution taken apart, with every number shown.

:func:`explain` computes, for a concrete input and weight, everything the README's story talks about
and keeps it in an :class:`Explanation`:

1. the output size, worked step by step: ``(5 + 2·2 − 3) // 1 + 1 = 7``, with what the stride
   leaves over and what ``'same'`` / ``'full'`` padding became;
2. the unrolled (im2col) matrix, made by the fast :func:`im2col.im2col`, with rows labelled
   (channel, kernel taps), columns labelled by output position, and every cell traced to the input
   pixel it copies or to padding (:meth:`Explanation.source`, :meth:`Explanation.receptive_field`);
3. the weight matrix and the GEMM with its shapes, one output worked out as a dot product, and what
   flipping the kernel (a true convolution, not deep learning's cross-correlation) would give;
4. the output map, the cost (bytes of the column matrix against the input, FLOPs) and the
   sparse-matrix view: one sparse matrix ``C`` that copies the *weights* where im2col copies the *input*.

1-D ``(N, C, L)`` and 3-D ``(N, C, D, H, W)`` inputs work the same way, and ``transposed=True``
explains the transposed convolution as ``Wᵀ·x`` then col2im. :meth:`Explanation.backward` explains
the gradients. ``str(explanation)`` fits a 100-column terminal; in Jupyter it shows as HTML.
"""

from __future__ import annotations

import html
import math
import textwrap
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from ._validation import as_tuple, is_tensor

__all__ = ["explain", "Explanation", "Backward", "Source", "Source1d", "Source3d"]

_FN = "explain"
PAD_MARK = "·"
#: The matrix C of the sparse-matrix view is refused beyond this many bytes when stored dense (it is
#: mostly zeros).
CONV_MATRIX_MAX_BYTES = 256 * 2**20
_AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_TAPS = {1: ("i",), 2: ("i", "j"), 3: ("a", "i", "j")}
_KSIZE = {1: ("k",), 2: ("kh", "kw"), 3: ("kd", "kh", "kw")}
_POS = {1: ("ol",), 2: ("oh", "ow"), 3: ("od", "oh", "ow")}
_OSIZE = {1: ("OL",), 2: ("OH", "OW"), 3: ("OD", "OH", "OW")}


class Source(NamedTuple):
    """Where one cell of a 2-D unrolled matrix comes from: input pixel (c, h, w), or padding.

    For padding, ``h`` and ``w`` are the coordinates the tap would read if the input extended
    that far (negative, or ≥ H / W), so they still say *where* the padding is. 1-D and 3-D
    explanations give :class:`Source1d` and :class:`Source3d`; all three have ``.index``, the
    spatial coordinates as a tuple.
    """

    c: int
    h: int
    w: int
    padding: bool

    @property
    def index(self) -> tuple[int, ...]:
        return (self.h, self.w)

    def __str__(self) -> str:
        where = f"({self.c}, {self.h}, {self.w})"
        return f"padding at {where}" if self.padding else f"input pixel {where}"


class Source1d(NamedTuple):
    """Where one cell of a 1-D unrolled matrix comes from: sample (c, l), or padding."""

    c: int
    l: int  # noqa: E741 - the signal's own axis name
    padding: bool

    @property
    def index(self) -> tuple[int, ...]:
        return (self.l,)

    def __str__(self) -> str:
        where = f"({self.c}, {self.l})"
        return f"padding at {where}" if self.padding else f"input sample {where}"


class Source3d(NamedTuple):
    """Where one cell of a 3-D unrolled matrix comes from: voxel (c, d, h, w), or padding."""

    c: int
    d: int
    h: int
    w: int
    padding: bool

    @property
    def index(self) -> tuple[int, ...]:
        return (self.d, self.h, self.w)

    def __str__(self) -> str:
        where = f"({self.c}, {self.d}, {self.h}, {self.w})"
        return f"padding at {where}" if self.padding else f"input voxel {where}"


_SOURCE = {1: Source1d, 2: Source, 3: Source3d}


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
    s = s.rstrip("0").rstrip(".") if "." in s else s
    return "0" if s == "-0" else s


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
        raise TypeError(f"{_FN}(): argument '{name}' must be an array, a tensor or a shape, got {obj!r}")
    if obj.dtype.kind not in "biuf":
        raise TypeError(f"{_FN}(): argument '{name}' must hold real numbers, got dtype {obj.dtype}")
    return obj


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _layout(first: str | None, idx: tuple[str, ...], sizes: tuple[str, ...]) -> str:
    """``c·kh·kw + i·kw + j``: a row-major flat index spelled out with its names."""
    terms = [f"{first}·" + "·".join(sizes)] if first else []
    for a, name in enumerate(idx):
        rest = sizes[a + 1 :]
        terms.append(name + ("·" + "·".join(rest) if rest else ""))
    return " + ".join(terms)


def _values_integral(a: np.ndarray) -> bool:
    return a.dtype.kind in "biu" or bool(np.all(np.mod(a, 1) == 0) and np.abs(a).max(initial=0) < 1e6)


def _wrap(lines: list[str], width: int) -> str:
    """Join text lines, wrapping prose lines longer than ``width`` (tables are already fitted)."""
    out = []
    for line in lines:
        if len(line) <= width or "│" in line:
            out.append(line)
            continue
        lead = " " * (len(line) - len(line.lstrip()))
        out += textwrap.wrap(line, width, initial_indent="", subsequent_indent=lead + "  ")
    return "\n".join(out)


def _terms(ws: np.ndarray, xs: np.ndarray, integral: bool, keep: int = 4) -> str:
    """``w₀·x₀ + w₁·x₁ + … (n terms)``: a dot product written out, elided after ``keep`` terms."""
    parts = [f"{_fmt_num(a, integral)}·{_fmt_num(b, integral)}" for a, b in zip(ws[:keep], xs)]
    more = f" + … ({len(ws)} terms)" if len(ws) > keep else ""
    return (" + ".join(parts) or "0") + more


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
        return f"<Backward grad_input {_shape(self.grad_input.shape)}, grad_weight {_shape(self.grad_weight.shape)}>"


@dataclass(eq=False)
class Explanation:
    """One convolution, taken apart. Make it with :func:`explain`.

    Attributes
    ----------
    input : ndarray, shape (N, C, L), (N, C, H, W) or (N, C, D, H, W)
        The input (float32 or float64).
    weight : ndarray
        ``(K, C/groups, *kernel_size)``; for ``transposed=True`` ``(C, K/groups, *kernel_size)``, as torch.
    stride, dilation : tuple of int, one per spatial axis
    padding : tuple of (int, int), one (before, after) pair per spatial axis
        In 2-D ``((top, bottom), (left, right))``.
    groups : int
    transposed : bool
        Whether this explains the transposed convolution (``Wᵀ·x`` then col2im).
    output_padding : tuple of int
        Of the transposed convolution (zeros otherwise).
    padding_note : str
        How a padding string ('same', 'full', 'valid') became numbers; empty for numbers.
    demo_input, demo_weight : bool
        Whether the values were made up by :func:`explain` from a shape (``arange``), so that
        each cell is easy to trace by eye.
    highlight : tuple of int
        The column position (an output position; an input position when transposed) whose
        receptive field the text and HTML trace. By default the one with the largest
        absolute output of image 0 (the largest ``|input|`` when transposed), so that the traced
        numbers are not the zeros of an empty corner. Set it to follow another:
        ``e.highlight = (4, 11)``.
    ndim : int
        Spatial axes: 1, 2 or 3.
    N, C, K : int
        Images, input channels, output channels.
    size, kernel_size, out_size, grid : tuple of int
        Spatial sizes of the input, the kernel, the output and the unrolled matrix's column grid
        (the output's, or the input's when transposed).
    H, W, kh, kw, OH, OW, L : int
        The 2-D names: the last two axes of the unrolled image, the kernel and the grid (1 where a
        1-D explanation has no such axis); ``L`` is the number of columns.
    """

    input: np.ndarray
    weight: np.ndarray
    stride: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int
    demo_input: bool = False
    demo_weight: bool = False
    highlight: tuple[int, ...] = None  # type: ignore[assignment]
    transposed: bool = False
    output_padding: tuple[int, ...] = ()
    padding_note: str = ""
    ndim: int = field(init=False)
    N: int = field(init=False)
    C: int = field(init=False)
    K: int = field(init=False)
    size: tuple[int, ...] = field(init=False)
    kernel_size: tuple[int, ...] = field(init=False)
    out_size: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        from ._nd import out_sizes, transposed_size

        n = self.ndim = self.input.ndim - 2
        self.N, self.C = self.input.shape[:2]
        self.size = tuple(self.input.shape[2:])
        self.kernel_size = tuple(self.weight.shape[2:])
        if not self.output_padding:
            self.output_padding = (0,) * n
        if self.transposed:
            self.K = self.weight.shape[1] * self.groups
            pads = tuple(p[0] for p in self.padding)
            self.out_size = transposed_size(
                _FN, self.size, self.kernel_size, self.stride, pads, self.output_padding,
                self.dilation,
            )[-1]  # fmt: skip
        else:
            self.K = self.weight.shape[0]
            self.out_size = out_sizes(_FN, self.size, self.kernel_size, self.stride, self.padding, self.dilation)
        if self.highlight is None:
            self.highlight = self._loudest()
        elif len(self.highlight) != n:
            raise ValueError(f"{_FN}(): 'highlight' must be a position with {n} indices, got {self.highlight!r}")

    def _loudest(self) -> tuple[int, ...]:
        # The position whose numbers say most: the largest |output| of image 0 over all kernels.
        if self.transposed:
            mag = np.abs(self.input[0]).sum(axis=0)
        else:
            mag = np.abs(self.output[0]).max(axis=0)
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(mag)), mag.shape))

    # --- sizes -----------------------------------------------------------------------------------

    @property
    def image_size(self) -> tuple[int, ...]:
        """Spatial size of the image the unrolled matrix reads from (or, transposed, adds into)."""
        return self.out_size if self.transposed else self.size

    @property
    def image_channels(self) -> int:
        return self.K if self.transposed else self.C

    @property
    def grid(self) -> tuple[int, ...]:
        """The columns' grid: one column per output position (per input position, transposed)."""
        return self.size if self.transposed else self.out_size

    def _last2(self, t: tuple[int, ...]) -> tuple[int, int]:
        return ((1,) + tuple(t))[-2:]  # type: ignore[return-value]

    H = property(lambda self: self._last2(self.image_size)[0])
    W = property(lambda self: self._last2(self.image_size)[1])
    kh = property(lambda self: self._last2(self.kernel_size)[0])
    kw = property(lambda self: self._last2(self.kernel_size)[1])
    OH = property(lambda self: self._last2(self.grid)[0])
    OW = property(lambda self: self._last2(self.grid)[1])

    @property
    def taps(self) -> int:
        """Kernel taps per channel, the product of the kernel size."""
        return math.prod(self.kernel_size)

    @property
    def L(self) -> int:
        """Columns of the unrolled matrix: the product of the grid (``OH·OW`` in 2-D)."""
        return math.prod(self.grid)

    @property
    def rows(self) -> int:
        """Rows of the unrolled matrix, ``C·kh·kw`` in 2-D (``K·kh·kw`` when transposed)."""
        return self.image_channels * self.taps

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(N, K, *out_size)``."""
        return (self.N, self.K, *self.out_size)

    @property
    def columns_shape(self) -> tuple[int, int, int]:
        """``(N, rows, L)``: torch's ``unfold`` layout."""
        return (self.N, self.rows, self.L)

    def _axis_groups(self, values: list[tuple]) -> list[tuple[str, tuple]]:
        """Axis names with their values, equal axes merged: 'height and width'."""
        names = list(_AXES[self.ndim])
        if len(set(values)) == 1 and len(values) > 1:
            return [(", ".join(names[:-1]) + " and " + names[-1], values[0])]
        return list(zip(names, values))

    def output_size_steps(self) -> list[str]:
        """The output size worked out per axis, with the numbers.

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
        for name, (n, k, s, (before, after), d, out, op) in self._axis_groups(vals):
            if self.transposed:
                lines.append(f"{name}: ({n} − 1)·{s} − 2·{before} + {d}·({k} − 1) + {op} + 1 = {out}")
                continue
            k_eff = d * (k - 1) + 1
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

    # --- the unrolled matrix ---------------------------------------------------------------------

    @cached_property
    def columns(self) -> np.ndarray:
        """The batch's unrolled matrix (N, rows, L).

        Made by the fast :func:`im2col.im2col`; when transposed, the product ``Wᵀ·x`` (per group)
        whose columns col2im adds back into the output.
        """
        if not self.transposed:
            from ._functional import im2col

            ks = self.kernel_size if self.ndim != 2 else tuple(self.kernel_size)
            return im2col(self.input, ks, self.dilation, self.padding, self.stride)
        g = self.groups
        Cg = self.C // g
        x = self.input.reshape(self.N, self.C, self.L)
        parts = [self.weight[q * Cg : (q + 1) * Cg].reshape(Cg, -1).T @ x[:, q * Cg : (q + 1) * Cg] for q in range(g)]
        return np.ascontiguousarray(np.concatenate(parts, axis=1))

    def row_label(self, row: int) -> tuple[int, ...]:
        """``(channel, *kernel taps)`` of a row: row = c·kh·kw + i·kw + j in 2-D."""
        self._check_index(row, self.rows, "row")
        c, rest = divmod(row, self.taps)
        return (c, *(int(v) for v in np.unravel_index(rest, self.kernel_size)))

    def column_label(self, col: int) -> tuple[int, ...]:
        """The grid position of a column: col = oh·OW + ow in 2-D."""
        self._check_index(col, self.L, "col")
        return tuple(int(v) for v in np.unravel_index(col, self.grid))

    def row_layout(self) -> str:
        """The row index spelled out, e.g. ``'c·kh·kw + i·kw + j'``."""
        return _layout("c", _TAPS[self.ndim], _KSIZE[self.ndim])

    def column_layout(self) -> str:
        """The column index spelled out, e.g. ``'oh·OW + ow'``."""
        if self.transposed:
            return _layout(None, tuple(s.lower() for s in _KSIZE[self.ndim]), ())  # unused
        return _layout(None, _POS[self.ndim], _OSIZE[self.ndim])

    def source(self, row: int, col: int) -> Source | Source1d | Source3d:
        """Where cell (row, col) of the unrolled matrix is copied from.

        The tap (i, j) of channel c at output (oh, ow) reads input pixel
        ``h = oh·sh − top + i·dh``, ``w = ow·sw − left + j·dw`` (and the same per axis in 1-D and
        3-D); outside the input it is padding (0). A 2-D explanation gives a :class:`Source`
        (c, h, w, padding), 1-D a :class:`Source1d` (c, l, padding), 3-D a :class:`Source3d`
        (c, d, h, w, padding). When transposed, it is the output pixel the cell is added into.

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
        >>> print(im2col.explain((1, 2, 10), (3,), padding=1).source(3, 0))
        padding at (1, -1)
        """
        c, *taps = self.row_label(row)
        pos = self.column_label(col)
        at = tuple(o * s - p[0] + t * d for o, s, p, t, d in zip(pos, self.stride, self.padding, taps, self.dilation))
        inside = all(0 <= v < n for v, n in zip(at, self.image_size))
        return _SOURCE[self.ndim](c, *at, not inside)

    def receptive_field(self, *position: int) -> list[Source | Source1d | Source3d]:
        """The input pixels (or padding) under one output position, in row order.

        Pass one index per spatial axis: ``receptive_field(oh, ow)`` in 2-D (as before),
        ``receptive_field(ol)`` in 1-D, ``receptive_field(od, oh, ow)`` in 3-D; a tuple works too.

        Examples
        --------
        >>> import im2col
        >>> e = im2col.explain((1, 1, 5, 5), 3, padding=2)
        >>> [(s.h, s.w) for s in e.receptive_field(0, 0) if not s.padding]
        [(0, 0)]
        >>> sum(not s.padding for s in e.receptive_field(3, 3))
        9
        >>> [s.l for s in im2col.explain((1, 1, 10), (3,), stride=2).receptive_field(3)]
        [6, 7, 8]
        """
        if len(position) == 1 and isinstance(position[0], (tuple, list)):
            position = tuple(position[0])
        if len(position) != self.ndim:
            raise TypeError(
                f"{_FN}(): receptive_field() takes {self.ndim} indices "
                f"({', '.join(_POS[self.ndim])}), got {len(position)}"
            )
        for name, v, n in zip(_POS[self.ndim], position, self.grid):
            self._check_index(v, n, name)
        col = int(np.ravel_multi_index(position, self.grid))
        return [self.source(r, col) for r in range(self.rows)]

    @cached_property
    def _coords(self) -> np.ndarray:
        """(ndim, rows, L): the image coordinate each cell reads, per axis (padding included)."""
        taps = np.unravel_index(np.arange(self.rows) % self.taps, self.kernel_size)
        pos = np.unravel_index(np.arange(self.L), self.grid)
        return np.stack([
            pos[a][None, :] * self.stride[a] - self.padding[a][0] + taps[a][:, None] * self.dilation[a]
            for a in range(self.ndim)
        ])  # fmt: skip

    @cached_property
    def padding_mask(self) -> np.ndarray:
        """Boolean (rows, L): True where the unrolled matrix holds padding, not a pixel."""
        inside = np.ones((self.rows, self.L), dtype=bool)
        for a, n in enumerate(self.image_size):
            inside &= (self._coords[a] >= 0) & (self._coords[a] < n)
        return ~inside

    @cached_property
    def _pixel(self) -> np.ndarray:
        """(rows, L) flat index c·prod(image) + ravelled coordinates; -1 on padding."""
        c = (np.arange(self.rows) // self.taps)[:, None]
        flat = np.zeros((self.rows, self.L), dtype=np.int64)
        for a, n in enumerate(self.image_size):
            flat = flat * n + self._coords[a]
        flat = flat + c * math.prod(self.image_size)
        flat[self.padding_mask] = -1
        return flat

    def _fold(self, cols: np.ndarray) -> np.ndarray:
        """col2im: add every non-padding cell of (N, rows, L) into its pixel of the image."""
        keep = ~self.padding_mask
        pix = self._pixel[keep]
        n_px = self.image_channels * math.prod(self.image_size)
        out = np.empty((self.N, n_px), dtype=cols.dtype)
        for i in range(self.N):
            out[i] = np.bincount(pix, weights=cols[i][keep], minlength=n_px)
        return out.reshape((self.N, self.image_channels, *self.image_size))

    def overlap_counts(self) -> np.ndarray:
        """How many cells of the unrolled matrix copy each pixel (col2im's divisor), per image."""
        pix = self._pixel[~self.padding_mask]
        n_px = self.image_channels * math.prod(self.image_size)
        counts = np.bincount(pix, minlength=n_px)
        return counts.reshape((self.image_channels, *self.image_size))

    def _check_index(self, value: Any, n: int, name: str) -> None:
        if not _is_int(value):
            raise TypeError(f"{_FN}(): '{name}' must be an int, got {value!r}")
        if not 0 <= value < n:
            raise IndexError(f"{_FN}(): '{name}' must be in 0..{n - 1}, got {value}")

    # --- the GEMM --------------------------------------------------------------------------------

    @property
    def weight_matrix(self) -> np.ndarray:
        """The kernels flattened to rows, (K, C/groups·kh·kw), in the unrolled rows' order.

        When transposed, (C, K/groups·kh·kw): its transpose, per group, makes the columns.
        """
        return self.weight.reshape(self.weight.shape[0], -1)

    @cached_property
    def output(self) -> np.ndarray:
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

    def _grid_str(self) -> str:
        return ", ".join(str(v) for v in self.grid)

    def gemm_lines(self) -> list[str]:
        """The GEMM with its shapes, per image and with the batch folded in."""
        K, R, L, N, g = self.K, self.rows, self.L, self.N, self.groups
        each = f" (once per group, {g} groups)" if g > 1 else ""
        if self.transposed:
            Cg, Rg = self.C // g, R // g
            return [
                f"per image{each}: Wᵀ·x = ({Rg} × {Cg}) @ ({Cg} × {L}) → ({Rg} × {L}) columns,",
                f"  then col2im adds them into the output {_shape((K, *self.out_size))}",
            ]
        Kg, Rg = K // g, R // g
        lines = [
            f"per image{each}: ({Kg} × {Rg}) @ ({Rg} × {L}) → ({Kg} × {L}) → ({Kg}, {self._grid_str()})",
        ]
        if N > 1:
            lines.append(f"batch of {N}: the {N} column matrices side by side, one GEMM{each}:")
            lines.append(
                f"  ({Kg} × {Rg}) @ ({Rg} × {N}·{L} = {N * L}) → ({Kg} × {N * L}) → {_shape(self.output_shape)}"
            )
        else:
            lines.append(f"a batch of N images: ({Kg} × {Rg}) @ ({Rg} × N·{L}) → (N, {K}, {self._grid_str()})")
        return lines

    def group_lines(self) -> list[str]:
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

    def dot_lines(self) -> list[str]:
        """One output worked out as a dot product with its numbers, and the flipped kernel's.

        Deep learning's "convolution" is a cross-correlation: the kernel slides unflipped. A true
        (signal-processing) convolution flips it along every axis; the second line gives the
        value that would have, so the difference is visible.
        """
        if self.transposed:
            return []
        pos = self.highlight
        col = int(np.ravel_multi_index(pos, self.grid))
        k = int(np.argmax(np.abs(self.output[0][(slice(None), *pos)])))
        Rg = self.rows // self.groups
        q = k // (self.K // self.groups)
        x = self.columns[0, q * Rg : (q + 1) * Rg, col]
        real = ~self.padding_mask[q * Rg : (q + 1) * Rg, col]
        w = self.weight_matrix[k]
        flipped = np.flip(self.weight[k], axis=tuple(range(1, self.ndim + 1))).reshape(-1)
        integral = _values_integral(w) and _values_integral(x)
        where = ", ".join(str(v) for v in pos)
        v = self.output[(0, k, *pos)]
        vf = float(flipped @ x)
        flip = ", ".join(f"{n} − 1 − {t}" for n, t in zip(_KSIZE[self.ndim], _TAPS[self.ndim]))
        return [
            f"output[0, {k}, {where}] = Σ w·x over column ({where}), padding left out:",
            f"  = {_terms(w[real], x[real], integral)} = {_fmt_num(v, integral)}",
            "this is a cross-correlation, as in every deep-learning library: the kernel is not flipped.",
            f"a true convolution flips it (w[c, {flip}]) and would give {_fmt_num(vf, integral)} here",
        ]

    # --- the backward pass -----------------------------------------------------------------------

    def backward(self, grad_output: Any) -> Backward:
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
        gy = _to_numpy(grad_output, "grad_output").astype(self.input.dtype)
        if gy.shape != self.output_shape:
            raise ValueError(
                f"{_FN}(): argument 'grad_output' must have the output's shape "
                f"{_shape(self.output_shape)}, got {_shape(gy.shape)}"
            )
        if self.transposed:
            return self._backward_transposed(gy)
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
        integral = _values_integral(dy) and _values_integral(cols)
        # One entry of each, with its numbers: weight row 0, tap 0; the traced input pixel.
        r0 = self.taps // 2  # the kernel's centre tap of channel 0: the fewest padding cells
        real = ~self.padding_mask[r0]
        terms = _terms(dy[0, 0][real], cols[0, r0][real], integral)
        tap = ", ".join(str(v) for v in self.row_label(r0))
        pix = next((s for s in self.receptive_field(*self.highlight) if not s.padding), None) or self.source(0, 0)
        flat = int(np.ravel_multi_index((pix.c, *pix.index), (self.C, *self.size)))
        rr, ll = np.nonzero(self._pixel == flat)
        where = ", ".join(str(v) for v in pix.index)
        contrib = gcols[0, rr, ll]
        lines = [
            f"Backward pass of {_shape(self.input.shape)} ⊛ {_shape(self.weight.shape)}, "
            f"dY = grad_output {_shape(gy.shape)}",
            f"grad weight = dY·colsᵀ: ({Kg} × {self.L}) @ ({self.L} × {Rg}) → ({Kg} × {Rg}) → "
            f"{_shape(self.weight.shape)}, summed over {N} image(s)",
            f"  e.g. grad_weight[0, {tap}] = Σ over the columns of dY[n, 0, ·]·cols[n, {r0}, ·], padding left out:",
            f"  = {terms}{' + (the other images)' if N > 1 else ''} = {_fmt_num(grad_w.reshape(-1)[r0], integral)}",
            f"grad input = col2im(Wᵀ·dY): ({Rg} × {Kg}) @ ({Kg} × {self.L}) → ({Rg} × {self.L}) "
            f"per image{' and group' if g > 1 else ''},",
            f"  then col2im adds each cell back into the pixel it was copied from → {_shape(self.input.shape)}",
            f"  e.g. grad_input[0, {pix.c}, {where}]: the pixel is copied into {len(rr)} cells; their Wᵀ·dY values",
            f"  {' + '.join(_fmt_num(v, integral) for v in contrib[:6])}"
            f"{' + …' if len(contrib) > 6 else ''} = "
            f"{_fmt_num(grad_x[(0, pix.c, *pix.index)], integral)}",
        ]
        return Backward(gy, grad_x, grad_w, lines)

    def _backward_transposed(self, gy: np.ndarray) -> Backward:
        # conv_transpose is the adjoint of conv: its input gradient is the convolution of dY.
        from ._functional import im2col

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
            f"Backward pass of the transposed convolution, dY = grad_output {_shape(gy.shape)}",
            f"grad input = W·im2col(dY): ({Cg} × {Rg}) @ ({Rg} × {self.L}) → "
            f"{_shape(self.input.shape)}: the ordinary convolution of dY",
            f"grad weight = x·im2col(dY)ᵀ: ({Cg} × {self.L}) @ ({self.L} × {Rg}) → {_shape(self.weight.shape)}",
        ]
        return Backward(gy, gx.reshape(self.input.shape), gw.reshape(self.weight.shape), lines)

    # --- the cost --------------------------------------------------------------------------------

    @property
    def flops(self) -> int:
        """Floating-point operations, ``2·N·K·(C/groups)·kh·kw·L`` (a multiply and an add each)."""
        return (
            2
            * self.N
            * self.K
            * (self.C // self.groups)
            * self.taps
            * math.prod(self.out_size if not self.transposed else self.size)
        )

    def route(self) -> tuple[str | None, str]:
        """The route the library's fast path takes for this call, and why.

        Returns ``(route, why)``: ``route`` is ``"depthwise"`` or ``"gemm"`` (the engine's own
        kernels, ``csrc/engine/``) or ``None`` for the BLAS route (im2col into cache-sized tiles of
        columns, one BLAS matrix product per tile); ``why`` is the row of the routing rule
        (``im2col/_engine.py``, ``route``) that decided, in words. The rule depends on shapes,
        dtype and the ``IM2COL_ENGINE`` switch only, so every process takes the same route.

        Examples
        --------
        >>> import im2col
        >>> im2col.explain((1, 3, 8, 8), 3).route()[0] is None        # an ordinary layer: BLAS
        True
        >>> im2col.explain((1, 1, 8, 8, 8), (3, 3, 3)).route()[1]
        "conv3d: the engine's routes are 2-D (and 1-D) so far; this call takes the BLAS route"
        """
        from . import _engine
        from ._validation import geometry

        if self.ndim == 3:
            return None, "conv3d: the engine's routes are 2-D (and 1-D) so far; this call takes the BLAS route"
        # a 1-D convolution runs as a 2-D one of height 1 (im2col.conv1d)
        lift = (lambda a: a[:, :, None, :]) if self.ndim == 1 else (lambda a: a)
        x, w = np.ascontiguousarray(lift(self.input)), np.ascontiguousarray(lift(self.weight))
        pads = ((0, 0),) * (2 - self.ndim) + tuple(self.padding)
        one = (1,) * (2 - self.ndim)
        st, dil = one + tuple(self.stride), one + tuple(self.dilation)
        if self.transposed:
            # conv_transpose2d: the grad input of the convolution that maps the output back
            out = one + tuple(self.out_size)
            g = geometry("explain", (self.N, self.K, *out), w.shape[2:], st, pads, dil, grid=x.shape[2:])
            return _engine.route_why(x, w, g, self.groups, False, op="grad_input")
        g = geometry("explain", x.shape, w.shape[2:], st, pads, dil)
        return _engine.route_why(x, w, g, self.groups, False)

    def route_lines(self) -> list[str]:
        """:meth:`route` as text: the function called, the route it takes, and why."""
        fn = {1: "conv1d", 2: "conv2d", 3: "conv3d"}[self.ndim]
        fn = f"im2col.{'conv_transpose' + fn[4:] if self.transposed else fn}"
        route, why = self.route()
        blas = (
            "the BLAS route: Wᵀ·x, one BLAS matrix product per cache-sized tile, then col2im"
            if self.transposed
            else "the BLAS route: im2col into cache-sized tiles, one BLAS matrix product per tile"
        )
        what = {
            None: blas,
            "depthwise": "the engine's depthwise route: each channel's weight row times its own columns, "
            "gathered in registers, no GEMM",
            "gemm": "the engine's GEMM route: the gather packs columns for its own micro-kernel, no BLAS",
        }[route]
        return [f"{fn} on these arrays takes {what}", f"why: {why}"]

    def cost_lines(self) -> list[str]:
        item = self.input.dtype.itemsize
        col_vals = self.N * self.rows * self.L
        in_vals = self.N * self.image_channels * math.prod(self.image_size)
        ratio = col_vals / in_vals
        kn = _KSIZE[self.ndim]
        approx = self.taps / math.prod(self.stride)
        ks = "·".join(kn)
        ss = "·".join(f"s{n[1:]}" if len(n) > 1 else "s" for n in kn)
        what = "output" if self.transposed else "input"
        return [
            f"columns: {_shape(self.columns_shape)} = {col_vals:,} values, "
            f"{_fmt_bytes(col_vals * item)} ({self.input.dtype})",
            f"{what}:{' ' * (7 - len(what))} {_shape((self.N, self.image_channels, *self.image_size))}"
            f" = {in_vals:,} values, {_fmt_bytes(in_vals * item)}",
            f"the columns hold {ratio:.2f}× the {what}: about {ks} / ({ss}) = "
            f"{'·'.join(map(str, self.kernel_size))} / {'·'.join(map(str, self.stride))} = "
            f"{approx:.2f},",
            "  more with padding, less where windows skip the border",
            f"FLOPs: 2·N·K·(C/groups)·{ks}·L = 2·{self.N}·{self.K}·{self.C // self.groups}·"
            f"{'·'.join(map(str, self.kernel_size))}·"
            f"{self.flops // (2 * self.N * self.K * (self.C // self.groups) * self.taps)}"
            f" = {self.flops:,}",
        ]

    # --- the sparse-matrix view: one sparse matrix C ---------------------------------------------

    @property
    def conv_matrix_shape(self) -> tuple[int, int]:
        """``(K·L, C·H·W)`` (the product of the input's size in 1-D and 3-D)."""
        return (self.K * self.L, self.C * math.prod(self.size))

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
        if self.transposed:
            raise ValueError(
                f"{_FN}(): conv_matrix() is the forward convolution's matrix; explain it without "
                "transposed=True (the transposed convolution is its transpose Cᵀ)"
            )
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

    # --- text ------------------------------------------------------------------------------------

    def _values_integral(self, a: np.ndarray) -> bool:
        return _values_integral(a)

    def _label(self, t: tuple[int, ...]) -> str:
        return ",".join(str(v) for v in t)

    def matrix_table(self, *, image: int = 0, width: int = 100, max_rows: int = 18) -> list[str]:
        """One image's unrolled matrix as aligned text, elided to ``width``; padding ``·``."""
        cols = self.columns[image]
        mask = self.padding_mask
        integral = self._values_integral(cols)
        row_ids = _elide(self.rows, max_rows)
        row_lab = {r: self._label(self.row_label(r)) for r in row_ids if r is not None}
        head_lab = ",".join(("c",) + _TAPS[self.ndim])
        lab_w = max(len(head_lab), *(len(v) for v in row_lab.values()))
        cells = [_fmt_num(v, integral) for v in cols[[r for r in row_ids if r is not None]].ravel()]
        col_lab_w = len(self._label(tuple(n - 1 for n in self.grid)))
        cell_w = max(col_lab_w, *(len(s) for s in cells), 1)
        fit = max(3, (width - lab_w - 3) // (cell_w + 1))
        col_ids = _elide(self.L, fit)
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
            return _fmt_num(cols[r, col], integral).rjust(cell_w)

        head = " ".join(("…" if c is None else self._label(self.column_label(c))).rjust(cell_w) for c in col_ids)
        lines = [head_lab.rjust(lab_w) + " │ " + head, "─" * lab_w + "─┼─" + "─" * len(head)]
        for r in row_ids:
            if r is None:
                lines.append("⋮".rjust(lab_w) + " │ " + " ".join("⋮".rjust(cell_w) for _ in col_ids))
                continue
            lines.append(row_lab[r].rjust(lab_w) + " │ " + " ".join(cell(r, c) for c in col_ids))
        return lines

    def padded_input_lines(self, *, image: int = 0, channel: int = 0, max_side: int = 16) -> list[str]:
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
        integral = self._values_integral(x)
        cells = [[PAD_MARK] * Wp for _ in range(Hp)]
        for h in range(H):
            for w in range(W):
                cells[h + pt][w + pl] = _fmt_num(x[h, w], integral)
        cw = max(len(s) for row in cells for s in row)
        return [" ".join(s.rjust(cw) for s in row) for row in cells]

    def output_map_lines(self, *, image: int = 0, kernel: int | None = None) -> list[str]:
        """One output map as text: numbers if it is small, else shades ``" .:-=+*#%@"`` of ``|y|``.

        The kernel defaults to the one with the largest output at :attr:`highlight`.
        """
        if kernel is None:
            pos = self.highlight if not self.transposed else (0,) * self.ndim
            kernel = int(np.argmax(np.abs(self.output[image][(slice(None), *pos)])))
        y = self.output[image, kernel]
        y2 = y.reshape(-1, y.shape[-1]) if self.ndim != 3 else y.reshape(-1, y.shape[-1])
        integral = self._values_integral(y2)
        cw = max(len(_fmt_num(v, integral)) for v in y2.ravel())
        if y2.shape[1] * (cw + 1) <= 90 and y2.shape[0] <= 24:
            lines = [" ".join(_fmt_num(v, integral).rjust(cw) for v in row) for row in y2]
            how = "values"
        else:
            from .data import ascii_art

            top = float(np.abs(y2).max()) or 1.0
            lines = ascii_art(np.abs(y2) / top).split("\n")
            lines = [ln if ln.strip() else "" for ln in lines[:40]]
            how = f'|value| / {_fmt_num(top, False)} as " .:-=+*#%@"'
        if self.ndim == 3:
            how += f"; the {y.shape[0]} depth slices one under another"
        return [f"output map: image {image}, kernel {kernel}, {_shape(y.shape)}, {how}"] + lines

    def padding_lines(self) -> list[str]:
        return [self.padding_note] if self.padding_note else []

    def to_text(self, *, width: int = 100, max_rows: int = 18, conv_matrix: bool = False) -> str:
        """The whole explanation as text at most about ``width`` wide (``str()``: the defaults)."""
        if self.transposed:
            return self._transposed_text(width=width, max_rows=max_rows)
        n = self.ndim
        pads = [p for pair in self.padding for p in pair]
        pad = f"{pads[0]}" if len(set(pads)) == 1 else f"{self.padding}"

        def one(t: tuple[int, ...]) -> str:
            return str(t[0]) if len(set(t)) == 1 else str(t)

        lines = [
            f"Convolution of input {_shape(self.input.shape)} by weight {_shape(self.weight.shape)}:",
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
            vals = list(zip(self.size, self.kernel_size))
            for _name, (m, kk) in self._axis_groups(vals):
                lines.append(
                    f"   no padding: a {kk}-wide window fits {m} − {kk} + 1 = {m - kk + 1} times "
                    f"in {m} pixels (the border loses k − 1 = {kk - 1})"
                )
        osz = ", ".join(_OSIZE[n])
        lines.append(f"   output: {_shape(self.output_shape)} = (N, K, {osz})")
        padded = self.padded_input_lines()
        what = f"with its padding ({PAD_MARK} = padding, read as 0)" if any(pads) else "(no padding)"
        if padded:
            lines += ["", f"   input image 0, channel 0 {what}:"]
            lines += ["     " + s for s in padded]
        ks = "·".join(_KSIZE[n])
        lines += [
            "",
            f"2. Unrolled matrix (im2col): C·{ks} × {'·'.join(_OSIZE[n])} = {self.C}·"
            f"{'·'.join(map(str, self.kernel_size))} × {'·'.join(map(str, self.grid))} = "
            f"{self.rows} × {self.L} per image",
            f"   the batch: {_shape(self.columns_shape)}, torch's unfold layout (N, C·{ks}, L)",
            f"   row = {self.row_layout()}, column = {self.column_layout()}",
            f"   rows ({','.join(('c',) + _TAPS[n])}): channel, kernel "
            f"{'tap' if n == 1 else 'taps'}; columns ({','.join(_POS[n])}): output position; "
            f"{PAD_MARK} = padding",
        ]
        lines += ["   " + s for s in self.group_lines()]
        lines += ["   " + s for s in self.matrix_table(width=width - 3, max_rows=max_rows)]
        rf = self.receptive_field(*self.highlight)
        real = [s for s in rf if not s.padding]
        where = self._label(self.highlight)
        lines.append(
            f"   column ({where}) is the receptive field of output ({', '.join(map(str, self.highlight))}): "
            f"{len(real)} input pixel{'s' if len(real) != 1 else ''}, {len(rf) - len(real)} padding"
        )
        wm = self.weight_matrix
        lines += [
            "",
            f"3. Weight matrix: K × (C/groups)·{ks} = {wm.shape[0]} × {wm.shape[1]}",
            f"   each kernel flattened to one row, in the same ({','.join(('c',) + _TAPS[n])}) "
            "order as the unrolled matrix's rows",
        ]
        integral = self._values_integral(wm)
        cw = max(len(_fmt_num(v, integral)) for v in wm.ravel()[:4096])
        fit = max(3, (width - 10) // (cw + 1))
        wcols = _elide(wm.shape[1], fit)
        for kk in _elide(self.K, 8):
            if kk is None:
                lines.append("      ⋮")
                continue
            vals = " ".join("…".rjust(cw) if j is None else _fmt_num(wm[kk, j], integral).rjust(cw) for j in wcols)
            lines.append(f"   {kk:>3} │ {vals}")
        lines += ["", "4. The GEMM: weight matrix @ unrolled matrix"]
        lines += ["   " + s for s in self.gemm_lines()]
        if self.groups == 1:
            at = (slice(None, 8), *self.highlight)
            vals = ", ".join(_fmt_num(v, self._values_integral(self.output)) for v in self.output[0][at])
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
            f"7. Sparse-matrix view: one sparse matrix C, K·L × C·{'·'.join(_AXES[n][a][0].upper() for a in range(n))}"
            f" = {self.K}·{self.L} × {self.C}·{'·'.join(map(str, self.size))} = {r} × {c}",
            "   conv = C @ x.ravel() per image; transposed conv = Cᵀ @ y.ravel()",
            f"   {nnz:,} of its {r * c:,} entries are weights ({100 * nnz / (r * c):.1f}%), the rest zeros",
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
                f"   row k·L + {self.column_layout()} (kernel k, output ({', '.join(_POS[n])})); "
                "column c·H·W + h·W + w; . = zero"
                if n == 2
                else "   row k·L + column of the output; column: the flat input index; . = zero"
            )
            for rr in _elide(r, max_rows):
                if rr is None:
                    lines.append("        ⋮")
                    continue
                vals = " ".join(
                    ("…" if j is None else ("." if Cm[rr, j] == 0 else _fmt_num(Cm[rr, j], integral))).rjust(cw)
                    for j in ccols
                )
                lines.append(f"   {rr:>5} │ {vals}")
        lines += ["", "8. The fast path"]
        lines += ["   " + s for s in self.route_lines()]
        return _wrap(lines, width)

    def _transposed_text(self, *, width: int, max_rows: int) -> str:
        n = self.ndim
        pads = [p[0] for p in self.padding]
        lines = [
            f"Transposed convolution of input {_shape(self.input.shape)} by weight "
            f"{_shape(self.weight.shape)} (C_in, C_out/groups, {', '.join(_KSIZE[n])}):",
            f"  stride {self.stride}, padding {tuple(pads)}, output_padding "
            f"{self.output_padding}, dilation {self.dilation}, groups {self.groups}",
            "  it runs the convolution backwards: each input pixel spreads a copy of the kernel,",
            "  scaled by its value, over the output; it is conv's input gradient (the adjoint).",
            "",
            "1. Output size: (in − 1)·stride − 2·pad + dilation·(kernel − 1) + output_padding + 1",
        ]
        lines += ["   " + s for s in self.output_size_steps()]
        lines.append(
            f"   output: {_shape(self.output_shape)}; a convolution with the same kernel, stride "
            f"and padding maps {_shape(self.out_size)} back to {_shape(self.size)}"
        )
        lines += ["", "2. The GEMM Wᵀ·x: one column per input position"]
        lines += ["   " + s for s in self.gemm_lines()]
        lines.append(
            f"   columns: {_shape(self.columns_shape)}, row = {self.row_layout()} (output "
            f"channel c, kernel taps), column = input position"
        )
        lines += ["   " + s for s in self.group_lines()]
        lines += ["   " + s for s in self.matrix_table(width=width - 3, max_rows=max_rows)]
        lines += [
            "",
            "3. col2im: each column's cell is added to the output pixel its tap lands on:",
            "   pixel = position·stride − pad + tap·dilation, per axis; cells past the border "
            f"({PAD_MARK}) are dropped",
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
        return _wrap(lines, width)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        kind = "transposed " if self.transposed else ""
        return (
            f"<Explanation {kind}input {_shape(self.input.shape)} weight "
            f"{_shape(self.weight.shape)} → output {_shape(self.output_shape)}, columns "
            f"{_shape(self.columns_shape)}>"
        )

    # --- HTML ------------------------------------------------------------------------------------

    def to_html(self, highlight: tuple[int, int] | None = None, *, max_rows: int = 18, max_cols: int = 24) -> str:
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
            f"<p>Image 0, channel 0, padding in grey; outlined: the receptive field of output ({oh}, {ow})</p><table>"
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
            f"<p><b>Sparse-matrix view</b>: conv = C @ x.ravel() with C of shape {r} × {c} "
            f"({self.conv_matrix_nnz:,} weight entries, the rest zeros); transposed conv = "
            "Cᵀ @ y.ravel(). im2col copies the input, C copies the weights.</p>"
        )
        out.append("</div>")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        """Jupyter's display: the explorer page in an isolated ``<iframe srcdoc>`` (its CSS and JS
        and the notebook's cannot clash) when the page can draw this configuration — a 2-D forward
        convolution within :data:`im2col.explorer.MAX_CELLS` cells — else the static
        :meth:`to_html` tables."""
        from .explorer import MAX_CELLS, drawn_cells, iframe_html

        if self.ndim == 2 and not self.transposed and sum(drawn_cells(self).values()) <= MAX_CELLS:
            return iframe_html(self)
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
        the notebook's cannot clash: make it a cell's last line, ``e.show()``. Displaying ``e``
        itself gives the same page (for image 0, 900 px high); ``show`` chooses the height and
        the image, and raises if the configuration is too large to draw instead of falling back
        to the static tables."""
        from .explorer import Frame

        return Frame(self, height=height, image=image)


def _parse_input(obj: Any) -> tuple[np.ndarray, bool]:
    """(N, C, *spatial) float array and whether it was made up from a shape."""
    if isinstance(obj, (tuple, list)) and all(_is_int(v) for v in obj):
        shape = tuple(int(v) for v in obj)
        if not 2 <= len(shape) <= 5 or min(shape) < 1:
            raise ValueError(
                f"{_FN}(): a shape for 'input_or_shape' must be (H, W), (C, H, W), (N, C, H, W), "
                f"(N, C, L) with a one-element kernel size, or (N, C, D, H, W), of positive ints, "
                f"got {obj!r}"
            )
        n = int(np.prod(shape))
        if n > 2**26:
            raise ValueError(f"{_FN}(): input shape {shape} has {n:,} values; pass at most 2**26 for a demo input")
        return np.arange(1, n + 1, dtype=np.float32).reshape(shape), True
    x = _to_numpy(obj, "input_or_shape")
    if x.ndim not in (2, 3, 4, 5):
        raise ValueError(
            f"{_FN}(): argument 'input_or_shape' must be 2-D (H, W), 3-D (C, H, W) or (N, C, L), "
            f"4-D (N, C, H, W) or 5-D (N, C, D, H, W), got shape {x.shape}"
        )
    if x.dtype != np.float64:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x), False


def _spatial_dims(
    x_ndim: int,
    weight: Any,
    x_shape: tuple[int, ...] | None = None,
    groups: int = 1,
    transposed: bool = False,
) -> int:
    """1 for a one-element kernel size or a 3-D weight of a 3-D input, 3 for 5-D input, else 2."""
    if x_ndim == 5:
        return 3
    if isinstance(weight, (tuple, list)) and len(weight) == 1:
        return 1
    # A 3-axis weight of a 3-axis input is conv1d's (K, C/groups, k) (transposed: (C, K/groups, k))
    # when its channels fit the input's (N, C, L); otherwise the 2-D stack of kernels (K, kh, kw) of
    # an image (C, H, W).
    if x_shape is not None and len(x_shape) == 3 and getattr(weight, "ndim", 0) == 3:
        if (weight.shape[0] if transposed else weight.shape[1] * groups) == x_shape[1]:
            return 1
    if isinstance(weight, (tuple, list)) and len(weight) == 3 and all(_is_int(v) for v in weight):
        return 3
    return 2


def _parse_weight(obj: Any, C: int, groups: int, dtype: np.dtype, n: int, transposed: bool) -> tuple[np.ndarray, bool]:
    if _is_int(obj) or (isinstance(obj, (tuple, list)) and len(obj) == n and all(_is_int(v) for v in obj)):
        k = as_tuple(obj, "weight_or_kernel_size", _FN, n, minimum=1)
        Cg = C // groups
        w = np.arange(1, groups * Cg * math.prod(k) + 1, dtype=dtype)
        # transposed: (C_in, C_out/groups, *k) with one output channel per group
        shape = (C, 1, *k) if transposed else (groups, Cg, *k)
        return w[: math.prod(shape)].reshape(shape), True
    w = _to_numpy(obj, "weight_or_kernel_size")
    if n == 2 and w.ndim == 2:
        w = w[None, None]
    elif n == 2 and w.ndim == 3:  # a stack of one-channel kernels, as the blog post's (4, 3, 3)
        w = w[:, None]
    want = ", ".join(_KSIZE[n])
    if w.ndim != n + 2:
        raise ValueError(
            f"{_FN}(): argument 'weight_or_kernel_size' must be a kernel size, or a weight of "
            f"shape (K, C/groups, {want})" + (f", ({want}) or (K, {want})" if n == 2 else "") + f", got shape {w.shape}"
        )
    if transposed:
        if w.shape[0] != C:
            raise ValueError(
                f"{_FN}(): a transposed weight has shape (C_in, C_out/groups, {want}); "
                f"got {w.shape} for an input with {C} channels"
            )
    else:
        if w.shape[1] * groups != C:
            raise ValueError(
                f"{_FN}(): weight of shape {w.shape} with groups={groups} expects "
                f"{w.shape[1] * groups} input channels, but the input has {C}"
            )
        if w.shape[0] % groups:
            raise ValueError(f"{_FN}(): weight has {w.shape[0]} kernels, not divisible by groups={groups}")
    return np.ascontiguousarray(w.astype(dtype)), False


def _parse_padding(
    value: Any, n: int, k: tuple[int, ...], d: tuple[int, ...], s: tuple[int, ...]
) -> tuple[tuple[tuple[int, int], ...], str]:
    """Per-axis (before, after) padding, and a sentence saying how a string became numbers."""
    names = _AXES[n]
    if isinstance(value, str):
        if value == "valid":
            return ((0, 0),) * n, "padding 'valid' means no padding: only windows inside the input"
        totals = tuple(dd * (kk - 1) for kk, dd in zip(k, d))
        work = ", ".join(f"{dd}·({kk} − 1) = {t}" for kk, dd, t in zip(k, d, totals))
        if len(set(totals)) == 1:
            work = f"{d[0]}·({k[0]} − 1) = {totals[0]}"
        if value == "full":
            pads = tuple((t, t) for t in totals)
            per = str(totals[0]) if len(set(totals)) == 1 else str(totals)
            return pads, (
                f"padding 'full' became {per} per side: d·(k − 1) = {work}, so every window that "
                "overlaps the input by at least one pixel is kept (output = input + d·(k − 1))"
            )
        if value == "same":
            if any(v != 1 for v in s):
                raise ValueError(f"{_FN}(): padding='same' needs stride=1, got stride={s}")
            pads = tuple((t // 2, t - t // 2) for t in totals)
            per = ", ".join(f"{a} before and {b} after" for a, b in pads)
            if len(set(pads)) == 1:
                per = f"{pads[0][0]} before and {pads[0][1]} after"
            odd = "; an odd total puts the extra pixel after, as PyTorch does" if any(t % 2 for t in totals) else ""
            return pads, (
                f"padding 'same' became {per}: the window takes d·(k − 1) = {work} pixels off the "
                f"size, so that much padding keeps the output the size of the input{odd}"
            )
        raise ValueError(
            f"{_FN}(): argument 'padding' must be an int, a tuple, 'valid', 'same' or 'full', got {value!r}"
        )
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, (list, tuple)) for v in value):
        sides = tuple(
            as_tuple(v, f"padding ({axis}: before, after)", _FN, 2, minimum=0) for axis, v in zip(names, value)
        )
        return sides, ""  # type: ignore[return-value]
    return tuple((p, p) for p in as_tuple(value, "padding", _FN, n, minimum=0)), ""


def explain(
    input_or_shape: Any,
    weight_or_kernel_size: Any,
    stride: int | tuple[int, ...] = 1,
    padding: Any = 0,
    dilation: int | tuple[int, ...] = 1,
    groups: int = 1,
    *,
    transposed: bool = False,
    output_padding: int | tuple[int, ...] = 0,
    highlight: tuple[int, ...] | None = None,
) -> Explanation:
    """Take one convolution apart: output size, unrolled matrix, GEMM, output, cost, sparse-matrix view.

    Parameters
    ----------
    input_or_shape : ndarray, Tensor, or tuple of ints
        Images (N, C, H, W), (C, H, W) or (H, W); signals (N, C, L) with a one-element kernel
        size such as ``(3,)``; volumes (N, C, D, H, W). Or just a shape, in which case the input is
        1, 2, 3, … so that each cell of the unrolled matrix shows which pixel it copies (and no
        pixel reads 0, like padding).
    weight_or_kernel_size : ndarray, Tensor, int or tuple of ints
        A weight ``(K, C/groups, *kernel)`` (for 2-D also a stack (K, kh, kw) or one kernel (kh, kw));
        with ``transposed=True`` torch's ``(C_in, C_out/groups, *kernel)``. Or just a kernel size
        (one int per spatial axis, or one int for all), in which case the weight is one kernel
        per group holding 1, 2, 3, ….
    stride, dilation : int or tuple of ints, default 1
    padding : int, tuple, per-side pairs, 'valid', 'same' or 'full', default 0
        As in :func:`im2col.conv2d`, plus 'full': ``dilation·(kernel − 1)`` on every side, every
        window that touches the input (the output grows by that much). With ``transposed=True``
        an int or one int per axis (it removes output pixels, as in torch).
    groups : int, default 1
    transposed : bool, default False
        Explain the transposed convolution (torch's ``conv_transpose``) instead: ``Wᵀ·x`` then
        col2im, with its output-size formula worked out.
    output_padding : int or tuple of ints, default 0
        Of the transposed convolution.
    highlight : tuple of ints, optional
        The position to trace; default the one with the largest ``|output|`` of image 0.

    Returns
    -------
    Explanation
        ``print()`` it, show it in Jupyter, or ask it questions (:meth:`Explanation.source`,
        :meth:`Explanation.receptive_field`, :meth:`Explanation.backward`, ...).

    Raises
    ------
    ValueError
        If the shapes do not fit together or the kernel does not fit in the padded input (the
        message shows the formula with the numbers).
    TypeError
        If an argument has the wrong type.

    Examples
    --------
    The blog post's "full padding" example: a 5×5 input, a 3×3 kernel and padding 2 give 7×7.

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
    >>> im2col.explain((1, 1, 5, 5), 3, padding="full").padding
    ((2, 2), (2, 2))

    The blog post's batch: 64 digits, the four edge kernels.

    >>> from im2col import data, kernels
    >>> e = im2col.explain(data.digit_batch(), kernels.edge_kernels())
    >>> e.output_size_steps()
    ['height and width: (28 + 2·0 − 3) // 1 + 1 = 26']
    >>> e.columns.shape, e.output.shape
    ((64, 9, 676), (64, 4, 26, 26))
    >>> e.gemm_lines()[0]
    'per image: (4 × 9) @ (9 × 676) → (4 × 676) → (4, 26, 26)'

    A 1-D signal and a 3-D volume:

    >>> e1 = im2col.explain((1, 2, 10), (3,), stride=2)
    >>> e1.columns.shape, e1.row_layout(), e1.column_layout()
    ((1, 6, 4), 'c·k + i', 'ol')
    >>> e3 = im2col.explain((1, 1, 4, 5, 6), (2, 3, 3))
    >>> e3.columns.shape, e3.row_layout(), e3.column_layout()
    ((1, 18, 36), 'c·kd·kh·kw + a·kh·kw + i·kw + j', 'od·OH·OW + oh·OW + ow')
    """
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"{_FN}(): argument 'groups' must be a positive int, got {groups!r}")
    x, demo_x = _parse_input(input_or_shape)
    n = _spatial_dims(x.ndim, weight_or_kernel_size, x.shape, int(groups), bool(transposed))
    if x.ndim == 3 and n == 3:
        raise ValueError(f"{_FN}(): a three-element kernel size needs a 5-D input (N, C, D, H, W), got shape {x.shape}")
    x = x.reshape((1,) * (n + 2 - x.ndim) + x.shape)
    if x.ndim != n + 2:
        raise ValueError(f"{_FN}(): a {n}-D explanation needs an input with {n + 2} axes, got shape {x.shape}")
    if x.shape[1] % groups:
        raise ValueError(f"{_FN}(): the input's {x.shape[1]} channels are not divisible by groups={groups}")
    w, demo_w = _parse_weight(weight_or_kernel_size, x.shape[1], groups, x.dtype, n, bool(transposed))
    k = tuple(w.shape[2:])
    s = as_tuple(stride, "stride", _FN, n, minimum=1)
    d = as_tuple(dilation, "dilation", _FN, n, minimum=1)
    if transposed and isinstance(padding, str):
        raise ValueError(f"{_FN}(): with transposed=True 'padding' must be an int or {n} ints, got {padding!r}")
    p, note = _parse_padding(padding, n, k, d, s)
    if transposed and any(a != b for a, b in p):
        raise ValueError(f"{_FN}(): with transposed=True the padding must be the same on both sides, got {p}")
    op = as_tuple(output_padding, "output_padding", _FN, n, minimum=0)
    if not transposed and any(op):
        raise ValueError(f"{_FN}(): 'output_padding' needs transposed=True, got {output_padding!r}")
    e = Explanation(
        x, w, s, p, d, int(groups), demo_input=demo_x, demo_weight=demo_w,
        highlight=None if highlight is None else tuple(highlight), transposed=bool(transposed),
        output_padding=op, padding_note=note,
    )  # fmt: skip
    if highlight is not None:
        e.receptive_field(*e.highlight)  # checks each index against the grid
    return e
