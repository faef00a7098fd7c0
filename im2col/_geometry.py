"""Shapes: integer arguments, padding, output sizes and the checked 2-D geometry, written once.

The lowest part of the validation layer (see tests/test_imports.py): plain arithmetic on sizes,
with the messages a user sees when the sizes do not fit. It imports nothing from the package, so
the public functions, the engine (which computes with a :class:`Geometry`), ``im2col.nn``,
``explain`` and the benchmark can all use the same formulas:

* :func:`parse_padding`: an int, one per axis, (before, after) pairs, 'valid' or 'same' →
  per-axis (before, after), for 1, 2 or 3 spatial axes;
* :func:`span`: the pixels a dilated kernel covers, ``d·(k − 1) + 1``;
* :func:`out_sizes`: ``(n + before + after − d·(k − 1) − 1) // s + 1`` per axis, at least 1;
* :func:`transposed_size`: ``(n − 1)·s − 2·p + d·(k − 1) + output_padding + 1`` per axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

Pair = tuple[int, int]
#: Per-axis (before, after) padding, as :func:`parse_padding` returns it.
Padding = tuple[Pair, ...]
#: What a user may pass as ``padding``: an int, a pair, per-side pairs, or 'valid' / 'same'.
PaddingArg = int | Sequence[int] | Sequence[Sequence[int]] | str
IntOrPair = int | Sequence[int]

#: The names of the spatial axes in messages, per number of axes.
AXES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


# --- integers and tuples -----------------------------------------------------------------------


def as_int(value: Any, name: str, fn: str) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a 0-d array is a scalar
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}(): argument '{name}' must be an int, got {value!r} of type {type(value).__name__}")
    return int(value)


def as_tuple(value: Any, name: str, fn: str, n: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints, each at least ``minimum``, as a tuple of ``n``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a 0-d array is a scalar
        value = value[()]
    many = "a pair of ints" if n == 2 else f"a tuple of {n} ints"
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        t = (int(value),) * n
    elif isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != n:
            per_axis = "" if n == 2 else " (one per spatial axis)"
            raise ValueError(
                f"{fn}(): argument '{name}' must be an int or {many}{per_axis}, "
                f"got {value!r} with {len(value)} elements"
            )
        t = tuple(as_int(v, name, fn) for v in value)
    else:
        raise TypeError(f"{fn}(): argument '{name}' must be an int or {many}, got {value!r}")
    if min(t) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{fn}(): argument '{name}' must be {what}, got {name}={value!r}")
    return t


def as_pair(value: Any, name: str, fn: str, *, minimum: int) -> Pair:
    """An int or a pair of ints, each at least ``minimum``, as a pair."""
    return as_tuple(value, name, fn, 2, minimum=minimum)  # type: ignore[return-value]


def _is_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim > 0)


def im2col_dims(input_ndim: int, kernel_size: Any) -> int:
    """Spatial axes of an im2col: 3 for a 5-D input (N, C, D, H, W), 1 for a one-element
    ``kernel_size`` (input (N, C, L) or (C, L)), else 2, where a 3-D input is an unbatched image as
    in torch's unfold. A single volume therefore needs its batch axis: ``x[None]``."""
    if input_ndim == 5:
        return 3
    return 1 if _is_seq(kernel_size) and len(kernel_size) == 1 else 2


def col2im_dims(output_size: Any, kernel_size: Any) -> int:
    """Spatial axes of a col2im: the length of ``output_size`` or ``kernel_size`` if one of them is a
    sequence of 1 or 3, else 2."""
    for v in (output_size, kernel_size):
        if _is_seq(v) and len(v) in (1, 3):
            return len(v)
    return 2


# --- padding and output sizes -----------------------------------------------------------------


