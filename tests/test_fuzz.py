"""Fuzzing every public op in 1, 2 and 3 spatial dimensions: valid configurations against torch, NumPy
and the 2-D reference; invalid ones must raise ValueError or TypeError naming the function and the
argument, and nothing else.

Each valid test is parametrized by ``rank`` (the number of spatial axes) and draws its geometry from
the strategies below: ``nd_geometries(rank)`` for every rank (every padding mode, every way of
passing an argument), and for rank 2 also ``geometries_2d`` (larger strides, dilations and
paddings, torch-style symmetric pairs, groups up to 3, 'same'/'valid' for convolutions). Valid draws
are compared with independent oracles: torch (F.pad, then F.unfold for 1-D and 2-D or strided
slicing of the padded tensor for any dimension, autograd of that for col2im, F.conv1d/2d/3d and
autograd for the convolutions), NumPy (np.pad, then one strided slice per kernel tap; col2im as
np.add.at through the same map applied to an index array) and, in 2-D with zero padding,
im2col.reference. im2col must be bit-exact; the rest compares through conftest.assert_close.

Invalid draws take a valid call and replace one argument by a bad value: the call must raise
ValueError or TypeError whose message starts with "fn(): " and names an argument.

The 'ci' Hypothesis profile keeps this file fast; ``HYPOTHESIS_PROFILE=long`` (scripts/fuzz_long.sh)
runs many more examples of the same tests. Sizes stay small because the reference is plain Python
loops; the awkwardness is in the combinations (1×1 kernels, stride > kernel, padding ≥ kernel,
dilation, per-side padding, groups, empty and unbatched batches, odd memory layouts, tensors).
Bugs this fuzzing found are pinned at the bottom as regression tests.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import array_layout, assert_close
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import im2col
from im2col import reference

FLOATS = [np.float32, np.float64]
# im2col only moves data, so it takes these too (compared bit for bit with the oracles).
MOVABLE = [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.float16, np.complex64, np.complex128]
MODES = ["zeros", "constant", "reflect", "replicate", "circular"]
NP_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
TORCH_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}  # fmt: skip
MAX_SIZE = {1: 10, 2: 8, 3: 6}  # 3-D volumes stay tiny


def scaled(factor: float, cap: int | None = None):
    """``settings`` with ``factor`` times the active profile's examples, at most ``cap`` (the long
    profile's 5000 per valid test keep it within a few minutes)."""
    n = max(1, int(settings.default.max_examples * factor))
    return settings(max_examples=min(n, cap) if cap else n)


def by_rank(factors: dict[int, float], caps: dict[int, int] | None = None, **strategies):
    """A test parametrized by ``rank``, each rank a Hypothesis test of its own drawing ``strategies``
    (callables of the rank) with ``factors[rank]`` times the profile's examples, at most
    ``caps[rank]``: the example budgets of the per-rank tests this replaced, rank by rank."""

    def decorate(body):
        @pytest.mark.parametrize("rank", sorted(factors))
        def test(rank):
            @scaled(factors[rank], (caps or {}).get(rank))
            @given(**{name: make(rank) for name, make in strategies.items()})
            def one_rank(**drawn):
                body(rank, **drawn)

            one_rank()

        test.__name__, test.__qualname__, test.__doc__ = body.__name__, body.__name__, body.__doc__
        return test

    return decorate


# --- geometry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NdGeo:
    """One N-d geometry. ``pads`` holds (before, after) per axis; ``padding`` is how it is passed."""

    n: int
    N: int
    C: int
    size: tuple[int, ...]
    k: tuple[int, ...]
    d: tuple[int, ...]
    s: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    padding: object
    kernel_arg: object
    stride_arg: object
    dilation_arg: object
    mode: str
    unbatched: bool

    @property
    def out(self) -> tuple[int, ...]:
        return tuple((n + a + b - dd * (kk - 1) - 1) // ss + 1
                     for n, (a, b), kk, dd, ss in zip(self.size, self.pads, self.k, self.d, self.s))  # fmt: skip

    @property
    def taps(self) -> int:
        return int(np.prod(self.k))

    @property
    def shape(self):
        return (self.C, *self.size) if self.unbatched else (self.N, self.C, *self.size)

    @property
    def torch_ok(self) -> bool:
        """torch's circular padding wraps at most once; ours (like np.pad 'wrap') any number of times."""
        return self.mode != "circular" or all(max(p) <= n for p, n in zip(self.pads, self.size))


def _int_or_tuple(draw, v: tuple[int, ...], n: int, *, may_be_int: bool):
    """``v`` as an argument: a bare int when all equal (and allowed), a tuple, a list or an int64 array."""
    if may_be_int and len(set(v)) == 1 and draw(st.booleans()):
        return draw(st.sampled_from([v[0], np.int64(v[0])]))
    kind = draw(st.sampled_from(["tuple", "tuple", "list", "array"]))
    return {"tuple": tuple(v), "list": list(v), "array": np.array(v, dtype=np.int64)}[kind]


@st.composite
def nd_geometries(draw, n: int, *, modes=tuple(MODES), max_c: int = 3, for_conv: bool = False):
    mode = draw(st.sampled_from(modes))
    kmax = 3 if n == 3 else 4
    k = tuple(draw(st.integers(1, kmax)) for _ in range(n))
    d = tuple(draw(st.integers(1, 2)) for _ in range(n))
    kind = draw(st.sampled_from(["int", "per-axis", "per-side", "per-side", "same", "valid"]))
    if kind == "same":
        s = (1,) * n
        pads = tuple((dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2) for kk, dd in zip(k, d))
        padding = "same"
    else:
        s = tuple(draw(st.integers(1, 3)) for _ in range(n))
        if kind == "valid":
            pads, padding = ((0, 0),) * n, "valid"
        elif kind == "int":
            p = draw(st.integers(0, 3))
            pads, padding = ((p, p),) * n, draw(st.sampled_from([p, np.int64(p)]))
        elif kind == "per-axis":
            ps = tuple(draw(st.integers(0, 3)) for _ in range(n))
            pads, padding = tuple((p, p) for p in ps), _int_or_tuple(draw, ps, n, may_be_int=False)
        else:
            pads = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(n))
            padding = draw(st.sampled_from([tuple, list]))(tuple(p) if draw(st.booleans()) else list(p) for p in pads)
    size = []
    for kk, dd, (a, b) in zip(k, d, pads):
        lo = max(1, dd * (kk - 1) + 1 - a - b)
        if mode == "reflect":
            lo = max(lo, a + 1, b + 1)
        size.append(draw(st.integers(lo, max(lo, MAX_SIZE[n]))))
    # how the 1-D / 3-D choice is made: a one-element kernel_size (1-D); a 5-D input (3-D)
    kernel_arg = _int_or_tuple(draw, k, n, may_be_int=(n != 1))
    return NdGeo(
        n=n, N=draw(st.integers(0, 2)), C=draw(st.integers(1, max_c)), size=tuple(size), k=k, d=d, s=s, pads=pads,
        padding=padding, kernel_arg=kernel_arg, stride_arg=_int_or_tuple(draw, s, n, may_be_int=True),
        dilation_arg=_int_or_tuple(draw, d, n, may_be_int=True), mode=mode,
        # 3-D im2col has no unbatched form (a 4-D input is an unbatched 2-D image); conv3d has
        unbatched=(n != 3 or for_conv) and draw(st.integers(0, 3)) == 0,
    )  # fmt: skip


# --- inputs ---------------------------------------------------------------------------------------


