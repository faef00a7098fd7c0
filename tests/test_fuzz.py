"""Fuzzing every public op: valid configurations against torch and the reference, invalid ones must
raise ValueError or TypeError naming the function and the argument, and nothing else.

The 'ci' Hypothesis profile keeps this file fast; ``HYPOTHESIS_PROFILE=long`` (scripts/fuzz_long.sh)
runs many more examples of the same tests. Sizes stay small because the reference is plain Python
loops; the awkwardness is in the combinations (1×1 kernels, stride > kernel, padding ≥ kernel,
dilation, per-side padding, groups, empty and unbatched batches, odd memory layouts, tensors).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import array_layout, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st

import im2col
from im2col import reference

FLOATS = [np.float32, np.float64]
# im2col only moves data, so it takes these too (compared bit for bit with the reference).
MOVABLE = [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.float16, np.complex64, np.complex128]


def scaled(factor: float):
    """``settings`` with ``factor`` times the active profile's examples (cheap tests get more)."""
    return settings(max_examples=max(1, int(settings.default.max_examples * factor)))


# --- valid configurations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Geo:
    """One convolution's geometry; ``pads`` is ((top, bottom), (left, right))."""

    N: int
    C: int
    H: int
    W: int
    kh: int
    kw: int
    stride: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]
    dilation: tuple[int, int]
    unbatched: bool = False

    @property
    def symmetric(self) -> bool:
        return all(a == b for a, b in self.pads)

    @property
    def padding(self):
        """The padding argument: a pair when symmetric (what torch takes), else per-side pairs."""
        return (self.pads[0][0], self.pads[1][0]) if self.symmetric else self.pads

    @property
    def out(self) -> tuple[int, int]:
        return tuple(
            reference.out_size(n, k, s, a, b, d)
            for n, k, s, (a, b), d in zip((self.H, self.W), (self.kh, self.kw), self.stride, self.pads, self.dilation)
        )

    @property
    def shape(self):
        return (self.C, self.H, self.W) if self.unbatched else (self.N, self.C, self.H, self.W)


@st.composite
def geometries(draw, *, per_side: bool = True, max_c: int = 4):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    if per_side and draw(st.booleans()):
        pads = tuple((draw(st.integers(0, 4)), draw(st.integers(0, 4))) for _ in range(2))
    else:
        ph, pw = draw(st.integers(0, 4)), draw(st.integers(0, 4))
        pads = ((ph, ph), (pw, pw))
    # smallest size the padded input must have for the (dilated) kernel to fit once
    H = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - sum(pads[0])), 10))
    W = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - sum(pads[1])), 10))
    return Geo(
        N=draw(st.integers(0, 3)), C=draw(st.integers(1, max_c)), H=H, W=W, kh=kh, kw=kw,
        stride=stride, pads=pads, dilation=dil, unbatched=draw(st.integers(0, 4)) == 0,
    )  # fmt: skip


def as_input(draw, x: np.ndarray):
    """The same values as a NumPy array in some memory layout, or as a torch tensor."""
    kind = draw(st.sampled_from(["C", "F", "strided", "reversed", "readonly", "tensor", "tensor-perm", "tensor-grad"]))
    if not kind.startswith("tensor"):
        return array_layout(x, kind)
    if x.dtype.kind not in "f" or x.dtype == np.float16:
        return x
    t = torch.from_numpy(x.copy())
    if kind == "tensor-perm" and t.dim() >= 2:  # non-contiguous: the last two axes swapped in memory
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    if kind == "tensor-grad":
        return t.requires_grad_()
    return t


def random(shape, dtype, seed):
    r = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "c":
        return (r.standard_normal(shape) + 1j * r.standard_normal(shape)).astype(dtype)
    if np.dtype(dtype).kind in "iub":
        return r.integers(-100, 100, shape).astype(dtype)
    return r.standard_normal(shape).astype(dtype)


def batched(a: np.ndarray, g: Geo) -> np.ndarray:
    return a[None] if g.unbatched else a


def padded_tensor(x: np.ndarray, g: Geo) -> torch.Tensor:
    """torch takes only symmetric padding: pad per side by hand and convolve with padding 0."""
    (t, b), (left, right) = g.pads
    return F.pad(torch.from_numpy(np.ascontiguousarray(x)), (left, right, t, b))


def check_type(got, inp):
    if isinstance(inp, torch.Tensor) and inp.requires_grad:
        assert isinstance(got, torch.Tensor) and got.requires_grad
    if isinstance(got, torch.Tensor) and got.requires_grad:  # an argument requires grad: autograd kept
        return
    assert isinstance(got, torch.Tensor) == isinstance(inp, torch.Tensor)


