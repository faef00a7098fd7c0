"""The thin BLAS layer (function pointers into a loaded BLAS, called from OpenMP threads) and the
convolution on each GEMM route: native OpenBLAS, native MKL (torch's), and the NumPy/torch fallback."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import im2col
from im2col import _gemm, _kernels


def _routes():
    routes = {"fallback": None}
    import glob

    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(libs, "libscipy_openblas64_*.so")):
        found = _gemm._symbols(path, "scipy_sgemm_64_", "scipy_dgemm_64_", True, "openblas_set_num_threads_local", "o")
        if found:
            routes["openblas"] = found
    mkl = _gemm._symbols(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"),
                         "sgemm_", "dgemm_", False, "MKL_Set_Num_Threads_Local", "m")  # fmt: skip
    if mkl:
        routes["mkl"] = mkl
    return routes


ROUTES = _routes()


@pytest.fixture(params=sorted(ROUTES))
def route(request, monkeypatch):
    blas = ROUTES[request.param]
    for module in (_gemm, im2col._conv2d, im2col._conv2d_routes, im2col._conv3d_routes):
        monkeypatch.setattr(module, "native_blas", lambda *operands, elements=0: blas)
    return request.param


def test_a_native_blas_is_found_here():
    """On the project's machines (NumPy wheels bundle OpenBLAS) the fast route must be available."""
    assert _gemm.native_blas() is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (4, 9, 300), (37, 200, 19), (64, 1000, 70)])
def test_gemm_layer_matches_numpy(route, dtype, ta, tb, m, n, k):
    r = np.random.default_rng(m * n + k)
    a = r.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = r.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    A, B = (a.T if ta else a), (b.T if tb else b)
    big = r.standard_normal((m + 3, n + 5)).astype(dtype)
    out = big[1 : m + 1, 2 : n + 2]  # a strided block: rows longer than n
    before = big.copy()
    _gemm.matmul(A, B, out, beta=1.0)
    expected = before[1 : m + 1, 2 : n + 2] + A.astype(np.float64) @ B.astype(np.float64)
    assert_close(out, expected.astype(dtype))
    outside = np.ones_like(big, dtype=bool)
    outside[1 : m + 1, 2 : n + 2] = False
    np.testing.assert_array_equal(big[outside], before[outside])  # nothing written outside the block


def test_the_faster_route_is_chosen_and_32_bit_blas_only_for_32_bit_sizes(monkeypatch):
    """Which BLAS is faster depends on the CPU (MKL skips AVX-512 on AMD; OpenBLAS is held to AVX2
    by OPENBLAS_CORETYPE here): the routes are ordered by a measurement. A size past 2³¹ − 1 must
    never reach MKL's 32-bit integers."""
    ilp64 = _gemm.NativeBlas("wide", 1, 2, True, 0)
    lp64 = _gemm.NativeBlas("narrow", 3, 4, False, 0)
    speed = {"wide": [900, 800], "narrow": [500, 700]}
    monkeypatch.setattr(_gemm, "_tile_gemm_ns", lambda blas, rounds=5, calls=3: speed[blas.name])
    monkeypatch.setattr(_gemm, "_find_routes", lambda torch_loaded: [ilp64, lp64])
    monkeypatch.setattr(_gemm, "_native", {})
    assert _gemm.native_blas() is lp64  # the faster one
    assert _gemm.native_blas(elements=_gemm.INT32_MAX) is lp64
    assert _gemm.native_blas(elements=_gemm.INT32_MAX + 1) is ilp64
    wide = np.broadcast_to(np.float32(0), (2, 2**31))  # 2³¹ columns of one repeated element: spans 1
    assert _gemm.native_blas(wide) is lp64
    strided = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (2, 2), (4 * 2**31, 4))
    assert _gemm.native_blas(strided) is ilp64  # its rows 2³¹ elements apart
    monkeypatch.setattr(_gemm, "_find_routes", lambda torch_loaded: [lp64])
    monkeypatch.setattr(_gemm, "_native", {})
    assert _gemm.native_blas(elements=2**40) is None  # then the convolutions take NumPy's/torch's matmul


MKL = ["MKL (torch)"] if "mkl" in ROUTES else []


