"""Channels-last input: ``layout='NHWC'`` (and 'NLC', 'NDHWC') arrays and ``channels_last`` tensors.

The kernels read channels-last data in place through element strides and write channels-last
outputs directly, so each op is checked three ways: against torch on the permuted input, against
our own channels-first path (bit for bit where the summation order is the same: im2col only moves
data, col2im adds the same entries in the same order), and for the memory layout of what comes back.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import im2col
from im2col._validation import to_array


def nhwc(x: np.ndarray) -> np.ndarray:
    """A C-contiguous channels-last copy of a channels-first array (any number of spatial axes)."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def nchw(y: np.ndarray) -> np.ndarray:
    return np.moveaxis(y, -1, 1)


def configs(n: int, seed: int = 0):
    """``n`` random 2-D convolution configurations: (N, C, H, W, K, k, stride, padding, dilation, groups)."""
    r = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        groups = int(r.choice([1, 1, 2, 3]))
        C, K = groups * int(r.integers(1, 4)), groups * int(r.integers(1, 4))
        k = (int(r.integers(1, 4)), int(r.integers(1, 4)))
        s = (int(r.integers(1, 3)), int(r.integers(1, 4)))
        d = (int(r.integers(1, 3)), int(r.integers(1, 3)))
        p = (int(r.integers(0, 3)), int(r.integers(0, 3)))
        H, W = int(r.integers(1, 9)), int(r.integers(1, 9))
        if any(n_ + 2 * pp < dd * (kk - 1) + 1 for n_, kk, pp, dd in zip((H, W), k, p, d)):
            continue
        out.append((int(r.integers(1, 4)), C, H, W, K, k, s, p, d, groups))
    return out


CONFIGS = configs(24)
T = torch.from_numpy


# --- im2col and col2im ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8, np.bool_, np.complex128])
def test_im2col_nhwc_is_the_nchw_columns_bit_for_bit(dtype):
    r = np.random.default_rng(1)
    for N, C, H, W, _, k, s, p, d, _ in CONFIGS:
        x = (r.standard_normal((N, C, H, W)) * 50).astype(dtype)
        cols = im2col.im2col(nhwc(x), k, d, p, s, layout="NHWC")
        assert_close(cols, im2col.im2col(x, k, d, p, s), exact=True, what=f"{x.shape} k={k} s={s} p={p} d={d}")
        assert cols.flags.c_contiguous
        if dtype in (np.float32, np.float64):
            assert_close(cols, F.unfold(T(x), k, d, p, s), exact=True, what="vs torch unfold")


def test_col2im_nhwc_output_is_the_nchw_fold_bit_for_bit():
    r = np.random.default_rng(2)
    for N, C, H, W, _, k, s, p, d, _ in CONFIGS:
        L = np.prod(im2col.output_size((H, W), k, s, p, d))
        cols = r.standard_normal((N, C * k[0] * k[1], L))
        out = im2col.col2im(cols, (H, W), k, d, p, s, layout="NHWC")
        assert out.shape == (N, H, W, C) and out.flags.c_contiguous
        assert_close(nchw(out), im2col.col2im(cols, (H, W), k, d, p, s), exact=True, what=f"k={k} s={s} p={p}")
        assert_close(nchw(out), F.fold(T(cols), (H, W), k, d, p, s), what="vs torch fold")


def test_im2col_and_col2im_channels_last_in_1d_and_3d_and_with_padding_modes():
    r = np.random.default_rng(3)
    x1 = r.standard_normal((2, 3, 11))
    for mode in ("zeros", "reflect", "circular"):
        cols = im2col.im2col(nhwc(x1), (3,), padding=2, stride=(2,), padding_mode=mode, layout="NLC")
        assert_close(cols, im2col.im2col(x1, (3,), padding=2, stride=(2,), padding_mode=mode), exact=True)
    x3 = r.standard_normal((2, 3, 4, 5, 6)).astype(np.float32)
    cols = im2col.im2col(nhwc(x3), (2, 3, 3), padding=1, layout="NDHWC")
    assert_close(cols, im2col.im2col(x3, (2, 3, 3), padding=1), exact=True)
    assert_close(im2col.im2col(nhwc(x3), (2, 3, 3), padding=1, layout="channels_last"), cols, exact=True)
    back = im2col.col2im(cols, (4, 5, 6), (2, 3, 3), padding=1, layout="NDHWC", reduce="mean")
    assert back.shape == (2, 4, 5, 6, 3)
    assert_close(nchw(back), im2col.col2im(cols, (4, 5, 6), (2, 3, 3), padding=1, reduce="mean"), exact=True)
    x2 = r.standard_normal((2, 3, 5, 6))
    cols = im2col.im2col(nhwc(x2), 3, padding=1, padding_mode="replicate", layout="NHWC")
    assert_close(cols, im2col.im2col(x2, 3, padding=1, padding_mode="replicate"), exact=True)
    assert_close(
        nchw(im2col.col2im(cols, (5, 6), 3, padding=1, padding_mode="replicate", layout="NHWC")),
        im2col.col2im(cols, (5, 6), 3, padding=1, padding_mode="replicate"),
        exact=True,
    )


