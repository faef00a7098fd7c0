"""The convolution engine: each micro-kernel against NumPy on ragged edges, and the engine's conv2d
against torch under every instruction set this CPU runs, bit-identical across ISAs and thread counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import im2col
import im2col.nn
from im2col import _engine, _engine_kernels
from im2col._geometry import Geometry

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


# ---- the direct depthwise kernel (csrc/engine/depthwise.c): groups == C, K = m·C ----

DW_CASES = [  # (N, C, H, W, m, kh, kw, stride, padding, dilation)
    (2, 5, 9, 11, 1, 3, 3, 1, 1, 1),
    (3, 6, 14, 14, 1, 3, 3, 2, 1, 1),  # MobileNetV2's stride-2 block, small
    (1, 4, 7, 30, 1, 5, 5, 1, 2, 2),  # dilated
    (2, 3, 7, 7, 1, 7, 7, 1, 3, 1),  # ConvNeXt's 7×7 on its last stage's 7×7 grid
    (1, 2, 5, 5, 3, 7, 7, 1, 4, 1),  # channel multiplier 3, padding wider than the image
    (2, 3, 20, 17, 2, 1, 1, 3, 0, 1),  # 1×1, stride 3, multiplier 2
    (1, 2, 13, 40, 1, 3, 5, (2, 3), (1, 0), (1, 2)),  # everything non-square, width-stride 3
    (1, 3, 1, 33, 1, 1, 5, 1, (0, 2), 1),  # one row (conv1d-like)
    (1, 2, 300, 301, 1, 3, 3, 2, 1, 1),  # several bands of output rows per plane
    (1, 2, 150, 97, 1, 5, 5, 1, ((2, 1), (0, 3)), 1),  # per-side padding, several bands
]


def _dw_inputs(case, dtype, bias=True, seed=0):
    N, C, H, W, m, kh, kw, *_ = case
    rng = np.random.default_rng(seed + sum(case[:7]))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((m * C, 1, kh, kw)).astype(dtype)
    return x, w, rng.standard_normal(m * C).astype(dtype) if bias else None


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _dw_reference(x, w, b, case):
    stride, padding, dilation = case[7:]
    pads = (
        padding
        if isinstance(padding, tuple) and isinstance(padding[0], tuple)
        else tuple((p, p) for p in _pair(padding))
    )
    return im2col.reference.conv2d(x, w, b, _pair(stride), pads, _pair(dilation), x.shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", DW_CASES, ids=str)
def test_depthwise_matches_torch_and_reference(engine_on, monkeypatch, case, isa, dtype):
    monkeypatch.setenv("IM2COL_UKERNEL", isa)  # the portable kernels are routed only when asked for
    _engine.set_ukernel(isa)
    N, C, H, W, m, kh, kw, stride, padding, dilation = case
    for bias in (True, False):
        x, w, b = _dw_inputs(case, dtype, bias)
        g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, padding, dilation, C)
        assert _engine.route(x, w, g, C, False) == "depthwise"
        got = im2col.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=C)
        tol = RTOL[dtype] * 10
        np.testing.assert_allclose(got, _dw_reference(x, w, b, case), rtol=tol, atol=tol)
        if not isinstance(padding[0] if isinstance(padding, tuple) else padding, tuple):
            np.testing.assert_allclose(got, _torch_conv(x, w, b, (*case[7:], C)), rtol=tol, atol=tol)


@pytest.mark.parametrize("case", DW_CASES[:5] + DW_CASES[6:9], ids=str)
def test_depthwise_bits_same_for_every_isa_and_thread_count(engine_on, case):
    # one fused multiply-add per tap, taps in the same order from the bias, in every kernel
    N, C, H, W, m, kh, kw, stride, padding, dilation = case
    x, w, b = _dw_inputs((max(N, 4), *case[1:]), np.float32)
    g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, padding, dilation, C)
    results = []
    for isa in ISAS:
        _engine.set_ukernel(isa)
        for n in (1, 2):
            results.append(_engine.depthwise2d_forward(x, w, b, g, n))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_depthwise_through_conv2d_same_bits_with_1_and_2_threads():
    # the default mode (auto) routes depthwise layers to the engine
    x, w, b = _dw_inputs((8, 32, 28, 28, 1, 3, 3, 1, 1, 1), np.float32)
    g = im2col._functional._conv2d_geometry("conv2d", x, w, 1, 1, 1, 32)
    outs = []
    for n in (1, 2):
        im2col.set_num_threads(n)
        try:
            outs.append(im2col.conv2d(x, w, b, padding=1, groups=32))
        finally:
            im2col.set_num_threads(None)
    np.testing.assert_array_equal(outs[0], outs[1])
    if _engine.MODE != "blas" and _engine.route(x, w, g, 32, False):
        np.testing.assert_array_equal(outs[0], _engine.depthwise2d_forward(x, w, b, g, 2))


# --- the routing rule, row by row (no kernel runs) ------------------------------------------------

# row name → (mode, ISA, IM2COL_UKERNEL, (N, C, H, W), K, (kh, kw), stride, groups, dtype, fortran x, out_cl, op):
# a call that reaches that row and no earlier one
ROW_CASES = {
    "blas mode": ("blas", "avx2", "", (2, 8, 10, 10), 8, (3, 3), 1, 8, np.float32, False, False, "forward"),
    "channels-last output": ("auto", "avx2", "", (2, 8, 10, 10), 8, (3, 3), 1, 8, np.float32, False, True, "forward"),
    "dtype": ("auto", "avx2", "", (2, 8, 10, 10), 8, (3, 3), 1, 8, np.float16, False, False, "forward"),
    "layout": ("auto", "avx2", "", (2, 8, 10, 10), 8, (3, 3), 1, 8, np.float32, True, False, "forward"),
    "empty batch": ("auto", "avx2", "", (0, 8, 10, 10), 8, (3, 3), 1, 8, np.float32, False, False, "forward"),
    "no vector unit": ("auto", "portable", "", (2, 8, 10, 10), 8, (3, 3), 1, 8, np.float32, False, False, "forward"),
    "small depthwise backward": ("auto", "portable", "portable", (2, 8, 7, 7), 8, (3, 3), 1, 8, np.float32, False,
                                 False, "backward"),
    "depthwise": ("auto", "avx512", "", (2, 8, 7, 7), 8, (3, 3), 1, 8, np.float32, False, False, "forward"),
    "wide depthwise": ("auto", "avx2", "", (2, 8, 10, 10), 40, (3, 3), 1, 8, np.float64, False, False, "forward"),
    "engine mode gemm": ("engine", "avx2", "", (1, 8, 6, 6), 128, (1, 1), 2, 1, np.float32, False, False, "forward"),
    "few channels": ("auto", "avx2", "", (1, 16, 6, 6), 16, (3, 3), 1, 1, np.float32, False, False, "forward"),
    "engine mode, no gemm": ("engine", "avx2", "", (1, 16, 6, 6), 16, (3, 3), 1, 1, np.float32, False, False,
                             "backward"),
    "auto default": ("auto", "avx2", "", (1, 128, 6, 6), 128, (3, 3), 1, 1, np.float32, False, False, "forward"),
}  # fmt: skip


@pytest.fixture
def routing(monkeypatch):
    """Set the mode, the ISA and IM2COL_UKERNEL for one routing question; restored afterwards."""
    old_mode, old_isa = _engine.MODE, _engine.ISA

    def set_switches(mode, isa, env):
        _engine.set_mode(mode)
        _engine.set_ukernel(isa)
        monkeypatch.setenv("IM2COL_UKERNEL", env)

    yield set_switches
    _engine.set_mode(old_mode)
    _engine.set_ukernel(old_isa)


def test_every_row_of_the_routing_rule_has_a_case():
    assert list(ROW_CASES) == [row.name for row in _engine.ROUTES]  # the table's order, first match first


@pytest.mark.parametrize("name", list(ROW_CASES))
def test_each_row_of_the_routing_rule(name, routing):
    mode, isa, env, (N, C, H, W), K, k, stride, groups, dtype, fortran, out_cl, op = ROW_CASES[name]
    routing(mode, isa, env)
    x = np.zeros((N, C, H, W), dtype)
    x = np.asfortranarray(x) if fortran else x
    w = np.zeros((K, C // groups, *k), dtype)
    g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, 0, 1, groups)
    row = _engine.decide(x, w, g, groups, out_cl, op)
    assert row.name == name
    assert _engine.route(x, w, g, groups, out_cl, op) == row.route
    route, why = _engine.route_why(x, w, g, groups, out_cl, op)
    assert route == row.route and why and "{" not in why  # every placeholder of the row's reason filled in
    # the rows before it do not apply: the same call with the switch of an earlier row set would stop there
    if name != "blas mode":
        routing("blas", isa, env)
        assert _engine.decide(x, w, g, groups, out_cl, op) is _engine.BLAS_MODE


def test_depthwise_routing_by_mode(monkeypatch):
    monkeypatch.delenv("IM2COL_UKERNEL", raising=False)
    old_isa, old_mode = _engine.set_ukernel(_engine_kernels.best_isa()), _engine.MODE
    try:
        x, w, _ = _dw_inputs((2, 8, 10, 10, 1, 3, 3, 1, 1, 1), np.float32)
        x5, w5, _ = _dw_inputs((2, 8, 10, 10, 5, 3, 3, 1, 1, 1), np.float32)  # multiplier 5
        x1, w1, _ = _dw_inputs((2, 1, 10, 10, 2, 3, 3, 1, 1, 1), np.float32)  # one channel: not depthwise
        geo = lambda x, w, groups: im2col._functional._conv2d_geometry("conv2d", x, w, 1, 1, 1, groups)  # noqa: E731
        g, g5, g1 = geo(x, w, 8), geo(x5, w5, 8), geo(x1, w1, 1)
        vector = _engine.ISA != "portable"
        _engine.set_mode("auto")
        assert _engine.route(x, w, g, 8, False) == ("depthwise" if vector else None)
        assert _engine.route(x5, w5, g5, 8, False) is None
        assert _engine.route(x1, w1, g1, 1, False) is None
        assert _engine.route(x, w, g, 8, True) is None  # channels-last output
        assert _engine.route(np.asfortranarray(x), w, g, 8, False) is None
        # the backward: not for small planes with few taps in auto (measured slower than BLAS)
        x7, w7, _ = _dw_inputs((2, 8, 7, 7, 1, 3, 3, 1, 1, 1), np.float32)
        g7 = geo(x7, w7, 8)
        assert _engine.route(x, w, g, 8, False, op="backward") == ("depthwise" if vector else None)
        assert _engine.route(x7, w7, g7, 8, False) == ("depthwise" if vector else None)
        assert _engine.route(x7, w7, g7, 8, False, op="backward") is None
        w7_7 = np.ones((8, 1, 7, 7), np.float32)  # 49 taps: the backward, not grad input alone
        g7_7 = im2col._functional._conv2d_geometry("conv2d", x7, w7_7, 1, 3, 1, 8)
        assert _engine.route(x7, w7_7, g7_7, 8, False, op="backward") == ("depthwise" if vector else None)
        assert _engine.route(x7, w7_7, g7_7, 8, False, op="grad_input") is None
        _engine.set_mode("engine")
        assert _engine.route(x5, w5, g5, 8, False) == ("depthwise" if vector else None)
        assert _engine.route(x7, w7, g7, 8, False, op="backward") == ("depthwise" if vector else None)
        _engine.set_mode("blas")
        assert _engine.route(x, w, g, 8, False) is None
    finally:
        _engine.set_ukernel(old_isa)
        _engine.set_mode(old_mode)


def test_depthwise_strided_empty_and_read_only_inputs(engine_on):
    x, w, b = _dw_inputs((3, 6, 16, 18, 1, 3, 3, 1, 1, 1), np.float64)
    xs = x[:, :, ::2, ::-1]  # strided: the validation's copy or the BLAS route, the same values
    want = _torch_conv(np.ascontiguousarray(xs), w, b, (1, 1, 1, 6))
    np.testing.assert_allclose(im2col.conv2d(xs, w, b, padding=1, groups=6), want, rtol=1e-12, atol=1e-12)
    want = _torch_conv(x, w, b, (1, 1, 1, 6))
    x.flags.writeable = w.flags.writeable = b.flags.writeable = False
    np.testing.assert_allclose(im2col.conv2d(x, w, b, padding=1, groups=6), want, rtol=1e-12, atol=1e-12)
    empty = im2col.conv2d(x[:0], w, b, padding=1, groups=6)
    assert empty.shape == (0, 6, 16, 18) and empty.dtype == np.float64


def test_depthwise_kernel_refuses_a_geometry_that_is_not_depthwise():
    x, w, _ = _dw_inputs((1, 4, 5, 5, 1, 3, 3, 1, 1, 1), np.float32)
    y = np.empty(4 * 3 * 3, np.float32)
    with pytest.raises(ValueError, match="groups must equal C and divide K"):
        _engine_kernels.depthwise2d(x.ravel(), w.ravel(), np.empty(0, np.float32), y,
                                    Geometry(1, 4, 5, 5, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 3, 3), 4, 2, 0, 1)  # fmt: skip


def test_engine_kernels_read_the_geometry_by_name_not_a_tuple():
    # a run of positional sizes, where a swapped pair would run silently, is refused
    x, w, _ = _dw_inputs((1, 4, 5, 5, 1, 3, 3, 1, 1, 1), np.float32)
    y, none = np.empty(4 * 3 * 3, np.float32), np.empty(0, np.float32)
    g = Geometry(1, 4, 5, 5, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 3, 3)
    want = im2col.reference.conv2d(x, w, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 4)
    for kernel in (_engine_kernels.conv2d, _engine_kernels.depthwise2d):
        with pytest.raises(AttributeError):
            kernel(x.ravel(), w.ravel(), none, y, tuple(g), 4, 4, 0, 1)
        kernel(x.ravel(), w.ravel(), none, y, g, 4, 4, 0, 1)
        np.testing.assert_allclose(y.reshape(1, 4, 3, 3), want, rtol=1e-5)


def _torch_grads(x, w, gy, case):
    stride, padding, dilation = case[7:]
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    y = torch.nn.functional.conv2d(tx, tw, None, stride, padding, dilation, x.shape[1])
    return [t.numpy() for t in torch.autograd.grad(y, (tx, tw), torch.from_numpy(gy))]


TORCH_DW_CASES = [c for c in DW_CASES if not (isinstance(c[8], tuple) and isinstance(c[8][0], tuple))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", TORCH_DW_CASES, ids=str)
def test_depthwise_backward_matches_torch_and_reference(engine_on, monkeypatch, case, isa, dtype):
    monkeypatch.setenv("IM2COL_UKERNEL", isa)
    _engine.set_ukernel(isa)
    N, C, H, W, m, kh, kw, stride, padding, dilation = case
    x, w, _ = _dw_inputs(case, dtype, bias=False)
    g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, padding, dilation, C)
    assert _engine.route(x, w, g, C, False, op="backward") == "depthwise"
    gy = np.random.default_rng(7).standard_normal((N, m * C, g.OH, g.OW)).astype(dtype)
    gx, gw, gb = im2col.conv2d_backward(gy, x, w, stride, padding, dilation, C)
    want_gx, want_gw = _torch_grads(x, w, gy, case)
    tol = RTOL[dtype] * 10
    scale = max(1.0, float(np.abs(want_gw).max()))  # grad weight sums N·OH·OW terms
    np.testing.assert_allclose(gx, want_gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, want_gw, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=tol, atol=tol * scale)
    ref_gx, ref_gw, _ = im2col.reference.conv2d_backward(
        gy, x, w, _pair(stride), tuple((p, p) for p in _pair(padding)), _pair(dilation), C
    )
    np.testing.assert_allclose(gx, ref_gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, ref_gw, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("case", DW_CASES[:5] + DW_CASES[6:9], ids=str)
def test_depthwise_backward_bits_same_for_every_isa_and_thread_count(engine_on, case):
    N, C, H, W, m, kh, kw, stride, padding, dilation = case
    x, w, _ = _dw_inputs((max(N, 4), *case[1:]), np.float32)
    g = im2col._functional._conv2d_geometry("conv2d", x, w, stride, padding, dilation, C)
    gy = np.random.default_rng(3).standard_normal((g.N, m * C, g.OH, g.OW)).astype(np.float32)
    results = []
    for isa in ISAS:
        _engine.set_ukernel(isa)
        for n in (1, 2):
            results.append(_engine.depthwise2d_backward(gy, x, w, g, n))
    for gx, gw in results[1:]:
        np.testing.assert_array_equal(gx, results[0][0])
        np.testing.assert_array_equal(gw, results[0][1])
    # one gradient alone is the same as with the other
    gx_only, none = _engine.depthwise2d_backward(gy, x, w, g, 2, want_gw=False)
    none2, gw_only = _engine.depthwise2d_backward(gy, x, w, g, 2, want_gx=False)
    assert none is None and none2 is None
    np.testing.assert_array_equal(gx_only, results[0][0])
    np.testing.assert_array_equal(gw_only, results[0][1])


def test_depthwise_backward_through_nn_autograd_matches_torch():
    # im2col.nn's Conv2d trains a depthwise layer through conv2d_backward (the depthwise route)
    torch.manual_seed(0)
    ours = im2col.nn.Conv2d(6, 12, 3, padding=1, stride=2, groups=6).double()
    ref = torch.nn.Conv2d(6, 12, 3, padding=1, stride=2, groups=6).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6, 11, 9, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours(xa).square().sum().backward()
    ref(xb).square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-10)


def test_depthwise_backward_through_conv2d_backward_same_bits_with_1_and_2_threads():
    x, w, _ = _dw_inputs((8, 32, 28, 28, 1, 3, 3, 1, 1, 1), np.float32)
    gy = np.random.default_rng(5).standard_normal((8, 32, 28, 28)).astype(np.float32)
    outs = []
    for n in (1, 2):
        im2col.set_num_threads(n)
        try:
            outs.append(im2col.conv2d_backward(gy, x, w, 1, 1, 1, 32))
        finally:
            im2col.set_num_threads(None)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_depthwise_backward_kernel_refuses_empty_arrays():
    x, w, _ = _dw_inputs((1, 4, 5, 5, 1, 3, 3, 1, 1, 1), np.float32)
    gx, gw = np.empty(100, np.float32), np.empty(36, np.float32)
    geom = Geometry(1, 4, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5)
    with pytest.raises(ValueError, match="gy \\(and x, for gw\\) must not be empty"):
        _engine_kernels.depthwise2d_backward(np.empty(0, np.float32), x.ravel(), w.ravel(), gx, gw, geom, 4, 4, 0, 1)
    with pytest.raises(ValueError, match="groups must equal C and divide K, got C=4, K=4, groups=2"):
        _engine_kernels.depthwise2d_backward(np.ones(100, np.float32), x.ravel(), w.ravel(), gx, gw,
                                             geom, 4, 2, 0, 1)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("N", "C_out", "m", "H", "W", "k", "stride", "padding", "output_padding", "dilation"),
    [(2, 6, 1, 7, 9, 3, 2, 1, 1, 1), (1, 4, 2, 10, 10, 5, 1, 2, 0, 1), (3, 3, 1, 5, 6, 3, 3, 0, 2, 2)],
)
def test_depthwise_transposed_convolution_matches_torch(engine_on, monkeypatch, isa, dtype, N, C_out, m, H, W, k,
                                                        stride, padding, output_padding, dilation):  # fmt: skip
    # a transposed convolution with one output channel per group is the depthwise grad input
    monkeypatch.setenv("IM2COL_UKERNEL", isa)
    _engine.set_ukernel(isa)
    rng = np.random.default_rng(N + H)
    x = rng.standard_normal((N, m * C_out, H, W)).astype(dtype)
    w = rng.standard_normal((m * C_out, 1, k, k)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    conf = (stride, padding, output_padding, C_out, dilation)
    calls = []
    kernel = _engine.depthwise2d_backward
    monkeypatch.setattr(_engine, "depthwise2d_backward", lambda *a, **kw: calls.append(1) or kernel(*a, **kw))
    got = im2col.conv_transpose2d(x, w, b, *conf)
    assert calls == [1]  # the depthwise route's grad input computed it
    want = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), *conf)
    np.testing.assert_allclose(got, want.numpy(), rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)


def test_set_mode_forgets_plans_made_for_another_route(monkeypatch):
    """A small layer planned under 'blas' (a plan runs the BLAS route) must take the engine's route
    once the mode allows it: set_mode clears the plans, so the call re-routes."""
    from im2col import _plans

    if _engine.ISA == "portable":
        pytest.skip("no vector unit: the engine is routed only when forced by name")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    routes = []
    real = _engine.forward
    monkeypatch.setattr(_engine, "forward", lambda name, *a: (routes.append(name), real(name, *a))[1])
    old = _engine.set_mode("blas")
    try:
        _plans.clear()
        for _ in range(3):
            blas_out = im2col.conv2d(x, w, padding=1)  # planned by now
        assert routes == []
        _engine.set_mode("engine")
        engine_out = im2col.conv2d(x, w, padding=1)
    finally:
        _engine.set_mode(old)
    assert routes == ["gemm"]  # re-routed, not the plan made under 'blas'
    np.testing.assert_allclose(engine_out, blas_out, rtol=1e-5, atol=1e-5)
