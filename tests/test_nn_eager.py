"""The eager fast path of im2col.nn: which calls take it, and that it gives the registered operators'
results — bit for bit for the transposed and 3-D convolutions, whose eager twins call the very
functions the operators call — with gradients, double backward and in-place checks intact."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close

import im2col.nn as inn
from im2col import _torch_eager

# (input shape, weight shape, stride, padding, output_padding, groups, dilation)
TRANSPOSED = [
    ((1, 1, 5, 5), (1, 1, 3, 3), (1, 1), (0, 0), (0, 0), 1, (1, 1)),
    ((2, 4, 5, 6), (4, 3, 3, 2), (2, 1), (1, 0), (1, 0), 1, (1, 1)),
    ((2, 4, 6, 5), (4, 3, 3, 3), (2, 2), (0, 1), (1, 1), 2, (2, 1)),
    ((1, 3, 8, 7), (3, 2, 4, 4), (3, 3), (1, 1), (0, 2), 1, (1, 1)),  # output_padding ≥ stride needs dilation
    ((2, 2, 3, 4, 3), (2, 3, 2, 3, 2), (2, 1, 2), (0, 1, 0), (1, 0, 1), 1, (1, 1, 1)),
    ((1, 4, 3, 3, 3), (4, 1, 3, 3, 3), (1, 2, 1), (1, 1, 1), (0, 1, 0), 2, (1, 1, 2)),
]


def _operator(x, w, b, stride, padding, output_padding, groups, dilation):
    op = torch.ops.im2col.conv_transpose2d if x.dim() == 4 else torch.ops.im2col.conv_transpose3d
    return op(x, w, b, list(stride), list(padding), list(output_padding), groups, list(dilation))


def _leaves(shape, wshape, n_out, dtype, bias=True):
    torch.manual_seed(sum(shape) + sum(wshape))
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    w = torch.randn(wshape, dtype=dtype, requires_grad=True)
    b = torch.randn(n_out, dtype=dtype, requires_grad=True) if bias else None
    return x, w, b


def _grads(y, inputs, gy):
    inputs = [t for t in inputs if t is not None]
    return torch.autograd.grad(y, inputs, gy, retain_graph=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", TRANSPOSED)
def test_eager_transposed_gives_the_operators_bits(case, dtype):
    shape, wshape, s, p, op, groups, d = case
    x, w, b = _leaves(shape, wshape, wshape[1] * groups, dtype)
    conf = (s, p, op, groups, d)
    y_eager = _torch_eager._ConvTransposeEager.apply(x, w, b, *conf)
    y_op = _operator(x, w, b, *conf)
    assert torch.equal(y_eager, y_op) and y_eager.stride() == y_op.stride()
    gen = torch.Generator().manual_seed(1)
    for gy in (torch.randn(y_op.shape, dtype=dtype, generator=gen),  # contiguous
               torch.ones((), dtype=dtype).expand(y_op.shape)):  # as from .sum(): stride 0  # fmt: skip
        for a, e in zip(_grads(y_eager, (x, w, b), gy), _grads(y_op, (x, w, b), gy)):
            assert torch.equal(a, e) and a.stride() == e.stride()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape, wshape, stride, padding, dilation, groups", [
    ((1, 1, 5, 5, 5), (1, 1, 3, 3, 3), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1),
    ((2, 4, 6, 5, 7), (6, 2, 3, 2, 3), (2, 1, 2), (1, 0, 1), (1, 2, 1), 2),
])  # fmt: skip
def test_eager_conv3d_gives_the_operators_bits(shape, wshape, stride, padding, dilation, groups, dtype):
    x, w, b = _leaves(shape, wshape, wshape[0], dtype)
    conf = (stride, padding, dilation, groups)
    y_eager = _torch_eager._Conv3dEager.apply(x, w, b, *conf)
    y_op = torch.ops.im2col.conv3d(x, w, b, *map(list, conf[:3]), groups)
    assert torch.equal(y_eager, y_op)
    gy = torch.randn(y_op.shape, dtype=dtype, generator=torch.Generator().manual_seed(2))
    for a, e in zip(_grads(y_eager, (x, w, b), gy), _grads(y_op, (x, w, b), gy)):
        assert torch.equal(a, e)


def test_channels_last_grad_output_takes_the_operators_formula():
    """A channels-last gy gives a channels-last input gradient through the operators; the eager
    backward hands such a gy to the operators' formula, so it does too."""
    x, w, b = _leaves((2, 3, 5, 5), (3, 4, 3, 3), 4, torch.float64)
    conf = ((1, 1), (1, 1), (0, 0), 1, (1, 1))
    y_eager = _torch_eager._ConvTransposeEager.apply(x, w, b, *conf)
    y_op = _operator(x, w, b, *conf)
    gy = torch.randn(y_op.shape, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    for a, e in zip(_grads(y_eager, (x, w, b), gy), _grads(y_op, (x, w, b), gy)):
        assert torch.equal(a, e) and a.stride() == e.stride()


@pytest.mark.parametrize("case", [TRANSPOSED[1], TRANSPOSED[4]])
def test_eager_transposed_gradcheck_and_gradgradcheck(case):
    shape, wshape, s, p, op, groups, d = case
    x, w, b = _leaves((1, *shape[1:2], *(min(n, 3) for n in shape[2:])), wshape, wshape[1] * groups, torch.float64)
    f = lambda x, w, b: _torch_eager._ConvTransposeEager.apply(x, w, b, s, p, op, groups, d)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


def test_eager_conv3d_gradgradcheck():
    x, w, b = _leaves((1, 2, 3, 4, 3), (2, 2, 2, 2, 2), 2, torch.float64)
    f = lambda x, w, b: _torch_eager._Conv3dEager.apply(x, w, b, (1, 2, 1), (1, 0, 0), (1, 1, 1), 1)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, w, b))
    assert torch.autograd.gradgradcheck(f, (x, w, b))