def random(shape, dtype, seed):
    r = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return (r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype)
    if dtype.kind == "b":
        return r.integers(0, 2, shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return r.integers(max(info.min, -1000), min(info.max, 1000), shape, endpoint=True).astype(dtype)
    return r.standard_normal(shape).astype(dtype)


def as_input(draw, x: np.ndarray):
    """The same values as a NumPy array in some memory layout or byte order, or as a torch tensor."""
    kind = draw(st.sampled_from(["C", "F", "strided", "reversed", "readonly", "byteswapped",
                                 "tensor", "tensor-perm", "tensor-strided", "tensor-grad"]))  # fmt: skip
    if not kind.startswith("tensor"):
        return array_layout(x, kind)
    t = torch.from_numpy(x.copy())
    if kind == "tensor-perm" and t.dim() >= 2:  # non-contiguous: the last two axes swapped in memory
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if kind == "tensor-strided":
        return torch.from_numpy(np.repeat(x, 2, axis=-1)).narrow(-1, 0, 2 * x.shape[-1])[..., ::2]
    if kind == "tensor-grad" and t.dtype.is_floating_point and t.dtype != torch.float16:
        return t.requires_grad_()
    return t


def check_type(got, inp):
    if isinstance(inp, torch.Tensor) and inp.requires_grad:
        assert isinstance(got, torch.Tensor) and got.requires_grad
    if isinstance(got, torch.Tensor) and got.requires_grad:  # an argument requires grad: autograd kept
        return
    assert isinstance(got, torch.Tensor) == isinstance(inp, torch.Tensor)


@st.composite
def pad_values(draw, dtype):
    """A pad value the dtype holds exactly, as a Python or NumPy scalar."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        v = draw(st.sampled_from([True, False, 0, 1, np.bool_(True)]))
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        v = draw(st.integers(int(info.min), int(info.max)))
        if draw(st.booleans()):
            v = dtype.type(v)
    elif dtype.kind == "c":
        v = draw(st.sampled_from([0, 1.5, -2, 1 - 2j, 0.25j, complex("nan"), float("inf")]))
    else:
        v = draw(st.sampled_from([0, 0.0, 1.5, -2.0, -0.25, 7, float("inf"), float("-inf"), float("nan"), True]))
        if draw(st.booleans()) and not isinstance(v, bool):
            v = dtype.type(v)
    return v


# --- oracles --------------------------------------------------------------------------------------


def np_im2col(x, g: NdGeo, value=0):
    """np.pad by the mode, then one strided slice per kernel tap: (N, C·taps, L)."""
    kw = {"constant_values": value} if NP_MODE[g.mode] == "constant" else {}
    xp = np.pad(x, [(0, 0), (0, 0), *g.pads], mode=NP_MODE[g.mode], **kw)
    return _slices(xp, g, np.stack).reshape(x.shape[0], x.shape[1] * g.taps, int(np.prod(g.out)))


def _slices(xp, g: NdGeo, stack):
    taps = []
    for tap in itertools.product(*(range(kk) for kk in g.k)):
        sl = tuple(slice(t * dd, t * dd + ss * (o - 1) + 1, ss) for t, dd, ss, o in zip(tap, g.d, g.s, g.out))
        taps.append(xp[(slice(None), slice(None), *sl)])
    return stack(taps, 2)  # (N, C, taps, *out)


def torch_pad(x: torch.Tensor, g: NdGeo, value=0.0):
    flat = [p for pair in reversed(g.pads) for p in pair]  # F.pad: last axis first
    if g.mode in ("zeros", "constant"):
        return F.pad(x, flat, mode="constant", value=float(value))
    return F.pad(x, flat, mode=TORCH_MODE[g.mode])


def torch_im2col(x: torch.Tensor, g: NdGeo, value=0.0):
    """torch's F.pad, then F.unfold (1-D as a 1×L image, 2-D) or strided slicing (any dimension)."""
    xp = torch_pad(x, g, value)
    if g.n == 1:
        return F.unfold(xp[:, :, None], (1, g.k[0]), dilation=(1, g.d[0]), stride=(1, g.s[0]))
    if g.n == 2:
        return F.unfold(xp, g.k, dilation=g.d, stride=g.s)
    return _slices(xp, g, torch.stack).reshape(x.shape[0], x.shape[1] * g.taps, int(np.prod(g.out)))


def np_col2im(cols, g: NdGeo, reduce: str):
    """np.add.at through the padded index map (-1 for constant padding, which is dropped)."""
    N, R, L = cols.shape
    C = R // g.taps
    idx = np.arange(C * int(np.prod(g.size))).reshape(1, C, *g.size)
    kw = {"constant_values": -1} if NP_MODE[g.mode] == "constant" else {}
    src = _slices(np.pad(idx, [(0, 0), (0, 0), *g.pads], mode=NP_MODE[g.mode], **kw), g, np.stack).reshape(R, L)
    keep = src >= 0
    out = np.zeros((N, C * int(np.prod(g.size))), cols.dtype)
    count = np.zeros(C * int(np.prod(g.size)))
    for i in range(N):
        np.add.at(out[i], src[keep], cols[i][keep])
    np.add.at(count, src[keep], 1)
    if reduce == "mean":
        out = (out / np.maximum(count, 1)).astype(cols.dtype)
    return out.reshape(N, C, *g.size)


# --- valid: im2col / col2im -----------------------------------------------------------------------


def batched(a, g: NdGeo):
    return a[None] if g.unbatched else a


def unbatch(a, g: NdGeo):
    return a[0] if g.unbatched else a


@st.composite
def geometries_2d(draw, *, per_side: bool = True, max_c: int = 4):
    """2-D geometries with wider ranges than ``nd_geometries(2)`` (stride up to 4, dilation up to 3,
    padding up to 4, per-side or a torch-style symmetric pair), zero padding, arguments as tuples."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    if per_side and draw(st.booleans()):
        pads = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(2))
    else:
        ph, pw = draw(st.integers(0, 4)), draw(st.integers(0, 4))
        pads = ((ph, ph), (pw, pw))
    # smallest size the padded input must have for the (dilated) kernel to fit once
    H = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - sum(pads[0])), 10))
    W = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - sum(pads[1])), 10))
    symmetric = all(a == b for a, b in pads)
    return NdGeo(
        n=2, N=draw(st.integers(0, 3)), C=draw(st.integers(1, max_c)), size=(H, W), k=k, d=d, s=s, pads=pads,
        padding=(pads[0][0], pads[1][0]) if symmetric else pads, kernel_arg=k, stride_arg=s, dilation_arg=d,
        mode="zeros", unbatched=draw(st.integers(0, 4)) == 0,
    )  # fmt: skip


def geometries(rank: int, **kw):
    """Every geometry strategy for ``rank``: in 2-D both the N-d one and the wider 2-D one."""
    nd = nd_geometries(rank, **kw)
    return st.one_of(geometries_2d(), nd) if rank == 2 else nd


def is_same(g: NdGeo) -> bool:
    return isinstance(g.padding, str) and g.padding == "same"


def reference_applies(g: NdGeo, value=0) -> bool:
    """im2col.reference is 2-D with zero padding."""
    return g.n == 2 and (g.mode == "zeros" or (g.mode == "constant" and value == 0))


# --- valid: im2col / col2im -----------------------------------------------------------------------

# The examples each rank had when the 2-D tests (1× the profile) and the N-d ones (2×, the rank drawn
# from [1, 1, 2, 3, 3]) were separate: 0.8 + (1 + 0.4) + 0.8.
IM2COL_FACTORS = {1: 0.8, 2: 1.4, 3: 0.8}
IM2COL_CAPS = {1: 2000, 2: 6000, 3: 2000}


@by_rank(IM2COL_FACTORS, IM2COL_CAPS, dtype=lambda r: st.sampled_from(FLOATS + MOVABLE), data=lambda r: st.data())
def test_im2col(rank, dtype, data):
    g = data.draw(geometries(rank))
    x = random(g.shape, dtype, seed=sum(g.size) * 31 + g.C)
    value = data.draw(pad_values(dtype)) if g.mode == "constant" else 0
    kw = {} if g.mode == "zeros" and data.draw(st.booleans()) else dict(padding_mode=g.mode)
    if g.mode == "constant" or data.draw(st.booleans()):
        kw["pad_value"] = value  # 0 is allowed with any mode
    xin = as_input(data.draw, x)
    got = im2col.im2col(xin, g.kernel_arg, g.dilation_arg, g.padding, g.stride_arg, **kw)
    check_type(got, xin)
    expected = np_im2col(batched(x, g), g, value)
    assert_close(got, unbatch(expected, g), exact=True, what=f"{rank}-D im2col vs np.pad oracle, {g}")
    if np.dtype(dtype) in map(np.dtype, FLOATS) and g.torch_ok:
        t = torch_im2col(torch.from_numpy(batched(x, g)), g, value)
        assert_close(got, unbatch(t, g), exact=True, what=f"{rank}-D im2col vs torch F.pad + unfold, {g}")
    if reference_applies(g, value):
        ref = reference.im2col(batched(x, g), g.k, g.d, g.pads, g.s)
        assert_close(got, unbatch(ref, g), exact=True, what=f"im2col vs reference, {g}")


@by_rank(IM2COL_FACTORS, IM2COL_CAPS, dtype=lambda r: st.sampled_from(FLOATS),
         reduce=lambda r: st.sampled_from(["sum", "mean"]), data=lambda r: st.data())  # fmt: skip
def test_col2im(rank, dtype, reduce, data):
    g = data.draw(geometries(rank))
    L = int(np.prod(g.out))
    shape = (g.C * g.taps, L) if g.unbatched else (g.N, g.C * g.taps, L)
    cols = random(shape, dtype, seed=L * 7 + g.C)
    cin = as_input(data.draw, cols)
    # the number of spatial axes comes from output_size or kernel_size (a 1-D kernel_size is a sequence)
    choices = [tuple(g.size), list(g.size), np.array(g.size)]
    if rank == 1:
        choices.append(g.size[0])
    size_arg = data.draw(st.sampled_from(choices))
    kw = {} if g.mode == "zeros" and data.draw(st.booleans()) else dict(padding_mode=g.mode)
    if reduce != "sum" or data.draw(st.booleans()):
        kw["reduce"] = reduce
    got = im2col.col2im(cin, size_arg, g.kernel_arg, g.dilation_arg, g.padding, g.stride_arg, **kw)
    check_type(got, cin)
    expected = np_col2im(batched(cols, g), g, reduce)
    assert_close(got, unbatch(expected, g), what=f"{rank}-D col2im ({reduce}) vs np.add.at oracle, {g}")
    if reference_applies(g) and reduce == "sum":
        ref = reference.col2im(batched(cols, g), g.size, g.k, g.d, g.pads, g.s)
        assert_close(got, unbatch(ref, g), what=f"col2im vs reference, {g}")
        # torch's fold takes symmetric padding only: fold onto the padded size, then crop.
        (t, b), (left, right) = g.pads
        full = F.fold(torch.from_numpy(cols), (g.size[0] + t + b, g.size[1] + left + right), g.k, dilation=g.d,
                      stride=g.s)  # fmt: skip
        assert_close(got, full[..., t : t + g.size[0], left : left + g.size[1]], what=f"col2im vs fold, {g}")
    if g.torch_ok:  # the gradient of F.pad + unfold with respect to the input is the sum fold
        xt = torch.zeros((max(g.N, 1) if not g.unbatched else 1, g.C, *g.size), dtype=torch.from_numpy(cols).dtype,
                         requires_grad=True)  # fmt: skip
        y = torch_im2col(xt, g)
        c = torch.from_numpy(batched(cols, g))
        if c.shape[0] == 0:
            return
        y.backward(c)
        folded = xt.grad
        if reduce == "mean":
            ones = torch.zeros_like(xt, requires_grad=True)
            torch_im2col(ones, g).backward(torch.ones_like(y))
            folded = folded / ones.grad.clamp(min=1)
        assert_close(got, unbatch(folded, g), what=f"{rank}-D col2im ({reduce}) vs autograd of F.pad + unfold, {g}")


@by_rank({1: 2 / 3, 2: 2 / 3, 3: 2 / 3}, {1: 1667, 2: 1667, 3: 1667}, data=lambda r: st.data())
def test_col2im_mean_inverts_im2col_where_covered(rank, data):
    g = data.draw(nd_geometries(rank, modes=("zeros", "reflect", "replicate", "circular")))
    x = random(g.shape, np.float64, seed=5)
    kw = dict(padding_mode=g.mode)
    cols = im2col.im2col(x, g.kernel_arg, g.dilation_arg, g.padding, g.stride_arg, **kw)
    back = im2col.col2im(
        cols, tuple(g.size), g.kernel_arg, g.dilation_arg, g.padding, g.stride_arg, reduce="mean", **kw
    )
    covered = np_col2im(np.ones((1, *np_im2col(np.ones((1, 1, *g.size)), g).shape[1:])), g, "sum")[0, 0] > 0
    assert_close(back, np.where(covered, x, 0), op="mean", what="col2im mean of im2col")


# --- valid: conv1d / conv2d / conv3d ----------------------------------------------------------------


@st.composite
def conv_setups(draw, rank: int, *, transpose: bool = False):
    """(geometry with C channels per group, groups, output channels, dtype, with bias). In 2-D the wider
    2-D geometries (per-side padding only without ``transpose``) with 'same'/'valid' words drawn."""
    if rank == 2:
        g = draw(geometries_2d(per_side=not transpose, max_c=3))
        if not transpose and g.s == (1, 1) and draw(st.integers(0, 5)) == 0:
            g = NdGeo(**{**g.__dict__, "padding": "same"})  # (pads unused: only torch and the shape check)
        elif not transpose and g.pads == ((0, 0), (0, 0)) and draw(st.booleans()):
            g = NdGeo(**{**g.__dict__, "padding": "valid"})
        k_range = (1, 3)
    else:
        g = draw(nd_geometries(rank, modes=("zeros",), max_c=2, for_conv=True))
        k_range = (1, 2)
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    K = groups * draw(st.integers(*k_range))
    dtype = draw(st.sampled_from(FLOATS))
    return g, groups, K, dtype, draw(st.booleans())


def conv_kwargs(g: NdGeo, groups: int):
    return dict(stride=g.stride_arg, padding=g.padding, dilation=g.dilation_arg, groups=groups)


def conv1d_pointwise_bug(g: NdGeo, C: int) -> bool:
    """The geometry of a known wrong result (see the regression tests at the bottom): a one-tap kernel, one output
    position, several channels and a padded input longer than one sample."""
    return g.n == 1 and g.k == (1,) and g.out == (1,) and C >= 2 and g.size[0] + sum(g.pads[0]) > 1


def torch_conv(n, x, w, b, g: NdGeo, groups):
    """F.conv1d/2d/3d with our padding argument translated (per-side: padded by hand)."""
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    if isinstance(g.padding, str):
        return fn(x, w, b, stride=g.s, padding=g.padding, dilation=g.d, groups=groups)
    flat = [p for pair in reversed(g.pads) for p in pair]
    return fn(F.pad(x, flat), w, b, stride=g.s, padding=0, dilation=g.d, groups=groups)


# The 2-D tests had 1× the profile's examples, the N-d ones 2× with the rank drawn from [1, 3].
CONV_FACTORS = {1: 1.0, 2: 1.0, 3: 1.0}
CONV_CAPS = {1: 2500, 3: 2500}


@by_rank(CONV_FACTORS, CONV_CAPS, setup=conv_setups, data=lambda r: st.data())
def test_conv(rank, setup, data):
    g, groups, K, dtype, with_bias = setup
    C = g.C * groups
    assume(not conv1d_pointwise_bug(g, C))  # pinned by test_bug_conv_1x1_kernel_one_output_many_channels
    x = random((C, *g.size) if g.unbatched else (g.N, C, *g.size), dtype, seed=1)
    w = random((K, g.C, *g.k), dtype, seed=2)
    b = random((K,), dtype, seed=3) if with_bias else None
    conv = getattr(im2col, f"conv{rank}d")
    xin = as_input(data.draw, x)
    bias = None if b is None else as_input(data.draw, b)
    got = conv(xin, as_input(data.draw, w), bias, **conv_kwargs(g, groups))
    check_type(got, xin)
    tb = None if b is None else torch.from_numpy(b)
    expected = torch_conv(rank, torch.from_numpy(batched(x, g)), torch.from_numpy(w), tb, g, groups)
    assert_close(got, unbatch(expected, g), what=f"conv{rank}d vs torch, {g}, groups={groups}")
    if is_same(g):
        assert tuple(got.shape[-rank:]) == g.size
    elif reference_applies(g):
        ref = reference.conv2d(batched(x, g), w, b, g.s, g.pads, g.d, groups)
        assert_close(got, unbatch(ref, g), what=f"conv2d vs reference, {g}, groups={groups}")


@by_rank(CONV_FACTORS, CONV_CAPS, setup=conv_setups, data=lambda r: st.data())
def test_conv_backward(rank, setup, data):
    g, groups, K, dtype, _ = setup
    C = g.C * groups
    x = random((C, *g.size) if g.unbatched else (g.N, C, *g.size), dtype, seed=4)
    w = random((K, g.C, *g.k), dtype, seed=5)
    tx = torch.from_numpy(batched(x, g)).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    tb = torch.zeros(K, dtype=tw.dtype, requires_grad=True)
    ty = torch_conv(rank, tx, tw, tb, g, groups)
    gy = random(tuple(ty.shape), dtype, seed=6)
    ty.backward(torch.from_numpy(gy))
    backward = getattr(im2col, f"conv{rank}d_backward")
    xin = as_input(data.draw, x)
    gx, gw, gb = backward(as_input(data.draw, unbatch(gy, g)), xin, as_input(data.draw, w), **conv_kwargs(g, groups))
    for got in (gx, gw, gb):
        check_type(got, xin)
    assert_close(gx, unbatch(tx.grad, g), what=f"conv{rank}d grad_input vs autograd, {g}")
    assert_close(gw, tw.grad, what=f"conv{rank}d grad_weight vs autograd, {g}")
    assert_close(gb, tb.grad, what=f"conv{rank}d grad_bias vs autograd, {g}")
    if reference_applies(g) and not is_same(g) and g.shape[0]:  # the reference's reshape(N, K, -1) needs N > 0
        rx, rw, rb = reference.conv2d_backward(gy, batched(x, g), w, g.s, g.pads, g.d, groups)
        assert_close(gx, unbatch(rx, g), what="grad_input vs reference")
        assert_close(gw, rw, what="grad_weight vs reference")
        assert_close(gb, rb, what="grad_bias vs reference")


@by_rank({2: 1.0}, setup=lambda r: conv_setups(r, transpose=True), data=lambda r: st.data())
def test_conv_transpose(rank, setup, data):
    g, groups, c_out, dtype, with_bias = setup
    # output_padding below max(stride, dilation), per axis
    op = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(g.s, g.d))
    pad = tuple(a for a, _ in g.pads)
    size = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1
            for n, s, p, d, k, o in zip(g.size, g.s, pad, g.d, g.k, op)]  # fmt: skip
    C = g.C * groups
    x = random((C, *g.size) if g.unbatched else (g.N, C, *g.size), dtype, seed=7)
    w = random((C, c_out // groups, *g.k), dtype, seed=8)
    b = random((c_out,), dtype, seed=9) if with_bias else None
    kw = dict(stride=g.s, padding=pad, output_padding=op, groups=groups, dilation=g.d)
    conv_transpose = getattr(im2col, f"conv_transpose{rank}d")
    xin = as_input(data.draw, x)
    if min(size) < 1:  # refused, as torch refuses it (tests/test_autograd_functional.py)
        with pytest.raises(
            ValueError, match=rf"conv_transpose{rank}d\(\): output (height|width) = .* must be at least 1"
        ):
            conv_transpose(xin, w, b, **kw)
        return
    got = conv_transpose(xin, as_input(data.draw, w), None if b is None else as_input(data.draw, b), **kw)
    check_type(got, xin)
    torch_fn = getattr(F, f"conv_transpose{rank}d")
    expected = torch_fn(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kw)
    assert_close(got, expected, what=f"conv_transpose{rank}d vs torch")
    ref = reference.conv_transpose2d(batched(x, g), w, b, g.s, pad, op, groups, g.d)
    assert_close(got, unbatch(ref, g), what="conv_transpose2d vs reference")


@scaled(2)
@given(
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    k=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    s=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    p=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    d=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    same=st.booleans(),
)
def test_output_size(size, k, s, p, d, same):
    padding = "same" if same and s == (1, 1) else p
    x, w = torch.zeros(1, 1, *size), torch.zeros(1, 1, *k)
    try:
        expected = tuple(F.conv2d(x, w, stride=s, padding=padding, dilation=d).shape[2:])
    except RuntimeError:  # torch: "Kernel size can't be greater than actual input size"
        with pytest.raises(ValueError, match=r"output_size\(\): output (height|width) = .* must be at least 1"):
            im2col.output_size(size, k, s, padding, d)
        return
    assert im2col.output_size(size, k, s, padding, d) == expected
    assert im2col.output_size(size, k, stride=s, padding=padding, dilation=d) == expected


# --- invalid configurations: 2-D -----------------------------------------------------------------------

# Values that are never a valid int-or-pair of positive ints (kernel_size, stride, dilation), with
# the exception the API documents for them.
BAD_POSITIVE_PAIRS = [
    0, -1, -(2**63), (1, 0), (0, 0), (2, -3), (1,), (), (1, 2, 3), [1, 1, 1],
    1.0, 2.5, float("nan"), (1, 1.0), (1.5, 2), True, False, (True, 1), np.bool_(True), np.float64(2),
    "3", "same", None, (1, None), [[1, 1], [1, 1]], {1: 2}, 1j, b"\x01",
]  # fmt: skip
# The same for padding (non-negative; per-side pairs and 'valid'/'same' are legal).
BAD_PADDINGS = [
    -1, (-1, 0), (0, -(2**40)), ((0, -1), (0, 0)), ((1,), (1, 1)), ((1, 1, 1), (0, 0)), (1, 2, 3),
    ((1, 1), (1, 1), (1, 1)), 1.5, (1, 1.0), ((1, 1.0), (0, 0)), True, (False, 0), "full", "SAME", "",
    None, (1, "1"), ((1, 1), 2), [1.0, 1.0], np.float32(1), 1j,
]  # fmt: skip
BAD_GROUPS_2D = [0, -1, -(2**63), 1.0, True, "1", None, (1,), np.float64(1), 2**70]
BAD_INPUTS = [
    None, 3, 2.0, "x", [[[[1.0]]]], (1, 2), {"a": 1}, np.float32(1.0), np.zeros(()), np.zeros(5),
    np.zeros((4, 4)), np.zeros((1, 1, 1, 1, 4, 4)), np.zeros((1, 0, 4, 4)), np.zeros((1, 1, 0, 4)),
    np.zeros((0, 4, 0)), np.zeros((1, 1, 4, 4), dtype=object), np.zeros((1, 1, 4, 4), dtype="U3"),
    np.zeros((1, 1, 4, 4), dtype="datetime64[s]"), np.zeros((1, 1, 4, 4), dtype=[("a", "f4")]),
]  # fmt: skip


def bad_tensors():
    """Tensors no op accepts: on the meta device, sparse, MKL-DNN, dtypes NumPy has no equivalent for."""
    return [
        torch.zeros(1, 1, 4, 4, device="meta"),
        torch.zeros(1, 1, 4, 4).to_sparse(),
        torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16),
        torch.zeros(1, 1, 4, 4, dtype=torch.float8_e4m3fn),
        torch.zeros(1, 1, 4, 4).to_mkldnn(),
        torch.zeros(2, 3).to_sparse_csr(),
    ]


@dataclass
class Call:
    """A call to make, the argument that was made bad, and the names one of which the message must contain."""

    fn: str
    kwargs: dict
    arg: str
    names: tuple[str, ...]

    def __call__(self):
        return getattr(im2col, self.fn)(**self.kwargs)


def _msg_names(arg: str) -> tuple[str, ...]:
    # Shape interactions name every argument involved; accept any of the ones that took part.
    return (arg, "kernel_size", "output_size", "input", "weight", "padding", "stride", "dilation", "groups",
            "output_padding", "channels", "grad_output", "bias", "would need")  # fmt: skip


@st.composite
def invalid_calls_2d(draw):
    """A valid 2-D call with one argument replaced by a bad value."""
    fn = draw(st.sampled_from(["im2col", "col2im", "conv2d", "conv2d_backward", "conv_transpose2d", "output_size"]))
    dtype = draw(st.sampled_from(FLOATS))
    N, C, H, W, k = 2, 2, 6, 5, 3
    x = np.ones((N, C, H, W), dtype)
    w = np.ones((4, C, k, k), dtype)
    if fn == "im2col":
        base = dict(input=x, kernel_size=k, dilation=1, padding=1, stride=1)
    elif fn == "col2im":
        base = dict(input=np.ones((N, C * k * k, H * W), dtype), output_size=(H, W), kernel_size=k,
                    dilation=1, padding=1, stride=1)  # fmt: skip
    elif fn == "conv2d":
        base = dict(input=x, weight=w, bias=np.ones(4, dtype), stride=1, padding=1, dilation=1, groups=1)
    elif fn == "conv2d_backward":
        base = dict(grad_output=np.ones((N, 4, H, W), dtype), input=x, weight=w, stride=1, padding=1,
                    dilation=1, groups=1)  # fmt: skip
    elif fn == "conv_transpose2d":
        base = dict(input=x, weight=np.ones((C, 4, k, k), dtype), bias=np.ones(4, dtype), stride=2,
                    padding=1, output_padding=1, groups=1, dilation=1)  # fmt: skip
    else:
        base = dict(input_size=(H, W), kernel_size=k, stride=1, padding=1, dilation=1)
    assert getattr(im2col, fn)(**base) is not None  # the base call is valid

    arg = draw(st.sampled_from(sorted(base)))
    pool = {
        "kernel_size": BAD_POSITIVE_PAIRS + [2**40, (1, 2**63), 10**30],  # kernels larger than the padded input
        "stride": BAD_POSITIVE_PAIRS,
        "dilation": BAD_POSITIVE_PAIRS + [(1, 2**40)],  # spans more than the padded input (kernel 3)
        "padding": BAD_PADDINGS + ([] if fn == "conv_transpose2d" else [2**62, ((0, 0), (0, 2**100))]),
        "groups": BAD_GROUPS_2D + [2, 3],  # 3 does not divide the channels; for 2 the channels change below
        "input_size": BAD_POSITIVE_PAIRS + [1, (6, 2)],
        "output_size": BAD_POSITIVE_PAIRS + [(H + 3, W), (H, W - 1), 4, 2**40],  # L would not match
        "output_padding": [-1, (0, -1), 2, (1, 2), (5, 0), 1.0, True, "1", None, (1,), (0, 0, 0)],
        "bias": [
            np.ones(3, dtype),
            np.ones((4, 1), dtype),
            np.ones(4, np.float16),
            np.ones(4, np.int64),
            np.ones(4, np.float32 if dtype == np.float64 else np.float64),
            [1.0] * 4,
            1.0,
            "b",
        ],
        "weight": [
            np.ones((4, C, k), dtype),
            np.ones((4, C + 1, k, k), dtype),
            np.ones((4, C, 0, k), dtype),
            np.ones((0, C, k, k), dtype),
            np.ones((4, C, k, k), np.int32),
            np.ones((4, C, k, k, 1), dtype),
            np.ones((4, C, k, k), np.float32 if dtype == np.float64 else np.float64),
            [1.0],
            None,
        ],
        "grad_output": [
            np.ones((N, 4, H, W + 1), dtype),
            np.ones((N, 4, H * W), dtype),
            np.ones((4, H, W), dtype),
            np.ones((N, 4, H, W), np.float32 if dtype == np.float64 else np.float64),
            np.ones((N, 4, H, W), np.int64),
            None,
            0.0,
        ],
        "input": BAD_INPUTS
        + bad_tensors()
        + [x.astype(np.int32), x.astype(np.float16), x.astype(bool), np.ones((N, C + 1, H, W), dtype)],
    }[arg]
    value = draw(st.sampled_from(pool))
    kwargs = {**base, arg: value}
    if arg == "groups" and value == 2 and not isinstance(value, bool) and fn != "conv_transpose2d":
        kwargs["weight"] = np.ones((3, 1, k, k), dtype)  # 3 output channels: not divisible by 2
        if fn == "conv2d":
            kwargs["bias"] = np.ones(3, dtype)
        else:
            kwargs["grad_output"] = np.ones((N, 3, H, W), dtype)
    if arg == "groups" and value == 2 and not isinstance(value, bool) and fn == "conv_transpose2d":
        kwargs["input"] = np.ones((N, 3, H, W), dtype)
        kwargs["weight"] = np.ones((3, 2, k, k), dtype)
    if arg == "input" and fn == "col2im" and isinstance(value, np.ndarray) and value.ndim == 4:
        kwargs["input"] = np.ones((N, C * k * k + 1, H * W), dtype)  # rows not divisible by kh·kw
    if fn == "col2im" and arg == "input" and isinstance(value, np.ndarray) and value.dtype == bool:
        kwargs["input"] = np.ones((N, C * k * k, H * W + 1), dtype)  # L does not match
    if fn == "im2col" and arg == "input" and isinstance(value, np.ndarray) and value.dtype.kind in "bif":
        # im2col moves any of these, so turn the draw into one it must refuse: a dtype or a size
        if value.ndim == 4:
            kwargs["input"], kwargs["padding"] = np.ones((N, C, 1, 1), value.dtype), 0
    if fn == "output_size" and arg == "input_size" and type(value) in (int, tuple) and value in (1, (6, 2)):
        kwargs["kernel_size"] = 5  # the kernel does not fit
    if draw(st.booleans()) and arg not in ("input", "input_size") and fn != "output_size":
        # also through a tensor input: the same checks must hold
        inp = kwargs["input"]
        if isinstance(inp, np.ndarray) and inp.dtype in (np.float32, np.float64):
            kwargs["input"] = torch.from_numpy(inp)
    # positional for the leading arrays, keywords for the rest, as users write them
    return Call(fn, kwargs, arg, _msg_names(arg))


def test_every_mutation_pool_value_is_exercised_at_least_once():
    """The pools above are big; run every kernel_size/stride/padding value once on every op, exhaustively."""
    x = np.ones((1, 2, 6, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    cols = np.ones((1, 18, 30), np.float32)
    for name, pool in (("kernel_size", BAD_POSITIVE_PAIRS), ("stride", BAD_POSITIVE_PAIRS),
                       ("dilation", BAD_POSITIVE_PAIRS), ("padding", BAD_PADDINGS)):  # fmt: skip
        for v in pool:
            calls = [
                lambda v=v: im2col.im2col(x, **{"kernel_size": 3, "padding": 1, name: v}),
                lambda v=v: im2col.col2im(cols, (6, 5), **{"kernel_size": 3, "padding": 1, name: v}),
                lambda v=v: im2col.output_size((6, 5), **{"kernel_size": 3, "padding": 1, name: v}),
            ]
            if name != "kernel_size":
                calls += [
                    lambda v=v: im2col.conv2d(x, w, **{"padding": 1, name: v}),
                    lambda v=v: im2col.conv2d_backward(
                        np.ones((1, 3, 6, 5), np.float32), x, w, **{"padding": 1, name: v}
                    ),
                    lambda v=v: im2col.conv_transpose2d(x, w.transpose(1, 0, 2, 3).copy(), **{name: v}),
                ]
            for c in calls:
                with pytest.raises((ValueError, TypeError)) as info:
                    c()
                msg = str(info.value)
                # a tuple of another length may be read as another number of spatial axes, and then
                # the input's dimensions are what is wrong
                assert any(n in msg for n in _msg_names(name)), f"{name}={v!r}: {msg}"


# --- invalid configurations: 1-D and 3-D -----------------------------------------------------------------------


def bad_sizes(n: int):
    """Never a valid int-or-n-tuple of positive ints (kernel_size, stride, dilation) for ``n`` axes."""
    return [
        0, -1, -(2**63), (0,) * n, (1,) * (n - 1) + (0,), (2,) * (n - 1) + (-3,), (1,) * (n + 1), (), [1] * (n + 2),
        1.0, 2.5, float("nan"), (1.0,) * n, (1,) * (n - 1) + (1.5,), True, False, (True,) * n, np.bool_(True),
        np.float64(2), "3", "same", None, (None,) * n, [[1] * n], {1: 2}, 1j, b"\x01", np.array([1.0] * n),
        np.array([[1] * n]),
    ]  # fmt: skip


def bad_paddings(n: int):
    return [
        -1, (-1,) * n, (0,) * (n - 1) + (-(2**40),), ((0, -1),) * n, ((1,),) * n, ((1, 1, 1),) * n, (1,) * (n + 1),
        ((1, 1),) * (n + 1), 1.5, (1.0,) * n, ((1, 1.0),) * n, True, (False,) * n, "full", "SAME", "", None,
        (1,) * (n - 1) + ("1",), [1.0] * n, np.float32(1), 1j, np.array([[1, 1]] * n, dtype=float),
    ]  # fmt: skip


BAD_MODES = ["mirror", "wrap", "edge", "symmetric", "Zeros", "REFLECT", "", " zeros", None, 1, 0, True,
             ["zeros"], b"zeros", ("reflect",)]  # fmt: skip
BAD_REDUCE = ["max", "Mean", "SUM", "", "prod", None, 1, True, ["sum"], b"sum", np.str_("avg")]
BAD_PAD_VALUE_TYPES = ["1", "0", None, [1], (1.0,), np.array(1.0), np.array([0.0]), Fraction(1, 2), b"\x00", {}]
BAD_GROUPS_ND = [0, -1, -(2**63), 1.0, True, "1", None, (1,), np.float64(1), 2**70, 3]


def bad_inputs(n: int):
    sp = (4,) * n
    return [
        None, 3, 2.0, "x", [[[1.0] * 4]], (1, 2), {"a": 1}, np.float32(1.0), np.zeros(()), np.zeros(5),
        np.zeros((1, 1, 1, 1, 1, 1, 4)), np.zeros((1, 0, *sp)), np.zeros((1, 2, *sp[:-1], 0)),
        np.zeros((1, 2, *sp), dtype=object), np.zeros((1, 2, *sp), dtype="U3"),
        np.zeros((1, 2, *sp), dtype="datetime64[s]"), np.zeros((1, 2, *sp), dtype=[("a", "f4")]),
        torch.zeros(1, 2, *sp, device="meta"), torch.zeros(1, 2, *sp).to_sparse(),
        torch.zeros(1, 2, *sp, dtype=torch.bfloat16), torch.zeros(1, 2, *sp, dtype=torch.float8_e4m3fn),
    ]  # fmt: skip


NAMES = ("kernel_size", "output_size", "input", "weight", "padding", "stride", "dilation", "groups", "channels",
         "grad_output", "bias", "padding_mode", "pad_value", "reduce", "would need", "output_padding")  # fmt: skip


def _base(fn: str, n: int, dtype, mode: str):
    """A valid call of ``fn`` for ``n`` spatial axes (the caller checks it runs)."""
    size = {1: (7,), 3: (5, 4, 6)}[n]
    k = {1: (3,), 3: (3, 2, 3)}[n]
    N, C, K = 2, 2, 4
    x = np.ones((N, C, *size), dtype)
    if fn == "im2col":
        pv = 1 if mode == "constant" else 0
        return dict(input=x, kernel_size=k, dilation=1, padding=(1,) * n, stride=1, padding_mode=mode, pad_value=pv)
    if fn == "col2im":
        L = int(np.prod([(s + 2 - (kk - 1) - 1) + 1 for s, kk in zip(size, k)]))
        return dict(input=np.ones((N, C * int(np.prod(k)), L), np.float64 if dtype not in FLOATS else dtype),
                    output_size=size, kernel_size=k, dilation=1, padding=(1,) * n, stride=1, padding_mode=mode,
                    reduce="mean" if mode == "zeros" else "sum")  # fmt: skip
    if fn.startswith("conv_transpose"):  # weight (C_in, C_out/groups, *k)
        return dict(input=x, weight=np.ones((C, K, *k), dtype), bias=np.ones(K, dtype), stride=1, padding=(1,) * n,
                    output_padding=0, groups=1, dilation=1)  # fmt: skip
    w = np.ones((K, C, *k), dtype)
    if fn in ("conv1d", "conv3d"):
        return dict(input=x, weight=w, bias=np.ones(K, dtype), stride=1, padding=(1,) * n, dilation=1, groups=1)
    out = tuple(s + 2 - kk + 1 for s, kk in zip(size, k))
    return dict(grad_output=np.ones((N, K, *out), dtype), input=x, weight=w, stride=1, padding=(1,) * n,
                dilation=1, groups=1)  # fmt: skip


@st.composite
def invalid_calls_nd(draw, n: int):
    """A valid 1-D or 3-D call (``n``) with one argument replaced by a bad value."""
    fn = draw(st.sampled_from(["im2col", "col2im", f"conv{n}d", f"conv{n}d_backward", f"conv_transpose{n}d"]))
    dtype = draw(
        st.sampled_from(FLOATS + ([np.int8, np.uint8, np.int32, np.bool_, np.complex64] if fn == "im2col" else []))
    )
    mode = draw(st.sampled_from(MODES))
    base = _base(fn, n, dtype, mode)
    assert getattr(im2col, fn)(**base) is not None  # the base call is valid
    other_float = np.float32 if dtype == np.float64 else np.float64
    arg = draw(st.sampled_from(sorted(base)))
    sp = {1: (7,), 3: (5, 4, 6)}[n]  # the spatial size of _base's input / col2im's output
    k = {1: (3,), 3: (3, 2, 3)}[n]
    gy_shape = base["grad_output"].shape if "grad_output" in base else (1,)
    pool = {
        "kernel_size": bad_sizes(n) + [2**40, (1,) * (n - 1) + (2**63,), 10**30],
        "stride": bad_sizes(n),
        "dilation": bad_sizes(n) + [(1,) * (n - 1) + (2**40,), 2**63],  # spans more than the padded input
        "padding": bad_paddings(n),
        "padding_mode": BAD_MODES,
        "reduce": BAD_REDUCE,
        "groups": BAD_GROUPS_ND,
        # (a huge output_size that does not match L: see the regression tests at the bottom)
        "output_size": bad_sizes(n) + [tuple(s + 1 for s in sp), tuple(sp[:-1]) + (sp[-1] + 3,)],
        "bias": [
            np.ones(3, dtype),
            np.ones((4, 1), dtype),
            np.ones(4, np.float16),
            np.ones(4, np.int64),
            np.ones(4, other_float),
            [1.0] * 4,
            1.0,
            "b",
        ],
        "weight": [
            np.ones((4, 2, 3), dtype) if n == 3 else np.ones((4, 2, 3, 3), dtype),  # wrong ndim
            np.ones((4, 3, *k), dtype),
            np.ones((0, 2, *k), dtype),
            np.ones((4, 2, *((0,) * n)), dtype),
            np.ones((4, 2, *k), np.int32),
            np.ones((4, 2, *k), other_float),
            [1.0],
            None,
            np.ones((4, 2, *((12,) * n)), dtype),
        ],  # larger than the padded input
        "grad_output": [
            np.ones((2, 4, *((1,) * n)), dtype),
            np.ones((2, 4), dtype),
            np.ones((4, *((1,) * n)), dtype),
            np.ones(gy_shape, other_float),
            np.ones(gy_shape, np.int64),
            None,
            0.0,
        ],
        "output_padding": [1, -1, (0,) * (n + 1), (1,) * n, 1.5, "0", None, (2**63,) * n, True],
        "pad_value": BAD_PAD_VALUE_TYPES + [1, -1, 0.5, float("nan"), True],  # non-zero with a non-constant mode
        "input": bad_inputs(n),
    }[arg]
    if fn.startswith("conv_transpose") and arg == "weight":  # (C_in, C_out/groups, *k): a large kernel is valid
        pool = [pool[0], np.ones((3, 4, *k), dtype), np.ones((0, 4, *k), dtype), np.ones((2, 0, *k), dtype),
                np.ones((2, 4, *((0,) * n)), dtype), np.ones((2, 4, *k), np.int32), np.ones((2, 4, *k), other_float),
                [1.0], None]  # fmt: skip
    value = draw(st.sampled_from(pool))
    kwargs = {**base, arg: value}
    if arg == "pad_value" and not isinstance(value, (str, bytes, list, tuple, dict, np.ndarray, Fraction, type(None))):
        # a number: it must be refused, either because the mode does not read it or the dtype cannot hold it
        if draw(st.booleans()):
            kwargs["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        else:
            kwargs["padding_mode"] = "constant"
            kind = np.dtype(dtype).kind
            kwargs["pad_value"] = draw(st.sampled_from({
                "f": [2**1100, 10**400, Fraction(1, 3)],
                "c": [2**1100, "1j"],
                "b": [2, -1, 0.5, float("nan")],  # (complex values: see the ComplexWarning regression test below)
                "i": [0.5, float("nan"), float("inf"), 2**70, -(2**70), 1.5, 300 if dtype == np.int8 else 2**40],
                "u": [-1, 256, 0.5, float("nan"), np.int64(-5)],
            }[kind]))  # fmt: skip
    if arg == "padding" and draw(st.integers(0, 3)) == 0:
        kwargs["padding"], kwargs["stride"] = "same", 2  # 'same' needs stride 1
    elif arg == "padding" and fn in ("im2col", "col2im") and draw(st.integers(0, 3)) == 0:
        kwargs["padding_mode"] = "reflect"  # reflect padding as large as the input: refused, as torch
        kwargs["padding"] = draw(
            st.sampled_from([max(sp), tuple(sp), tuple((0, s) for s in sp), tuple((s, 0) for s in sp)])
        )
        if fn == "col2im":
            kwargs.pop("reduce")
    if draw(st.booleans()) and arg != "input":
        inp = kwargs["input"]
        if isinstance(inp, np.ndarray):
            kwargs["input"] = torch.from_numpy(inp)
    return Call(fn, kwargs, arg, NAMES)


def _check_refused(call: Call):
    try:
        call()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert msg.startswith(f"{call.fn}(): "), f"message does not name the function: {msg!r}"
        assert any(name in msg for name in call.names), f"message names none of {call.names}: {msg!r}"
    else:
        pytest.fail(f"{call.fn}(**{call.kwargs!r}) did not raise (mutated {call.arg})")


# The 2-D test had 4× the profile's examples; the N-d one 6× (at most 20000), half of them 1-D.
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
@by_rank(
    {1: 3.0, 2: 4.0, 3: 3.0}, {1: 10000, 3: 10000}, call=lambda r: invalid_calls_2d() if r == 2 else invalid_calls_nd(r)
)
def test_invalid_arguments_raise_value_or_type_error(rank, call):
    _check_refused(call)


@pytest.mark.parametrize("fn, n", [("im2col", 1), ("im2col", 3), ("col2im", 1), ("col2im", 3), ("conv1d", 1),
                                   ("conv1d_backward", 1), ("conv3d", 3), ("conv3d_backward", 3)])  # fmt: skip
def test_every_bad_size_and_padding_is_refused_by_every_nd_op(fn, n):
    """The pools above, exhaustively, on every op and every padding mode that applies."""
    modes = MODES if fn in ("im2col", "col2im") else [None]
    for mode in modes:
        base = _base(fn, n, np.float64, mode)
        if mode is None:
            pass
        elif fn == "col2im":
            base["reduce"] = "sum"
        for arg, pool in (("stride", bad_sizes(n)), ("dilation", bad_sizes(n)), ("padding", bad_paddings(n)),
                          ("kernel_size", bad_sizes(n) if fn in ("im2col", "col2im") else []),
                          ("padding_mode", BAD_MODES if mode else []), ("reduce", BAD_REDUCE if fn == "col2im" else []),
                          ("groups", BAD_GROUPS_ND if fn.startswith("conv") else []),
                          ("input", bad_inputs(n))):  # fmt: skip
            for v in pool:
                _check_refused(Call(fn, {**base, arg: v}, arg, NAMES))


# --- regressions: each of these failed once -------------------------------------------------------


@pytest.mark.parametrize("big", [2**63, 2**64, 2**70])
def test_huge_stride_or_dilation_that_still_fits_is_computed(big):
    """A stride or dilation ≥ 2**63 with one window per axis (or a 1×1 kernel) is a valid geometry:
    computed like the reference, not an OverflowError from the kernels' 64-bit arguments (this
    failed before e7dd96f)."""
    x, w = np.arange(16.0).reshape(1, 1, 4, 4), np.full((1, 1, 1, 1), 2.0)
    one = ((0, 0), (0, 0))
    assert_close(im2col.im2col(x, 1, stride=big), reference.im2col(x, (1, 1), (1, 1), one, (big, big)), exact=True)
    assert_close(im2col.im2col(x, 1, dilation=big), reference.im2col(x, (1, 1), (big, big), one, (1, 1)), exact=True)
    assert_close(im2col.col2im(np.ones((1, 1, 1)), 4, 1, stride=big),
                 reference.col2im(np.ones((1, 1, 1)), (4, 4), (1, 1), (1, 1), one, (big, big)))  # fmt: skip
    assert_close(im2col.conv2d(x, w, stride=big), reference.conv2d(x, w, None, (big, big), one, (1, 1), 1))
    assert_close(im2col.conv2d(x, w, dilation=big), 2 * x)
    gx, gw, gb = im2col.conv2d_backward(np.ones((1, 1, 1, 1)), x, w, stride=big)
    rx, rw, rb = reference.conv2d_backward(np.ones((1, 1, 1, 1)), x, w, (big, big), one, (1, 1), 1)
    for a, e in ((gx, rx), (gw, rw), (gb, rb)):
        assert_close(a, e)
    assert_close(im2col.conv_transpose2d(x, w, dilation=big), 2 * x)
    assert_close(im2col.conv_transpose2d(x[..., :1, :1], w, stride=big), 2 * x[..., :1, :1])


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors is in prototype stage:UserWarning")
@pytest.mark.parametrize("fn", ["im2col", "conv2d"])
def test_nested_tensor_is_refused_with_type_error(fn):
    """A (non-jagged) nested tensor has layout torch.strided; .numpy() on it raised RuntimeError."""
    t = torch.nested.nested_tensor([torch.zeros(1, 4, 4), torch.zeros(1, 3, 3)])
    args = (t, 3) if fn == "im2col" else (t, torch.zeros(1, 1, 3, 3))
    with pytest.raises((TypeError, ValueError), match=rf"{fn}\(\): argument 'input'"):
        getattr(im2col, fn)(*args)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
@pytest.mark.parametrize("fn", ["im2col", "col2im", "conv2d", "conv2d_backward", "conv_transpose2d"])
def test_every_bad_input_is_refused_by_every_op(fn):
    """The whole pool of bad inputs, exhaustively (the Hypothesis test samples it)."""
    w = np.ones((4, 2, 3, 3), np.float32)
    call = {
        "im2col": lambda v: im2col.im2col(v, 3, padding=1),
        "col2im": lambda v: im2col.col2im(v, (6, 5), 3, padding=1),
        "conv2d": lambda v: im2col.conv2d(v, w, padding=1),
        "conv2d_backward": lambda v: im2col.conv2d_backward(np.ones((2, 4, 6, 5), np.float32), v, w, padding=1),
        "conv_transpose2d": lambda v: im2col.conv_transpose2d(v, np.ones((2, 4, 3, 3), np.float32)),
    }[fn]
    for v in BAD_INPUTS + bad_tensors():
        with pytest.raises((ValueError, TypeError), match=rf"^{fn}\(\): .*input") as info:
            call(v)
        assert info.type in (ValueError, TypeError), (v, info.value)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("fn", ["im2col", "col2im"])
def test_reflect_padding_as_large_as_the_input_is_refused_like_torch(fn, n):
    """torch's F.pad refuses reflect padding ≥ the size; so do we (and accept size − 1)."""
    size = (3,) * n
    x = np.ones((1, 1, *size))
    for pads in [((3, 0),) * n, ((0, 3),) + ((0, 0),) * (n - 1), ((2, 4),) * n]:
        with pytest.raises(RuntimeError):
            F.pad(torch.from_numpy(x), [p for pair in reversed(pads) for p in pair], mode="reflect")
        args = (x, (1,) * n) if fn == "im2col" else (np.ones((1, 1, 1)), size, (1,) * n)
        with pytest.raises(
            ValueError, match=rf"^{fn}\(\): padding_mode='reflect' needs padding smaller than the input"
        ):
            getattr(im2col, fn)(*args, padding=pads, padding_mode="reflect")
    ok = ((2, 2),) * n
    got = im2col.im2col(x, (1,) * n, padding=ok, padding_mode="reflect")
    assert got.shape == (1, 1, 7**n)


