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

The class keeps the data and its sizes; its views live in private modules by role, bound in its
class body: ``_explain_args`` (explain()'s arguments), ``_explain_sources`` (where each cell comes
from), ``_explain_arith`` (output size, GEMM, the matrix C), ``_explain_backward``,
``_explain_cost`` (cost and fast path), ``_explain_text``, ``_explain_html`` and
``_explain_format`` (the number formatting they share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import _explain_arith as _arith
from . import _explain_backward as _backward
from . import _explain_cost as _cost
from . import _explain_html as _html
from . import _explain_sources as _sources
from . import _explain_text as _text
from . import explorer as _explorer  # the module: MAX_CELLS is read at call time (tests patch it)
from ._explain_args import FN, is_int, parse_input, parse_padding, parse_weight, spatial_dims
from ._explain_arith import CONV_MATRIX_MAX_BYTES as CONV_MATRIX_MAX_BYTES  # importable from here, as before
from ._explain_backward import Backward
from ._explain_format import PAD_MARK as PAD_MARK  # importable from here, as before
from ._explain_format import fmt_shape
from ._explain_sources import Source, Source1d, Source3d
from ._geometry import out_sizes, transposed_size
from ._validation import as_tuple

__all__ = ["explain", "Explanation", "Backward", "Source", "Source1d", "Source3d"]


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
    # None (the default) asks for the loudest position, which __post_init__ puts in its place, so
    # the attribute is always a tuple. A dataclass's __init__ takes each field at the field's own
    # type, so the None default and explain()'s ``highlight=None`` are each told to mypy.
    highlight: tuple[int, ...] = None  # type: ignore[assignment]  # replaced in __post_init__
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
                FN, self.size, self.kernel_size, self.stride, pads, self.output_padding,
                self.dilation,
            )[-1]  # fmt: skip
        else:
            self.K = self.weight.shape[0]
            self.out_size = out_sizes(FN, self.size, self.kernel_size, self.stride, self.padding, self.dilation)
        if self.highlight is None:
            self.highlight = self._loudest()
        elif len(self.highlight) != n:
            raise ValueError(f"{FN}(): 'highlight' must be a position with {n} indices, got {self.highlight!r}")

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

    # The views from here on are functions of the private modules named in each heading, bound as
    # methods (and properties): their code, docstrings and doctests live there, by role.

    output_size_steps = _arith.output_size_steps

    # --- the unrolled matrix (_explain_arith.py) and where each cell comes from (_explain_sources.py)

    columns = cached_property(_arith.columns)
    row_label = _sources.row_label
    column_label = _sources.column_label
    row_layout = _sources.row_layout
    column_layout = _sources.column_layout
    source = _sources.source
    receptive_field = _sources.receptive_field
    _coords = cached_property(_sources.coords)
    padding_mask = cached_property(_sources.padding_mask)
    _pixel = cached_property(_sources.pixel)
    _fold = _sources.fold
    overlap_counts = _sources.overlap_counts
    _check_index = _sources.check_index

    # --- the GEMM (_explain_arith.py) ------------------------------------------------------------

    weight_matrix = property(_arith.weight_matrix)
    output = cached_property(_arith.output)
    gemm_lines = _arith.gemm_lines
    group_lines = _arith.group_lines
    dot_lines = _arith.dot_lines

    # --- the backward pass (_explain_backward.py) ------------------------------------------------

    backward = _backward.backward

    # --- the cost and the fast path (_explain_cost.py) -------------------------------------------

    flops = property(_cost.flops)
    route = _cost.route
    route_lines = _cost.route_lines
    cost_lines = _cost.cost_lines

    # --- the sparse-matrix view: one sparse matrix C (_explain_arith.py) -------------------------

    conv_matrix_shape = property(_arith.conv_matrix_shape)
    conv_matrix_nnz = cached_property(_arith.conv_matrix_nnz)
    conv_matrix = _arith.conv_matrix

    # --- text (_explain_text.py) -----------------------------------------------------------------

    matrix_table = _text.matrix_table
    padded_input_lines = _text.padded_input_lines
    output_map_lines = _text.output_map_lines
    padding_lines = _text.padding_lines
    to_text = _text.to_text

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        kind = "transposed " if self.transposed else ""
        return (
            f"<Explanation {kind}input {fmt_shape(self.input.shape)} weight "
            f"{fmt_shape(self.weight.shape)} → output {fmt_shape(self.output_shape)}, columns "
            f"{fmt_shape(self.columns_shape)}>"
        )

    # --- HTML (_explain_html.py) and the explorer (explorer.py) ----------------------------------

    to_html = _html.to_html

    def _repr_html_(self) -> str:
        """Jupyter's display: the explorer page in an isolated ``<iframe srcdoc>`` (its CSS and JS
        and the notebook's cannot clash) when the page can draw this configuration — a 2-D forward
        convolution within :data:`im2col.explorer.MAX_CELLS` cells — else the static
        :meth:`to_html` tables."""
        if self.ndim == 2 and not self.transposed and sum(_explorer.drawn_cells(self).values()) <= _explorer.MAX_CELLS:
            return _explorer.iframe_html(self)
        return self.to_html()

    def explorer_html(self, *, image: int = 0) -> str:
        """The interactive explorer page of image ``image`` (:func:`im2col.explorer.explorer_html`)."""
        return _explorer.explorer_html(self, image=image)

    def save_html(self, path: Any, *, image: int = 0) -> str:
        """Write the explorer page to ``path``; open it in any browser, offline."""
        return _explorer.save_html(self, path, image=image)

    def show(self, *, height: int = 900, image: int = 0) -> Any:
        """The explorer for Jupyter, isolated in an ``<iframe srcdoc>`` so that its CSS and JS and
        the notebook's cannot clash: make it a cell's last line, ``e.show()``. Displaying ``e``
        itself gives the same page (for image 0, 900 px high); ``show`` chooses the height and
        the image, and raises if the configuration is too large to draw instead of falling back
        to the static tables."""
        return _explorer.Frame(self, height=height, image=image)


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
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{FN}(): argument 'groups' must be a positive int, got {groups!r}")
    x, demo_x = parse_input(input_or_shape)
    n = spatial_dims(x.ndim, weight_or_kernel_size, x.shape, int(groups), bool(transposed))
    if x.ndim == 3 and n == 3:
        raise ValueError(f"{FN}(): a three-element kernel size needs a 5-D input (N, C, D, H, W), got shape {x.shape}")
    x = np.expand_dims(x, tuple(range(n + 2 - x.ndim)))  # leading axes of length 1, up to (N, C, *spatial)
    if x.ndim != n + 2:
        raise ValueError(f"{FN}(): a {n}-D explanation needs an input with {n + 2} axes, got shape {x.shape}")
    if x.shape[1] % groups:
        raise ValueError(f"{FN}(): the input's {x.shape[1]} channels are not divisible by groups={groups}")
    w, demo_w = parse_weight(weight_or_kernel_size, x.shape[1], groups, x.dtype, n, bool(transposed))
    k = tuple(w.shape[2:])
    s = as_tuple(stride, "stride", FN, n, minimum=1)
    d = as_tuple(dilation, "dilation", FN, n, minimum=1)
    if transposed and isinstance(padding, str):
        raise ValueError(f"{FN}(): with transposed=True 'padding' must be an int or {n} ints, got {padding!r}")
    p, note = parse_padding(padding, n, k, d, s)
    if transposed and any(a != b for a, b in p):
        raise ValueError(f"{FN}(): with transposed=True the padding must be the same on both sides, got {p}")
    op = as_tuple(output_padding, "output_padding", FN, n, minimum=0)
    if not transposed and any(op):
        raise ValueError(f"{FN}(): 'output_padding' needs transposed=True, got {output_padding!r}")
    e = Explanation(
        x, w, s, p, d, int(groups), demo_input=demo_x, demo_weight=demo_w,
        highlight=None if highlight is None else tuple(highlight),  # type: ignore[arg-type]  # see the field
        transposed=bool(transposed),
        output_padding=op, padding_note=note,
    )  # fmt: skip
    if highlight is not None:
        e.receptive_field(*e.highlight)  # checks each index against the grid
    return e