def test_unbatched_and_out_with_layout():
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)  # (C, H, W)
    cols = im2col.im2col(nhwc(x[None])[0], 3, layout="NHWC")  # unbatched (H, W, C)
    assert_close(cols, im2col.im2col(x, 3), exact=True)
    buf = np.empty((1, 2 * 9, 6), np.float32)
    assert im2col.im2col(nhwc(x[None]), 3, layout="NHWC", out=buf) is buf
    assert_close(buf[0], cols, exact=True)


# --- convolutions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_and_backward_nhwc_match_torch_and_the_nchw_path(dtype):
    r = np.random.default_rng(4)
    for N, C, H, W, K, k, s, p, d, groups in CONFIGS:
        x = r.standard_normal((N, C, H, W)).astype(dtype)
        w = r.standard_normal((K, C // groups, *k)).astype(dtype)
        b = r.standard_normal(K).astype(dtype)
        what = f"{x.shape} w={w.shape} s={s} p={p} d={d} groups={groups}"
        y = im2col.conv2d(nhwc(x), w, b, s, p, d, groups, layout="NHWC")
        assert y.ndim == 4 and y.flags.c_contiguous, what
        xt = T(x).requires_grad_()
        wt, bt = T(w).requires_grad_(), T(b).requires_grad_()
        yt = F.conv2d(xt, wt, bt, s, p, d, groups)
        assert_close(nchw(y), yt, what=what)
        assert_close(nchw(y), im2col.conv2d(x, w, b, s, p, d, groups), what=what + " vs NCHW")
        gy = r.standard_normal(yt.shape).astype(dtype)
        yt.backward(T(gy))
        gx, gw, gb = im2col.conv2d_backward(nhwc(gy), nhwc(x), w, s, p, d, groups, layout="NHWC")
        assert gx.shape == (N, H, W, C) and gx.flags.c_contiguous, what
        assert_close(nchw(gx), xt.grad, what=what + " grad_input")
        assert_close(gw, wt.grad, what=what + " grad_weight")
        assert_close(gb, bt.grad, what=what + " grad_bias")


def test_conv2d_pointwise_nhwc_reads_the_input_as_the_column_matrix():
    """1×1, stride 1: each image (H·W, C) is the transposed column matrix, read in place."""
    r = np.random.default_rng(5)
    for groups, C, K in ((1, 8, 5), (2, 6, 4), (1, 1, 3)):
        x = r.standard_normal((3, C, 7, 5)).astype(np.float32)
        w = r.standard_normal((K, C // groups, 1, 1)).astype(np.float32)
        y = im2col.conv2d(nhwc(x), w, groups=groups, layout="NHWC")
        assert_close(nchw(y), F.conv2d(T(x), T(w), groups=groups), what=f"groups={groups} C={C}")
        sliced = nhwc(np.concatenate([x, x], axis=1))[..., :C]  # row stride 2·C: still in place
        y2 = im2col.conv2d(sliced, w, groups=groups, layout="NHWC")
        assert_close(y2, y, what="sliced channels")


def test_conv_transpose2d_nhwc_matches_torch():
    r = np.random.default_rng(6)
    for N, C, H, W, K, k, s, p, d, groups in CONFIGS[:12]:
        op = tuple(min(ss, dd) - 1 for ss, dd in zip(s, d))
        x = r.standard_normal((N, C, H, W))
        w = r.standard_normal((C, K // groups, *k))
        # padding that leaves at least one output pixel: 2·pad ≤ (n − 1)·stride + dilation·(k − 1)
        pt = tuple(min(pp, ((n - 1) * ss + dd * (kk - 1)) // 2) for n, pp, ss, kk, dd in zip((H, W), p, s, k, d))
        ref = F.conv_transpose2d(T(x), T(w), None, s, pt, op, groups, d)
        y = im2col.conv_transpose2d(nhwc(x), w, None, s, pt, op, groups, d, layout="NHWC")
        assert y.shape == (N, *ref.shape[2:], ref.shape[1]) and y.flags.c_contiguous
        assert_close(nchw(y), ref, what=f"{x.shape} w={w.shape} s={s} p={pt} d={d}")


def test_conv1d_nlc_and_conv3d_ndhwc_match_torch():
    r = np.random.default_rng(7)
    x1, w1 = r.standard_normal((2, 4, 13)), r.standard_normal((6, 2, 3))
    xt, wt = T(x1).requires_grad_(), T(w1).requires_grad_()
    yt = F.conv1d(xt, wt, None, 2, 1, 2, 2)
    y = im2col.conv1d(nhwc(x1), w1, None, 2, 1, 2, 2, layout="NLC")
    assert y.shape == (2, yt.shape[2], 6)
    assert_close(nchw(y), yt)
    gy = r.standard_normal(yt.shape)
    yt.backward(T(gy))
    gx, gw, _ = im2col.conv1d_backward(nhwc(gy), nhwc(x1), w1, 2, 1, 2, 2, layout="NLC")
    assert_close(nchw(gx), xt.grad)
    assert_close(gw, wt.grad)

    x3, w3 = r.standard_normal((2, 4, 5, 6, 4)), r.standard_normal((6, 2, 3, 2, 3))
    xt, wt = T(x3).requires_grad_(), T(w3).requires_grad_()
    yt = F.conv3d(xt, wt, None, (1, 2, 1), 1, 1, 2)
    y = im2col.conv3d(nhwc(x3), w3, None, (1, 2, 1), 1, 1, 2, layout="NDHWC")
    assert y.shape == (2, *yt.shape[2:], 6) and y.flags.c_contiguous
    assert_close(nchw(y), yt)
    gy = r.standard_normal(yt.shape)
    yt.backward(T(gy))
    gx, gw, _ = im2col.conv3d_backward(nhwc(gy), nhwc(x3), w3, (1, 2, 1), 1, 1, 2, layout="NDHWC")
    assert gx.shape == (2, 5, 6, 4, 4)
    assert_close(nchw(gx), xt.grad)
    assert_close(gw, wt.grad)


# --- the channels-last tiles: colsᵀ, a row per output pixel, the weight permuted to match -----------
#
# Channels-last input runs on its own kernels (conv_forward_nhwc, conv_backward_nhwc): a tile is a
# range of output pixels, possibly across images and starting mid-row; grad_input is scattered back
# by even then odd tiles. The cases below force tiles as small as allowed, on more threads than the
# sizes would get, so that a wrong column order, tile boundary or phase shows up as a wrong value.

TILE_CASES = [  # N, C, H, W, K, kernel, stride, padding, dilation, groups
    (7, 6, 9, 11, 6, 3, 1, 1, 1, 1),  # batch above the thread count
    (5, 6, 7, 9, 9, 3, 1, 1, 1, 3),  # groups
    (3, 4, 8, 7, 4, 3, 1, 1, 1, 4),  # depthwise (on the plane tiles)
    (3, 8, 8, 7, 8, 3, 1, 1, 1, 4),  # two channels per group
    (2, 5, 12, 13, 3, (3, 2), (2, 3), (2, 0), (2, 1), 1),  # strides, dilation, uneven padding
    (2, 5, 12, 13, 3, (2, 3), (1, 2), (0, 3), (1, 2), 1),  # horizontal dilation: a run per tap
    (3, 4, 10, 9, 6, 4, 1, "same", 1, 2),  # 'same' with an even kernel: more padding bottom-right
    (4, 3, 6, 5, 4, 5, 1, 3, 1, 1),  # padding wider than the image reaches: rows of zeros
    (3, 3, 15, 17, 8, 7, 2, 3, 1, 1),  # the stem's shape, small
    (6, 8, 3, 4, 6, 1, 1, 0, 1, 2),  # 1×1: the input is colsᵀ, grad_input written in place
    (3, 8, 1, 1, 5, 1, 1, 0, 1, 1),  # 1×1 of 1×1 images
    (3, 4, 7, 6, 5, 1, 2, 0, 1, 1),  # 1×1 with stride: gathered
    (2, 4, 5, 5, 5, 1, 1, 1, 1, 1),  # 1×1 with padding: gathered
    (2, 4, 3, 23, 5, (1, 5), (1, 2), (0, 3), (1, 2), 1),  # kh = 1: backward tiles split rows
    (1, 6, 1, 40, 4, (1, 3), 1, (0, 1), 1, 2),  # conv1d-like, groups
]


@pytest.fixture(params=[1, 700, 4096], ids=lambda b: f"tile_bytes={b}")
def small_parallel_tiles(request, monkeypatch):
    """Tiles of at most ``param`` bytes of columns (1: the fewest pixels the backward allows), on 3
    threads however small the convolution."""
    monkeypatch.setattr(im2col._tiles, "TILE_BYTES", request.param)
    monkeypatch.setattr(im2col._tiles, "TILE_MIN_COLUMNS", 1)
    monkeypatch.setattr(im2col._tiles, "TILE_MIN_PIXELS", 1)
    monkeypatch.setattr(im2col._threads, "SERIAL_FLOPS_BELOW", 0)
    monkeypatch.setattr(im2col._threads, "_fixed", 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", TILE_CASES, ids=str)
def test_nhwc_tiles_match_torch(case, dtype, small_parallel_tiles):
    N, C, H, W, K, k, s, p, d, groups = case
    r = np.random.default_rng(9)
    x = r.standard_normal((N, C, H, W)).astype(dtype)
    kk = k if isinstance(k, tuple) else (k, k)
    w = r.standard_normal((K, C // groups, *kk)).astype(dtype)
    b = r.standard_normal(K).astype(dtype)
    xt, wt, bt = T(x).requires_grad_(), T(w).requires_grad_(), T(b).requires_grad_()
    yt = F.conv2d(xt, wt, bt, s, p, d, groups)
    y = im2col.conv2d(nhwc(x), w, b, s, p, d, groups, layout="NHWC")
    assert_close(nchw(y), yt, what="forward")
    assert_close(nchw(y), im2col.conv2d(x, w, b, s, p, d, groups), what="forward vs NCHW")
    # an NHWC view read as NCHW: same tiles, output (N, K, OH, OW), tiles within one image
    assert_close(im2col.conv2d(nhwc(x).transpose(0, 3, 1, 2), w, b, s, p, d, groups), yt, what="NCHW out")
    gy = r.standard_normal(yt.shape).astype(dtype)
    yt.backward(T(gy))
    gx, gw, gb = im2col.conv2d_backward(nhwc(gy), nhwc(x), w, s, p, d, groups, layout="NHWC")
    assert_close(nchw(gx), xt.grad, what="grad_input")
    assert_close(gw, wt.grad, what="grad_weight")
    assert_close(gb, bt.grad, what="grad_bias")
    # static schedule: grad_weight's sum over the threads is the same every call
    assert_close(im2col.conv2d_backward(nhwc(gy), nhwc(x), w, s, p, d, groups, layout="NHWC")[1], gw, exact=True)
    # channels_last tensors with a contiguous grad_output: gy read as (N, K, L), tiles within one image
    cl = torch.channels_last
    gx2, gw2, _ = im2col.conv2d_backward(T(gy), T(x).to(memory_format=cl), T(w), s, p, d, groups)
    assert gx2.is_contiguous(memory_format=cl)
    assert_close(gx2, xt.grad, what="grad_input, contiguous grad_output")
    assert_close(gw2, wt.grad, what="grad_weight, contiguous grad_output")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", TILE_CASES[:7], ids=str)
def test_nhwc_tiles_conv_transpose2d(case, dtype, small_parallel_tiles):
    """conv_transpose2d is the grad_input half alone, the scatter of dcolsᵀ into an NHWC output."""
    N, C, H, W, K, k, s, p, d, groups = case
    if p == "same":
        p = 1
    kk = k if isinstance(k, tuple) else (k, k)
    ss, dd = (s, s) if isinstance(s, int) else s, (d, d) if isinstance(d, int) else d
    pp = (p, p) if isinstance(p, int) else p
    op = tuple(min(a, b_) - 1 for a, b_ in zip(ss, dd))
    pt = tuple(min(q, ((n - 1) * a + e * (c - 1)) // 2) for n, q, a, c, e in zip((H, W), pp, ss, kk, dd))
    r = np.random.default_rng(10)
    x = r.standard_normal((N, C, H, W)).astype(dtype)
    w = r.standard_normal((C, K // groups, *kk)).astype(dtype)
    ref = F.conv_transpose2d(T(x), T(w), None, ss, pt, op, groups, dd)
    y = im2col.conv_transpose2d(nhwc(x), w, None, ss, pt, op, groups, dd, layout="NHWC")
    assert_close(nchw(y), ref)


def test_nhwc_pointwise_in_place_with_uneven_batch_stride(small_parallel_tiles):
    """1×1 input and grad_input used in place when images are not evenly spaced (tiles per image)."""
    r = np.random.default_rng(11)
    x = r.standard_normal((4, 6, 7, 5))
    w = r.standard_normal((8, 3, 1, 1))
    xt, wt = T(x).requires_grad_(), T(w).requires_grad_()
    yt = F.conv2d(xt, wt, groups=2)
    padded = np.zeros((4, 9, 5, 6))
    padded[:, :7] = nhwc(x)
    view = padded[:, :7]  # (N, H, W, C), image stride 9·5·6, pixel stride 6
    assert_close(nchw(im2col.conv2d(view, w, groups=2, layout="NHWC")), yt)
    gy = r.standard_normal(yt.shape)
    yt.backward(T(gy))
    gx, gw, _ = im2col.conv2d_backward(nhwc(gy), view, w, groups=2, layout="NHWC")
    assert_close(nchw(gx), xt.grad)
    assert_close(gw, wt.grad)


# --- strided arrays and channels_last tensors: read in place, results laid out like torch's --------


def test_strided_views_are_read_without_a_copy():
    x = np.random.default_rng(8).standard_normal((2, 6, 5, 3)).astype(np.float32)  # NHWC
    view = x.transpose(0, 3, 1, 2)  # an NCHW view of NHWC data
    assert np.shares_memory(to_array(view, "input", "f", strided=True), x)
    sliced = x[:, ::2, 1:, :].transpose(0, 3, 1, 2)
    assert np.shares_memory(to_array(sliced, "input", "f", strided=True), x)
    w = np.ones((4, 3, 2, 2), np.float32)
    # channels-last data goes through the colsᵀ tiles, so it sums in another order than NCHW; bit for
    # bit against the same data made contiguous channels-last
    packed = np.ascontiguousarray(x[:, ::2, 1:, :]).transpose(0, 3, 1, 2)
    assert_close(im2col.conv2d(sliced, w), im2col.conv2d(packed, w), exact=True)
    assert_close(im2col.conv2d(sliced, w), im2col.conv2d(np.ascontiguousarray(sliced), w))
    assert_close(im2col.im2col(sliced, 2), im2col.im2col(np.ascontiguousarray(sliced), 2), exact=True)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)  # a channels_last tensor
    assert t.is_contiguous(memory_format=torch.channels_last)
    assert np.shares_memory(to_array(t, "input", "f", strided=True), x)
    # what the kernels cannot read is copied, as before
    assert not np.shares_memory(to_array(view[..., ::-1], "input", "f", strided=True), x)


def test_channels_last_tensors_give_outputs_in_torch_memory_format():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 8, generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    wt = torch.randn(3, 4, 3, 3, generator=g)
    cl = torch.channels_last
    cases = [
        (lambda x, w: im2col.conv2d(x, w, padding=1), lambda x, w: F.conv2d(x, w, padding=1), w),
        (lambda x, w: im2col.conv_transpose2d(x, w, stride=2), lambda x, w: F.conv_transpose2d(x, w, stride=2), wt),
    ]
    for ours, theirs, weight in cases:
        for xin, win in ((x.to(memory_format=cl), weight), (x, weight.to(memory_format=cl)), (x, weight)):
            y, ref = ours(xin, win), theirs(xin, win)
            assert y.stride() == ref.stride(), (y.stride(), ref.stride())
            assert_close(y, ref)
    x5 = torch.randn(2, 3, 4, 5, 6, generator=g).to(memory_format=torch.channels_last_3d)
    w5 = torch.randn(4, 3, 2, 3, 3, generator=g)
    y, ref = im2col.conv3d(x5, w5, padding=1), F.conv3d(x5, w5, padding=1)
    assert y.stride() == ref.stride()
    assert_close(y, ref)
    # the backward: grad_input channels-last like the input, as torch's autograd gives it
    xg = x.to(memory_format=cl).requires_grad_()
    F.conv2d(xg, w, padding=1).sum().backward()
    gx, gw, _ = im2col.conv2d_backward(torch.ones(2, 4, 9, 8), x.to(memory_format=cl), w, padding=1)
    assert gx.stride() == xg.grad.stride()
    assert_close(gx, xg.grad)


def test_nn_conv2d_with_channels_last_tensors():
    import im2col.nn as inn

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, generator=g).to(memory_format=torch.channels_last)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=g)
    x.requires_grad_()
    w.requires_grad_()
    y = inn.conv2d(x, w, padding=1, stride=(2, 1))
    ref = F.conv2d(x, w, padding=1, stride=(2, 1))
    assert y.stride() == ref.stride()
    assert_close(y, ref)
    assert torch.autograd.gradcheck(lambda x, w: inn.conv2d(x, w, padding=1, stride=(2, 1)), (x, w))
    conv = inn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect").double()
    twin = torch.nn.Conv2d(3, 8, 3, padding="same", padding_mode="reflect").double()
    twin.load_state_dict(conv.state_dict())
    assert conv(x).stride() == twin(x).stride()
    assert_close(conv(x), twin(x))


# --- errors ---------------------------------------------------------------------------------------


def test_bad_layout_strings_are_refused_naming_the_allowed_values():
    x = np.zeros((1, 4, 4, 2), np.float32)
    w = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"conv2d\(\): argument 'layout' must be 'NCHW' or 'NHWC' .*got 'nhwc'"):
        im2col.conv2d(x, w, layout="nhwc")
    with pytest.raises(ValueError, match=r"im2col\(\): argument 'layout' must be 'NCL' or 'NLC' .*got 'NHWC'"):
        im2col.im2col(np.zeros((1, 2, 8)), (3,), layout="NHWC")
    with pytest.raises(ValueError, match=r"conv3d\(\): argument 'layout' must be 'NCDHW' or 'NDHWC'.*got 'NHWC'"):
        im2col.conv3d(np.zeros((1, 2, 4, 4, 4)), np.zeros((1, 2, 3, 3, 3)), layout="NHWC")
    with pytest.raises(ValueError, match=r"col2im\(\): argument 'layout' .*got 3"):
        im2col.col2im(np.zeros((1, 9, 4)), (4, 4), 3, layout=3)


def test_shape_errors_are_phrased_in_the_chosen_layout():
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"must be a 3-D \(H, W, C\) or 4-D \(N, H, W, C\) array"):
        im2col.conv2d(np.zeros((2, 2, 8, 8, 3), np.float32), w, layout="NHWC")
    # an NCHW array passed as NHWC: its last axis (8) is read as the channels
    with pytest.raises(
        ValueError,
        match=r"input has 8 channels in its last axis \(layout='NHWC'\) but weight "
        r"of shape \(4, 3, 3, 3\) expects 3 \(weight.shape\[1\]·groups = 3·1\)",
    ):
        im2col.conv2d(np.zeros((2, 3, 8, 8), np.float32), w, layout="NHWC")
    with pytest.raises(ValueError, match=r"conv_transpose2d\(\): input has 8 channels in its last axis"):
        im2col.conv_transpose2d(np.zeros((2, 4, 8, 8), np.float32), w, layout="NHWC")
    with pytest.raises(
        ValueError, match=r"conv1d\(\): input has 9 channels in its last axis \(a channels-last layout\)"
    ):
        im2col.conv1d(np.zeros((2, 3, 9), np.float32), w[:, :, 0], layout="NLC")
    with pytest.raises(ValueError, match=r"'grad_output' must have shape \(2, 6, 6, 4\).*\(N, OH, OW, K\)"):
        im2col.conv2d_backward(np.zeros((2, 4, 6, 6)), np.zeros((2, 8, 8, 3)), w.astype(float), layout="NHWC")


def test_pointwise_copy_path_with_channels_last():
    """1×1, stride 1, no padding: im2col/col2im are one copy for C-contiguous arrays; a channels-last
    input or output must not take it (a flattened strided array is a copy, so col2im's result was
    lost when both branches met)."""
    x = np.random.default_rng(12).standard_normal((2, 5, 4, 3)).astype(np.float32)  # NHWC
    cols = im2col.im2col(x, 1, layout="NHWC")
    assert_close(cols, im2col.im2col(nchw(x), 1), exact=True)
    assert_close(im2col.col2im(cols, (5, 4), 1, layout="NHWC"), x, exact=True)
    t = torch.from_numpy(x).permute(0, 3, 1, 2)  # a channels_last tensor
    assert_close(im2col.im2col(t, 1), F.unfold(t, 1), exact=True)


# --- The channels-last im2col/col2im tiles (im2col_cl, col2im_cl) -------------------------------

CL_CASES = [  # N, C, H, W, kernel, stride, padding, dilation
    (2, 8, 9, 11, 3, 1, 1, 1),  # 3×3 p1 with just enough channels for the tiles
    (3, 37, 7, 6, 3, 2, 0, 1),  # stride; C not a multiple of the register blocks
    (1, 70, 5, 9, 1, 1, 0, 1),  # 1×1
    (2, 16, 12, 13, (3, 2), (2, 3), ((2, 0), (1, 3)), (2, 1)),  # non-square, uneven padding, dilation
    (2, 9, 6, 17, (2, 5), (1, 2), (0, 3), (1, 2)),  # horizontal stride and dilation
    (4, 12, 4, 5, 5, 1, 3, 1),  # padding wider than the image reaches: rows and columns of zeros
    (1, 300, 6, 5, 3, 1, 1, 1),  # many channels: several channel tiles
    (5, 24, 3, 3, 3, 1, 1, 1),  # batch above the thread count, tiny images
    (1, 1, 6, 7, 3, 1, 1, 1),  # one channel (NHWC is NCHW: the plane kernels)
    (2, 3, 15, 17, 7, 2, 3, 1),  # the stem's shape, small
    (0, 16, 5, 5, 3, 1, 1, 1),  # no images
]


@pytest.fixture(params=[(1, 1, 1), (5, 7, 3), (4, 30, 2), (None, None, 1)],
                ids=lambda p: "default tiles" if p[0] is None
                else f"channels={p[0]},pixels={p[1]},threads={p[2]}")  # fmt: skip
def cl_tiles(request, monkeypatch):
    """Channels-last tiles of ``channels`` × ``pixels`` on ``threads`` threads, however small the
    problem, and for every channel count (so the smallest tiles exercise every edge: one channel,
    leftovers after the 4×4 and 2×2 register blocks, one pixel, tiles ending inside an image)."""
    channels, pixels, threads = request.param
    if channels is not None:
        monkeypatch.setattr(im2col._im2col_drivers, "CL_TILE_CHANNELS", channels)
        monkeypatch.setattr(im2col._im2col_drivers, "CL_IM2COL_TILE_PIXELS", pixels)
        monkeypatch.setattr(im2col._im2col_drivers, "CL_COL2IM_TILE_PIXELS", pixels)
        monkeypatch.setattr(im2col._im2col_drivers, "CL_MIN_CHANNEL_BYTES", 0)
    monkeypatch.setattr(im2col._threads, "SERIAL_BELOW", 0)
    monkeypatch.setattr(im2col._threads, "_fixed", threads)
    return request.param


def _torch_padding(p) -> bool:
    """Whether torch's unfold/fold take this padding (not per side)."""
    return not (isinstance(p, tuple) and isinstance(p[0], tuple))


def _cl_geometry(case):
    N, C, H, W, k, s, p, d = case
    k, s, d = (
        (k, k) if isinstance(k, int) else k,
        (s, s) if isinstance(s, int) else s,
        (d, d) if isinstance(d, int) else d,
    )
    L = int(np.prod(im2col.output_size((H, W), k, s, p, d)))
    return N, C, H, W, k, s, p, d, L


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_, np.float16, np.complex64, np.complex128]
)
@pytest.mark.parametrize("case", CL_CASES, ids=str)
def test_channels_last_im2col_tiles_are_the_nchw_columns(case, dtype, cl_tiles):
    N, C, H, W, k, s, p, d, _ = _cl_geometry(case)
    x = (np.random.default_rng(3).standard_normal((N, C, H, W)) * 50).astype(dtype)
    if dtype in (np.complex64, np.complex128):
        x = x + 1j * x[:, ::-1]
    cols = im2col.im2col(nhwc(x), k, d, p, s, layout="NHWC")
    assert_close(cols, im2col.im2col(x, k, d, p, s), exact=True, what=f"{case} {np.dtype(dtype)}")
    if dtype in (np.float32, np.float64) and N and _torch_padding(p):
        assert_close(cols, F.unfold(T(x), k, d, p, s), exact=True, what="vs torch unfold")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CL_CASES, ids=str)
def test_channels_last_col2im_tiles_are_the_nchw_fold(case, dtype, cl_tiles):
    # the tiles add each pixel's entries in the planes' order (kernel row, then column): same bits
    N, C, H, W, k, s, p, d, L = _cl_geometry(case)
    cols = np.random.default_rng(4).standard_normal((N, C * k[0] * k[1], L)).astype(dtype)
    out = im2col.col2im(cols, (H, W), k, d, p, s, layout="NHWC")
    assert out.shape == (N, H, W, C) and out.flags.c_contiguous
    assert_close(nchw(out), im2col.col2im(cols, (H, W), k, d, p, s), exact=True, what=f"{case}")
    if N and _torch_padding(p):
        assert_close(nchw(out), F.fold(T(cols), (H, W), k, d, p, s), what="vs torch fold")


@pytest.mark.parametrize("case", [c for c in CL_CASES if _torch_padding(c[6])], ids=str)
def test_channels_last_tensors_take_the_tiles(case, cl_tiles):
    N, C, H, W, k, s, p, d, L = _cl_geometry(case)
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((N, C, H, W), dtype=np.float32))
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert_close(im2col.im2col(x_cl, k, d, p, s), F.unfold(x, k, d, p, s), exact=True, what="unfold")
    cols = F.unfold(x, k, d, p, s).numpy()
    folded = im2col.col2im(cols, (H, W), k, d, p, s, layout="NHWC")
    assert_close(nchw(folded), im2col.col2im(cols, (H, W), k, d, p, s), exact=True, what="fold")


@pytest.mark.parametrize("folded", [False, True])
@pytest.mark.parametrize("case", CL_CASES, ids=str)
def test_channels_last_tiles_with_the_batch_folded_into_columns(case, folded, cl_tiles):
    # conv2d without a BLAS, and conv2d_backward's col2im, use the (C·kh·kw, N·L) layout
    from im2col._geometry import geometry, parse_padding
    from im2col._im2col_drivers import _col2im_into, _im2col_into

    N, C, H, W, k, s, p, d, L = _cl_geometry(case)
    g = geometry("im2col", (N, C, H, W), k, s, parse_padding(p, "im2col", 2, k, d, s), d)
    x = np.random.default_rng(6).standard_normal((N, C, H, W))
    shape = (g.rows, N * L) if folded else (N, g.rows, L)
    expected, got = np.full(shape, np.nan), np.full(shape, np.nan)
    _im2col_into(x, g, expected, folded=folded)
    _im2col_into(nchw(nhwc(x)), g, got, folded=folded)
    assert_close(got, expected, exact=True, what="im2col")
    image, image_cl = np.full_like(x, np.nan), nchw(np.full_like(nhwc(x), np.nan))
    _col2im_into(expected, g, image, folded=folded)
    _col2im_into(expected, g, image_cl, folded=folded)
    assert_close(image_cl, image, exact=True, what="col2im")


def test_channels_last_im2col_and_col2im_use_the_tiles(monkeypatch):
    # the tests above would pass on the plane kernels too: check that the tiles run where they should
    calls = []
    for name in ("im2col_cl", "col2im_cl", "im2col", "col2im"):
        kernel = getattr(im2col._kernels, name)
        monkeypatch.setattr(im2col._kernels, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    x = np.random.default_rng(7).standard_normal((2, 16, 6, 6), dtype=np.float32)
    # complex128 moves its real and imaginary parts apart (strided views: the planes); 2-byte items too
    for dtype, kernel in [(np.float32, "im2col_cl"), (np.complex64, "im2col_cl"), (np.float64, "im2col_cl"),
                          (np.complex128, "im2col"), (np.float16, "im2col")]:  # fmt: skip
        calls.clear()
        im2col.im2col(nhwc(x.astype(dtype)), 3, padding=1, layout="NHWC")
        assert set(calls) == {kernel}, (dtype, calls)
    for C, kernel in [(16, "col2im_cl"), (2, "col2im")]:  # 2 float32 channels: the planes
        calls.clear()
        im2col.col2im(np.ones((2, C * 9, 36), np.float32), (6, 6), 3, padding=1, layout="NHWC")
        assert calls == [kernel], (C, calls)