def parse_padding(value: Any, fn: str, n: int, k, d, s) -> Padding:
    """Per-axis (before, after) padding for ``n`` spatial axes.

    Accepts an int, ``n`` ints (symmetric per axis), ``n`` (before, after) pairs, and the strings
    'valid' (no padding) and 'same' (output size = input size, stride 1 only; an odd total puts
    the extra pixel after, as torch does). ``k``, ``d``, ``s``: kernel size, dilation and stride,
    one per axis.

    >>> parse_padding("same", "conv2d", 2, (3, 4), (1, 1), (1, 1))
    ((1, 1), (1, 2))
    >>> parse_padding(((1, 0), (0, 2)), "im2col", 2, (3, 3), (1, 1), (1, 1))
    ((1, 0), (0, 2))
    """
    if isinstance(value, str):
        if value == "valid":
            return ((0, 0),) * n
        if value == "same":
            if any(v != 1 for v in s):
                raise ValueError(f"{fn}(): padding='same' needs stride=1, got stride={s}")
            return tuple((dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d))
        many = "a pair" if n == 2 else "a tuple"
        raise ValueError(f"{fn}(): argument 'padding' must be an int, {many}, 'valid' or 'same', got {value!r}")
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, (list, tuple)) for v in value):
        return tuple(as_pair(v, f"padding ({axis}: before, after)", fn, minimum=0)
                     for axis, v in zip(AXES[n], value))  # fmt: skip
    return tuple((p, p) for p in as_tuple(value, "padding", fn, n, minimum=0))


def span(k: int, d: int) -> int:
    """Pixels a kernel of ``k`` taps with dilation ``d`` covers along one axis: ``d·(k − 1) + 1``.

    >>> span(3, 2)
    5
    """
    return d * (k - 1) + 1


def out_sizes(fn: str, size, k, s, pads, d) -> tuple[int, ...]:
    """Output size per axis, ``(n + before + after − d·(k − 1) − 1) // s + 1``, each at least 1.

    The one place this formula is written; a kernel that does not fit in the padded input is
    refused with the formula, its numbers and the whole configuration. Sizes may be symbolic
    (torch.compile's SymInts): those are computed, not compared, so no guard is added on them.

    >>> out_sizes("conv2d", (28, 28), (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1))
    (26, 26)
    """
    out = []
    for axis, n, kk, ss, (before, after), dd in zip(AXES[len(size)], size, k, s, pads, d):
        o = (n + before + after - dd * (kk - 1) - 1) // ss + 1
        if isinstance(o, (int, np.integer)) and o < 1:
            raise ValueError(
                f"{fn}(): output {axis} = ({n} + {before} + {after} − {dd}·({kk} − 1) − 1) // {ss} + 1 = {o}, "
                f"but it must be at least 1: the kernel spans {dd * (kk - 1) + 1} pixels (dilation·(kernel − 1) "
                f"+ 1) and the padded input only {n + before + after}. Given input of spatial size {tuple(size)}, "
                f"kernel_size={tuple(k)}, dilation={tuple(d)}, padding={tuple(pads)}, stride={tuple(s)}"
            )
        out.append(o)
    return tuple(out)


def transposed_size(fn: str, spatial, k, stride, padding, output_padding, dilation):
    """Check a transposed convolution's arguments; return (stride, padding, output_padding, dilation,
    output size), each a tuple with one entry per spatial axis.

    The output size per axis is ``(n − 1)·s − 2·p + d·(k − 1) + output_padding + 1``: the size whose
    convolution (same kernel, stride, padding, dilation) has the input's size ``n``; the one place
    this formula is written.

    >>> transposed_size("conv_transpose2d", (3, 3), (3, 3), 2, 1, 1, 1)[4]
    (6, 6)
    """
    n = len(k)
    s = as_tuple(stride, "stride", fn, n, minimum=1)
    d = as_tuple(dilation, "dilation", fn, n, minimum=1)
    if isinstance(padding, str):
        many = "a pair of ints" if n == 2 else f"a tuple of {n} ints"
        raise ValueError(f"{fn}(): argument 'padding' must be an int or {many}, got {padding!r}")
    p = as_tuple(padding, "padding", fn, n, minimum=0)
    op = as_tuple(output_padding, "output_padding", fn, n, minimum=0)
    size = []
    for axis, nn, kk, ss, pp, dd, o in zip(AXES[n], spatial, k, s, p, d, op):
        if o >= max(ss, dd):
            raise ValueError(
                f"{fn}(): output_padding must be smaller than either stride or dilation, got "
                f"output_padding={op}, stride={s}, dilation={d} ({axis}: {o} ≥ max({ss}, {dd}))"
            )
        out = (nn - 1) * ss - 2 * pp + dd * (kk - 1) + o + 1
        if isinstance(out, (int, np.integer)) and out < 1:  # not a SymInt (see out_sizes)
            raise ValueError(
                f"{fn}(): output {axis} = ({nn} − 1)·{ss} − 2·{pp} + {dd}·({kk} − 1) + {o} + 1 = {out}, "
                f"but it must be at least 1. Given input of spatial size {tuple(spatial)}, kernel_size={tuple(k)}, "
                f"stride={s}, padding={p}, output_padding={op}, dilation={d}"
            )
        size.append(out)
    return s, p, op, d, tuple(size)


