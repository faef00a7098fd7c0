"""im2col.nn against torch.nn: each module and its twin on random configurations (forward, input,
weight and bias gradients), the operators under gradcheck, gradgradcheck and opcheck, and
torch.compile(fullgraph=True)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_close
from torch.autograd import gradcheck, gradgradcheck

import im2col
import im2col.nn as inn

MODES = ["zeros", "reflect", "replicate", "circular"]


def _twins(ours_cls, torch_cls, *args, dtype=torch.float64, **kwargs):
    """Our module and torch's, with the same parameters (ours initialised, torch's loaded from it)."""
    ours = ours_cls(*args, **kwargs).to(dtype)
    twin = torch_cls(*args, **kwargs).to(dtype)
    twin.load_state_dict(ours.state_dict())
    return ours, twin


def _check_twins(ours, twin, x, what, dtype=None, **call):
    """Forward output and the gradients of input and every parameter agree."""
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    ya, yb = ours(xa, **call), twin(xb, **call)
    assert_close(ya, yb, what=f"{what}: forward")
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    assert_close(xa.grad, xb.grad, what=f"{what}: input grad")
    for (name, pa), (_, pb) in zip(ours.named_parameters(), twin.named_parameters()):
        assert_close(pa.grad, pb.grad, what=f"{what}: {name} grad")


def _random_conv_config(r: np.random.Generator, dims: int) -> tuple[dict, tuple[int, ...]]:
    """Constructor kwargs for a ConvNd and an input shape that fits them."""
    groups = int(r.choice([1, 1, 2, 3]))
    cin, cout = groups * int(r.integers(1, 4)), groups * int(r.integers(1, 4))
    k = tuple(int(v) for v in r.integers(1, 5, dims))
    d = tuple(int(v) for v in r.integers(1, 3, dims))
    mode = str(r.choice(MODES))
    if r.random() < 0.3:
        s, padding = 1, str(r.choice(["same", "valid"]))
    else:
        s = tuple(int(v) for v in r.integers(1, 4, dims))
        padding = tuple(int(v) for v in r.integers(0, 3, dims))
    kwargs = dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=s, padding=padding, dilation=d,
                  groups=groups, bias=bool(r.random() < 0.7), padding_mode=mode)  # fmt: skip
    # big enough for the kernel, and for reflect (padding < size)
    size = tuple(int(dd * (kk - 1) + 1 + r.integers(2, 6)) for kk, dd in zip(k, d))
    batch = () if r.random() < 0.2 else (int(r.integers(1, 4)),)
    return kwargs, (*batch, cin, *size)


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_module_matches_torch(seed):
    r = np.random.default_rng(seed)
    kwargs, shape = _random_conv_config(r, 2)
    ours, twin = _twins(inn.Conv2d, torch.nn.Conv2d, **kwargs)
    _check_twins(ours, twin, torch.randn(shape, dtype=torch.float64), f"Conv2d({kwargs}) on {shape}")


@pytest.mark.parametrize("seed", range(8))
def test_conv1d_module_matches_torch(seed):
    r = np.random.default_rng(100 + seed)
    kwargs, shape = _random_conv_config(r, 1)
    ours, twin = _twins(inn.Conv1d, torch.nn.Conv1d, **kwargs)
    _check_twins(ours, twin, torch.randn(shape, dtype=torch.float64), f"Conv1d({kwargs}) on {shape}")


@pytest.mark.parametrize("seed", range(6))
def test_conv3d_module_matches_torch(seed):
    r = np.random.default_rng(300 + seed)
    kwargs, shape = _random_conv_config(r, 3)
    ours, twin = _twins(inn.Conv3d, torch.nn.Conv3d, **kwargs)
    _check_twins(ours, twin, torch.randn(shape, dtype=torch.float64), f"Conv3d({kwargs}) on {shape}")


@pytest.mark.parametrize("seed", range(8))
def test_conv_transpose2d_module_matches_torch(seed):
    r = np.random.default_rng(200 + seed)
    groups = int(r.choice([1, 2]))
    k = tuple(int(v) for v in r.integers(1, 5, 2))
    s = tuple(int(v) for v in r.integers(1, 4, 2))
    d = tuple(int(v) for v in r.integers(1, 3, 2))
    p = tuple(int(r.integers(0, dd * (kk - 1) + 1)) for kk, dd in zip(k, d))
    kwargs = dict(in_channels=2 * groups, out_channels=groups * int(r.integers(1, 3)), kernel_size=k, stride=s,
                  padding=p, dilation=d, groups=groups, bias=bool(r.random() < 0.7))  # fmt: skip
    ours, twin = _twins(inn.ConvTranspose2d, torch.nn.ConvTranspose2d, **kwargs)
    H, W = (int(v) for v in r.integers(2, 6, 2))
    x = torch.randn(2, kwargs["in_channels"], H, W, dtype=torch.float64)
    _check_twins(ours, twin, x, f"ConvTranspose2d({kwargs})")
    # output_size picks the largest size the strided convolution maps back to (H, W)
    size = [(n - 1) * ss - 2 * pp + dd * (kk - 1) + 1 + ss - 1 for n, ss, pp, dd, kk in zip((H, W), s, p, d, k)]
    _check_twins(ours, twin, x, f"ConvTranspose2d({kwargs}), output_size={size}", output_size=size)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3),
        dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 2), stride=(2, 1)),
        dict(kernel_size=1, stride=2),
    ],
    ids=str,
)
def test_unfold_fold_modules_match_torch(kwargs):
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    ours, twin = _twins(inn.Unfold, torch.nn.Unfold, **kwargs)
    _check_twins(ours, twin, x, f"Unfold({kwargs})")
    _check_twins(ours, twin, x[0], f"Unfold({kwargs}) unbatched")
    cols = twin(x)
    ours, twin = _twins(inn.Fold, torch.nn.Fold, output_size=(7, 6), **kwargs)
    _check_twins(ours, twin, cols, f"Fold({kwargs})")
    _check_twins(ours, twin, cols[0], f"Fold({kwargs}) unbatched")


def test_float32_modules_match_torch():
    torch.manual_seed(0)
    ours, twin = _twins(inn.Conv2d, torch.nn.Conv2d, 3, 8, 3, padding=1, dtype=torch.float32)
    _check_twins(ours, twin, torch.randn(4, 3, 12, 12), "Conv2d float32")


def test_state_dict_round_trips_with_torch():
    twin = torch.nn.Conv2d(3, 4, (3, 2), padding="same", padding_mode="reflect")
    ours = inn.Conv2d(3, 4, (3, 2), padding="same", padding_mode="reflect")
    ours.load_state_dict(twin.state_dict())
    assert set(ours.state_dict()) == {"weight", "bias"}
    x = torch.randn(1, 3, 6, 7)
    assert_close(ours(x), twin(x), what="Conv2d loaded from torch's state_dict")
    assert isinstance(ours, torch.nn.Conv2d)


# --- the operators: gradcheck, gradgradcheck, opcheck ------------------------------------------

_D = torch.float64


def _t(*shape):
    return torch.randn(*shape, dtype=_D, requires_grad=True)


def _op_cases():
    torch.manual_seed(0)
    x = _t(2, 4, 6, 5)
    return {
        "conv2d": (torch.ops.im2col.conv2d, (x, _t(6, 2, 3, 2), _t(6), [2, 1], [1, 0], [1, 2], 2)),
        "conv2d-nobias": (torch.ops.im2col.conv2d, (x, _t(3, 4, 1, 1), None, [1, 1], [0, 0], [1, 1], 1)),
        "conv2d_backward": (
            torch.ops.im2col.conv2d_backward,
            (_t(2, 6, 3, 4), x, _t(6, 2, 3, 2), [2, 1], [1, 0], [1, 1], 2, [True, True, True]),
        ),
        "conv2d_backward-input-only": (
            torch.ops.im2col.conv2d_backward,
            (_t(2, 6, 2, 4), x, _t(6, 2, 3, 2), [2, 1], [0, 0], [1, 1], 2, [True, False, False]),
        ),
        "conv3d": (
            torch.ops.im2col.conv3d,
            (_t(2, 4, 4, 3, 5), _t(6, 2, 2, 3, 2), _t(6), [2, 1, 1], [1, 0, 1], [1, 1, 2], 2),
        ),
        "conv3d_backward": (
            torch.ops.im2col.conv3d_backward,
            (
                _t(1, 2, 2, 3, 2),
                _t(1, 2, 3, 4, 3),
                _t(2, 1, 2, 2, 2),
                [1, 1, 1],
                [0, 0, 0],
                [1, 1, 1],
                2,
                [True, True, True],
            ),
        ),
        "conv_transpose2d": (
            torch.ops.im2col.conv_transpose2d,
            (x, _t(4, 3, 3, 2), _t(6), [2, 2], [1, 1], [1, 1], 2, [1, 1]),
        ),
        "conv_transpose3d": (
            torch.ops.im2col.conv_transpose3d,
            (_t(1, 4, 2, 3, 2), _t(4, 1, 2, 3, 2), _t(2), [2, 1, 2], [1, 0, 0], [1, 0, 0], 2, [1, 2, 1]),
        ),
        "unfold": (torch.ops.im2col.unfold, (x, [2, 3], [1, 1], [1, 1], [1, 2])),
        "fold": (torch.ops.im2col.fold, (_t(2, 24, 16), [5, 6], [2, 3], [1, 1], [0, 0], [1, 1])),
        "unfold-1d": (torch.ops.im2col.unfold, (_t(2, 3, 7), [3], [2], [1], [2])),
        "fold-3d": (torch.ops.im2col.fold, (_t(1, 16, 12), [3, 3, 4], [2, 2, 2], [1, 1, 1], [0, 0, 0], [1, 1, 1])),
    }


CASES = list(_op_cases())


@pytest.fixture
def one_thread():
    """gradcheck makes thousands of calls on tiny tensors: one kernel thread is faster for them and
    immune to a busy second core (a parallel region waits for its slowest thread)."""
    im2col.set_num_threads(1)
    yield
    im2col.set_num_threads(None)


@pytest.mark.parametrize("case", CASES)
def test_gradcheck_and_gradgradcheck(case, one_thread):
    op, args = _op_cases()[case]
    inputs = [a for a in args if isinstance(a, torch.Tensor)]

    def f(*tensors):
        it = iter(tensors)
        return op(*(next(it) if isinstance(a, torch.Tensor) else a for a in args))

    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("case", CASES)
def test_opcheck(case, one_thread):
    op, args = _op_cases()[case]
    torch.library.opcheck(op, args)


def test_double_backward_matches_torch():
    """A gradient penalty (gradient of a gradient norm) through Conv2d equals torch's."""
    torch.manual_seed(1)
    ours, twin = _twins(inn.Conv2d, torch.nn.Conv2d, 2, 3, 3, stride=2, padding=1)
    x = torch.randn(2, 2, 7, 7, dtype=_D)
    grads = []
    for m in (ours, twin):
        xi = x.clone().requires_grad_(True)
        (gx,) = torch.autograd.grad(m(xi).pow(2).sum(), xi, create_graph=True)
        gx.pow(2).sum().backward()
        grads.append(m.weight.grad)
    assert_close(grads[0], grads[1], what="gradient-penalty weight grad")


