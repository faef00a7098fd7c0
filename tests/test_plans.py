"""Repeated small calls run a kept plan (im2col/_plans.py): same bits as the full path, same refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close
from test_ops import GRID, Config

import im2col
from im2col import _engine, _functional, _im2col_drivers, _plans, reference
from im2col._gemm import native_blas

# The public functions without their plan cache: every call runs the full checks and kernels.
full_im2col = _functional._im2col
full_col2im = _functional._col2im
full_conv2d = _functional._conv2d


def planned(fn) -> int:
    """Number of kept plans of a public function (callables, not 'no plan' markers)."""
    cache = _plans._caches[["im2col", "col2im", "conv2d"].index(fn)]
    return sum(p is not None for p in cache.plans.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", GRID, ids=str)
def test_second_call_runs_a_plan_and_matches_the_full_path_and_torch(c: Config, dtype):
    x, w, b = c.arrays(dtype)
    x2, w2, b2 = c.arrays(dtype, seed=1)  # same signature, other values: the plan must not keep data
    kw = dict(stride=c.stride, padding=c.padding, dilation=c.dilation)
    k = (c.kh, c.kw)
    for fn in ("im2col", "col2im", "conv2d"):
        assert planned(fn) == 0

    im2col.im2col(x, k, **kw)
    cols = im2col.im2col(x2, k, **kw)
    assert planned("im2col") == 1
    assert_close(cols, full_im2col(x2, k, **kw), exact=True)
    assert_close(cols, reference.im2col(x2, k, c.dilation, c.pads, c.stride), exact=True)

    im2col.col2im(cols, (c.H, c.W), k, **kw)
    folded = im2col.col2im(cols * 2, (c.H, c.W), k, **kw)
    pointwise = (c.kh, c.kw, c.stride, c.padding) == (1, 1, (1, 1), (0, 0))
    assert planned("col2im") == (0 if pointwise else 1)  # a 1×1 col2im is a copy on the full path
    assert_close(folded, full_col2im(cols * 2, (c.H, c.W), k, **kw), exact=True)
    assert_close(folded, F.fold(torch.from_numpy(cols * 2), (c.H, c.W), k, **kw))

    for bias, bias2 in ((None, None), (b, b2)):
        im2col.conv2d(x, w, bias, groups=c.groups, **kw)
        y = im2col.conv2d(x2, w2, bias2, groups=c.groups, **kw)
        assert_close(y, full_conv2d(x2, w2, bias2, groups=c.groups, **kw), exact=True)
        tb = None if bias2 is None else torch.from_numpy(bias2)
        assert_close(y, F.conv2d(torch.from_numpy(x2), torch.from_numpy(w2), tb, groups=c.groups, **kw))
    # conv2d plans call the BLAS; a call the engine's routing rule takes has none (the full path's bits)
    g = _functional._conv2d_geometry("conv2d", x2, w2, c.stride, c.padding, c.dilation, c.groups)
    engine = _engine.takes(x2, w2, g, c.groups, False)
    assert planned("conv2d") == (2 if native_blas() is not None and not engine else 0)


def test_teaching_shape_repeated_matches_torch():
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    w = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3) - 4
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    for _ in range(3):
        cols = im2col.im2col(x, 3, padding=2)
        assert_close(cols, F.unfold(xt, 3, padding=2), exact=True)
        assert_close(im2col.col2im(cols, (5, 5), 3, padding=2), F.fold(torch.from_numpy(cols), (5, 5), 3, padding=2))
        assert_close(im2col.conv2d(x, w, padding=2), F.conv2d(xt, wt, padding=2))
    assert planned("im2col") == planned("col2im") == 1
    assert planned("conv2d") == (native_blas() is not None)


def test_unbatched_and_moved_dtypes_through_plans():
    for dtype in (np.bool_, np.int16, np.float16, np.int32, np.complex64, np.float64):
        x = (np.arange(2 * 6 * 5) % 7).reshape(2, 6, 5).astype(dtype)
        expected = reference.im2col(x[None], (2, 3), (1, 2), ((1, 1), (2, 2)), (2, 1))[0]
        for _ in range(2):
            got = im2col.im2col(x, (2, 3), dilation=(1, 2), padding=(1, 2), stride=(2, 1))
            assert_close(got, expected, exact=True)
    x = np.random.default_rng(0).standard_normal((3, 6, 6))
    w = np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    for _ in range(2):
        assert_close(im2col.conv2d(x, w, padding=1), F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1))
        cols = im2col.im2col(x, 3)
        assert_close(im2col.col2im(cols, 6, 3), F.fold(torch.from_numpy(cols), 6, 3))


def test_a_bad_call_after_a_good_one_still_raises():
    x = np.ones((1, 1, 5, 5), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    for _ in range(2):  # the second good call runs the plan
        im2col.im2col(x, 3, padding=2, stride=1)
        im2col.conv2d(x, w, None, 1, 2, 1, 1)
        im2col.col2im(im2col.im2col(x, 3, padding=2), 5, 3, padding=2)
    cols = im2col.im2col(x, 3, padding=2)
    # equal to the good values under ==, refused by the full checks
    for bad in (1.0, True, np.float64(1.0), (1, 1.0), (True, 1)):
        with pytest.raises(TypeError, match="'stride' must be"):
            im2col.im2col(x, 3, padding=2, stride=bad)
        with pytest.raises(TypeError, match="'stride' must be"):
            im2col.conv2d(x, w, None, bad, 2)
        with pytest.raises(TypeError, match="'stride' must be"):
            im2col.col2im(cols, 5, 3, padding=2, stride=bad)
    with pytest.raises(TypeError, match="'groups' must be an int"):
        im2col.conv2d(x, w, None, 1, 2, 1, 1.0)
    with pytest.raises(TypeError, match="'kernel_size' must be"):
        im2col.im2col(x, 3.0, padding=2)
    # same shapes, other dtypes or arrays that the checks refuse
    with pytest.raises(TypeError, match="same dtype"):
        im2col.conv2d(x, w.astype(np.float64), None, 1, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        im2col.conv2d(x.astype(np.int32), w.astype(np.int32), None, 1, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        im2col.col2im(cols.astype(np.int64), 5, 3, padding=2)
    with pytest.raises(ValueError, match="'bias' must have shape"):
        im2col.conv2d(x, w, np.ones(2, np.float32), 1, 2)
    with pytest.raises(TypeError, match="numpy.ndarray or a torch.Tensor"):
        im2col.conv2d(x, w, [1.0], 1, 2)
    with pytest.raises(ValueError, match="must be at least 1"):
        im2col.im2col(x, 3, padding=0, dilation=3)
    with pytest.raises(ValueError, match="number of sliding"):
        im2col.col2im(cols[..., :-1], 5, 3, padding=2)
    with pytest.raises(TypeError, match="numpy.ndarray or a torch.Tensor"):
        im2col.im2col(x.tolist(), 3, padding=2)
    # a refused call leaves no plan behind; the good signatures still have theirs
    assert planned("im2col") == planned("col2im") == 1
    assert planned("conv2d") == (native_blas() is not None)


def test_same_shape_other_layouts_and_tensors_take_the_full_path():
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 3, 6, 7)).astype(np.float32)
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    for _ in range(2):
        im2col.im2col(x, 3, padding=1)
        im2col.conv2d(x, w, padding=1)
    expected = F.unfold(torch.from_numpy(x), 3, padding=1)
    for other in (np.asfortranarray(x), x.astype(">f4"), x[..., ::-1].copy()[..., ::-1]):
        assert_close(im2col.im2col(other, 3, padding=1), expected, exact=True)
        assert_close(im2col.conv2d(other, w, padding=1), F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1))
    y = im2col.im2col(torch.from_numpy(x), 3, padding=1)
    assert isinstance(y, torch.Tensor)
    assert_close(y, expected, exact=True)
    buf = np.empty((2, 27, 42), np.float32)
    assert im2col.im2col(x, 3, padding=1, out=buf) is buf
    assert_close(buf, expected, exact=True)


def test_large_problems_keep_no_plan():
    x = np.zeros((2, 16, 64, 64), np.float32)
    w = np.zeros((8, 16, 3, 3), np.float32)
    for _ in range(2):
        im2col.im2col(x, 3)
        im2col.conv2d(x, w)
    assert planned("im2col") == planned("conv2d") == 0


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(_plans, "MAX_PLANS", 3)
    for n in range(1, 8):
        im2col.im2col(np.zeros((1, 1, n + 2, 4), np.float32), 3)
        assert len(_plans._caches[0].plans) <= 3


# --- 1×1 kernels, stride 1, no padding: im2col and col2im are one copy ------------------------


@pytest.mark.parametrize("shape", [(2, 8, 48, 48), (1, 3, 5, 7), (3, 40, 33)])  # threaded, serial, unbatched
@pytest.mark.parametrize("dilation", [1, (3, 2)])
def test_pointwise_copy_matches_torch(shape, dilation):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x if x.ndim == 4 else x[None])
    expected = F.unfold(xt, 1, dilation=dilation)
    expected = expected if x.ndim == 4 else expected[0]
    for _ in range(2):  # the full path, then (for the small shapes) the plan
        cols = im2col.im2col(x, 1, dilation=dilation)
        assert_close(cols, expected, exact=True)
        assert not np.shares_memory(cols, x)
        back = im2col.col2im(cols, shape[-2:], 1, dilation=dilation)
        assert_close(back, x, exact=True)
        assert not np.shares_memory(back, cols)
    out = np.full(cols.shape, np.nan, np.float32)
    assert im2col.im2col(x, (1, 1), out=out) is out
    assert_close(out, expected, exact=True)
    cols = np.random.default_rng(1).standard_normal(cols.shape).astype(np.float32)
    expected = F.fold(torch.from_numpy(cols if cols.ndim == 3 else cols[None]), shape[-2:], 1)
    assert_close(im2col.col2im(cols, shape[-2:], 1), expected if cols.ndim == 3 else expected[0], exact=True)


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.float16, np.complex64, np.complex128, np.float64])
def test_pointwise_copy_any_dtype(dtype):
    x = (np.arange(2 * 3 * 4 * 5) % 7).reshape(2, 3, 4, 5).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x - 1j * x
    assert_close(im2col.im2col(x, 1), reference.im2col(x, (1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1)), exact=True)


def test_pointwise_with_stride_or_padding_is_not_a_copy():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    for kw in (dict(stride=2), dict(padding=1), dict(stride=(1, 3))):
        expected = F.unfold(torch.from_numpy(x), 1, **kw)
        assert_close(im2col.im2col(x, 1, **kw), expected, exact=True)
        size = (6, 7)
        assert_close(im2col.col2im(expected.numpy(), size, 1, **kw), F.fold(expected, size, 1, **kw))


@pytest.mark.parametrize("copy", ["copy_bytes", "stream_copy_bytes"])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_copy_kernels_any_length_and_alignment(copy, n_threads):
    from im2col import _kernels

    fn = getattr(_kernels, copy)
    r = np.random.default_rng(0)
    for n in (0, 1, 15, 16, 63, 64, 65, 1000, 2 * 4096 + 5, 3 * 4096):
        for s_off, d_off in ((0, 0), (1, 3), (7, 0)):
            src = r.integers(0, 256, n + 8, dtype=np.uint8)
            dst = np.zeros(n + 8, np.uint8)
            fn(src[s_off : s_off + n], dst[d_off : d_off + n], n_threads)
            np.testing.assert_array_equal(dst[d_off : d_off + n], src[s_off : s_off + n])
            assert not dst[:d_off].any() and not dst[d_off + n :].any()  # nothing written outside


def test_pointwise_streaming_copy_matches_torch(monkeypatch):
    monkeypatch.setattr(_im2col_drivers, "STREAM_COPY_BYTES", 0)  # the large-copy route on small arrays
    x = np.random.default_rng(0).standard_normal((2, 5, 41, 43)).astype(np.float32)
    cols = im2col.im2col(x, 1)
    assert_close(cols, F.unfold(torch.from_numpy(x), 1), exact=True)
    assert_close(im2col.col2im(cols, (41, 43), 1), x, exact=True)


def test_read_only_arrays_run_the_plan():
    """A read-only array has a writable one's key (same shape, dtype, strides): the plan must take it."""
    r = np.random.default_rng(0)
    x, w, b = (r.standard_normal(s).astype(np.float32) for s in ((1, 2, 6, 6), (3, 2, 3, 3), (3,)))
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1)
    for writeable in (True, False, False):
        xs, ws, bs = x.copy(), w.copy(), b.copy()
        for a in (xs, ws, bs):
            a.flags.writeable = writeable
        assert_close(im2col.conv2d(xs, ws, bs, padding=1), expected)
        cols = im2col.im2col(xs, 3, padding=1)
        assert_close(cols, F.unfold(torch.from_numpy(x), 3, padding=1), exact=True)
        cols.flags.writeable = writeable
        assert_close(im2col.col2im(cols, 6, 3, padding=1), F.fold(torch.from_numpy(cols.copy()), 6, 3, padding=1))
    assert planned("im2col") == planned("col2im") == 1