def test_circular_padding_wider_than_the_input_wraps_like_np_pad():
    """A documented difference from torch (which refuses to wrap more than once): we wrap like np.pad."""
    x = np.arange(3.0).reshape(1, 1, 3)
    with pytest.raises(RuntimeError):
        F.pad(torch.from_numpy(x), (5, 0), mode="circular")
    got = im2col.im2col(x, (1,), padding=((5, 7),), padding_mode="circular")
    np.testing.assert_array_equal(got[0, 0], np.pad(x[0, 0], (5, 7), mode="wrap"))


# --- regression tests: bugs this fuzzing found (fixed; each was a strict xfail until then) -----------

x1 = np.arange(12.0).reshape(1, 2, 6)
x3 = np.arange(2 * 4 * 4 * 4.0).reshape(1, 2, 4, 4, 4)


@pytest.mark.parametrize("call", [
    lambda: im2col.im2col(x1, np.array(3)),
    lambda: im2col.im2col(x1, (3,), stride=np.array(2)),
    lambda: im2col.im2col(x1, (3,), padding=np.array(1)),
    lambda: im2col.im2col(x3, 3, dilation=np.array(1)),
    lambda: im2col.col2im(np.ones((1, 6, 4)), (6,), 3, stride=np.array(1)),
    lambda: im2col.conv1d(x1, np.ones((1, 2, 3)), stride=np.array(1)),
    lambda: im2col.conv3d(x3, np.ones((1, 2, 3, 3, 3)), padding=np.array(1)),
    lambda: im2col.im2col(np.ones((1, 1, 4, 4)), 3, stride=np.array(1)),  # the 2-D path too
], ids=["im2col-1d-kernel", "im2col-1d-stride", "im2col-1d-padding", "im2col-3d-dilation", "col2im-1d-stride",
        "conv1d-stride", "conv3d-padding", "im2col-2d-stride"])  # fmt: skip