@given(g=geometries(), dtype=st.sampled_from(FLOATS + MOVABLE), data=st.data())
def test_im2col(g, dtype, data):
    x = random(g.shape, dtype, seed=g.H * 31 + g.W)
    xin = as_input(data.draw, x)
    got = im2col.im2col(xin, (g.kh, g.kw), g.dilation, g.padding, g.stride)
    check_type(got, xin)
    oh, ow = g.out
    expected_shape = (g.C * g.kh * g.kw, oh * ow)
    assert tuple(got.shape) == (expected_shape if g.unbatched else (g.N, *expected_shape))
    ref = reference.im2col(batched(x, g), (g.kh, g.kw), g.dilation, g.pads, g.stride)
    assert_close(got, ref[0] if g.unbatched else ref, exact=True, what="im2col vs reference")
    if np.dtype(dtype) in map(np.dtype, FLOATS):
        expected = F.unfold(padded_tensor(x, g), (g.kh, g.kw), dilation=g.dilation, stride=g.stride)
        assert_close(got, expected, exact=True, what="im2col vs unfold")


@given(g=geometries(), dtype=st.sampled_from(FLOATS), data=st.data())
def test_col2im(g, dtype, data):
    oh, ow = g.out
    R = g.C * g.kh * g.kw
    cols = random((R, oh * ow) if g.unbatched else (g.N, R, oh * ow), dtype, seed=oh * 7 + ow)
    cin = as_input(data.draw, cols)
    got = im2col.col2im(cin, (g.H, g.W), (g.kh, g.kw), g.dilation, g.padding, g.stride)
    check_type(got, cin)
    ref = reference.col2im(batched(cols, g), (g.H, g.W), (g.kh, g.kw), g.dilation, g.pads, g.stride)
    assert_close(got, ref[0] if g.unbatched else ref, what="col2im vs reference")
    # torch's fold takes symmetric padding only: fold onto the padded size, then crop.
    (t, b), (left, right) = g.pads
    full = F.fold(torch.from_numpy(cols), (g.H + t + b, g.W + left + right), (g.kh, g.kw), dilation=g.dilation,
                  stride=g.stride)  # fmt: skip
    assert_close(got, full[..., t : t + g.H, left : left + g.W], what="col2im vs fold")


