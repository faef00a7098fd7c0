"""What an explained convolution costs, and which route the library's fast path takes for it.

The cost section compares the bytes of the unrolled matrix with the input's and counts the FLOPs;
the fast-path section asks the library's own routing rule (``im2col/_engine.py``, ``route_why``)
which route :func:`im2col.conv2d` (or conv1d, conv_transpose2d) takes on these very arrays, and why.

The functions taking ``self`` are methods of :class:`~im2col.explain.Explanation`, bound in its
class body (``route = _explain_cost.route``), so their docstrings are the methods'.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import _engine  # the module, not route_why itself: tests spy on _engine.route_why
from ._explain_format import KSIZE, fmt_bytes, fmt_shape
from ._validation import geometry

if TYPE_CHECKING:  # pragma: no cover
    from .explain import Explanation


def flops(self: Explanation) -> int:
    """Floating-point operations, ``2·N·K·(C/groups)·kh·kw·L`` (a multiply and an add each)."""
    return (
        2
        * self.N
        * self.K
        * (self.C // self.groups)
        * self.taps
        * math.prod(self.out_size if not self.transposed else self.size)
    )


def route(self: Explanation) -> tuple[str | None, str]:
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


def route_lines(self: Explanation) -> list[str]:
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


def cost_lines(self: Explanation) -> list[str]:
    item = self.input.dtype.itemsize
    col_vals = self.N * self.rows * self.L
    in_vals = self.N * self.image_channels * math.prod(self.image_size)
    ratio = col_vals / in_vals
    kn = KSIZE[self.ndim]
    approx = self.taps / math.prod(self.stride)
    ks = "·".join(kn)
    ss = "·".join(f"s{n[1:]}" if len(n) > 1 else "s" for n in kn)
    what = "output" if self.transposed else "input"
    return [
        f"columns: {fmt_shape(self.columns_shape)} = {col_vals:,} values, "
        f"{fmt_bytes(col_vals * item)} ({self.input.dtype})",
        f"{what}:{' ' * (7 - len(what))} {fmt_shape((self.N, self.image_channels, *self.image_size))}"
        f" = {in_vals:,} values, {fmt_bytes(in_vals * item)}",
        f"the columns hold {ratio:.2f}× the {what}: about {ks} / ({ss}) = "
        f"{'·'.join(map(str, self.kernel_size))} / {'·'.join(map(str, self.stride))} = "
        f"{approx:.2f},",
        "  more with padding, less where windows skip the border",
        f"FLOPs: 2·N·K·(C/groups)·{ks}·L = 2·{self.N}·{self.K}·{self.C // self.groups}·"
        f"{'·'.join(map(str, self.kernel_size))}·"
        f"{self.flops // (2 * self.N * self.K * (self.C // self.groups) * self.taps)}"
        f" = {self.flops:,}",
    ]