def test_bug_zero_dim_array_argument_is_refused_with_a_named_error(call):
    # either accepted like the int it holds, or refused with a message that names the function
    try:
        call()
    except (ValueError, TypeError) as e:
        assert re.match(r"^(im2col|col2im|conv1d|conv3d)\(\): ", str(e)), str(e)


@pytest.mark.parametrize("big", [2**63, 2**70])
@pytest.mark.parametrize("fn, arg", [("im2col-1d", "stride"), ("im2col-1d", "dilation"), ("im2col-3d", "stride"),
                                     ("col2im-3d", "stride"), ("conv1d", "stride"), ("conv3d", "stride"),
                                     ("conv3d_backward", "dilation")])  # fmt: skip
def test_bug_huge_stride_or_dilation_that_fits_is_computed(fn, arg, big):
    if fn == "im2col-1d":  # a 1-tap kernel: stride gives one window, dilation changes nothing
        expected = x1[..., :1] if arg == "stride" else x1
        assert_close(im2col.im2col(x1, (1,), **{arg: big}), expected, exact=True)
    elif fn == "im2col-3d":
        assert_close(im2col.im2col(x3, 1, **{arg: big}), x3[..., :1, :1, :1].reshape(1, 2, 1), exact=True)
    elif fn == "col2im-3d":
        got = im2col.col2im(np.ones((1, 2, 1)), (4, 4, 4), (1, 1, 1), **{arg: big})
        assert float(got.sum()) == 2.0 and got[0, :, 0, 0, 0].tolist() == [1.0, 1.0]
    elif fn == "conv1d":
        assert_close(im2col.conv1d(x1, np.ones((1, 2, 1)), **{arg: big}), x1.sum(1, keepdims=True)[..., :1])
    elif fn == "conv3d":
        assert_close(
            im2col.conv3d(x3, np.ones((1, 2, 1, 1, 1)), **{arg: big}), x3.sum(1, keepdims=True)[..., :1, :1, :1]
        )
    else:
        gx, gw, gb = im2col.conv3d_backward(np.ones((1, 1, 4, 4, 4)), x3, np.ones((1, 2, 1, 1, 1)), **{arg: big})
        assert_close(gx, np.ones_like(x3))
        assert_close(gb, np.array([64.0]))


