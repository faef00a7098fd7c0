"""The blog post's example: 64 digits of 28×28, four 3×3 edge kernels, 64×4×26×26 out."""

import numpy as np
import torch
import torch.nn.functional as F
from conftest import assert_close

import im2col

# The blog post's kernels, in the blog post's order (left, top, diag1, diag2).
TOP = [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]
LEFT = [[-1, 1, 0], [-1, 1, 0], [-1, 1, 0]]
DIAG1 = [[0, -1, 1], [-1, 1, 0], [1, 0, 0]]
DIAG2 = [[1, -1, 0], [0, 1, -1], [0, 0, 1]]


def test_seed_example_shapes_and_values():
    edge_kernels = np.array([LEFT, TOP, DIAG1, DIAG2], np.float32)[:, None]  # (4, 1, 3, 3)
    xb = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    assert im2col.output_size(28, 3) == (26, 26)  # (28 + 2·0 − 3) // 1 + 1
    cols = im2col.im2col(xb, 3)
    assert cols.shape == (64, 9, 676)
    y = im2col.conv2d(xb, edge_kernels)
    assert y.shape == (64, 4, 26, 26)
    assert_close(y, F.conv2d(torch.from_numpy(xb), torch.from_numpy(edge_kernels)))
    # the same with tensors in and out, as in the blog post
    ty = im2col.conv2d(torch.from_numpy(xb), torch.from_numpy(edge_kernels))
    assert isinstance(ty, torch.Tensor) and tuple(ty.shape) == (64, 4, 26, 26)


def test_top_edge_fires_on_a_horizontal_edge_by_hand():
    """A 5×5 image dark on top, bright below: the top-edge kernel gives 3 where the window straddles it."""
    img = np.zeros((1, 1, 5, 5), np.float32)
    img[0, 0, 2:] = 1.0
    y = im2col.conv2d(img, np.array(TOP, np.float32)[None, None])
    # window rows (0,1,2) -> 1·3 − 0 = 3; rows (1,2,3) -> 3 − 0 = 3; rows (2,3,4) -> 3 − 3 = 0
    np.testing.assert_array_equal(y[0, 0], [[3, 3, 3], [3, 3, 3], [0, 0, 0]])