# --- torch.compile ----------------------------------------------------------------------------


@pytest.mark.slow  # inductor's first compile in a process: about 15 s
def test_compile_fullgraph_trains_like_eager():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        inn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), inn.Conv2d(4, 4, 3, stride=2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 10),
    )  # fmt: skip
    x = torch.randn(8, 1, 8, 8)
    compiled = torch.compile(net, fullgraph=True)
    y = compiled(x)
    y.square().sum().backward()
    got = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    expected = net(x)
    expected.square().sum().backward()
    assert_close(y, expected, what="compiled forward")
    for g, p in zip(got, net.parameters()):
        assert_close(g, p.grad, what="compiled backward")


def check_compiled_like_eager(f, x, w):
    """``torch.compile(f, fullgraph=True)`` gives eager's output and input gradient.

    aot_eager traces through dynamo and AOT autograd (what fullgraph needs) without inductor's codegen."""
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    got = compiled(x, w)
    got.sum().backward()
    gx = x.grad.clone()
    x.grad = None
    expected = f(x, w)
    expected.sum().backward()
    assert_close(got, expected, what="compiled forward")
    assert_close(gx, x.grad, what="compiled input grad")


def test_compile_fullgraph_transpose_unfold_fold():
    def f(x, w):
        y = inn.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
        return inn.fold(inn.unfold(y, 3, padding=1), y.shape[-2:], 3, padding=1)

    check_compiled_like_eager(
        f, torch.randn(2, 3, 5, 5, requires_grad=True), torch.randn(3, 2, 3, 3, requires_grad=True)
    )