@pytest.mark.parametrize("fn", ["im2col", "col2im"])
def test_bug_3d_padding_that_overflows_int64_is_refused(fn):
    with pytest.raises(ValueError, match=rf"^{fn}\(\): "):
        if fn == "im2col":
            im2col.im2col(x3, 3, padding=2**62)
        else:
            im2col.col2im(np.ones((1, 54, 8)), (4, 4, 4), 3, padding=2**62)


@pytest.mark.parametrize("which", ["im2col-1d-2**40", "im2col-1d-2**100", "im2col-3d-circular-2**40",
                                   "col2im-1d-2**40", "col2im-1d-output_size-2**40", "conv1d-2**40", "conv1d-2**62",
                                   "conv3d-2**40", "conv3d-2**62"])  # fmt: skip
def test_bug_huge_padding_is_refused_before_allocating(which):
    p = eval(which.rsplit("-", 1)[1])  # noqa: S307 - one of the literals above
    fn = which.split("-")[0]
    calls = {
        "im2col-1d-2**40": lambda: im2col.im2col(x1, (3,), padding=p),
        "im2col-1d-2**100": lambda: im2col.im2col(x1, (3,), padding=p),
        "im2col-3d-circular-2**40": lambda: im2col.im2col(x3, 3, padding=(0, 0, p), padding_mode="circular"),
        "col2im-1d-2**40": lambda: im2col.col2im(np.ones((1, 6, 8)), (6,), 3, padding=p),
        "col2im-1d-output_size-2**40": lambda: im2col.col2im(np.ones((1, 6, 7)), p, (3,), padding=1),
        "conv1d-2**40": lambda: im2col.conv1d(x1, np.ones((1, 2, 3)), padding=p),
        "conv1d-2**62": lambda: im2col.conv1d(x1, np.ones((1, 2, 3)), padding=p),
        "conv3d-2**40": lambda: im2col.conv3d(x3, np.ones((1, 2, 3, 3, 3)), padding=p),
        "conv3d-2**62": lambda: im2col.conv3d(x3, np.ones((1, 2, 3, 3, 3)), padding=p),
    }
    with pytest.raises(ValueError, match=rf"^{fn}\(\): "):
        calls[which]()