@pytest.mark.parametrize("choice, names", [("openblas", ["OpenBLAS (numpy)"]), ("mkl", MKL), ("0", []),
                                           ("auto", ["OpenBLAS (numpy)", *MKL])])  # fmt: skip
def test_the_environment_picks_the_routes(choice, names, monkeypatch):
    monkeypatch.setenv("IM2COL_NATIVE_BLAS", choice)
    assert [b.name for b in _gemm._find_routes(True)] == names


def test_an_unknown_route_name_is_refused(monkeypatch):
    """A typo must not silently switch the fast path off."""
    monkeypatch.setenv("IM2COL_NATIVE_BLAS", "MKL2")
    with pytest.raises(
        ValueError,
        match=r"^environment variable IM2COL_NATIVE_BLAS must be 'auto' \(or '1'\), "
        r"'openblas', 'mkl' or '0' \(or 'none', 'off'\), got 'MKL2'$",
    ):
        _gemm._find_routes(True)


def test_span_bounds_every_offset():
    x = np.zeros((3, 4, 5), np.float32)
    assert _gemm.span(x) == 60
    assert _gemm.span(x[:, ::2, ::-1]) == 60 - 5  # first to last element: rows 0 and 2 of 4 per block
    assert _gemm.span(x.transpose(2, 0, 1)) == 60
    assert _gemm.span(np.zeros((0, 7))) == 0


