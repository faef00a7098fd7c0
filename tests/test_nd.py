"""1-D and 3-D im2col/col2im, padding modes, reduce='mean', conv1d and conv3d: against torch
(F.pad followed by the op) and against a NumPy oracle (np.pad, then slicing) for every dimension."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

import im2col

MODES = ["zeros", "constant", "reflect", "replicate", "circular"]
NP_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
TORCH_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}  # fmt: skip


def oracle_im2col(x, k, d, pads, s, mode, value=0):
    """np.pad by the mode, then one strided slice per kernel tap: (N, C·taps, L)."""
    n = len(k)
    kw = {"constant_values": value} if NP_MODE[mode] == "constant" else {}
    xp = np.pad(x, [(0, 0), (0, 0), *pads], mode=NP_MODE[mode], **kw)
    out = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n)]
    taps = []
    for tap in itertools.product(*(range(kk) for kk in k)):
        sl = tuple(slice(t * dd, t * dd + ss * (o - 1) + 1, ss) for t, dd, ss, o in zip(tap, d, s, out))
        taps.append(xp[(slice(None), slice(None), *sl)])
    cols = np.stack(taps, axis=2)  # (N, C, taps, *out)
    return cols.reshape(x.shape[0], -1, int(np.prod(out))), tuple(out)


def random_config(r: np.random.Generator, n: int, mode: str):
    k = tuple(int(v) for v in r.integers(1, 4, n))
    d = tuple(int(v) for v in r.integers(1, 3, n))
    s = tuple(int(v) for v in r.integers(1, 3, n))
    size = tuple(int(dd * (kk - 1) + r.integers(2, 5)) for kk, dd in zip(k, d))
    pads = tuple((int(r.integers(0, 3)), int(r.integers(0, 3))) for _ in range(n))
    if mode == "reflect":  # torch and np.pad need padding < size
        pads = tuple((min(a, m - 1), min(b, m - 1)) for (a, b), m in zip(pads, size))
    return k, d, pads, s, size


CASES = [(n, mode, seed) for n in (1, 2, 3) for mode in MODES for seed in range(3)]


@pytest.mark.parametrize("n, mode, seed", CASES)
def test_im2col_padding_modes_match_np_pad_oracle(n, mode, seed):
    r = np.random.default_rng(seed)
    k, d, pads, s, size = random_config(r, n, mode)
    x = r.standard_normal((2, 3, *size))
    value = 1.5 if mode == "constant" else 0
    expected, _ = oracle_im2col(x, k, d, pads, s, mode, value)
    got = im2col.im2col(x, k, dilation=d, padding=pads, stride=s, padding_mode=mode, pad_value=value)
    assert_close(got, expected, exact=True, what=f"{n}-D im2col, {mode}, k={k} d={d} pads={pads} s={s} size={size}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2])
def test_im2col_and_col2im_equal_torch_pad_then_unfold_fold(n, mode):
    """im2col(x, mode) = unfold(F.pad(x, mode)); col2im(Y, mode) = the gradient of that w.r.t. x."""
    r = np.random.default_rng(7)
    k, d, pads, s, size = random_config(r, n, mode)
    value = -2.0 if mode == "constant" else 0.0
    x = torch.from_numpy(r.standard_normal((2, 3, *size))).requires_grad_(True)
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad: last axis first
    xp = F.pad(x, flat, mode=TORCH_MODE[mode], value=value) if mode in ("zeros", "constant") else \
        F.pad(x, flat, mode=TORCH_MODE[mode])  # fmt: skip
    if n == 1:  # torch's unfold is 2-D only: a signal is a 1×L image
        expected = F.unfold(xp[:, :, None], (1, k[0]), dilation=(1, d[0]), stride=(1, s[0]))
    else:
        expected = F.unfold(xp, k, dilation=d, stride=s)
    got = im2col.im2col(x.detach(), k, dilation=d, padding=pads, stride=s, padding_mode=mode, pad_value=value)
    assert_close(got, expected, exact=True, what="im2col vs F.pad + unfold")
    grad = torch.randn_like(expected)
    expected.backward(grad)
    folded = im2col.col2im(grad, size, k, dilation=d, padding=pads, stride=s, padding_mode=mode)
    assert_close(folded, x.grad, what="col2im vs gradient of F.pad + unfold")


@pytest.mark.parametrize("n, mode", [(n, m) for n in (1, 2, 3) for m in MODES])
def test_col2im_is_the_adjoint_of_im2col(n, mode):
    """⟨col2im(Y), X⟩ = ⟨Y, im2col(X)⟩ in every dimension and mode (constant padding drops out)."""
    r = np.random.default_rng(n * 10 + MODES.index(mode))
    k, d, pads, s, size = random_config(r, n, mode)
    x = r.standard_normal((2, 2, *size))
    cols = im2col.im2col(x, k, dilation=d, padding=pads, stride=s, padding_mode=mode)
    y = r.standard_normal(cols.shape)
    folded = im2col.col2im(y, size, k, dilation=d, padding=pads, stride=s, padding_mode=mode)
    assert_close(np.vdot(folded, x), np.vdot(y, cols), op="inner-fixed", what="adjoint")


@pytest.mark.parametrize("n, mode", [(n, m) for n in (1, 2, 3) for m in MODES])
def test_col2im_mean_inverts_im2col(n, mode):
    r = np.random.default_rng(100 + n)
    k, d, pads, s, size = random_config(r, n, mode)
    x = r.standard_normal((2, 2, *size))
    cols = im2col.im2col(x, k, dilation=d, padding=pads, stride=s, padding_mode=mode, pad_value=0)
    back = im2col.col2im(cols, size, k, dilation=d, padding=pads, stride=s, padding_mode=mode, reduce="mean")
    ones = im2col.im2col(np.ones((1, 1, *size)), k, dilation=d, padding=pads, stride=s, padding_mode=mode)
    covered = im2col.col2im(ones, size, k, dilation=d, padding=pads, stride=s, padding_mode=mode) > 0
    assert_close(back, np.where(covered, x, 0), op="mean", what="col2im mean of im2col")


def test_col2im_mean_on_the_2d_fast_path_geometry():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    back = im2col.col2im(im2col.im2col(x, 3, padding=1), (6, 7), 3, padding=1, reduce="mean")
    assert_close(back, x, what="mean fold of the 3×3 pad-1 columns")


@pytest.mark.parametrize(
    "dtype, value",
    [(np.int32, 7), (np.uint8, 255), (np.bool_, True), (np.float16, 0.5), (np.complex128, 1 - 2j), (np.int64, -3)],
)
def test_any_dtype_moves_bit_for_bit_with_a_pad_value(dtype, value):
    r = np.random.default_rng(0)
    x = (r.standard_normal((2, 2, 4, 5, 3)) * 50).astype(dtype)
    if dtype is np.complex128:
        x = x + 1j * r.standard_normal(x.shape)
    expected, _ = oracle_im2col(x, (2, 2, 2), (1, 1, 1), ((1, 0), (0, 1), (1, 1)), (1, 2, 1), "constant", value)
    got = im2col.im2col(x, (2, 2, 2), padding=((1, 0), (0, 1), (1, 1)), stride=(1, 2, 1),
                        padding_mode="constant", pad_value=value)  # fmt: skip
    assert_close(got, expected, exact=True, what=f"vol2col of {np.dtype(dtype)}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.bool_, np.complex64, np.complex128])
@pytest.mark.parametrize("seed", range(4))
def test_3d_zero_padding_runs_on_the_plane_kernel(dtype, seed, monkeypatch):
    """vol2col (2-D plane copies per depth) equals the oracle bit for bit, for every dtype, for
    channels-last, strided and reversed inputs, on 1 and 3 threads, and never builds index tables;
    a zero pad_value of mode 'constant' takes it too."""
    monkeypatch.setattr(im2col._nd_drivers, "axis_table", None)  # the table-driven gather would fail
    r = np.random.default_rng(seed)
    k, d, pads, s, size = random_config(r, 3, "zeros")
    x = (r.standard_normal((2, 3, *size)) * 50).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * r.standard_normal(x.shape).astype(dtype)
    expected, _ = oracle_im2col(x, k, d, pads, s, "zeros")
    layouts = {
        "C": x,
        "channels-last": np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1),
        "strided": np.repeat(x, 2, axis=-1)[..., ::2],
        "reversed": np.ascontiguousarray(x[:, ::-1])[:, ::-1],
    }
    try:
        for threads in (1, 3):
            im2col.set_num_threads(threads)
            for name, xin in layouts.items():
                got = im2col.im2col(xin, k, dilation=d, padding=pads, stride=s)
                assert_close(
                    got, expected, exact=True, what=f"{name}, {threads} threads, k={k} d={d} s={s} pads={pads}"
                )
            got = im2col.im2col(x, k, dilation=d, padding=pads, stride=s, padding_mode="constant", pad_value=0)
            assert_close(got, expected, exact=True, what="constant 0")
    finally:
        im2col.set_num_threads(None)


def test_1d_matches_the_2d_fast_path_and_tensors_stay_tensors():
    x = torch.randn(3, 4, 50)
    got = im2col.im2col(x, (5,), dilation=(2,), padding=(3,), stride=(2,))
    expected = im2col.im2col(x[:, :, None], (1, 5), dilation=(1, 2), padding=(0, 3), stride=(1, 2))
    assert isinstance(got, torch.Tensor)
    assert_close(got, expected, exact=True, what="1-D vs 2-D of height 1")
    assert_close(im2col.im2col(x[0], (5,)), im2col.im2col(x, (5,))[0], exact=True, what="unbatched 1-D")


def test_large_3d_runs_in_parallel_and_matches():
    r = np.random.default_rng(3)
    x = r.standard_normal((4, 8, 10, 12, 12)).astype(np.float32)
    expected, _ = oracle_im2col(x, (3, 3, 3), (1, 1, 1), ((1, 1),) * 3, (1, 1, 1), "replicate")
    got = im2col.im2col(x, 3, padding=1, padding_mode="replicate")
    assert_close(got, expected, exact=True, what="large vol2col")


# --- conv1d and conv3d against torch ----------------------------------------------------------


def _conv_config(r, n):
    groups = int(r.choice([1, 2]))
    C, K = 2 * groups, groups * int(r.integers(1, 3))
    k = tuple(int(v) for v in r.integers(1, 4, n))
    d = tuple(int(v) for v in r.integers(1, 3, n))
    if r.random() < 0.3:
        s, p = (1,) * n, str(r.choice(["same", "valid"]))
    else:
        s, p = tuple(int(v) for v in r.integers(1, 3, n)), tuple(int(v) for v in r.integers(0, 3, n))
    size = tuple(int(dd * (kk - 1) + r.integers(1, 5)) for kk, dd in zip(k, d))
    return dict(stride=s, padding=p, dilation=d, groups=groups), (C, K, k, size)


@pytest.mark.parametrize("n, seed, dtype", [(n, seed, dt) for n in (1, 3) for seed in range(5)
                                           for dt in (np.float32, np.float64)])  # fmt: skip
def test_conv1d_conv3d_and_backward_match_torch(n, seed, dtype):
    r = np.random.default_rng(seed)
    kw, (C, K, k, size) = _conv_config(r, n)
    batch = () if seed == 0 else (2,)
    x = torch.from_numpy(r.standard_normal((*batch, C, *size)).astype(dtype)).requires_grad_(True)
    w = torch.from_numpy(r.standard_normal((K, C // kw["groups"], *k)).astype(dtype)).requires_grad_(True)
    b = torch.from_numpy(r.standard_normal(K).astype(dtype)).requires_grad_(True)
    conv, conv_backward, torch_conv = {
        1: (im2col.conv1d, im2col.conv1d_backward, F.conv1d),
        3: (im2col.conv3d, im2col.conv3d_backward, F.conv3d),
    }[n]
    expected = torch_conv(x, w, b, **kw)
    got = conv(x.detach().numpy(), w.detach().numpy(), b.detach().numpy(), **kw)
    assert_close(got, expected, what=f"conv{n}d {kw} on {tuple(x.shape)}")
    gy = torch.randn_like(expected)
    expected.backward(gy)
    gx, gw, gb = conv_backward(gy, x, w, **kw)
    assert isinstance(gx, torch.Tensor)
    assert_close(gx, x.grad, what="grad_input")
    assert_close(gw, w.grad, what="grad_weight")
    assert_close(gb, b.grad, what="grad_bias")


def test_convolutions_that_never_gather_through_tables_never_build_them(monkeypatch):
    """conv1d (2-D kernels) and, with a BLAS to call, conv3d (its own tiles) need only the sizes:
    k·L int64 table entries for a long signal would be memory spent for nothing, or a refusal."""
    calls = []
    real = im2col._nd_drivers.axis_table
    monkeypatch.setattr(im2col._nd_drivers, "axis_table", lambda *a: calls.append(a) or real(*a))
    r = np.random.default_rng(0)
    x1, w1 = r.standard_normal((2, 3, 40)), r.standard_normal((4, 3, 5))
    x3 = r.standard_normal((2, 3, 6, 7, 8))
    y1 = im2col.conv1d(x1, w1, padding=2)
    im2col.conv1d_backward(np.ones_like(y1), x1, w1, padding=2)
    im2col.conv_transpose1d(y1, w1, padding=2)
    assert calls == []
    if im2col._gemm.native_blas() is not None:
        w3 = r.standard_normal((4, 3, 3, 3, 3))
        y3 = im2col.conv3d(x3, w3, padding=1)
        im2col.conv3d_backward(np.ones_like(y3), x3, w3, padding=1)
        assert calls == []
    im2col.im2col(x3, (3, 3, 3), padding_mode="reflect")  # the N-d gather does build them
    assert len(calls) == 3  # one per axis


# --- errors -----------------------------------------------------------------------------------

x4 = np.zeros((1, 2, 5, 5))
cols = np.zeros((1, 18, 9))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: im2col.im2col(x4, 3, padding_mode="mirror"), ValueError,
         r"im2col\(\): argument 'padding_mode' must be one of 'zeros', "
         r"'constant', 'reflect', 'replicate', 'circular', got 'mirror'"),
        (lambda: im2col.im2col(x4, 3, pad_value=1), ValueError,
         r"im2col\(\): argument 'pad_value' is only read with "
         r"padding_mode='constant', got pad_value=1 with padding_mode='zeros'"),
        (lambda: im2col.im2col(x4, 3, padding_mode="constant", pad_value="1"), TypeError,
         r"im2col\(\): argument 'pad_value' must be a number, got '1'"),
        (lambda: im2col.im2col(x4.astype(np.int8), 3, padding=1, padding_mode="constant", pad_value=0.5), ValueError,
         r"im2col\(\): pad_value=0.5 cannot be represented in the input's dtype int8"),
        (lambda: im2col.im2col(x4, 3, padding=5, padding_mode="reflect"), ValueError,
         r"im2col\(\): padding_mode='reflect' needs padding smaller than the input, as torch.nn.functional.pad: "
         r"height padding \(5, 5\) on size 5"),
        (lambda: im2col.im2col(np.zeros((1, 2, 2, 5, 5)), (3, 1, 1)), ValueError,
         r"im2col\(\): output depth = \(2 \+ 0 \+ 0 − 1·\(3 − 1\) − 1\) // 1 \+ 1 = 0, but it must be at least 1"),
        (lambda: im2col.im2col(np.zeros((1, 2, 2, 5, 5)), (3, 1)), ValueError,
         r"im2col\(\): argument 'kernel_size' must be an int or a tuple "
         r"of 3 ints \(one per spatial axis\), got \(3, 1\) with 2 elements"),
        (lambda: im2col.im2col(np.zeros((1, 2, 5, 5)), (3,)), ValueError,
         r"im2col\(\): argument 'input' must be a 2-D \(C, L\) or 3-D \(N, C, L\) array"),
        (lambda: im2col.im2col(np.zeros((1, 2, 5)), (3,), padding=(1, 1)), ValueError,
         r"im2col\(\): argument 'padding' must be an int or a tuple of 1 ints"),
        (lambda: im2col.col2im(cols, 5, 3, reduce="max"), ValueError,
         r"col2im\(\): argument 'reduce' must be 'sum' or 'mean', got 'max'"),
        (lambda: im2col.col2im(cols, 5, 3, padding_mode="wrap"), ValueError,
         r"col2im\(\): argument 'padding_mode' must be one of"),
        (lambda: im2col.col2im(np.zeros((1, 6, 9)), (5, 5, 5), (3, 3)), ValueError,
         r"col2im\(\): argument 'kernel_size' must be an int or a "
         r"tuple of 3 ints \(one per spatial axis\), got \(3, 3\)"),
        (lambda: im2col.col2im(np.zeros((1, 10, 27)), (5, 5, 5), (2, 2, 2), stride=2), ValueError,
         r"col2im\(\): expected the size of dimension -2 of 'input' "
         r"\(C·taps\) to be divisible by the kernel's 2·2·2 = 8 taps, got 10"),
        (lambda: im2col.col2im(np.zeros((1, 8, 26)), (4, 4, 4), (2, 2, 2)), ValueError,
         r"col2im\(\): expected the size of dimension -1 of 'input' "
         r"\(L\) to match the number of sliding windows, 3·3·3 = 27"),
        (lambda: im2col.conv3d(np.zeros((1, 2, 4, 4, 4)), np.zeros((2, 2, 3, 3))), ValueError,
         r"conv3d\(\): argument 'weight' must be a 5-D \(K, C/groups, kd, "
         r"kh, kw\) array with non-zero sizes, got shape \(2, 2, 3, 3\)"),
        (lambda: im2col.conv3d(np.zeros((1, 2, 4, 4, 4)), np.zeros((2, 3, 3, 3, 3))), ValueError,
         r"conv3d\(\): input has 2 channels but weight of shape \(2, 3, 3, 3, 3\) with groups=1 expects"),
        (lambda: im2col.conv1d(np.zeros((1, 2, 2)), np.zeros((1, 2, 3))), ValueError,
         r"conv1d\(\): output length = \(2 \+ 0 \+ 0 − 1·\(3 − 1\) − 1\) // 1 \+ 1 = 0"),
        (lambda: im2col.conv1d(np.zeros((1, 2, 8)), np.zeros((1, 2, 3)), padding="same", stride=2), ValueError,
         r"conv1d\(\): padding='same' needs stride=1, got stride=\(2,\)"),
        (lambda: im2col.conv1d(np.zeros((1, 2, 8)), np.zeros((4, 2, 3)), bias=np.zeros(3)), ValueError,
         r"conv1d\(\): argument 'bias' must have shape \(4,\), one per output channel, got shape \(3,\)"),
        (lambda: im2col.conv3d_backward(np.zeros((1, 1, 2, 2, 3)), np.zeros((1, 1, 3, 3, 3)),
                                        np.zeros((1, 1, 2, 2, 2))),
         ValueError, r"conv3d_backward\(\): argument 'grad_output' must have shape \(1, 1, 2, 2, 2\)"),
        (lambda: im2col.conv1d(np.zeros((1, 2, 8), np.float32), np.zeros((1, 2, 3))), TypeError,
         r"conv1d\(\): arguments 'input' and 'weight' must have the same dtype"),
    ],
)  # fmt: skip
def test_bad_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