@pytest.mark.parametrize("fn, call", [
    ("conv1d", lambda: im2col.conv1d(np.ones((0, 2, 5)), np.ones((1, 2, 3)), padding=2**40)),
    ("conv3d", lambda: im2col.conv3d(np.ones((0, 2, 4, 4, 4)), np.ones((1, 2, 3, 3, 3)), padding=2**40)),
    ("im2col", lambda: im2col.im2col(np.ones((0, 2, 4, 4, 4)), 3, padding=2**40)),
])  # fmt: skip
def test_bug_empty_batches_with_huge_padding_are_refused_by_name(fn, call):
    """Found in review: with N = 0 conv1d was refused under conv2d's name, and conv3d and im2col
    by NumPy's bare "Maximum allowed dimension exceeded"."""
    with pytest.raises(ValueError, match=rf"^{fn}\(\): the (output|column matrix)"):
        call()


@pytest.mark.parametrize("n", [1, 2, 3])
def test_bug_negative_zero_pad_value_is_not_read_with_zeros_padding(n):
    """Found in review: 1-D and 3-D im2col padded with -0.0 when given pad_value=-0.0 and
    padding_mode='zeros' (where pad_value is not read), 2-D with +0.0."""
    x = np.ones((1, 1, *(3,) * n))
    got = im2col.im2col(x, (3,) * n, padding=1, pad_value=-0.0)
    assert not np.signbit(got).any()