# --- the 2-D geometry -------------------------------------------------------------------------


class Geometry(NamedTuple):
    """One convolution's sizes, checked: input (N, C, H, W), kernel, stride, padding, dilation, output.

    A NamedTuple rather than a dataclass: it is built on every call, and this is 5× cheaper.
    """

    N: int
    C: int
    H: int
    W: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pb: int
    pl: int
    pr: int
    dh: int
    dw: int
    OH: int
    OW: int

    @property
    def L(self) -> int:
        return self.OH * self.OW

    @property
    def rows(self) -> int:
        return self.C * self.kh * self.kw

    @property
    def is_pointwise(self) -> bool:
        """1×1 kernel, stride 1, no padding, no dilation: the input already is the column matrix."""
        # The output grid must be the input's: geometry() sets a stride to 1 where it leaves one
        # output row, so a 1×1 output of a larger input can look like stride 1 here.
        return (
            (self.kh, self.kw, self.sh, self.sw, self.dh, self.dw) == (1, 1, 1, 1, 1, 1)
            and not (self.pt or self.pb or self.pl or self.pr)
            and (self.OH, self.OW) == (self.H, self.W)
        )


def geometry(
    fn: str,
    shape: tuple[int, int, int, int],
    kernel_size: Pair,
    stride: Pair,
    padding: Padding,
    dilation: Pair,
    grid: Pair | None = None,
) -> Geometry:
    """Compute and check the output grid; ``grid`` overrides it (conv_transpose2d)."""
    N, C, H, W = shape
    OH, OW = grid if grid is not None else out_sizes(fn, (H, W), kernel_size, stride, padding, dilation)
    (sh, sw), (dh, dw) = normalise_and_check_reach(
        fn, ("height", "width"), (H, W), kernel_size, stride, padding, dilation, (OH, OW)
    )
    return Geometry(N, C, H, W, *kernel_size, sh, sw, *padding[0], *padding[1], dh, dw, OH, OW)


@lru_cache(maxsize=1)
def normalise_and_check_reach(fn, axes, size, kernel_size, stride, padding, dilation, out):
    """Strides and dilations with no effect set to 1; refuse sizes too large for 64-bit indices.

    A stride with one output position, or a dilation of a one-tap kernel, never multiplies
    anything: any value gives the same result, so use 1 and keep absurd ones (2**63) out of the
    kernels' index arithmetic. Returns (strides, dilations), one per axis.
    """
    strides = tuple(1 if o == 1 else s for s, o in zip(stride, out))
    dilations = tuple(1 if k == 1 else d for d, k in zip(dilation, kernel_size))
    for axis, n, k, s, (before, after), d, o in zip(axes, size, kernel_size, strides, padding, dilations, out):
        reach = (o - 1) * s + d * (k - 1) + before + after + n  # bounds every index the kernels form
        if reach >= 2**62:
            raise ValueError(
                f"{fn}(): this configuration is too large for 64-bit index arithmetic along {axis}: "
                f"(output − 1)·stride + dilation·(kernel − 1) + padding + size = {reach} ≥ 2**62. "
                f"Given input of spatial size {tuple(size)}, kernel_size={tuple(kernel_size)}, "
                f"dilation={tuple(dilation)}, padding={tuple(padding)}, stride={tuple(stride)}"
            )
    return strides, dilations