def test_repeated_calls_give_the_first_calls_bits():
    """Found in review: a plan ran other arithmetic than the full path for a convolution of 1×1
    images (which look channels-last, so the full path takes the colsᵀ tiles) and for a 1×1
    col2im (the full path copies, so -0.0 stayed -0.0 only the first time)."""
    r = np.random.default_rng(3)
    x = r.standard_normal((3, 66, 1, 1)).astype(np.float32)
    w = r.standard_normal((15, 66, 3, 3)).astype(np.float32)
    first = im2col.conv2d(x, w, padding=1)
    for _ in range(3):
        assert np.array_equal(im2col.conv2d(x, w, padding=1), first)
    # one output row too wide for a row tile (16 × 40000 float32 columns, 2.4 MiB), yet few flops
    x = r.standard_normal((1, 2, 1, 40007)).astype(np.float32)
    w = r.standard_normal((1, 2, 1, 8)).astype(np.float32)
    first = im2col.conv2d(x, w)
    for _ in range(3):
        assert np.array_equal(im2col.conv2d(x, w), first)
    cols = np.full((1, 2, 9), -0.0)
    first = im2col.col2im(cols, (3, 3), 1)
    assert np.signbit(first).all()
    for _ in range(3):
        again = im2col.col2im(cols, (3, 3), 1)
        assert np.array_equal(again, first) and np.signbit(again).all()
