"""Where each cell of the unrolled matrix comes from: the labels of its rows and columns and the pixel it copies.

Row ``c·kh·kw + i·kw + j`` of the unrolled matrix is channel c's kernel tap (i, j); column
``oh·OW + ow`` is output position (oh, ow); the cell reads input pixel
``(oh·sh − top + i·dh, ow·sw − left + j·dw)``, or padding outside the input. The :class:`Source`
types name one such pixel; the index maps (``_coords``, ``padding_mask``, ``_pixel``) hold it for
every cell at once, and col2im (``_fold``) adds cells back into their pixels with them.

The functions taking ``self`` are methods of :class:`~im2col.explain.Explanation`, bound in its
class body (``source = _explain_sources.source``), so their docstrings are the methods'.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._explain_args import FN, is_int
from ._explain_format import KSIZE, OSIZE, POS, TAPS, layout

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation


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


SOURCE = {1: Source1d, 2: Source, 3: Source3d}


def row_label(self: Explanation, row: int) -> tuple[int, ...]:
    """``(channel, *kernel taps)`` of a row: row = c·kh·kw + i·kw + j in 2-D."""
    self._check_index(row, self.rows, "row")
    c, rest = divmod(row, self.taps)
    return (c, *(int(v) for v in np.unravel_index(rest, self.kernel_size)))


def column_label(self: Explanation, col: int) -> tuple[int, ...]:
    """The grid position of a column: col = oh·OW + ow in 2-D."""
    self._check_index(col, self.L, "col")
    return tuple(int(v) for v in np.unravel_index(col, self.grid))


def row_layout(self: Explanation) -> str:
    """The row index spelled out, e.g. ``'c·kh·kw + i·kw + j'``."""
    return layout("c", TAPS[self.ndim], KSIZE[self.ndim])


def column_layout(self: Explanation) -> str:
    """The column index spelled out, e.g. ``'oh·OW + ow'``."""
    if self.transposed:
        return layout(None, tuple(s.lower() for s in KSIZE[self.ndim]), ())  # unused
    return layout(None, POS[self.ndim], OSIZE[self.ndim])


def source(self: Explanation, row: int, col: int) -> Source | Source1d | Source3d:
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
    return SOURCE[self.ndim](c, *at, not inside)


def receptive_field(self: Explanation, *position: int) -> list[Source | Source1d | Source3d]:
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
            f"{FN}(): receptive_field() takes {self.ndim} indices ({', '.join(POS[self.ndim])}), got {len(position)}"
        )
    for name, v, n in zip(POS[self.ndim], position, self.grid):
        self._check_index(v, n, name)
    col = int(np.ravel_multi_index(position, self.grid))
    return [self.source(r, col) for r in range(self.rows)]


def coords(self: Explanation) -> np.ndarray:
    """(ndim, rows, L): the image coordinate each cell reads, per axis (padding included)."""
    taps = np.unravel_index(np.arange(self.rows) % self.taps, self.kernel_size)
    pos = np.unravel_index(np.arange(self.L), self.grid)
    return np.stack([
        pos[a][None, :] * self.stride[a] - self.padding[a][0] + taps[a][:, None] * self.dilation[a]
        for a in range(self.ndim)
    ])  # fmt: skip


def padding_mask(self: Explanation) -> np.ndarray:
    """Boolean (rows, L): True where the unrolled matrix holds padding, not a pixel."""
    inside = np.ones((self.rows, self.L), dtype=bool)
    for a, n in enumerate(self.image_size):
        inside &= (self._coords[a] >= 0) & (self._coords[a] < n)
    return ~inside


def pixel(self: Explanation) -> np.ndarray:
    """(rows, L) flat index c·prod(image) + ravelled coordinates; -1 on padding."""
    c = (np.arange(self.rows) // self.taps)[:, None]
    flat = np.zeros((self.rows, self.L), dtype=np.int64)
    for a, n in enumerate(self.image_size):
        flat = flat * n + self._coords[a]
    flat = flat + c * math.prod(self.image_size)
    flat[self.padding_mask] = -1
    return flat


def fold(self: Explanation, cols: np.ndarray) -> np.ndarray:
    """col2im: add every non-padding cell of (N, rows, L) into its pixel of the image."""
    keep = ~self.padding_mask
    pix = self._pixel[keep]
    n_px = self.image_channels * math.prod(self.image_size)
    out = np.empty((self.N, n_px), dtype=cols.dtype)
    for i in range(self.N):
        out[i] = np.bincount(pix, weights=cols[i][keep], minlength=n_px)
    return out.reshape((self.N, self.image_channels, *self.image_size))


def overlap_counts(self: Explanation) -> np.ndarray:
    """How many cells of the unrolled matrix copy each pixel (col2im's divisor), per image."""
    pix = self._pixel[~self.padding_mask]
    n_px = self.image_channels * math.prod(self.image_size)
    counts = np.bincount(pix, minlength=n_px)
    return counts.reshape((self.image_channels, *self.image_size))


def check_index(self: Explanation, value: Any, n: int, name: str) -> None:
    if not is_int(value):
        raise TypeError(f"{FN}(): '{name}' must be an int, got {value!r}")
    if not 0 <= value < n:
        raise IndexError(f"{FN}(): '{name}' must be in 0..{n - 1}, got {value}")
