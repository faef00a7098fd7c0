"""Named 3×3 kernels: the blog post's four edge detectors and a few classics.

The seed (fastai's book, chapter 13) builds a top-edge kernel, a left-edge kernel and two diagonal
ones, and stacks them into a ``(4, 1, 3, 3)`` weight — four output channels, one input channel —
to filter a batch of digits. They are here as float32 NumPy arrays, together with Sobel, blur,
sharpen and identity for comparison.

The module-level arrays are read-only so that one caller cannot change them for everyone; copy
them (``np.array(kernels.top_edge)``) to edit, or call :func:`edge_kernels` / :func:`all_kernels`,
which return fresh arrays.

Examples
--------
>>> from im2col import kernels
>>> kernels.top_edge
array([[-1., -1., -1.],
       [ 0.,  0.,  0.],
       [ 1.,  1.,  1.]], dtype=float32)
>>> kernels.edge_kernels().shape
(4, 1, 3, 3)
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "top_edge",
    "left_edge",
    "diag1_edge",
    "diag2_edge",
    "sobel_x",
    "sobel_y",
    "blur",
    "box_blur",
    "sharpen",
    "identity",
    "EDGE_NAMES",
    "edge_kernels",
    "all_kernels",
]


def _frozen(rows: list[list[float]], scale: float = 1.0) -> np.ndarray:
    a = np.array(rows, dtype=np.float32) * np.float32(scale)
    a.setflags(write=False)
    return a


#: Dark above, bright below: responds to the top edge of a stroke.
top_edge = _frozen([[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
#: Dark on the left, bright in the middle column: the left edge of a stroke. The seed's listing is
#: cut after its first row; this is the full kernel from fastai's book.
left_edge = _frozen([[-1, 1, 0], [-1, 1, 0], [-1, 1, 0]])
#: A diagonal edge running from bottom-left to top-right.
diag1_edge = _frozen([[0, -1, 1], [-1, 1, 0], [1, 0, 0]])
#: A diagonal edge running from top-left to bottom-right.
diag2_edge = _frozen([[1, -1, 0], [0, 1, -1], [0, 0, 1]])

#: Sobel operator, horizontal gradient (responds to vertical edges).
sobel_x = _frozen([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
#: Sobel operator, vertical gradient (responds to horizontal edges).
sobel_y = _frozen([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
#: Gaussian-like blur (weights 1-2-1 in each direction), sums to 1.
blur = _frozen([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16)
#: Box blur: the mean of the 3×3 neighbourhood.
box_blur = _frozen([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9)
#: Sharpen: the pixel, plus its difference from its four neighbours.
sharpen = _frozen([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
#: Identity: a convolution with it (and padding 1) returns the input unchanged.
identity = _frozen([[0, 0, 0], [0, 1, 0], [0, 0, 0]])

#: The order of the seed's ``torch.stack([left_edge, top_edge, diag1_edge, diag2_edge])``.
EDGE_NAMES: tuple[str, ...] = ("left_edge", "top_edge", "diag1_edge", "diag2_edge")


def edge_kernels() -> np.ndarray:
    """The seed's four edge kernels stacked as a convolution weight.

    Returns
    -------
    ndarray, shape (4, 1, 3, 3), float32
        A new (writable) array: ``[left_edge, top_edge, diag1_edge, diag2_edge]``, each with one
        input channel — PyTorch's ``(out_channels, in_channels, kh, kw)`` weight layout.

    Examples
    --------
    >>> from im2col import kernels
    >>> w = kernels.edge_kernels()
    >>> w.shape, w.dtype
    ((4, 1, 3, 3), dtype('float32'))
    >>> w[1, 0]                    # channel 1 is the top edge
    array([[-1., -1., -1.],
           [ 0.,  0.,  0.],
           [ 1.,  1.,  1.]], dtype=float32)
    >>> w.reshape(4, 9)[0]         # flattened row by row: one row of the GEMM's weight matrix
    array([-1.,  1.,  0., -1.,  1.,  0., -1.,  1.,  0.], dtype=float32)
    """
    return np.stack([globals()[name] for name in EDGE_NAMES])[:, None].copy()


def all_kernels() -> dict[str, np.ndarray]:
    """Every named kernel in this module, as fresh writable (3, 3) float32 arrays.

    Examples
    --------
    >>> from im2col import kernels
    >>> list(kernels.all_kernels())  # doctest: +NORMALIZE_WHITESPACE
    ['left_edge', 'top_edge', 'diag1_edge', 'diag2_edge', 'sobel_x', 'sobel_y', 'blur',
     'box_blur', 'sharpen', 'identity']
    >>> float(kernels.all_kernels()["blur"].sum())
    1.0
    """
    names = EDGE_NAMES + ("sobel_x", "sobel_y", "blur", "box_blur", "sharpen", "identity")
    return {name: np.array(globals()[name]) for name in names}
