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
    monkeypatch.setattr(_gemm, "native_blas", lambda: blas)
    monkeypatch.setattr(im2col._functional, "native_blas", lambda: blas)
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
    monkeypatch.setattr(im2col._functional, "TILE_BYTES", 4096)  # force many small tiles
    monkeypatch.setattr(im2col._functional, "TILE_MIN_COLUMNS", 1)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    ty = F.conv2d(tx, tw, torch.from_numpy(b), **kw)
    y = im2col.conv2d(x, w, b, **kw)
    assert_close(y, ty)
    gy = r.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.from_numpy(gy))
    gx, gw, _ = im2col.conv2d_backward(gy, x, w, **kw)
    assert_close(gx, tx.grad)
    assert_close(gw, tw.grad)