@pytest.mark.parametrize("module, shape, eager", [
    (inn.Conv1d(2, 3, 3), (1, 2, 9), "_Conv1dEager"),
    (inn.Conv2d(2, 3, 3), (1, 2, 6, 6), "_Conv2dEager"),
    (inn.Conv3d(2, 3, 3), (1, 2, 4, 4, 4), "_Conv3dEager"),
    (inn.ConvTranspose1d(2, 3, 3), (1, 2, 5), "_ConvTransposeEager"),
    (inn.ConvTranspose2d(2, 3, 3), (1, 2, 5, 5), "_ConvTransposeEager"),
    (inn.ConvTranspose3d(2, 3, 3), (1, 2, 3, 3, 3), "_ConvTransposeEager"),
])  # fmt: skip
def test_which_calls_take_the_eager_path(module, shape, eager):
    x = torch.randn(shape, requires_grad=True)
    y = module(x)
    # 1-D transposed: a squeezed 2-D output (a 1-D convolution is one node of its own)
    backward = y.grad_fn if y.dim() > 3 or eager == "_Conv1dEager" else y.grad_fn.next_functions[0][0]
    assert type(backward).__name__ == eager + "Backward"
    # channels-last input, or a float16 one, takes the registered operators
    if x.dim() in (4, 5):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        z = module(x.detach().contiguous(memory_format=fmt).requires_grad_())
        assert "Eager" not in type(z.grad_fn).__name__


def test_in_place_change_of_a_saved_input_is_caught():
    m = inn.ConvTranspose2d(2, 3, 3)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    xi = x * 1.0
    y = m(xi)
    xi.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("module, shape", [
    (inn.Conv1d(2, 3, 3), (1, 2, 9)),
    (inn.Conv2d(2, 3, 3), (1, 2, 6, 6)),
    (inn.Conv3d(2, 3, 3), (1, 2, 4, 4, 4)),
    (inn.ConvTranspose2d(2, 3, 3), (1, 2, 4, 4)),
    (inn.ConvTranspose3d(2, 3, 3), (1, 2, 3, 3, 3)),
])  # fmt: skip
@pytest.mark.parametrize("changed", ["input", "weight"])
def test_in_place_change_of_a_saved_tensor_is_caught_on_every_eager_path(module, shape, changed):
    """The eager backward computes on NumPy views kept from the forward, but still unpacks the saved
    tensors, so autograd's version check runs: a change in place since the forward raises."""
    x = torch.randn(shape, requires_grad=True)
    xi = x * 1.0
    y = module(xi)
    with torch.no_grad():
        (xi if changed == "input" else module.weight).add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_eager_modules_match_the_operators_in_training():
    """A few SGD steps through the eager modules and through the operators give the same losses."""
    torch.manual_seed(0)
    up = inn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1).double()
    x = torch.randn(4, 2, 5, 5, dtype=torch.float64)
    losses = {}
    for route in ("eager", "operators"):
        m = inn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1).double()
        m.load_state_dict(up.state_dict())
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        losses[route] = []
        for _ in range(3):
            opt.zero_grad()
            if route == "eager":
                y = m(x)
            else:
                y = _operator(x, m.weight, m.bias, m.stride, m.padding, m.output_padding, m.groups, m.dilation)
            loss = (y**2).mean()
            loss.backward()
            opt.step()
            losses[route].append(loss.item())
    assert_close(torch.tensor(losses["eager"]), torch.tensor(losses["operators"]), exact=True)


