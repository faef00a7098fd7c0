"""Every operation against PyTorch and the NumPy reference, on a grid and on Hypothesis-drawn configs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ARRAY_LAYOUTS, array_layout, assert_close
from hypothesis import given
from hypothesis import strategies as st

import im2col
from im2col import reference


@dataclass(frozen=True)
class Config:
    N: int
    C: int
    H: int
    W: int
    K: int
    kh: int
    kw: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def pads(self):
        return ((self.padding[0],) * 2, (self.padding[1],) * 2)

    def arrays(self, dtype, seed=0):
        r = np.random.default_rng(seed)
        x = r.standard_normal((self.N, self.C, self.H, self.W)).astype(dtype)
        w = r.standard_normal((self.K, self.C // self.groups, self.kh, self.kw)).astype(dtype)
        b = r.standard_normal(self.K).astype(dtype)
        return x, w, b

    def fits(self):
        return all(
            n + 2 * p - d * (k - 1) - 1 >= 0
            for n, p, d, k in zip((self.H, self.W), self.padding, self.dilation, (self.kh, self.kw))
        )


GRID = [
    Config(1, 1, 5, 5, 1, 3, 3, padding=(2, 2)),  # the teaching case: 7×7 out
    Config(2, 3, 7, 9, 4, 3, 3),
    Config(2, 3, 7, 9, 4, 2, 4, stride=(2, 1), padding=(1, 2)),  # non-square everything
    Config(1, 2, 6, 6, 3, 1, 1),  # 1×1: the no-copy path
    Config(2, 2, 6, 6, 3, 1, 1, stride=(2, 2)),  # 1×1 strided: not the no-copy path (darknet's bug)
    Config(2, 2, 6, 6, 3, 1, 1, padding=(1, 1)),
    Config(3, 4, 8, 8, 4, 3, 3, padding=(1, 1), groups=2),
    Config(2, 4, 8, 8, 4, 3, 3, padding=(1, 1), groups=4),  # depthwise
    Config(2, 2, 9, 8, 2, 3, 2, dilation=(2, 3), padding=(2, 1)),
    Config(1, 1, 4, 4, 2, 6, 6, padding=(1, 1)),  # kernel as large as the padded input
    Config(2, 1, 5, 5, 1, 2, 2, stride=(3, 3)),  # stride larger than the kernel
    Config(1, 2, 3, 3, 2, 2, 2, padding=(3, 3)),  # padding larger than the kernel
]
DTYPES = [np.float32, np.float64]


def torch_unfold(x, c: Config):
    return F.unfold(torch.from_numpy(x), (c.kh, c.kw), dilation=c.dilation, padding=c.padding, stride=c.stride)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", GRID, ids=str)
def test_im2col_matches_torch_and_reference(c, dtype):
    x, _, _ = c.arrays(dtype)
    expected = torch_unfold(x, c)
    got = im2col.im2col(x, (c.kh, c.kw), dilation=c.dilation, padding=c.padding, stride=c.stride)
    assert_close(got, expected, exact=True, what="im2col vs unfold")
    ref = reference.im2col(x, (c.kh, c.kw), c.dilation, c.pads, c.stride)
    assert_close(got, ref, exact=True, what="im2col vs reference")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", GRID, ids=str)
def test_col2im_matches_torch_and_reference(c, dtype):
    x, _, _ = c.arrays(dtype)
    cols = torch_unfold(x, c).numpy()
    cols = np.random.default_rng(1).standard_normal(cols.shape).astype(dtype)
    expected = F.fold(torch.from_numpy(cols), (c.H, c.W), (c.kh, c.kw), dilation=c.dilation,
                      padding=c.padding, stride=c.stride)  # fmt: skip
    got = im2col.col2im(cols, (c.H, c.W), (c.kh, c.kw), dilation=c.dilation, padding=c.padding, stride=c.stride)
    assert_close(got, expected, what="col2im vs fold")
    ref = reference.col2im(cols, (c.H, c.W), (c.kh, c.kw), c.dilation, c.pads, c.stride)
    assert_close(got, ref, what="col2im vs reference")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", GRID, ids=str)
def test_conv2d_forward_and_backward_match_torch(c, dtype):
    x, w, b = c.arrays(dtype)
    kw = dict(stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, **kw)
    y = im2col.conv2d(x, w, b, **kw)
    assert_close(y, ty, what="conv2d vs torch")
    assert_close(y, reference.conv2d(x, w, b, c.stride, c.pads, c.dilation, c.groups), what="conv2d vs reference")

    gy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(gy))
    gx, gw, gb = im2col.conv2d_backward(gy, x, w, **kw)
    assert_close(gx, tx.grad, what="grad_input")
    assert_close(gw, tw.grad, what="grad_weight")
    assert_close(gb, tb.grad, what="grad_bias")
    rx, rw, rb = reference.conv2d_backward(gy, x, w, c.stride, c.pads, c.dilation, c.groups)
    assert_close(gx, rx, what="grad_input vs reference")
    assert_close(gw, rw, what="grad_weight vs reference")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", GRID, ids=str)
def test_conv_transpose2d_matches_torch(c, dtype):
    x, _, b = c.arrays(dtype)
    w = np.random.default_rng(3).standard_normal((c.C, c.K // c.groups, c.kh, c.kw)).astype(dtype)
    op = (max(c.stride[0], c.dilation[0]) - 1, 0)  # the largest output_padding allowed, on one axis
    kw = dict(stride=c.stride, padding=c.padding, output_padding=op, groups=c.groups, dilation=c.dilation)
    try:
        expected = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kw)
    except RuntimeError:
        with pytest.raises(ValueError, match="must be at least 1"):
            im2col.conv_transpose2d(x, w, b, **kw)
        return
    got = im2col.conv_transpose2d(x, w, b, **kw)
    assert_close(got, expected, what="conv_transpose2d vs torch")
    ref = reference.conv_transpose2d(x, w, b, c.stride, c.padding, op, c.groups, c.dilation)
    assert_close(got, ref, what="conv_transpose2d vs reference")


# --- Hypothesis: awkward shapes -----------------------------------------------------------------


@st.composite
def configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(st.integers(1, 2 if groups > 1 else 5))
    K = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    H = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - 2 * pad[0]), 11))
    W = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - 2 * pad[1]), 11))
    return Config(
        N=draw(st.integers(1, 4)), C=C, H=H, W=W, K=K, kh=kh, kw=kw,
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=pad, dilation=dil, groups=groups,
    )  # fmt: skip


@st.composite
def layouts(draw, x):
    """The same values in another memory layout (conftest.array_layout)."""
    return array_layout(x, draw(st.sampled_from(ARRAY_LAYOUTS)))


@given(c=configs(), dtype=st.sampled_from(DTYPES), data=st.data(), as_tensor=st.booleans())
def test_hypothesis_all_ops_match_torch(c, dtype, data, as_tensor):
    x, w, b = c.arrays(dtype, seed=c.H * 31 + c.W)
    xin = data.draw(layouts(x))
    before = xin.copy()
    if as_tensor:
        xin = torch.from_numpy(np.array(xin, dtype=x.dtype)).permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)
    kw = dict(stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups)
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(w).requires_grad_()
    ty = F.conv2d(tx, tw, torch.from_numpy(b), **kw)

    cols = im2col.im2col(xin, (c.kh, c.kw), c.dilation, c.padding, c.stride)
    assert isinstance(cols, torch.Tensor) == as_tensor
    assert_close(cols, torch_unfold(x, c), exact=True, what="im2col")
    assert_close(im2col.col2im(cols, (c.H, c.W), (c.kh, c.kw), c.dilation, c.padding, c.stride),
                 F.fold(torch_unfold(x, c), (c.H, c.W), (c.kh, c.kw), dilation=c.dilation,
                        padding=c.padding, stride=c.stride), what="col2im")  # fmt: skip
    y = im2col.conv2d(xin, w, b, **kw)
    assert_close(y, ty, what="conv2d")
    gy = np.ones(ty.shape, dtype)
    ty.backward(torch.from_numpy(gy))
    gx, gw, _ = im2col.conv2d_backward(gy, xin, w, **kw)
    assert_close(gx, tx.grad, what="grad_input")
    assert_close(gw, tw.grad, what="grad_weight")
    if not as_tensor:
        np.testing.assert_array_equal(xin, before)  # inputs are never written


@given(c=configs(), dtype=st.sampled_from(DTYPES))
def test_hypothesis_adjoint(c, dtype):
    """⟨col2im(Y), X⟩ = ⟨Y, im2col(X)⟩: col2im is exactly the transpose of im2col."""
    x, _, _ = c.arrays(dtype)
    cols = im2col.im2col(x, (c.kh, c.kw), c.dilation, c.padding, c.stride)
    y = np.random.default_rng(5).standard_normal(cols.shape).astype(dtype)
    lhs = np.vdot(im2col.col2im(y, (c.H, c.W), (c.kh, c.kw), c.dilation, c.padding, c.stride), x)
    rhs = np.vdot(y, cols)
    assert_close(lhs, rhs, op="inner", size=y.size, what="adjoint")


# --- padding forms beyond torch -----------------------------------------------------------------


@pytest.mark.parametrize("pads", [((0, 2), (1, 0)), ((3, 1), (0, 0)), ((1, 1), (2, 3))])
def test_per_side_padding_equals_pad_then_unfold(pads):
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    (t, b), (left, right) = pads
    padded = F.pad(torch.from_numpy(x), (left, right, t, b))
    assert_close(im2col.im2col(x, 3, padding=pads), F.unfold(padded, 3), exact=True)
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3))
    assert_close(im2col.conv2d(x, w, padding=pads), F.conv2d(padded, torch.from_numpy(w)))


@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (2, 3), (3, 2)])
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_string_padding_matches_torch(k, d, mode):
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 8))
    w = np.random.default_rng(1).standard_normal((3, 2, k, k + 1))
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=mode, dilation=d)
    assert_close(im2col.conv2d(x, w, padding=mode, dilation=d), expected)
    if mode == "same":
        assert expected.shape[2:] == x.shape[2:]


# --- input types, layouts, shapes ---------------------------------------------------------------


def test_unbatched_inputs_match_torch():
    x = np.random.default_rng(0).standard_normal((3, 6, 5)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((2, 3, 3, 3)).astype(np.float32)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    cols = im2col.im2col(x, 3, padding=1)
    assert_close(cols, F.unfold(tx, 3, padding=1), exact=True)
    assert_close(im2col.col2im(cols, (6, 5), 3, padding=1), F.fold(torch.from_numpy(cols), (6, 5), 3, padding=1))
    assert_close(im2col.conv2d(x, w, padding=1), F.conv2d(tx, tw, padding=1))
    wt = np.random.default_rng(2).standard_normal((3, 2, 3, 3)).astype(np.float32)
    assert_close(im2col.conv_transpose2d(x, wt, stride=2), F.conv_transpose2d(tx, torch.from_numpy(wt), stride=2))
    gy = np.ones((2, 6, 5), np.float32)
    gx, gw, gb = im2col.conv2d_backward(gy, x, w, padding=1)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (2,)


def test_empty_batch_gives_torch_shapes():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    assert im2col.im2col(x, 3).shape == tuple(F.unfold(tx, 3).shape)
    assert im2col.conv2d(x, w, padding=1).shape == tuple(F.conv2d(tx, tw, padding=1).shape)
    wt = np.zeros((3, 2, 3, 3), np.float32)
    assert im2col.conv_transpose2d(x, wt).shape == tuple(F.conv_transpose2d(tx, torch.from_numpy(wt)).shape)
    assert im2col.col2im(np.zeros((0, 27, 36), np.float32), 8, 3).shape == (0, 3, 8, 8)
    gx, gw, gb = im2col.conv2d_backward(np.zeros((0, 4, 6, 6), np.float32), x, w)
    assert gx.shape == x.shape and not gw.any() and not gb.any()


def test_tensor_in_tensor_out_zero_copy_and_grad():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    cols = im2col.im2col(x, 3)
    assert isinstance(cols, torch.Tensor) and cols.requires_grad  # autograd kept (tests/test_autograd_functional.py)
    assert_close(cols, F.unfold(x.detach(), 3), exact=True)
    assert not im2col.im2col(x.detach(), 3).requires_grad
    # the output shares memory with the NumPy array the kernel wrote (no copy on the way out)
    y = im2col.conv2d(x, torch.randn(4, 3, 3, 3))
    assert isinstance(y, torch.Tensor) and y.is_contiguous()
    # channels_last tensors are read correctly
    xc = x.detach().to(memory_format=torch.channels_last)
    assert_close(im2col.im2col(xc, 3), F.unfold(x.detach(), 3), exact=True)


def test_numpy_input_is_not_copied_when_contiguous(monkeypatch):
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    seen = {}
    from im2col import _kernels

    real = _kernels.im2col

    def spy(im, col, *args):
        seen["base"] = np.asarray(im).__array_interface__["data"][0]
        return real(im, col, *args)

    monkeypatch.setattr(_kernels, "im2col", spy)
    im2col.im2col(x, 3)
    assert seen["base"] == x.__array_interface__["data"][0]


@pytest.mark.parametrize(
    "dtype", [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.int64, np.float16, np.complex64, np.complex128]
)
def test_im2col_moves_any_dtype(dtype):
    x = (np.arange(2 * 3 * 6 * 5) % 7).reshape(2, 3, 6, 5).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * x[..., ::-1]
    got = im2col.im2col(x, (2, 3), dilation=(1, 2), padding=(1, 2), stride=(2, 1))
    ref = reference.im2col(x, (2, 3), (1, 2), ((1, 1), (2, 2)), (2, 1))
    assert_close(got, ref, exact=True)


def test_big_endian_and_nan_inf():
    x = np.arange(2 * 2 * 5 * 5, dtype=">f8").reshape(2, 2, 5, 5)
    x[0, 0, 2, 2] = np.nan
    x[1, 1, 0, 0] = np.inf
    w = np.ones((1, 2, 3, 3))
    expected = F.conv2d(torch.from_numpy(x.astype("<f8")), torch.from_numpy(w), padding=1)
    assert_close(im2col.conv2d(x, w, padding=1), expected)
    assert np.isnan(im2col.conv2d(x, w, padding=1)[0, 0, 1:4, 1:4]).all()


def test_fold_of_unfold_is_divisor_times_x():
    """fold∘unfold multiplies each pixel by the number of windows covering it (4 at a corner, 9 inside)."""
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6))
    back = im2col.col2im(im2col.im2col(x, 3, padding=1), 6, 3, padding=1)
    divisor = im2col.col2im(im2col.im2col(np.ones_like(x), 3, padding=1), 6, 3, padding=1)
    assert divisor[0, 0, 0, 0] == 4 and divisor[0, 0, 3, 3] == 9
    assert_close(back, divisor * x)


def test_large_batch_goes_through_in_chunks(monkeypatch):
    """With a tiny workspace every image is its own chunk; results must not change."""
    from im2col import _geometry, _tiles

    c = Config(7, 4, 9, 9, 6, 3, 3, padding=(1, 1), groups=2)
    x, w, b = c.arrays(np.float64)
    kw = dict(padding=1, groups=2)
    y_full = im2col.conv2d(x, w, b, **kw)
    gy = np.random.default_rng(3).standard_normal(y_full.shape)
    full = im2col.conv2d_backward(gy, x, w, **kw)
    monkeypatch.setattr(_tiles, "WORKSPACE_BYTES", 2 * 36 * 81 * 8)  # 2 images per chunk
    assert _tiles.chunk(_geometry.geometry("t", x.shape, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)), 8) == 2
    assert_close(im2col.conv2d(x, w, b, **kw), y_full)
    for a, e in zip(im2col.conv2d_backward(gy, x, w, **kw), full):
        assert_close(a, e)


def test_output_size():
    assert im2col.output_size(28, 3) == (26, 26)
    assert im2col.output_size((5, 5), 3, padding=2) == (7, 7)
    assert im2col.output_size((9, 8), (3, 2), stride=(2, 1), padding=((1, 0), (0, 3)), dilation=2) == (
        3,
        9,
    )  # (9+1-2·2-1)//2+1, (8+0+3-2·1-1)//1+1
    assert im2col.output_size(10, 4, padding="same") == (10, 10)


@pytest.mark.parametrize("kind", ["array", "tensor"])
@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_im2col_out_is_filled_and_returned(kind, unbatched, mode):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32)
    if unbatched:
        x = x[0]
    expected = im2col.im2col(x, 3, padding=1, padding_mode=mode)
    buf = np.full(expected.shape, np.nan, np.float32)
    out = torch.from_numpy(buf) if kind == "tensor" else buf
    xin = torch.from_numpy(x) if kind == "tensor" else x
    got = im2col.im2col(xin, 3, padding=1, padding_mode=mode, out=out)
    assert got is out
    assert_close(buf, expected, exact=True)
