"""Every kind of bad input raises ValueError or TypeError naming the argument and what was given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import im2col

x4 = np.zeros((2, 3, 8, 8), np.float32)
w4 = np.zeros((4, 3, 3, 3), np.float32)
_shared = np.zeros(512, np.float32)  # an input and an out= that are the same memory


@pytest.mark.parametrize(
    "call, exc, match",
    [
        # wrong number of dimensions
        (lambda: im2col.im2col(np.zeros((28, 28)), 3), ValueError,
         r"im2col\(\): argument 'input' must be a 3-D \(C, H, W\) or "
         r"4-D \(N, C, H, W\) array, got a 2-D array of shape \(28, 28\)"),
        (lambda: im2col.conv2d(np.zeros((1, 1, 1, 8, 8), np.float32), w4), ValueError,
         r"argument 'input' must be a 3-D"),
        (lambda: im2col.conv2d(x4, np.zeros((4, 3, 3), np.float32)), ValueError,
         r"argument 'weight' must be a 4-D array, got 3-D of shape \(4, 3, 3\)"),
        (lambda: im2col.col2im(np.zeros((9,), np.float32), 4, 3), ValueError,
         r"argument 'input' must be a 2-D \(C·kh·kw, L\) or 3-D \(N, C·kh·kw, L\) array"),
        (lambda: im2col.im2col(np.zeros((1, 0, 5, 5)), 3), ValueError, r"non-zero sizes except possibly the batch"),
        # kernel / stride / dilation not positive, negative padding
        (lambda: im2col.im2col(x4, 0), ValueError, r"argument 'kernel_size' must be positive, got kernel_size=0"),
        (lambda: im2col.im2col(x4, 3, stride=(1, 0)), ValueError,
         r"argument 'stride' must be positive, got stride=\(1, 0\)"),
        (lambda: im2col.conv2d(x4, w4, dilation=-1), ValueError, r"argument 'dilation' must be positive"),
        (lambda: im2col.im2col(x4, 3, padding=-1), ValueError,
         r"argument 'padding' must be non-negative, got padding=-1"),
        (lambda: im2col.im2col(x4, 3, padding=((0, -1), (0, 0))), ValueError,
         r"argument 'padding \(height: before, after\)' must be non-negative"),
        # unknown padding string, 'same' with a stride
        (lambda: im2col.conv2d(x4, w4, padding="full"), ValueError,
         r"argument 'padding' must be an int, a pair, 'valid' or 'same', got 'full'"),
        (lambda: im2col.conv2d(x4, w4, padding="same", stride=2), ValueError, r"padding='same' needs stride=1"),
        (lambda: im2col.conv_transpose2d(x4, w4.transpose(1, 0, 2, 3), padding="same"), ValueError,
         r"must be an int or a pair of ints, got 'same'"),
        # tuples of the wrong length, non-integers
        (lambda: im2col.im2col(x4, (3, 3, 3)), ValueError,
         r"argument 'kernel_size' must be an int or a pair of ints, got \(3, 3, 3\) with 3 elements"),
        (lambda: im2col.conv2d(x4, w4, stride=(1,)), ValueError, r"argument 'stride' must be an int or a pair"),
        (lambda: im2col.im2col(x4, 2.5), TypeError,
         r"argument 'kernel_size' must be an int or a pair of ints, got 2.5"),
        (lambda: im2col.im2col(x4, (3, 1.0)), TypeError,
         r"argument 'kernel_size' must be an int, got 1.0 of type float"),
        (lambda: im2col.im2col(x4, True), TypeError,
         r"argument 'kernel_size' must be an int or a pair of ints, got True"),
        (lambda: im2col.conv2d(x4, w4, groups=1.0), TypeError, r"argument 'groups' must be an int"),
        (lambda: im2col.col2im(np.zeros((1, 9, 4)), "4", 3), TypeError,
         r"argument 'output_size' must be an int or a pair"),
        # channels and groups
        (lambda: im2col.conv2d(x4, np.zeros((4, 2, 3, 3), np.float32)), ValueError,
         r"input has 3 channels but weight of shape \(4, 2, 3, 3\) "
         r"with groups=1 expects weight.shape\[1\]·groups = 2·1 = 2"),
        (lambda: im2col.conv2d(np.zeros((1, 4, 8, 8), np.float32), np.zeros((3, 2, 3, 3), np.float32), groups=2),
         ValueError, r"weight.shape\[0\] = 3 output channels must be divisible by groups=2"),
        (lambda: im2col.conv2d(x4, w4, groups=0), ValueError, r"argument 'groups' must be positive, got groups=0"),
        (lambda: im2col.conv_transpose2d(x4, np.zeros((3, 2, 3, 3), np.float32), groups=2), ValueError,
         r"input channels 3 must be divisible by groups=2"),
        (lambda: im2col.conv_transpose2d(x4, np.zeros((2, 2, 3, 3), np.float32)), ValueError,
         r"input has 3 channels but weight of shape \(2, 2, 3, 3\) expects weight.shape\[0\] = 2"),
        # bias
        (lambda: im2col.conv2d(x4, w4, np.zeros(3, np.float32)), ValueError,
         r"argument 'bias' must have shape \(4,\), one per output channel \(weight.shape\[0\]\), got shape \(3,\)"),
        (lambda: im2col.conv_transpose2d(x4, np.zeros((3, 2, 3, 3), np.float32), np.zeros(3, np.float32)),
         ValueError, r"argument 'bias' must have shape \(2,\)"),
        # output size below 1: the formula with the numbers
        (lambda: im2col.im2col(np.zeros((1, 1, 2, 5)), 3), ValueError,
         r"output height = \(2 \+ 0 \+ 0 − 1·\(3 − 1\) − 1\) // 1 \+ 1 = 0, but it must be at least 1: "
         r"the kernel spans 3 pixels .* padded input only 2\. Given "
         r"input of spatial size \(2, 5\), kernel_size=\(3, 3\)"),
        (lambda: im2col.conv2d(x4, w4, dilation=5), ValueError,
         r"output height = \(8 \+ 0 \+ 0 − 5·\(3 − 1\) − 1\) // 1 \+ 1 = -2"),
        (lambda: im2col.output_size(2, 5), ValueError,
         r"output_size\(\): output height = \(2 \+ 0 \+ 0 − 1·\(5 − 1\) − 1\)"),
        # col2im whose rows or columns do not fit
        (lambda: im2col.col2im(np.zeros((1, 10, 4)), (4, 4), 3), ValueError,
         r"dimension -2 of 'input' \(C·kh·kw\) to be divisible by kh·kw = 3·3 = 9, got 10"),
        (lambda: im2col.col2im(np.zeros((1, 9, 5)), (4, 4), 3), ValueError,
         r"dimension -1 of 'input' \(L\) to match the number of "
         r"sliding windows, 2·2 = 4, for output_size=\(4, 4\).*got L=5"),
        # output_padding too large; transposed output below 1
        (lambda: im2col.conv_transpose2d(x4, w4.transpose(1, 0, 2, 3), stride=2, output_padding=2), ValueError,
         r"output_padding must be smaller than either stride or "
         r"dilation, got output_padding=\(2, 2\), stride=\(2, 2\)"),
        (lambda: im2col.conv_transpose2d(np.zeros((1, 3, 1, 1), np.float32), w4.transpose(1, 0, 2, 3), padding=2),
         ValueError,
         r"output height = \(1 − 1\)·1 − 2·2 \+ 1·\(3 − 1\) \+ 0 \+ 1 = -1, but it must be at least 1"),
        # grad_output of the wrong shape
        (lambda: im2col.conv2d_backward(np.zeros((2, 4, 5, 5), np.float32), x4, w4), ValueError,
         r"argument 'grad_output' must have shape \(2, 4, 6, 6\), "
         r"the shape of conv2d's output .* got shape \(2, 4, 5, 5\)"),
        (lambda: im2col.conv2d_backward(np.zeros((2, 4, 6, 6)), x4, w4), TypeError,
         r"arguments 'input' and 'grad_output' must have the same "
         r"dtype, got input.dtype=float32 and grad_output.dtype=float64"),
        # dtypes
        (lambda: im2col.conv2d(x4.astype(np.int32), w4), TypeError,
         r"argument 'input' must have dtype float32 or float64, got int32"),
        (lambda: im2col.conv2d(x4, w4.astype(np.float64)), TypeError,
         r"arguments 'input' and 'weight' must have the same dtype, got input.dtype=float32 and weight.dtype=float64"),
        (lambda: im2col.conv2d(x4, w4, np.zeros(4)), TypeError, r"'input' and 'bias' must have the same dtype"),
        (lambda: im2col.col2im(np.zeros((1, 9, 4), np.float16), 4, 3), TypeError,
         r"must have dtype float32 or float64, got float16"),
        (lambda: im2col.im2col(np.zeros((1, 1, 4, 4), object), 3), TypeError,
         r"argument 'input' has dtype object; supported are"),
        (lambda: im2col.im2col(np.zeros((1, 1, 4, 4), "U1"), 3), TypeError, r"has dtype <U1"),
        (lambda: im2col.im2col([[[1.0]]], 1), TypeError,
         r"argument 'input' must be a numpy.ndarray or a torch.Tensor, got list; wrap lists with numpy.asarray"),
        (lambda: im2col.im2col(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16), 3), TypeError,
         r"argument 'input' has dtype torch.bfloat16, which NumPy cannot hold"),
        (lambda: im2col.im2col(torch.zeros(1, 1, 4, 4).to_sparse(), 3), TypeError,
         r"must be a dense \(strided\) tensor"),
        # out= that cannot take the result
        (lambda: im2col.im2col(x4, 3, out=np.empty((2, 27, 35), np.float32)), ValueError,
         r"argument 'out' must have shape \(2, 27, 36\) and dtype float32, got shape \(2, 27, 35\)"),
        (lambda: im2col.im2col(x4, 3, out=np.empty((2, 27, 36))), ValueError,
         r"and dtype float32, got .* dtype float64"),
        (lambda: im2col.im2col(x4, 3, out=np.empty((2, 36, 27), np.float32).transpose(0, 2, 1)), ValueError,
         r"argument 'out' must be C-contiguous and writable"),
        (lambda: im2col.im2col(x4, 3, out=[]), TypeError,
         r"argument 'out' must be a numpy.ndarray or a torch.Tensor, got list"),
        (lambda: im2col.im2col(x4, 3, out=torch.empty(2, 27, 36, requires_grad=True)), ValueError,
         r"argument 'out' must be a CPU tensor that does not require grad"),
        (lambda: im2col.im2col(_shared.reshape(2, 1, 16, 16), 1, out=_shared.reshape(2, 1, 256)),
         ValueError, r"argument 'out' must not overlap the input"),
        # sizes that cannot be allocated: refused before allocating
        (lambda: im2col.im2col(np.zeros((1, 1, 2**14, 2**14), np.float32), 31), ValueError,  # calloc: not touched
         r"the column matrix of shape \(1, 961, \d+\) and dtype "
         r"float32 would need \d+\.\d GiB, more than this machine's"),
        (lambda: im2col.im2col(np.zeros((1, 1, 8, 8)), 3, padding=2**62), ValueError,
         r"too large for 64-bit index arithmetic along height: .* = \d+ ≥ 2\*\*62"),
        (lambda: im2col.im2col(np.zeros((1, 1, 8, 8)), 3, padding=2**40), ValueError,
         r"the column matrix of shape \(1, 9, \d+\) and dtype float64 would need"),
        (lambda: im2col.conv2d(np.zeros((1, 1, 1024, 1024), np.float32), np.zeros((2**20, 1, 1, 1), np.float32)),
         ValueError, r"conv2d\(\): the output of shape \(1, 1048576, "
                     r"1024, 1024\) and dtype float32 would need 4096.0 GiB"),
        (lambda: im2col.conv2d(np.broadcast_to(np.float32(0), (2**20, 1, 2**10, 2**10)), w4[:, :1]), ValueError,
         r"the contiguous copy of 'input' of shape \(1048576, 1, 1024, 1024\) and dtype float32 would need"),
    ],
)  # fmt: skip
def test_bad_input_raises(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match=r"set_num_threads\(\): argument 'n' must be a positive int or None, got 0"):
        im2col.set_num_threads(0)
    with pytest.raises(TypeError, match=r"must be a positive int or None, got 2.0"):
        im2col.set_num_threads(2.0)


def test_errors_do_not_depend_on_assert():
    """Validation uses explicit raises, so it still works under python -O."""
    import subprocess
    import sys

    code = (
        "import numpy as np, im2col\ntry:\n    im2col.im2col(np.zeros((2, 2)), 3)\nexcept ValueError:\n    print('ok')"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_cached_geometry_does_not_let_equal_non_ints_through():
    """conv2d caches checked arguments; 1.0 and True compare equal to 1 but must still be refused."""
    x = np.zeros((1, 1, 5, 5), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    im2col.conv2d(x, w, stride=1, padding=(1, 1))
    for bad in (1.0, True, np.float64(1)):
        with pytest.raises(TypeError, match=r"argument 'stride' must be an int or a pair of ints"):
            im2col.conv2d(x, w, stride=bad, padding=(1, 1))
    with pytest.raises(TypeError, match=r"argument 'padding' must be an int, got 1.0"):
        im2col.conv2d(x, w, stride=1, padding=(1, 1.0))
