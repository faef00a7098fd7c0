"""im2col: a convolution is one matrix multiplication.

``im2col`` unrolls every receptive field of an image batch into a column, a single GEMM with the
flattened kernels computes the convolution, and ``col2im`` folds gradients back. The operations
match ``torch.nn.functional.unfold``, ``fold``, ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d`` and accept NumPy
arrays or CPU torch tensors.

>>> import numpy as np, im2col
>>> x = np.ones((64, 1, 28, 28), np.float32)
>>> im2col.im2col(x, 3).shape
(64, 9, 676)

The same operations as plain NumPy loops, the version to read and the tests' oracle, are in
:mod:`im2col.reference`.
"""

from . import data, kernels, plots, reference
from ._conv1d import conv1d, conv1d_backward, conv_transpose1d
from ._conv2d import conv2d, conv2d_backward, conv_transpose2d
from ._functional import col2im, im2col, output_size
from ._nd import conv3d, conv3d_backward, conv_transpose3d
from ._threads import get_num_threads, set_num_threads
from .explain import Explanation, explain  # after the submodules: the name is the function

__version__ = "0.1.0"

__all__ = [
    "im2col",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv1d",
    "conv1d_backward",
    "conv3d",
    "conv3d_backward",
    "output_size",
    "get_num_threads",
    "set_num_threads",
    "reference",
    "explain",
    "Explanation",
    "kernels",
    "data",
    "plots",
]
