"""Input checking and conversion for the public functions.

Everything a user can get wrong is caught here, once, with a message that names the function, the
argument, what was expected and what was given. Below this layer the Cython kernels trust their
arguments completely: a shape that got past these checks is a shape they can index safely.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

Pair = tuple[int, int]
Padding = tuple[Pair, Pair]
#: What a user may pass as ``padding``: an int, a pair, per-side pairs, or 'valid' / 'same'.
PaddingArg = int | Sequence[int] | Sequence[Sequence[int]] | str
IntOrPair = int | Sequence[int]

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


def autograd_call(fn: str, **arguments: Any) -> Any:
    """Run the public function ``fn`` through im2col.nn (imported here, lazily: it imports us)."""
    from . import nn

    return nn._autograd_call(fn, **arguments)


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


# --- integers and pairs -----------------------------------------------------------------------


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


def parse_padding(
    value: Any, fn: str, kernel_size: Pair, dilation: Pair, stride: Pair, *, per_side: bool = True
) -> Padding:
    """Normalise ``padding`` to ((top, bottom), (left, right)).

    Accepts an int, a pair (symmetric per axis), per-side pairs ((top, bottom), (left, right)) when
    ``per_side``, and the strings 'valid' (no padding) and 'same' (output size = input size, stride 1
    only; an odd total puts the extra pixel at the bottom/right, as PyTorch does).
    """
    if isinstance(value, str):
        if value == "valid":
            return ((0, 0), (0, 0))
        if value == "same":
            if stride != (1, 1):
                raise ValueError(f"{fn}(): padding='same' needs stride=1, got stride={stride}")
            pads = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return (pads[0], pads[1])
        raise ValueError(f"{fn}(): argument 'padding' must be an int, a pair, 'valid' or 'same', got {value!r}")
    if (
        per_side
        and isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (list, tuple)) for v in value)
    ):
        sides = []
        for axis, v in zip(("height", "width"), value):
            sides.append(as_pair(v, f"padding ({axis}: before, after)", fn, minimum=0))
        return (sides[0], sides[1])
    ph, pw = as_pair(value, "padding", fn, minimum=0)
    return ((ph, ph), (pw, pw))


# --- geometry ---------------------------------------------------------------------------------


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

    def kernel_args(self, N: int) -> tuple[int, ...]:
        """The size arguments of the Cython kernels, for ``N`` images."""
        return (N, self.C, self.H, self.W, self.kh, self.kw, self.sh, self.sw,
                self.pt, self.pl, self.dh, self.dw, self.OH, self.OW)  # fmt: skip


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
    out = []
    for axis, size, k, s, (before, after), d in zip(
        ("height", "width"), (H, W), kernel_size, stride, padding, dilation
    ):
        o = (size + before + after - d * (k - 1) - 1) // s + 1
        if o < 1 and grid is None:
            span = d * (k - 1) + 1
            raise ValueError(
                f"{fn}(): output {axis} = ({size} + {before} + {after} − {d}·({k} − 1) − 1) // {s} + 1 = {o}, "
                f"but it must be at least 1: the kernel spans {span} pixels (dilation·(kernel − 1) + 1) and the "
                f"padded input only {size + before + after}. Given input of spatial size {(H, W)}, "
                f"kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride}"
            )
        out.append(o)
    OH, OW = grid if grid is not None else out
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