@pytest.mark.parametrize("dtype, value", [(np.float32, 1e40), (np.float16, 70000.0), (np.float64, 1j),
                                          (np.float32, 1 + 0j)])  # fmt: skip
def test_bug_pad_value_cast_warns_or_overflows(dtype, value):
    x = np.ones((1, 1, 4), dtype)
    try:
        got = im2col.im2col(x, (3,), padding=1, padding_mode="constant", pad_value=value)
    except (ValueError, TypeError) as e:
        assert str(e).startswith("im2col(): ")
    else:  # accepted only if the value is held exactly
        assert got[0, 0, 0] == value


@pytest.mark.parametrize("fn, xshape, wshape, stride", [
    ("conv1d", (2, 2), (1, 2, 1), 2),             # the shrunk Hypothesis example (unbatched)
    ("conv1d", (1, 2, 2), (1, 2, 1), 2),
    ("conv2d", (1, 2, 1, 2), (1, 2, 1, 1), (1, 2)),
    ("conv2d", (2, 2, 2, 2), (3, 2, 1, 1), 2),
    ("conv2d", (1, 3, 5, 5), (3, 3, 1, 1), 5),
])  # fmt: skip
def test_bug_conv_1x1_kernel_one_output_many_channels(fn, xshape, wshape, stride):
    r = np.random.default_rng(0)
    x, w = r.standard_normal(xshape), r.standard_normal(wshape)
    expected = getattr(F, fn)(torch.from_numpy(x), torch.from_numpy(w), stride=stride)
    assert_close(getattr(im2col, fn)(x, w, stride=stride), expected, what=f"{fn} vs torch")