def test_gemm_rejects_a_non_contiguous_last_axis():
    blas = _gemm.native_blas()
    a = np.ones((2, 2), np.float32)
    out = np.zeros((2, 4), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="last axis of 'out' must be contiguous"):
        _kernels.gemm(a, False, a, False, out, 0.0, 1, blas.sgemm, blas.ilp64, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape, kw",
    [
        ((3, 4, 13, 11, 6, 3, 3), dict(padding=1)),
        ((2, 4, 9, 9, 4, 1, 1), dict(groups=2)),  # pointwise: GEMM reads the input in place
        ((2, 6, 10, 7, 6, 3, 2), dict(stride=2, dilation=(1, 2), groups=3, padding=(2, 0))),
        ((5, 1, 28, 28, 4, 3, 3), {}),
        ((1, 3, 40, 41, 5, 5, 5), dict(padding=2)),  # several tiles per image
    ],
)
def test_conv_routes_match_torch(route, dtype, shape, kw, monkeypatch):
    N, C, H, W, K, kh, kwid = shape
    r = np.random.default_rng(0)
    x = r.standard_normal((N, C, H, W)).astype(dtype)
    w = r.standard_normal((K, C // kw.get("groups", 1), kh, kwid)).astype(dtype)
    b = r.standard_normal(K).astype(dtype)
    monkeypatch.setattr(im2col._tiles, "TILE_BYTES", 4096)  # force many small tiles
    monkeypatch.setattr(im2col._tiles, "TILE_MIN_COLUMNS", 1)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    ty = F.conv2d(tx, tw, torch.from_numpy(b), **kw)
    y = im2col.conv2d(x, w, b, **kw)
    assert_close(y, ty)
    gy = r.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(gy))
    gx, gw, _ = im2col.conv2d_backward(gy, x, w, **kw)
    assert_close(gx, tx.grad)
    assert_close(gw, tw.grad)


# conv1d as (N, C, L), kernel k, stride, padding, dilation, groups, K
COARSE_CASES = [
    (1, 6, 300, 5, 1, 2, 1, 1, 4),
    (1, 6, 301, 3, 2, 1, 2, 2, 4),  # stride, dilation, groups
    (2, 4, 77, 4, 3, 0, 1, 1, 3),
    (1, 3, 64, 1, 2, 0, 1, 1, 5),  # 1×1 with stride: gathered, not read in place
]


@pytest.mark.skipif(_gemm.native_blas() is None, reason="the tiled kernels need a BLAS they can call")
@pytest.mark.parametrize("reason", ["wide rows", "idle threads"])
@pytest.mark.parametrize("case", COARSE_CASES, ids=str)
def test_rows_too_coarse_go_to_the_split_tiles(case, reason, monkeypatch):
    """A long signal is one output row, the smallest tile of the row kernels: it goes to the colsᵀ
    tiles on a channels-last copy, and forward, both gradients and the transposed convolution still
    equal torch's, in the caller's layout."""
    N, C, L, k, s, p, d, groups, K = case
    # small colsᵀ tiles, so that rows split into many and both backward phases run
    monkeypatch.setattr(im2col._tiles, "TILE_BYTES", 64)
    monkeypatch.setattr(im2col._tiles, "TILE_MIN_PIXELS", 1)
    if reason == "wide rows":
        monkeypatch.setattr(im2col._tiles, "ROW_TILE_MAX_BYTES", 1)
    else:  # one image of one row on 2 threads: a single row tile would leave a thread idle
        monkeypatch.setattr(im2col._threads, "SERIAL_FLOPS_BELOW", 0)
        monkeypatch.setattr(im2col._threads, "_fixed", 2)
        N = 1
    calls = []
    for name in ("_conv_forward_nhwc", "_conv_backward_nhwc"):
        real = getattr(im2col._conv2d_routes, name)
        monkeypatch.setattr(
            im2col._conv2d_routes, name, lambda *a, _f=real, _n=name, **kw: calls.append(_n) or _f(*a, **kw)
        )
    r = np.random.default_rng(L)
    x = torch.from_numpy(r.standard_normal((N, C, L))).requires_grad_()
    w = torch.from_numpy(r.standard_normal((K, C // groups, k))).requires_grad_()
    conf = dict(stride=s, padding=p, dilation=d, groups=groups)
    ref = F.conv1d(x, w, **conf)
    gy = torch.randn_like(ref)
    gx_ref, gw_ref = torch.autograd.grad(ref, (x, w), gy)
    xn, wn, gyn = x.detach().numpy(), w.detach().numpy(), gy.numpy()
    y = im2col.conv1d(xn, wn, **conf)
    gx, gw, _ = im2col.conv1d_backward(gyn, xn, wn, **conf)
    assert_close(y, ref, what="forward")
    assert_close(gx, gx_ref, what="grad_input")
    assert_close(gw, gw_ref, what="grad_weight")
    assert y.flags.c_contiguous and gx.flags.c_contiguous
    wt = r.standard_normal((C, K // groups, k))
    yt = im2col.conv_transpose1d(xn, wt, stride=s, padding=p, dilation=d, groups=groups)
    assert_close(
        yt, F.conv_transpose1d(x.detach(), torch.from_numpy(wt), stride=s, padding=p, dilation=d, groups=groups)
    )
    assert yt.flags.c_contiguous
    assert calls.count("_conv_forward_nhwc") == 1 and calls.count("_conv_backward_nhwc") == 2, calls


@pytest.mark.skipif(_gemm.native_blas() is None, reason="the tiled kernels need a BLAS they can call")
def test_depthwise_rows_stay_on_the_row_tiles(monkeypatch):
    """With one channel per group the colsᵀ tiles copy single elements and lose: no detour."""
    monkeypatch.setattr(im2col._tiles, "ROW_TILE_MAX_BYTES", 1)
    monkeypatch.setattr(im2col._conv2d_routes, "_conv_forward_nhwc", None)  # calling it would raise
    x, w = np.ones((1, 4, 50)), np.ones((4, 1, 3))
    np.testing.assert_array_equal(im2col.conv1d(x, w, groups=4), np.full((1, 4, 48), 3.0))


@pytest.mark.skipif(_gemm.native_blas() is None, reason="the tiled kernels need a BLAS they can call")
def test_one_tile_either_way_stays_on_the_row_tiles(monkeypatch):
    """Found in review: a batch-1 7×7 layer is one row tile and one colsᵀ tile too; the detour
    would only add strided gathers (and, backward, a copy of x)."""
    monkeypatch.setattr(im2col._threads, "SERIAL_FLOPS_BELOW", 0)
    monkeypatch.setattr(im2col._threads, "_fixed", 2)
    for name in ("_conv_forward_nhwc", "_conv_backward_nhwc"):
        monkeypatch.setattr(im2col._conv2d_routes, name, None)  # calling either would raise
    r = np.random.default_rng(0)
    x, w = r.standard_normal((1, 16, 7, 7)), r.standard_normal((8, 16, 3, 3))
    y = im2col.conv2d(x, w, padding=1)
    assert_close(y, F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1))
    im2col.conv2d_backward(np.ones_like(y), x, w, padding=1)