# --- errors and packaging ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: inn.conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), padding="same", stride=2),
         ValueError, r"conv2d\(\): padding='same' needs stride=1, got stride=\(2, 2\)"),
        (lambda: inn.conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), padding="full"),
         ValueError, r"conv2d\(\): argument 'padding' must be an int, a tuple of ints, 'valid' or 'same', got 'full'"),
        (lambda: inn.conv2d(torch.randn(5, 5), torch.randn(1, 1, 3, 3)),
         ValueError, r"conv2d\(\): argument 'input' must be a 3-D "
                     r"\(unbatched\) or 4-D \(N, C, H, W\) tensor, got a 2-D"),
        (lambda: inn.conv2d(np.zeros((1, 1, 5, 5)), torch.randn(1, 1, 3, 3)),
         TypeError, r"conv2d\(\): argument 'input' must be a torch.Tensor, got ndarray"),
        (lambda: inn.conv2d(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 3, 3), stride=(1, 1, 1)),
         TypeError, r"conv2d\(\): argument 'stride' must be an int or a tuple of 2 ints, got \(1, 1, 1\)"),
        (lambda: inn.conv1d(torch.randn(1, 2, 5), torch.randn(1, 2, 3, 3)),
         ValueError, r"conv1d\(\): argument 'weight' must be 3-D \(K, C/groups, k\), got shape \(1, 2, 3, 3\)"),
        (lambda: inn.fold(torch.randn(9), (4, 4), 3),
         ValueError, r"fold\(\): argument 'input' must be a 2-D "
                     r"\(unbatched\) or 3-D \(N, C·taps, L\) tensor, got a 1-D"),
        # the library's own checks come through the operator unchanged
        (lambda: inn.conv2d(torch.randn(1, 1, 2, 5), torch.randn(1, 1, 3, 3)),
         ValueError, r"conv2d\(\): output height = \(2 \+ 0 \+ 0 − 1·\(3 − 1\) − 1\) // 1 \+ 1 = 0"),
    ],
)  # fmt: skip
def test_bad_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_import_im2col_does_not_import_torch():
    code = "import sys, im2col; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- the training example ---------------------------------------------------------------------


def _train_digits():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("train_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype, steps", [("float32", 15), ("float64", 30)])
def test_training_example_curves_agree(dtype, steps, capsys):
    # the drawn digits, so the test does not depend on scikit-learn being installed
    ours, theirs = _train_digits().main(["--steps", str(steps), "--synthetic", "--dtype", dtype])
    assert len(ours) == len(theirs) == steps
    assert_close(np.array(ours), np.array(theirs), op="curve", dtype=dtype, what="loss curves")
    assert ours[-1] < ours[0]  # it learns
    assert "max |loss difference|" in capsys.readouterr().out
