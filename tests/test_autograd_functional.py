"""The NumPy-style functional API as a drop-in for torch.nn.functional on tensors that require grad.

``im2col.conv2d`` and its siblings keep autograd (through im2col.nn's registered operators): values
and gradients equal torch's (float32, the oracle's tolerance), gradcheck and gradgradcheck pass
(float64), and torch.compile(fullgraph=True) sees through them. Also pinned here: the tensor-idiom
dtype advice, what mixing arrays and tensors does, the filters going into torch.from_numpy without a
warning, zero-sized transposed outputs (refused, as torch 2.13 refuses them), and the eager fast path
of im2col.nn giving the operators' values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import im2col  # noqa: E402
import im2col.nn  # noqa: E402
from im2col import _torch_eager, kernels  # noqa: E402
from tests.conftest import assert_close  # noqa: E402

# (name, input shape, weight shape, keyword arguments) with torch.nn.functional's names
CONVS = [
    ("conv1d", (2, 3, 11), (4, 3, 3), dict(stride=2, padding=1, dilation=2)),
    ("conv2d", (2, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
    ("conv2d", (3, 5, 5), (2, 3, 3, 3), dict(padding="same")),  # unbatched, 'same'
    ("conv3d", (1, 2, 4, 5, 4), (3, 2, 2, 3, 2), dict(stride=(1, 2, 1), padding=1)),
    ("conv_transpose1d", (2, 4, 6), (4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (2, 4, 4, 5), (4, 1, 3, 3), dict(stride=2, padding=1, groups=2)),
    ("conv_transpose3d", (1, 2, 3, 3, 2), (2, 2, 2, 2, 3), dict(stride=2, dilation=(1, 2, 1))),
]


def _tensors(shape_x, shape_w, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape_x, dtype=dtype, generator=g, requires_grad=True)
    w = torch.randn(shape_w, dtype=dtype, generator=g, requires_grad=True)
    return x, w


def _bias_len(name, w, kw):
    return w.shape[1] * kw.get("groups", 1) if "transpose" in name else w.shape[0]


@pytest.mark.parametrize("name, xs, ws, kw", CONVS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONVS)])
def test_convolutions_keep_autograd_and_match_torch(name, xs, ws, kw):
    x, w = _tensors(xs, ws, torch.float32)
    b = torch.randn(_bias_len(name, w, kw), requires_grad=True)
    y = getattr(im2col, name)(x, w, b, **kw)
    assert isinstance(y, torch.Tensor) and y.grad_fn is not None
    tx, tw, tb = (t.detach().clone().requires_grad_() for t in (x, w, b))
    ty = getattr(F, name)(tx, tw, tb, **kw)
    assert_close(y, ty, what=f"{name} forward")
    gy = torch.randn_like(ty)
    (y * gy).sum().backward()
    (ty * gy).sum().backward()
    for ours, theirs, what in ((x, tx, "input"), (w, tw, "weight"), (b, tb, "bias")):
        assert_close(ours.grad, theirs.grad, what=f"{name} grad {what}")


@pytest.mark.parametrize("name, xs, ws, kw", CONVS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONVS)])
def test_convolutions_gradcheck_and_gradgradcheck(name, xs, ws, kw):
    x, w = _tensors(xs, ws, torch.float64, seed=1)
    b = torch.randn(_bias_len(name, w, kw), dtype=torch.float64, requires_grad=True)
    fn = getattr(im2col, name)
    assert torch.autograd.gradcheck(lambda x, w, b: fn(x, w, b, **kw), (x, w, b))
    assert torch.autograd.gradgradcheck(lambda x, w: fn(x, w, None, **kw), (x, w))


def test_conv_with_layout_and_per_side_padding_keeps_autograd():
    x = torch.randn(2, 6, 5, 3, dtype=torch.float64, requires_grad=True)  # NHWC
    w = torch.randn(4, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    pads = ((1, 0), (2, 1))

    def ours(x, w):
        return im2col.conv2d(x, w, padding=pads, layout="NHWC")

    def theirs(x, w):
        return F.conv2d(F.pad(x.permute(0, 3, 1, 2), (2, 1, 1, 0)), w).permute(0, 2, 3, 1)

    assert_close(ours(x, w), theirs(x, w))
    assert torch.autograd.gradcheck(ours, (x, w))
    ga = torch.autograd.grad(ours(x, w).sum(), (x, w))
    gb = torch.autograd.grad(theirs(x, w).sum(), (x, w))
    for a, e in zip(ga, gb):
        assert_close(a, e)


@pytest.mark.parametrize("mode", ["zeros", "constant", "reflect", "replicate", "circular"])
def test_im2col_and_col2im_keep_autograd_for_every_padding_mode(mode):
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    value = 0.5 if mode == "constant" else 0
    kw = dict(padding=((2, 1), (1, 1)), stride=(1, 2))
    cols = im2col.im2col(x, 3, padding_mode=mode, pad_value=value, **kw)
    assert cols.grad_fn is not None
    assert_close(cols, im2col.im2col(x.detach().numpy(), 3, padding_mode=mode, pad_value=value, **kw))
    assert torch.autograd.gradcheck(lambda x: im2col.im2col(x, 3, padding_mode=mode, pad_value=value, **kw), (x,))
    c = torch.randn(cols.shape, dtype=torch.float64, requires_grad=True)
    for reduce in ("sum", "mean"):
        folded = im2col.col2im(c, (6, 5), 3, padding_mode=mode, reduce=reduce, **kw)
        expected = im2col.col2im(c.detach().numpy(), (6, 5), 3, padding_mode=mode, reduce=reduce, **kw)
        assert_close(folded, expected, what=f"col2im {mode} {reduce}")
        assert torch.autograd.gradcheck(lambda c: im2col.col2im(c, (6, 5), 3, padding_mode=mode, reduce=reduce, **kw),
                                        (c,))  # fmt: skip
    if mode in ("reflect", "replicate", "circular"):  # the eager adjoint pair: second order too
        assert torch.autograd.gradgradcheck(lambda x: im2col.im2col(x, 3, padding_mode=mode, **kw) ** 2, (x,))


def test_im2col_matches_unfold_gradient_and_refuses_out():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    tx = x.detach().clone().requires_grad_()
    (im2col.im2col(x, 3, padding=1, stride=2) ** 2).sum().backward()
    (F.unfold(tx, 3, padding=1, stride=2) ** 2).sum().backward()
    assert_close(x.grad, tx.grad)
    with pytest.raises(TypeError, match=r"im2col\(\): argument 'out' cannot be used when 'input' requires grad"):
        im2col.im2col(x, 3, out=torch.empty(2, 27, 36))


@pytest.mark.parametrize("name, xs, ws, kw", [c for c in CONVS if "transpose" not in c[0]][:3])
def test_backward_functions_equal_autograd_and_are_differentiable(name, xs, ws, kw):
    x, w = _tensors(xs, ws, torch.float64, seed=2)
    y = getattr(F, name)(x, w, **kw)
    gy = torch.randn(y.shape, dtype=torch.float64, requires_grad=True)
    expected = torch.autograd.grad(y, (x, w), gy, create_graph=True)
    gx, gw, gb = getattr(im2col, f"{name}_backward")(gy, x, w, **kw)
    assert gx.grad_fn is not None and gw.grad_fn is not None
    assert_close(gx, expected[0])
    assert_close(gw, expected[1])
    channel_axis = gy.dim() - (len(ws) - 2) - 1
    assert_close(gb, gy.detach().sum([a for a in range(gy.dim()) if a != channel_axis]))
    assert torch.autograd.gradcheck(lambda gy, x, w: getattr(im2col, f"{name}_backward")(gy, x, w, **kw), (gy, x, w))


def test_no_grad_tensors_and_arrays_keep_the_fast_path():
    x, w = torch.randn(1, 2, 5, 5, requires_grad=True), torch.randn(3, 2, 3, 3, requires_grad=True)
    with torch.no_grad():
        y = im2col.conv2d(x, w)
    assert y.grad_fn is None and not y.requires_grad
    assert im2col.conv2d(x.detach(), w.detach()).grad_fn is None
    assert isinstance(im2col.conv2d(x.detach().numpy(), w.detach().numpy()), np.ndarray)


def test_compiles_fullgraph():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)

    def f(x, w):
        return im2col.conv2d(x, w, padding=1).relu().sum()

    compiled = torch.compile(f, fullgraph=True, backend="eager")
    assert_close(compiled(x, w), f(x, w))
    g1 = torch.autograd.grad(compiled(x, w), (x, w))
    g2 = torch.autograd.grad(f(x, w), (x, w))
    for a, e in zip(g1, g2):
        assert_close(a, e)


# --- mixing arrays and tensors ----------------------------------------------------------------


def test_mixing_without_grad_follows_the_input_type():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3)).astype(np.float32)
    y_array = im2col.conv2d(x, torch.from_numpy(w))
    y_tensor = im2col.conv2d(torch.from_numpy(x), w)
    assert isinstance(y_array, np.ndarray) and isinstance(y_tensor, torch.Tensor)
    assert_close(y_array, y_tensor, exact=True)


def test_mixing_with_grad_reads_arrays_as_constants():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    y = im2col.conv2d(x, w)  # an array input, a weight that requires grad: the gradient is kept
    assert isinstance(y, torch.Tensor) and y.grad_fn is not None
    y.sum().backward()
    tw = w.detach().clone().requires_grad_()
    F.conv2d(torch.from_numpy(x), tw).sum().backward()
    assert_close(w.grad, tw.grad)
    readonly = x.copy()
    readonly.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-writable array" warning from torch.from_numpy
        im2col.conv2d(readonly, w)


# --- tensor advice ------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda t: im2col.conv2d(t, t.new_ones(1, 1, 3, 3)),
    lambda t: im2col.conv1d(t[0], t.new_ones(1, 1, 3)),
    lambda t: im2col.col2im(t[0], (4,), (2,)),
], ids=["conv2d", "conv1d", "col2im"])  # fmt: skip
def test_wrong_dtype_tensor_is_told_the_tensor_way(call):
    t = torch.ones(1, 1, 5, 5, dtype=torch.int64)
    with pytest.raises(TypeError, match=r"must have dtype torch.float32 or torch.float64, got torch.int64; "
                                        r"convert with \.float\(\) or \.to\(torch\.float32\)"):  # fmt: skip
        call(t)


def test_wrong_dtype_array_is_still_told_the_numpy_way():
    with pytest.raises(TypeError, match=r"got int64; convert with \.astype\(numpy\.float32\)"):
        im2col.conv2d(np.ones((1, 1, 5, 5), np.int64), np.ones((1, 1, 3, 3), np.int64))


# --- the filters --------------------------------------------------------------------------------


def test_filters_go_into_torch_without_a_warning_and_stay_safe():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = torch.from_numpy(kernels.sobel_x)
        stacked = torch.from_numpy(kernels.edge_kernels())
        every = {name: torch.from_numpy(k) for name, k in kernels.all_kernels().items()}
    t.zero_()
    stacked.zero_()
    every["blur"].zero_()
    assert kernels.sobel_x[0, 0] == -1 and kernels.blur.sum() == pytest.approx(1)
    assert kernels.edge_kernels()[1, 0, 0, 0] == -1
    assert "sobel_x" in dir(kernels)
    with pytest.raises(AttributeError, match="has no attribute 'sobel_z'"):
        kernels.sobel_z  # noqa: B018


# --- zero-sized transposed outputs ----------------------------------------------------------------

# each has an output side of size 0: (n − 1)·s − 2·p + d·(k − 1) + o + 1 = 0
ZERO = [
    ("conv_transpose1d", (1, 2, 2), (2, 3, 1), dict(padding=1)),
    ("conv_transpose2d", (1, 2, 2, 3), (2, 3, 1, 1), dict(padding=(1, 0))),
    ("conv_transpose2d", (1, 2, 1, 3), (2, 3, 1, 1), dict(stride=2, padding=(1, 0), output_padding=(1, 0))),
    ("conv_transpose3d", (1, 2, 2, 2, 2), (2, 3, 1, 1, 1), dict(padding=(0, 1, 0))),
]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("name, xs, ws, kw", ZERO)
def test_zero_sized_transposed_output_is_refused_as_torch_refuses_it(name, xs, ws, kw, with_bias):
    x, w = torch.randn(xs), torch.randn(ws)
    b = torch.randn(ws[1]) if with_bias else None
    # torch 2.13 refuses these, with or without a bias (an empty output is not returned)
    with pytest.raises(RuntimeError, match="Output size is too small"):
        getattr(F, name)(x, w, b, **kw)
    for inputs in ((x, w, b), (x.numpy(), w.numpy(), None if b is None else b.numpy())):
        with pytest.raises(ValueError, match=rf"{name}\(\): output \w+ = .* = 0, but it must be at least 1"):
            getattr(im2col, name)(*inputs, **kw)
    with pytest.raises(ValueError, match="at least 1"):  # and with autograd
        getattr(im2col, name)(x.requires_grad_(), w, b, **kw)


@pytest.mark.parametrize("name, xs, ws", [("conv_transpose1d", (0, 2, 4), (2, 3, 3)),
                                          ("conv_transpose2d", (0, 2, 4, 4), (2, 3, 3, 3)),
                                          ("conv_transpose3d", (0, 2, 3, 3, 3), (2, 3, 2, 2, 2))])  # fmt: skip
def test_empty_batch_of_transposed_convolution_is_empty_as_torch(name, xs, ws):
    x, w = torch.randn(xs, requires_grad=True), torch.randn(ws, requires_grad=True)
    y = getattr(im2col, name)(x, w, stride=2)
    ty = getattr(F, name)(x.detach(), w.detach(), stride=2)
    assert y.shape == ty.shape and y.numel() == 0
    y.sum().backward()
    assert x.grad.shape == x.shape and not w.grad.any()
    assert getattr(im2col, name)(x.detach().numpy(), w.detach().numpy(), stride=2).shape == tuple(ty.shape)


# --- the eager fast path of im2col.nn ---------------------------------------------------------------


@pytest.mark.parametrize("shape, groups", [((1, 1, 5, 5), 1), ((3, 4, 7, 6), 2), ((2, 2, 40, 40), 1)])
def test_eager_path_equals_the_registered_operators(shape, groups):
    torch.manual_seed(3)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, shape[1] // groups, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    conf = ((1, 2), (1, 0), (1, 1), groups)
    y_eager = _torch_eager._Conv2dEager.apply(x, w, b, *conf)
    y_op = torch.ops.im2col.conv2d(x, w, b, *map(list, conf[:3]), groups)
    assert_close(y_eager, y_op)
    gy = torch.randn_like(y_op)
    g_eager = torch.autograd.grad(y_eager, (x, w, b), gy)
    g_op = torch.autograd.grad(y_op, (x, w, b), gy)
    for a, e in zip(g_eager, g_op):
        assert_close(a, e)
    if x[0, 0].numel() <= 64:  # gradgradcheck's numeric Jacobians take a minute on 40×40
        assert torch.autograd.gradgradcheck(lambda x, w: _torch_eager._Conv2dEager.apply(x, w, None, *conf), (x, w))
