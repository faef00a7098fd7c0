"""Transposed and 3-D convolutions beyond the modules, against torch: the numpy API
(``im2col.conv_transpose1d/3d``), their errors, channels-last 1-D/3-D layouts, the tiled 3-D
kernels and empty batches. The modules (every rank) are in tests/test_modules.py, the operators
under torch.compile in tests/test_nn.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close
from test_modules import _transpose_config

import im2col
import im2col.nn as inn


@pytest.mark.parametrize("seed", range(40))
def test_numpy_conv_transpose1d_3d_match_torch(seed):
    r = np.random.default_rng(seed)
    dims = 1 if seed % 2 else 3
    kwargs, shape = _transpose_config(r, dims)
    groups, cin, cout = kwargs["groups"], kwargs["in_channels"], kwargs["out_channels"]
    dtype = np.float32 if seed % 3 == 0 else np.float64
    x = r.standard_normal(shape).astype(dtype)
    w = r.standard_normal((cin, cout // groups, *kwargs["kernel_size"])).astype(dtype)
    b = r.standard_normal(cout).astype(dtype) if kwargs["bias"] else None
    conf = [kwargs[n] for n in ("stride", "padding", "output_padding", "groups", "dilation")]
    ours = {1: im2col.conv_transpose1d, 3: im2col.conv_transpose3d}[dims]
    theirs = {1: F.conv_transpose1d, 3: F.conv_transpose3d}[dims]
    try:
        expected = theirs(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), *conf)
    except RuntimeError:  # a negative output size
        expected = None
    if expected is None or expected.numel() == 0:  # an empty output, which we refuse (docs/user-guide.md)
        with pytest.raises(ValueError, match="must be at least 1"):
            ours(x, w, b, *conf)
        return
    got = ours(x, w, b, *conf)
    assert isinstance(got, np.ndarray)
    assert_close(got, expected, what=f"conv_transpose{dims}d({kwargs}) on {shape}")
    # tensors in, a tensor out
    got_t = ours(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), *conf)
    assert isinstance(got_t, torch.Tensor)
    assert_close(got_t, expected, what="tensor input")


def test_conv_transpose3d_is_the_input_gradient_of_conv3d():
    """conv_transpose3d(gy, w) = ∂⟨gy, conv3d(x, w)⟩/∂x when the sizes line up (output_padding)."""
    r = np.random.default_rng(5)
    x, w = r.standard_normal((2, 4, 5, 6, 7)), r.standard_normal((6, 2, 3, 2, 3))
    conf = dict(stride=(2, 1, 3), padding=(1, 0, 1), dilation=(1, 2, 1), groups=2)
    y = im2col.conv3d(x, w, **conf)
    gy = r.standard_normal(y.shape)
    gx, _, _ = im2col.conv3d_backward(gy, x, w, **conf)
    sizes = zip(x.shape[2:], y.shape[2:], w.shape[2:], conf["stride"], conf["padding"], conf["dilation"])
    op = tuple(n - ((o - 1) * s - 2 * p + d * (k - 1) + 1) for n, o, k, s, p, d in sizes)
    assert_close(im2col.conv_transpose3d(gy, w, output_padding=op, **conf), gx)


def _reflecting(module):
    """torch's constructor refuses padding_mode='reflect' for a transposed convolution; set it after."""
    module.padding_mode = "reflect"
    return module


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: im2col.conv_transpose3d(np.zeros((1, 3, 2, 2, 2)), np.zeros((2, 1, 3, 3, 3))), ValueError,
         r"conv_transpose3d\(\): input has 3 channels but weight of shape \(2, 1, 3, 3, 3\) expects "
         r"weight.shape\[0\] = 2 input channels \(weight is \(C_in, C_out/groups, kd, kh, kw\)\)"),
        (lambda: im2col.conv_transpose3d(np.zeros((1, 3, 2, 2, 2)), np.zeros((3, 1, 3, 3, 3)), groups=2),
         ValueError, r"conv_transpose3d\(\): input channels 3 must be divisible by groups=2"),
        (lambda: im2col.conv_transpose3d(np.zeros((1, 2, 2, 2, 2)), np.zeros((2, 1, 3, 3, 3)), output_padding=1),
         ValueError, r"conv_transpose3d\(\): output_padding must be smaller than either stride or dilation"),
        (lambda: im2col.conv_transpose3d(np.zeros((1, 2, 1, 2, 2)), np.zeros((2, 1, 1, 3, 3)), padding=1),
         ValueError, r"conv_transpose3d\(\): output depth = \(1 − 1\)·1 − 2·1 \+ 1·\(1 − 1\) \+ 0 \+ 1 = -1, "
                     r"but it must be at least 1"),
        (lambda: im2col.conv_transpose3d(np.zeros((1, 2, 2, 2, 2)), np.zeros((2, 1, 3, 3, 3)), padding="same"),
         ValueError, r"conv_transpose3d\(\): argument 'padding' must be an int or a tuple of 3 ints, got 'same'"),
        (lambda: im2col.conv_transpose3d(np.zeros((1, 2, 2, 2, 2)), np.zeros((2, 1, 3, 3, 3)), np.zeros(2)),
         ValueError, r"conv_transpose3d\(\): argument 'bias' must have shape \(1,\)"),
        # found by tests/test_fuzz.py: the 1-D call refused this only inside conv_transpose2d, under that name
        (lambda: im2col.conv_transpose1d(np.zeros((1, 2, 4)), np.zeros((2, 1, 3)), dilation=2**40), ValueError,
         r"conv_transpose1d\(\): the output of shape \(1, 1, 2199023255556\) and dtype float64 would need"),
        (lambda: im2col.conv_transpose3d(np.zeros((1, 2, 4, 4, 4)), np.zeros((2, 1, 3, 3, 3)), dilation=2**40),
         ValueError, r"conv_transpose3d\(\): the output of shape "
                     r"\(1, 1, 2199023255556, 2199023255556, 2199023255556\)"),
        (lambda: im2col.conv_transpose1d(np.zeros((1, 2, 4)), np.zeros((2, 1, 3, 3))), ValueError,
         r"conv_transpose1d\(\): argument 'weight' must be a 3-D \(C_in, C_out/groups, kl\)"),
        (lambda: im2col.conv_transpose1d(np.zeros((1, 1, 2**17)), np.zeros((1, 1, 2**17))), ValueError,
         r"^conv_transpose1d\(\): the column matrix of one image of shape \(131072, 131072\)"),
        (lambda: im2col.conv_transpose1d(np.zeros((1, 2, 4), np.int32), np.zeros((2, 1, 3), np.int32)), TypeError,
         r"conv_transpose1d\(\): argument 'input' must have dtype float32 or float64, got int32"),
        (lambda: inn.conv_transpose1d(torch.zeros(1, 2, 4), torch.zeros(2, 1, 3, 3)), ValueError,
         r"conv_transpose1d\(\): argument 'weight' must be 3-D \(C_in, C_out/groups, k\)"),
        (lambda: inn.conv_transpose3d(torch.zeros(1, 2, 4, 4, 4), torch.zeros(2, 1, 3, 3, 3), stride=2,
                                      output_padding=2), ValueError,
         r"conv_transpose3d\(\): output_padding must be smaller than either stride or dilation, got "
         r"output_padding=\(2, 2, 2\), stride=\(2, 2, 2\)"),
        (lambda: _reflecting(inn.ConvTranspose3d(2, 2, 3))(torch.zeros(1, 2, 3, 3, 3)), ValueError,
         r"ConvTranspose3d\(\): only padding_mode='zeros' is supported"),
        (lambda: inn.unfold(torch.zeros(2, 3, 4), (2, 2, 2)), ValueError,
         r"unfold\(\): argument 'input' must be a 4-D \(unbatched\) or 5-D \(N, C, D, H, W\) tensor, got a 3-D"),
        (lambda: inn.unfold(torch.zeros(1, 2, 5), (2,), stride=(1, 1)), TypeError,
         r"unfold\(\): argument 'stride' must be an int or a tuple of 1 ints, got \(1, 1\)"),
    ],
)  # fmt: skip
def test_bad_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --- channels-last ----------------------------------------------------------------------------------


