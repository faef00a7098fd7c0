"""The arguments of :func:`im2col.explain`: shapes, arrays and padding strings made into numbers.

:func:`im2col.explain` takes a shape or an array, a kernel size or a weight, and padding as a
number, per-side pairs or a word ('valid', 'same', 'full'); the parsers here turn them into the
float input and weight arrays and per-axis tuples an :class:`~im2col.explain.Explanation` holds,
with a sentence saying what a padding word became. Every error names ``explain()`` and what it got.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _geometry
from ._explain_format import KSIZE
from ._validation import as_tuple, is_tensor

#: The function every error message names.
FN = "explain"


def to_numpy(obj: Any, name: str) -> np.ndarray:
    if is_tensor(obj):
        obj = obj.detach().cpu().numpy()
    if not isinstance(obj, np.ndarray):
        raise TypeError(f"{FN}(): argument '{name}' must be an array, a tensor or a shape, got {obj!r}")
    if obj.dtype.kind not in "biuf":
        raise TypeError(f"{FN}(): argument '{name}' must hold real numbers, got dtype {obj.dtype}")
    return obj


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def parse_input(obj: Any) -> tuple[np.ndarray, bool]:
    """(N, C, *spatial) float array and whether it was made up from a shape."""
    if isinstance(obj, (tuple, list)) and all(is_int(v) for v in obj):
        shape = tuple(int(v) for v in obj)
        if not 2 <= len(shape) <= 5 or min(shape) < 1:
            raise ValueError(
                f"{FN}(): a shape for 'input_or_shape' must be (H, W), (C, H, W), (N, C, H, W), "
                f"(N, C, L) with a one-element kernel size, or (N, C, D, H, W), of positive ints, "
                f"got {obj!r}"
            )
        n = int(np.prod(shape))
        if n > 2**26:
            raise ValueError(f"{FN}(): input shape {shape} has {n:,} values; pass at most 2**26 for a demo input")
        return np.arange(1, n + 1, dtype=np.float32).reshape(shape), True
    x = to_numpy(obj, "input_or_shape")
    if x.ndim not in (2, 3, 4, 5):
        raise ValueError(
            f"{FN}(): argument 'input_or_shape' must be 2-D (H, W), 3-D (C, H, W) or (N, C, L), "
            f"4-D (N, C, H, W) or 5-D (N, C, D, H, W), got shape {x.shape}"
        )
    if x.dtype != np.float64:
        x = x.astype(np.float32)
    return np.ascontiguousarray(x), False


def spatial_dims(
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
    if isinstance(weight, (tuple, list)) and len(weight) == 3 and all(is_int(v) for v in weight):
        return 3
    return 2


def parse_weight(obj: Any, C: int, groups: int, dtype: np.dtype, n: int, transposed: bool) -> tuple[np.ndarray, bool]:
    if is_int(obj) or (isinstance(obj, (tuple, list)) and len(obj) == n and all(is_int(v) for v in obj)):
        k = as_tuple(obj, "weight_or_kernel_size", FN, n, minimum=1)
        Cg = C // groups
        w = np.arange(1, groups * Cg * math.prod(k) + 1, dtype=dtype)
        # transposed: (C_in, C_out/groups, *k) with one output channel per group
        shape = (C, 1, *k) if transposed else (groups, Cg, *k)
        return w[: math.prod(shape)].reshape(shape), True
    w = to_numpy(obj, "weight_or_kernel_size")
    if n == 2 and w.ndim == 2:
        w = w[None, None]
    elif n == 2 and w.ndim == 3:  # a stack of one-channel kernels, as the blog post's (4, 3, 3)
        w = w[:, None]
    want = ", ".join(KSIZE[n])
    if w.ndim != n + 2:
        raise ValueError(
            f"{FN}(): argument 'weight_or_kernel_size' must be a kernel size, or a weight of "
            f"shape (K, C/groups, {want})" + (f", ({want}) or (K, {want})" if n == 2 else "") + f", got shape {w.shape}"
        )
    if transposed:
        if w.shape[0] != C:
            raise ValueError(
                f"{FN}(): a transposed weight has shape (C_in, C_out/groups, {want}); "
                f"got {w.shape} for an input with {C} channels"
            )
    else:
        if w.shape[1] * groups != C:
            raise ValueError(
                f"{FN}(): weight of shape {w.shape} with groups={groups} expects "
                f"{w.shape[1] * groups} input channels, but the input has {C}"
            )
        if w.shape[0] % groups:
            raise ValueError(f"{FN}(): weight has {w.shape[0]} kernels, not divisible by groups={groups}")
    return np.ascontiguousarray(w.astype(dtype)), False


def parse_padding(
    value: Any, n: int, k: tuple[int, ...], d: tuple[int, ...], s: tuple[int, ...]
) -> tuple[tuple[tuple[int, int], ...], str]:
    """Per-axis (before, after) padding, and a sentence saying how a string became numbers.

    Everything but 'full' (explain's own word) and an unknown word is parsed and checked by the
    library's one parser, :func:`im2col._geometry.parse_padding`: the same numbers and messages
    as the convolutions; this adds the sentence.
    """
    if not isinstance(value, str):
        return _geometry.parse_padding(value, FN, n, k, d, s), ""
    if value == "valid":
        note = "padding 'valid' means no padding: only windows inside the input"
        return _geometry.parse_padding(value, FN, n, k, d, s), note
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
        pads = _geometry.parse_padding(value, FN, n, k, d, s)  # refuses a stride other than 1
        per = ", ".join(f"{a} before and {b} after" for a, b in pads)
        if len(set(pads)) == 1:
            per = f"{pads[0][0]} before and {pads[0][1]} after"
        odd = "; an odd total puts the extra pixel after, as PyTorch does" if any(t % 2 for t in totals) else ""
        return pads, (
            f"padding 'same' became {per}: the window takes d·(k − 1) = {work} pixels off the "
            f"size, so that much padding keeps the output the size of the input{odd}"
        )
    raise ValueError(f"{FN}(): argument 'padding' must be an int, a tuple, 'valid', 'same' or 'full', got {value!r}")