@st.composite
def conv_setups(draw, *, transpose: bool = False):
    g = draw(geometries(per_side=not transpose, max_c=3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    g = replace(g, C=g.C * groups)
    k_out = groups * draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(FLOATS))
    return g, groups, k_out, dtype, draw(st.booleans())


def conv_kwargs(g: Geo, groups: int, draw):
    # 'same' and 'valid' where they mean something: stride 1 for 'same'
    padding = g.padding
    if g.stride == (1, 1) and draw(st.integers(0, 5)) == 0:
        padding = "same"
    elif g.pads == ((0, 0), (0, 0)) and draw(st.booleans()):
        padding = "valid"
    return dict(stride=g.stride, padding=padding, dilation=g.dilation, groups=groups)


def torch_conv(x, w, b, g: Geo, kw):
    """F.conv2d with our padding argument translated (per-side: padded by hand)."""
    if isinstance(kw["padding"], str):
        return F.conv2d(x, w, b, **kw)
    (t, bo), (left, right) = g.pads
    return F.conv2d(F.pad(x, (left, right, t, bo)), w, b, **{**kw, "padding": 0})


@given(setup=conv_setups(), data=st.data())
def test_conv2d(setup, data):
    g, groups, K, dtype, with_bias = setup
    kw = conv_kwargs(g, groups, data.draw)
    x = random(g.shape, dtype, seed=1)
    w = random((K, g.C // groups, g.kh, g.kw), dtype, seed=2)
    b = random((K,), dtype, seed=3) if with_bias else None
    xin = as_input(data.draw, x)
    got = im2col.conv2d(xin, as_input(data.draw, w), None if b is None else as_input(data.draw, b), **kw)
    check_type(got, xin)
    expected = torch_conv(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), g, kw)
    assert_close(got, expected, what="conv2d vs torch")
    if kw["padding"] == "same":
        assert tuple(got.shape[-2:]) == (g.H, g.W)
    else:
        ref = reference.conv2d(batched(x, g), w, b, g.stride, g.pads, g.dilation, groups)
        assert_close(got, ref[0] if g.unbatched else ref, what="conv2d vs reference")


@given(setup=conv_setups(), data=st.data())
def test_conv2d_backward(setup, data):
    g, groups, K, dtype, _ = setup
    kw = conv_kwargs(g, groups, data.draw)
    x = random(g.shape, dtype, seed=4)
    w = random((K, g.C // groups, g.kh, g.kw), dtype, seed=5)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    tb = torch.zeros(K, dtype=tw.dtype, requires_grad=True)
    ty = torch_conv(tx, tw, tb, g, kw)
    gy = random(tuple(ty.shape), dtype, seed=6)
    ty.backward(torch.from_numpy(gy))
    xin = as_input(data.draw, x)
    gx, gw, gb = im2col.conv2d_backward(as_input(data.draw, gy), xin, as_input(data.draw, w), **kw)
    for got in (gx, gw, gb):
        check_type(got, xin)
    assert_close(gx, tx.grad, what="grad_input vs autograd")
    assert_close(gw, tw.grad, what="grad_weight vs autograd")
    assert_close(gb, tb.grad, what="grad_bias vs autograd")
    if kw["padding"] != "same" and (g.N or g.unbatched):  # the reference's reshape(N, K, -1) needs N > 0
        rx, rw, rb = reference.conv2d_backward(batched(gy, g), batched(x, g), w, g.stride, g.pads, g.dilation, groups)
        assert_close(gx, rx[0] if g.unbatched else rx, what="grad_input vs reference")
        assert_close(gw, rw, what="grad_weight vs reference")
        assert_close(gb, rb, what="grad_bias vs reference")


@given(setup=conv_setups(transpose=True), data=st.data())
def test_conv_transpose2d(setup, data):
    g, groups, c_out, dtype, with_bias = setup
    # output_padding below max(stride, dilation), per axis
    op = tuple(data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(g.stride, g.dilation))
    pad = (g.pads[0][0], g.pads[1][0])
    size = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1
            for n, s, p, d, k, o in zip((g.H, g.W), g.stride, pad, g.dilation, (g.kh, g.kw), op)]  # fmt: skip
    x = random(g.shape, dtype, seed=7)
    w = random((g.C, c_out // groups, g.kh, g.kw), dtype, seed=8)
    b = random((c_out,), dtype, seed=9) if with_bias else None
    kw = dict(stride=g.stride, padding=pad, output_padding=op, groups=groups, dilation=g.dilation)
    xin = as_input(data.draw, x)
    if min(size) < 1:  # refused, as torch refuses it (tests/test_autograd_functional.py)
        with pytest.raises(ValueError, match=r"conv_transpose2d\(\): output (height|width) = .* must be at least 1"):
            im2col.conv_transpose2d(xin, w, b, **kw)
        return
    got = im2col.conv_transpose2d(xin, as_input(data.draw, w), None if b is None else as_input(data.draw, b), **kw)
    check_type(got, xin)
    expected = F.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), **kw
    )
    assert_close(got, expected, what="conv_transpose2d vs torch")
    ref = reference.conv_transpose2d(batched(x, g), w, b, g.stride, pad, op, groups, g.dilation)
    assert_close(got, ref[0] if g.unbatched else ref, what="conv_transpose2d vs reference")


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


# --- invalid configurations -----------------------------------------------------------------------

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
BAD_GROUPS = [0, -1, -(2**63), 1.0, True, "1", None, (1,), np.float64(1), 2**70]
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
    """A call to make, the function's name, and the names one of which the message must contain."""

    fn: str
    args: tuple
    kwargs: dict
    names: tuple[str, ...]

    def __call__(self):
        return getattr(im2col, self.fn)(*self.args, **self.kwargs)


def _msg_names(arg: str) -> tuple[str, ...]:
    # Shape interactions name every argument involved; accept any of the ones that took part.
    return (arg, "kernel_size", "output_size", "input", "weight", "padding", "stride", "dilation", "groups",
            "output_padding", "channels", "grad_output", "bias", "would need")  # fmt: skip


@st.composite
def invalid_calls(draw):
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
        "groups": BAD_GROUPS + [2, 3],  # 3 does not divide the channels; for 2 the channels change below
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
    return Call(fn, (), kwargs, _msg_names(arg))


@scaled(4)
@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta state:UserWarning")
@given(call=invalid_calls())
def test_invalid_arguments_raise_value_or_type_error(call):
    try:
        call()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert msg.startswith(f"{call.fn}(): "), f"message does not name the function: {msg!r}"
        assert any(n in msg for n in call.names), f"message names none of {call.names}: {msg!r}"
    else:
        pytest.fail(f"{call.fn}({call.kwargs}) did not raise")


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