# --- the arguments a module call checked, kept for its next calls ----------------------------------


def _torch_twin(ours):
    cls = getattr(torch.nn, type(ours).__name__)
    twin = cls.__new__(cls)
    twin.__dict__.update({k: v for k, v in ours.__dict__.items() if k != "_im2col_conf"})
    return twin


@pytest.mark.parametrize("cls, shape", [(inn.Conv1d, (2, 2, 11)), (inn.Conv2d, (2, 2, 9, 8)),
                                        (inn.Conv3d, (1, 2, 6, 5, 7))])  # fmt: skip
def test_module_settings_changed_after_a_call_are_checked_again(cls, shape):
    n = len(shape) - 2
    m = cls(2, 3, 3, padding=1).double()
    x = torch.randn(shape, dtype=torch.float64)
    for _ in range(2):  # the second call takes the kept arguments
        assert_close(m(x), _torch_twin(m)(x))
    assert "_im2col_conf" in m.__dict__
    assert_close(m(x[0]), _torch_twin(m)(x[0]))  # unbatched, from the same kept arguments
    m.stride = (2,) * n
    assert_close(m(x), _torch_twin(m)(x))
    m.stride = (1,) * n
    m.padding = "same"
    assert m(x).shape == x.shape[:1] + (3,) + x.shape[2:]
    m.weight = torch.nn.Parameter(torch.randn(3, 2, *(2,) * n, dtype=torch.float64))  # even: extra pixel after
    assert_close(m(x), _torch_twin(m)(x))
    m.padding_mode = "reflect"
    m._reversed_padding_repeated_twice = [1, 0] * n  # what torch computes for 'same' with a 2-tap kernel
    assert_close(m(x), _torch_twin(m)(x))
    m.stride = (1.0,) * n  # refused by the full checks, never taken from the kept ones
    with pytest.raises(TypeError, match="argument 'stride' must be an int or a tuple"):
        m(x)
    m.stride, m.padding_mode = (1,) * n, "zeros"
    with pytest.raises(ValueError, match=f"must be a {n + 1}-D \\(unbatched\\) or {n + 2}-D"):
        m(x[None])


@pytest.mark.parametrize("cls, shape", [(inn.ConvTranspose1d, (2, 2, 7)), (inn.ConvTranspose2d, (2, 2, 5, 6)),
                                        (inn.ConvTranspose3d, (1, 2, 3, 4, 3))])  # fmt: skip
def test_transposed_module_settings_changed_after_a_call_are_checked_again(cls, shape):
    n = len(shape) - 2
    m = cls(2, 3, 3, stride=2, padding=1).double()
    x = torch.randn(shape, dtype=torch.float64)
    for _ in range(2):
        assert_close(m(x), _torch_twin(m)(x))
    assert "_im2col_conf" in m.__dict__
    assert_close(m(x[0]), _torch_twin(m)(x[0]))
    m.output_padding = (1,) * n
    assert_close(m(x), _torch_twin(m)(x))
    size = [2 * s for s in shape[2:]]
    assert_close(m(x, output_size=size), _torch_twin(m)(x, output_size=size))
    m.output_padding = (2,) * n  # not below the stride any more: refused again
    with pytest.raises(ValueError, match="output_padding must be smaller than either stride or dilation"):
        m(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2)])
def test_eager_conv1d_gives_the_bits_of_the_2d_one_of_height_1(stride, padding, dilation, groups, dtype):
    """The 1-D eager node computes on the height-1 views the 2-D path gets: the same bits, values and
    gradients; and its create_graph backward (through the operators) is differentiable again."""
    x, w, b = _leaves((2, 4, 11), (6, 4 // groups, 3), 6, dtype)
    conf = ((1, stride), (0, padding), (1, dilation), groups)
    y = _torch_eager._conv1d(x, w, b, (stride,), (padding,), (dilation,), groups)
    assert type(y.grad_fn).__name__ == "_Conv1dEagerBackward"
    y2 = _torch_eager._conv2d(x.unsqueeze(2), w.unsqueeze(2), b, *conf).squeeze(2)
    assert torch.equal(y, y2)
    gy = torch.randn_like(y)
    for a, c in zip(_grads(y, (x, w, b), gy), _grads(y2, (x, w, b), gy)):
        assert torch.equal(a, c)
    if dtype == torch.float64:

        def f(x, w, b):
            return _torch_eager._conv1d(x, w, b, (stride,), (padding,), (dilation,), groups)

        assert torch.autograd.gradgradcheck(f, (x, w, b))
