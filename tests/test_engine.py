"""The convolution engine: each micro-kernel against NumPy on ragged edges, and the engine's conv2d
against torch under every instruction set this CPU runs, bit-identical across ISAs and thread counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import im2col
from im2col import _engine, _engine_kernels

ISAS = ["portable"] + {"portable": [], "avx2": ["avx2"], "avx512": ["avx2", "avx512"]}[_engine_kernels.best_isa()]
RTOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("k", [1, 2, 37])
def test_ukernel_ragged_edges(isa, dtype, k):
    mr, nr = _engine_kernels.ukernel_shape(_engine_kernels.ISA_NAMES[isa], dtype == np.float64)
    rng = np.random.default_rng(k)
    for m, n in [(mr, nr), (1, 1), (mr - 1, nr - 1), (1, nr), (mr, 1), (mr // 2, nr // 2 + 1)]:
        A = np.zeros((k, mr), dtype)
        B = np.zeros((k, nr), dtype)
        A[:, :m] = rng.standard_normal((k, m))  # the packers zero-pad past the ragged edge
        B[:, :n] = rng.standard_normal((k, n))
        bias = rng.standard_normal(mr).astype(dtype)
        ldc = nr + 3
        C = np.full((mr, ldc), np.nan, dtype)
        _engine_kernels.ukernel(_engine_kernels.ISA_NAMES[isa], k, A.ravel(), B.ravel(), C.ravel(), ldc, m, n, bias)
        want = (A.T.astype(np.float64) @ B.astype(np.float64) + bias[:, None])[:m, :n]
        np.testing.assert_allclose(C[:m, :n], want, rtol=RTOL[dtype], atol=RTOL[dtype] * k)
        # nothing outside the m × n block is written
        assert np.isnan(C[m:]).all() and np.isnan(C[:, n:]).all()
        # a later block of the reduction adds to what C holds, without the bias again
        _engine_kernels.ukernel(
            _engine_kernels.ISA_NAMES[isa], k, A.ravel(), B.ravel(), C.ravel(), ldc, m, n, bias, True
        )
        np.testing.assert_allclose(C[:m, :n], 2 * want - bias[:m, None], rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4 * k)
        assert np.isnan(C[m:]).all() and np.isnan(C[:, n:]).all()


def test_ukernel_without_bias_writes_the_sums():
    mr, nr = _engine_kernels.ukernel_shape(0, False)
    A, B = np.ones(mr * 3, np.float32), np.full(nr * 3, 2, np.float32)
    C = np.zeros(mr * nr, np.float32)
    _engine_kernels.ukernel(0, 3, A, B, C, nr, mr, nr, np.empty(0, np.float32))
    assert (C == 6).all()


CASES = [  # (N, C, H, W, K, kh, kw, stride, padding, dilation, groups)
    (2, 5, 9, 11, 7, 3, 3, 1, 1, 1, 1),
    (1, 8, 7, 6, 13, 2, 3, 2, (1, 0), 1, 1),
    (3, 4, 12, 12, 35, 3, 3, 1, 2, 2, 1),
    (2, 8, 10, 9, 6, 3, 1, (2, 1), (0, 1), 1, 2),
    (1, 16, 5, 5, 16, 1, 1, 1, 0, 1, 4),
    (1, 6, 1, 40, 9, 1, 5, 1, (0, 2), 1, 1),
    (2, 4, 3, 3, 3, 5, 5, 1, 3, 1, 1),  # padding wider than the image
    (1, 40, 6, 7, 10, 3, 3, 1, 1, 1, 1),  # 360 reduction terms: more than one block of the reduction
]


def _torch_conv(x, w, b, case):
    *_, stride, padding, dilation, groups = case
    t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
    return torch.nn.functional.conv2d(t(x), t(w), t(b), stride, padding, dilation, groups).numpy()


def _inputs(case, dtype, bias=True):
    N, C, H, W, K, kh, kw, *_, groups = case
    rng = np.random.default_rng(sum(case[:7]))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // groups, kh, kw)).astype(dtype)
    return x, w, rng.standard_normal(K).astype(dtype) if bias else None


@pytest.fixture
def engine_on(monkeypatch):
    old, old_mode = _engine.ISA, _engine.set_mode("engine")
    yield
    _engine.set_ukernel(old)
    _engine.set_mode(old_mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", CASES)
def test_engine_conv2d_matches_torch(engine_on, monkeypatch, case, isa, dtype):
    monkeypatch.setenv("IM2COL_UKERNEL", isa)  # the portable kernel is routed only when asked for
    _engine.set_ukernel(isa)
    x, w, b = _inputs(case, dtype, bias=case[0] != 1)
    *_, stride, padding, dilation, groups = case
    g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, padding, dilation, groups)
    assert _engine.takes(x, w, g, groups, False) == (case[1] // groups >= 4)
    got = im2col.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(got, _torch_conv(x, w, b, case), rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)


@pytest.mark.parametrize("case", CASES[:4])
def test_engine_bits_same_for_every_isa_and_thread_count(engine_on, monkeypatch, case):
    # one fused multiply-add per term in the same k order in every kernel: the same bits
    monkeypatch.setenv("IM2COL_UKERNEL", "portable")
    N, C, H, W, K, kh, kw, stride, padding, dilation, groups = case
    x, w, b = _inputs((8, C, H + 8, W + 8, K, kh, kw, stride, padding, dilation, groups), np.float32)
    results = []
    for isa in ISAS:
        _engine.set_ukernel(isa)
        for n in (1, 2):
            im2col.set_num_threads(n)
            try:
                g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, padding, dilation, groups)
                results.append(_engine.conv2d_forward(x, w, b, g, groups, n))
            finally:
                im2col.set_num_threads(None)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_engine_through_conv2d_same_bits_with_1_and_2_threads(engine_on):
    x, w, b = _inputs((4, 32, 20, 20, 24, 3, 3, 1, 1, 1, 1), np.float32)
    outs = []
    for n in (1, 2):
        im2col.set_num_threads(n)
        try:
            outs.append(im2col.conv2d(x, w, b, padding=1))
        finally:
            im2col.set_num_threads(None)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_engine_skips_what_it_does_not_compute(engine_on):
    x, w, _ = _inputs(CASES[0], np.float32)
    g = im2col._functional._conv2d_geometry("conv2d", x, w, 1, 1, 1, 1)
    assert _engine.takes(x, w, g, 1, False)
    assert not _engine.takes(x, w, g, 1, True)  # channels-last output
    assert not _engine.takes(x[:, :, ::-1], w, g, 1, False)  # strided input
    assert not _engine.takes(x.astype(np.int64), w.astype(np.int64), g, 1, False)


@pytest.mark.parametrize(
    ("var", "value", "match"),
    [("IM2COL_ENGINE", "fast", "IM2COL_ENGINE must be 'auto', 'engine' or 'blas', got 'fast'"),
     ("IM2COL_UKERNEL", "sse", "IM2COL_UKERNEL must be one of 'portable', 'avx2', 'avx512', got 'sse'")],
)  # fmt: skip
def test_switches_refuse_unknown_values(monkeypatch, var, value, match):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=match):
        _engine._read_switches()


def test_set_ukernel_refuses_unknown_isa():
    with pytest.raises(ValueError, match="isa must be one of 'portable', 'avx2', 'avx512', got 'neon'"):
        _engine.set_ukernel("neon")
