"""im2col.nn's operators against torch: under gradcheck, gradgradcheck and opcheck, a double
backward, torch.compile(fullgraph=True), their errors, and the training example's loss curves.
The modules against their torch.nn twins are in tests/test_modules.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import assert_close
from test_modules import _twins
from torch.autograd import gradcheck, gradgradcheck

import im2col
import im2col.nn as inn

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


@pytest.mark.parametrize("rank", [2, 3])
def test_compile_fullgraph_transpose_unfold_fold(rank):
    k = 3 if rank == 2 else (3,) * rank  # an int kernel_size in 2-D, as before

    conv_transpose = getattr(inn, f"conv_transpose{rank}d")  # outside f: dynamo does not trace the f-string

    def f(x, w):
        y = conv_transpose(x, w, stride=2, padding=1, output_padding=1)
        return inn.fold(inn.unfold(y, k, padding=1), y.shape[-rank:], k, padding=1)

    if rank == 2:
        x, w = torch.randn(2, 3, 5, 5, requires_grad=True), torch.randn(3, 2, 3, 3, requires_grad=True)
    else:
        x, w = torch.randn(1, 2, 3, 3, 3, requires_grad=True), torch.randn(2, 2, 3, 3, 3, requires_grad=True)
    check_compiled_like_eager(f, x, w)


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
