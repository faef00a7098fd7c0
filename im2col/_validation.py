"""Input checking and conversion for the public functions.

Everything a user can get wrong is caught here, once, with a message that names the function, the
argument, what was expected and what was given. Below this layer the Cython kernels trust their
arguments completely: a shape that got past these checks is a shape they can index safely.

The checks on sizes alone (integer arguments, padding, output sizes, the 2-D geometry) are in
:mod:`im2col._geometry`, the lower half of this layer; the names other modules import from here
are re-exported.
"""

from __future__ import annotations

import math
import os
import sys
from functools import lru_cache
from typing import Any

import numpy as np

from . import _geometry, _tiles

# the shapes' checks live in _geometry; these names are imported from here by explain, nn and the tests
from ._geometry import Geometry as Geometry
from ._geometry import as_int as as_int
from ._geometry import as_pair as as_pair
from ._geometry import as_tuple as as_tuple
from ._geometry import geometry as geometry

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --- arrays and tensors -----------------------------------------------------------------------


def _torch():
    """The torch module if the user has imported it; we never import torch ourselves."""
    return sys.modules.get("torch")


def is_tensor(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def needs_grad(*objs: Any) -> bool:
    """Whether a call must keep autograd: grad mode is on and one of ``objs`` is a tensor that
    requires grad. Such calls go through the torch layer's registered operators (im2col/nn.py)."""
    torch = _torch()
    if torch is None or not torch.is_grad_enabled():
        return False
    return any(isinstance(o, torch.Tensor) and o.requires_grad for o in objs)


def _describe(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        return f"a {obj.ndim}-D array of shape {obj.shape} and dtype {obj.dtype}"
    if is_tensor(obj):
        return f"a {obj.dim()}-D tensor of shape {tuple(obj.shape)} and dtype {obj.dtype}"
    return f"an object of type {type(obj).__name__}"


def to_array(obj: Any, name: str, fn: str, *, strided: bool = False) -> np.ndarray:
    """A native-byte-order ndarray with the data of ``obj`` (copied only if needed).

    C-contiguous, unless ``strided``: then any layout the kernels read in place (see
    :func:`kernel_readable`: channels-last, transposed or sliced views) is returned as it is, and
    only the others are copied. Torch tensors are detached and shared zero-copy when they can be.
    The result may be read-only; callers never write to it.
    """
    if is_tensor(obj):
        if obj.device.type != "cpu":
            raise ValueError(
                f"{fn}(): argument '{name}' must be a CPU tensor, got a tensor on {obj.device}; call .cpu() first"
            )
        torch = _torch()
        if obj.is_nested:
            raise TypeError(f"{fn}(): argument '{name}' must be a dense (strided) tensor, got a nested tensor")
        if obj.layout != torch.strided:
            raise TypeError(f"{fn}(): argument '{name}' must be a dense (strided) tensor, got layout {obj.layout}")
        t = obj.detach().resolve_conj().resolve_neg()
        try:
            arr = t.numpy()
        except TypeError as e:  # e.g. bfloat16, which NumPy has no dtype for
            raise TypeError(f"{fn}(): argument '{name}' has dtype {obj.dtype}, which NumPy cannot hold: {e}") from None
    elif isinstance(obj, np.ndarray):
        arr = obj
    else:
        raise TypeError(
            f"{fn}(): argument '{name}' must be a numpy.ndarray or a torch.Tensor, got {type(obj).__name__}; "
            f"wrap lists with numpy.asarray(...)"
        )
    if strided and kernel_readable(arr):
        return arr
    if not (arr.flags.c_contiguous and arr.dtype.isnative):
        # e.g. a broadcast view whose contiguous copy would not fit
        check_alloc(fn, f"contiguous copy of '{name}'", arr.shape, arr.dtype)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr)


def kernel_readable(arr: np.ndarray) -> bool:
    """Whether the kernels can read ``arr`` in place through element strides.

    Native byte order, aligned, and every axis longer than one with a positive stride that is a
    whole number of elements. Negative strides (reversed views), zero strides (broadcasts) and
    byte-swapped or unaligned data are copied instead.
    """
    if not (arr.dtype.isnative and arr.flags.aligned) or arr.dtype.itemsize == 0:
        return False
    return all(n == 1 or (s > 0 and s % arr.itemsize == 0) for n, s in zip(arr.shape, arr.strides))


def strided_buffer(arr: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(1-D array of the elements ``arr`` spans, starting at its first; element strides of ``arr``).

    ``arr`` must be :func:`kernel_readable` and non-empty. Axes of length one get stride 0, so
    their (arbitrary) stride never enters the kernels' index arithmetic. The kernels index the
    1-D array with ``Σ index·stride``, which stays inside it. The 1-D array is writable exactly
    when ``arr`` is; the kernels take inputs as const memoryviews and never write them.
    """
    item = arr.itemsize
    strides = tuple(0 if n == 1 else s // item for n, s in zip(arr.shape, arr.strides))
    span = 1 + sum((n - 1) * s for n, s in zip(arr.shape, strides))
    if arr.flags.c_contiguous:  # the usual case, and 10× cheaper than as_strided
        return arr.reshape(-1), strides
    # not writeable=False: NumPy 2.4 leaks about 60 bytes per call on that path (tracemalloc)
    flat = np.lib.stride_tricks.as_strided(arr, shape=(span,), strides=(item,))
    return flat, strides


def channels_last_like(t: Any) -> bool:
    """Whether a tensor's strides are channels-last as torch judges them (``suggest_memory_format``).

    Torch returns a convolution's output in channels_last memory format when the input's or the
    weight's strides are channels-last like this; the convolutions here do the same. The rule is
    torch's ``is_channels_last_strides_2d/3d``: strides increasing in the order C, W, H, (D,) N,
    ambiguous cases (a batch of 1×1 images) counting as contiguous. Arrays are never channels-last
    here: their layout is given by ``layout=``.
    """
    if not is_tensor(t) or t.dim() not in (4, 5):
        return False
    sizes, strides = t.shape, t.stride()
    order = (1, 3, 2, 0) if t.dim() == 4 else (1, 4, 3, 2, 0)
    if strides[1] == 0:
        return False
    low = 0
    for d in order:
        if sizes[d] == 0 or strides[d] < low:
            return False
        if d == 0 and low == strides[1]:
            return False
        low = strides[d] * (sizes[d] if sizes[d] > 1 else 1)
    return True


#: The ``layout=`` names per number of spatial axes: (channels first, channels last).
LAYOUTS = {1: ("NCL", "NLC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


def parse_layout(fn: str, layout: Any, n: int) -> bool:
    """True for a channels-last ``layout``: 'NHWC' (2-D), 'NLC' (1-D), 'NDHWC' (3-D) or
    'channels_last'; False for the channels-first names or None. Anything else is refused."""
    first, last = LAYOUTS[n]
    if layout is None or layout == first or layout == "channels_first":
        return False
    if layout == last or layout == "channels_last":
        return True
    raise ValueError(
        f"{fn}(): argument 'layout' must be {first!r} or {last!r} for a {n}-D input (or 'channels_first' / "
        f"'channels_last'), got {layout!r}"
    )


def layout_dims(n: int, channels_last: bool) -> str:
    """The dims of a batched input in a layout, for messages: '(N, H, W, C)'."""
    name = LAYOUTS[n][channels_last]
    return "(" + ", ".join(name) + ")"


def to_channels_first(arr: np.ndarray, channels_last: bool) -> np.ndarray:
    """A batched array in ``layout`` as a (N, C, *spatial) view (no copy)."""
    if not channels_last:
        return arr
    return np.moveaxis(arr, -1, 1)


def shape_in_layout(shape: tuple[int, ...], channels_last: bool) -> tuple[int, ...]:
    """A batched (N, C, *spatial) shape as it reads in ``layout``: (N, *spatial, C) if channels-last."""
    return (shape[0], *shape[2:], shape[1]) if channels_last else tuple(shape)


def from_channels_first(arr: np.ndarray, channels_last: bool) -> np.ndarray:
    """The inverse of :func:`to_channels_first`: a (N, C, *spatial) view in ``layout``."""
    if not channels_last:
        return arr
    return np.moveaxis(arr, 1, -1)


def out_array(fn: str, out: Any, shape: tuple[int, ...], dtype: np.dtype, x: np.ndarray) -> np.ndarray:
    """The ndarray behind a user's ``out=`` (array or CPU tensor), checked to take the result."""
    if is_tensor(out):
        if out.device.type != "cpu" or out.requires_grad:
            raise ValueError(f"{fn}(): argument 'out' must be a CPU tensor that does not require grad, got {out!r:.60}")
        arr = out.numpy()
    elif isinstance(out, np.ndarray):
        arr = out
    else:
        raise TypeError(f"{fn}(): argument 'out' must be a numpy.ndarray or a torch.Tensor, got {type(out).__name__}")
    if arr.shape != shape or arr.dtype != dtype:
        raise ValueError(
            f"{fn}(): argument 'out' must have shape {shape} and dtype {dtype}, got shape {arr.shape} "
            f"and dtype {arr.dtype}"
        )
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        raise ValueError(f"{fn}(): argument 'out' must be C-contiguous and writable")
    if np.may_share_memory(arr, x):
        raise ValueError(f"{fn}(): argument 'out' must not overlap the input")
    return arr


def wrap_like(result: np.ndarray, like_tensor: bool):
    """Return ``result`` as a torch tensor (zero-copy) when the input was one."""
    if like_tensor:
        return _torch().from_numpy(result)
    return result


def check_float(arr: np.ndarray, name: str, fn: str, given: Any = None) -> None:
    """Refuse a non-float dtype; the advice is a tensor's (``.float()``) when ``given``, the user's
    object, is a tensor."""
    if arr.dtype not in FLOAT_DTYPES:
        if is_tensor(given):
            raise TypeError(
                f"{fn}(): argument '{name}' must have dtype torch.float32 or torch.float64, got {given.dtype}; "
                f"convert with .float() or .to(torch.float32)"
            )
        raise TypeError(
            f"{fn}(): argument '{name}' must have dtype float32 or float64, got {arr.dtype}; "
            f"convert with .astype(numpy.float32)"
        )


def check_same_dtype(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str, fn: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(
            f"{fn}(): arguments '{a_name}' and '{b_name}' must have the same dtype, "
            f"got {a_name}.dtype={a.dtype} and {b_name}.dtype={b.dtype}"
        )


def batched(
    arr: np.ndarray, name: str, fn: str, layout: str, *, allow_empty_batch: bool = True
) -> tuple[np.ndarray, bool]:
    """View a (C, …) or (N, C, …) array as batched; returns (batched view, was_unbatched).

    ``layout`` names the dims of the batched form, e.g. ``"(N, C, H, W)"``.
    """
    nd = layout.count(",") + 1
    if arr.ndim not in (nd - 1, nd):
        unbatched = "(" + layout[4:]
        raise ValueError(
            f"{fn}(): argument '{name}' must be a {nd - 1}-D {unbatched} or {nd}-D {layout} array, got {_describe(arr)}"
        )
    was_unbatched = arr.ndim == nd - 1
    if was_unbatched:
        arr = arr[None]
    if any(s == 0 for s in arr.shape[1:]) or (arr.shape[0] == 0 and not allow_empty_batch):
        raise ValueError(
            f"{fn}(): argument '{name}' must have non-zero sizes except possibly the batch size, "
            f"got shape {arr.shape[1:] if was_unbatched else arr.shape}"
        )
    return arr, was_unbatched


@lru_cache(maxsize=1)
def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 46


def check_alloc(fn: str, what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse, before allocating, an array that cannot fit in this machine's memory.

    Python ints do the arithmetic, so a size whose element count would overflow 64 bits is caught
    here too, not wrapped around in the kernels' index arithmetic.
    """
    n = 1
    for s in shape:
        n *= int(s)
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes > 1 << 30 and nbytes > _memory_bytes():
        raise ValueError(
            f"{fn}(): the {what} of shape {tuple(shape)} and dtype {np.dtype(dtype)} would need "
            f"{nbytes / 2**30:.1f} GiB, more than this machine's {_memory_bytes() / 2**30:.1f} GiB of memory"
        )
    # NumPy refuses even an empty array whose other sizes multiply past its index type
    nonzero = math.prod(int(s) for s in shape if s) * np.dtype(dtype).itemsize
    if nonzero > np.iinfo(np.intp).max:
        raise ValueError(
            f"{fn}(): the {what} of shape {tuple(shape)} is too large for a NumPy array: its non-zero "
            f"sizes multiply to {nonzero} bytes, more than {np.iinfo(np.intp).max}"
        )


# --- a 2-D convolution's geometry --------------------------------------------------------------


def _plain(v: Any) -> bool:
    """True for ints, strings and (nested) tuples of them: arguments safe to use as a cache key.

    Not for bools, floats or NumPy scalars, which compare equal to ints (``True == 1.0 == 1``) but
    must be refused: a cached ``stride=1`` must not make ``stride=1.0`` pass.
    """
    t = type(v)
    return t is int or t is str or (t is tuple and all(_plain(e) for e in v))


def conv2d_geometry(fn, x4, w, stride, padding, dilation, groups) -> Geometry:
    """The checked geometry of a 2-D convolution of ``x4`` (N, C, H, W) by ``w`` (K, C/groups, kh, kw).

    Checks that channels and groups agree, the output size and that the output and one chunk's
    column matrix fit in memory. Cached per call signature when the arguments are plain values."""
    args = (fn, x4.shape, w.shape, x4.dtype, stride, padding, dilation, groups)
    if _plain((stride, padding, dilation, groups)):
        return _conv2d_geometry_cached(*args)  # the usual case: the same layer, called again
    return _conv2d_geometry_cached.__wrapped__(*args)


@lru_cache(maxsize=1024)
def _conv2d_geometry_cached(fn, xshape, wshape, dtype, stride, padding, dilation, groups) -> Geometry:
    N, C, H, W = xshape
    K, Cg, kh, kw = wshape
    if C != Cg * groups:
        raise ValueError(
            f"{fn}(): input has {C} channels but weight of shape {wshape} with groups={groups} expects "
            f"weight.shape[1]·groups = {Cg}·{groups} = {Cg * groups}"
        )
    if K % groups:
        raise ValueError(f"{fn}(): weight.shape[0] = {K} output channels must be divisible by groups={groups}")
    stride = as_pair(stride, "stride", fn, minimum=1)
    dilation = as_pair(dilation, "dilation", fn, minimum=1)
    pads = _geometry.parse_padding(padding, fn, 2, (kh, kw), dilation, stride)
    g = geometry(fn, (N, C, H, W), (kh, kw), stride, pads, dilation)
    check_alloc(fn, "output", (N, K, g.OH, g.OW), dtype)
    if not g.is_pointwise:
        check_alloc(fn, "column matrix of one chunk", (g.rows, _tiles.chunk(g, dtype.itemsize) * g.L), dtype)
    return g