def test_conv_transpose1d_nlc_and_3d_ndhwc_match_torch():
    r = np.random.default_rng(9)
    x, w, b = r.standard_normal((2, 4, 7)), r.standard_normal((4, 3, 3)), r.standard_normal(6)
    ref = F.conv_transpose1d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), 2, 1, 1, 2, 1)
    y = im2col.conv_transpose1d(np.ascontiguousarray(x.transpose(0, 2, 1)), w, b, 2, 1, 1, 2, 1, layout="NLC")
    assert y.shape == (2, ref.shape[2], 6)
    assert_close(y.transpose(0, 2, 1), ref)
    x, w = r.standard_normal((2, 4, 3, 4, 2)), r.standard_normal((4, 3, 2, 3, 2))
    ref = F.conv_transpose3d(torch.from_numpy(x), torch.from_numpy(w), None, (2, 1, 2), (0, 1, 0), (1, 0, 0), 2)
    y = im2col.conv_transpose3d(np.moveaxis(x, 1, -1), w, None, (2, 1, 2), (0, 1, 0), (1, 0, 0), 2, layout="NDHWC")
    assert y.shape == (2, *ref.shape[2:], 6) and y.flags.c_contiguous
    assert_close(np.moveaxis(y, -1, 1), ref)


def test_conv3d_and_transpose_with_channels_last_3d_tensors_through_nn():
    # float32: torch's float64 3-D convolutions (slow_conv3d) return contiguous outputs whatever the
    # input's format, its float32 ones (oneDNN) channels_last_3d, as ours always do
    g = torch.Generator().manual_seed(2)
    cl = torch.channels_last_3d
    x = torch.randn(2, 4, 3, 4, 5, generator=g).to(memory_format=cl).requires_grad_()
    w = torch.randn(6, 2, 2, 3, 2, generator=g, requires_grad=True)
    wt = torch.randn(4, 3, 2, 3, 2, generator=g, requires_grad=True)
    for ours, theirs, weight in ((inn.conv3d, F.conv3d, w), (inn.conv_transpose3d, F.conv_transpose3d, wt)):
        y, ref = ours(x, weight, padding=1, groups=2), theirs(x, weight, padding=1, groups=2)
        assert y.stride() == ref.stride(), (ours.__name__, y.stride(), ref.stride())
        assert_close(y, ref)
        gy = torch.randn_like(ref)
        (gx, gw), (gx_ref, gw_ref) = (torch.autograd.grad(out, (x, weight), gy) for out in (y, ref))
        assert_close(gx, gx_ref, what=f"{ours.__name__} input grad")
        assert_close(gw, gw_ref, what=f"{ours.__name__} weight grad")
        assert gx.stride() == gx_ref.stride()
    torch.library.opcheck(torch.ops.im2col.conv3d_backward,
                          (torch.randn(2, 6, 4, 4, 6), x.detach(), w.detach(), [1, 1, 1],
                           [1, 1, 1], [1, 1, 1], 2, [True, True, True]))  # fmt: skip
    torch.library.opcheck(torch.ops.im2col.conv_transpose3d,
                          (x.detach(), wt.detach(), None, [1, 1, 1], [1, 1, 1], [0, 0, 0], 2, [1, 1, 1]))  # fmt: skip


# --- the tiled 3-D kernels: small tiles, so that every tiling and phase path runs -----------------


@pytest.mark.parametrize(
    "tile_bytes", [1, 3000, 20000, 10**9], ids=["rows-of-one-depth", "depth-1", "depths", "one-tile"]
)
@pytest.mark.parametrize("seed", range(6))
def test_conv3d_tiles_match_torch(monkeypatch, tile_bytes, seed):
    """Tiles of rows within a depth, of single and several depths, and one tile: forward, both
    gradients and the transposed convolution equal torch's, in both memory layouts."""
    from im2col import _tiles

    monkeypatch.setattr(_tiles, "TILE_BYTES", tile_bytes)
    monkeypatch.setattr(_tiles, "TILE_MIN_COLUMNS", 1)
    r = np.random.default_rng(seed)
    groups = int(r.choice([1, 2]))
    C, K = groups * int(r.integers(1, 3)), groups * int(r.integers(1, 3))
    k = tuple(int(v) for v in r.integers(1, 4, 3))
    s = tuple(int(v) for v in r.integers(1, 3, 3))
    d = tuple(int(v) for v in r.integers(1, 3, 3))
    p = tuple(int(v) for v in r.integers(0, 2, 3))
    size = tuple(int(dd * (kk - 1) + 1 + r.integers(0, 5)) for kk, dd in zip(k, d))
    x = torch.randn(3, C, *size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(K, C // groups, *k, dtype=torch.float64, requires_grad=True)
    conf = dict(stride=s, padding=p, dilation=d, groups=groups)
    ref = F.conv3d(x, w, **conf)
    gy = torch.randn_like(ref)
    gx_ref, gw_ref = torch.autograd.grad(ref, (x, w), gy)
    for cl in (False, True):
        xin = x.detach().to(memory_format=torch.channels_last_3d) if cl else x.detach()
        assert_close(im2col.conv3d(xin, w.detach(), **conf), ref, what=f"forward cl={cl}")
        gx, gw, _ = im2col.conv3d_backward(gy, xin, w.detach(), **conf)
        assert_close(gx, gx_ref, what=f"grad input cl={cl}")
        assert_close(gw, gw_ref, what=f"grad weight cl={cl}")
    wt = torch.randn(C, K // groups, *k, dtype=torch.float64)
    op = tuple(int(r.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
    try:
        expected = F.conv_transpose3d(x.detach(), wt, None, s, p, op, groups, d)
    except RuntimeError:
        return
    if expected.numel():
        assert_close(im2col.conv_transpose3d(x.detach(), wt, None, s, p, op, groups, d), expected, what="transposed")


# --- found in review ---------------------------------------------------------------------------------


def test_empty_batches_through_conv_transpose3d():
    assert im2col.conv_transpose3d(np.zeros((0, 2, 3, 3, 3)), np.ones((2, 1, 2, 2, 2))).shape == (0, 1, 4, 4, 4)
    y = im2col.conv_transpose3d(np.zeros((0, 3, 3, 3, 2)), np.ones((2, 1, 2, 2, 2)), layout="NDHWC")
    assert y.shape == (0, 4, 4, 4, 1)
    m = inn.ConvTranspose3d(2, 3, 2)
    assert m(torch.zeros(0, 2, 3, 4, 4)).shape == torch.nn.ConvTranspose3d(2, 3, 2)(torch.zeros(0, 2, 3, 4, 4)).shape
