"""Named 3×3 kernels: the blog post's four edge detectors and a few classics.

The blog post (following fastai's book, chapter 13) builds a top-edge kernel, a left-edge kernel
and two diagonal ones, and stacks them into a ``(4, 1, 3, 3)`` weight — four output channels, one input channel —
to filter a batch of digits. They are here as float32 NumPy arrays, together with Sobel, blur,
sharpen and identity for comparison:

==============  ====================================================================
``top_edge``    dark above, bright below: the top edge of a stroke
``left_edge``   dark on the left, bright in the middle column (the blog post's listing is cut after
                its first row; this is the full kernel from fastai's book)
``diag1_edge``  a diagonal edge running from bottom-left to top-right
``diag2_edge``  a diagonal edge running from top-left to bottom-right
``sobel_x``     Sobel operator, horizontal gradient (responds to vertical edges)
``sobel_y``     Sobel operator, vertical gradient (responds to horizontal edges)
``blur``        Gaussian-like blur (weights 1-2-1 in each direction), sums to 1
``box_blur``    the mean of the 3×3 neighbourhood
``sharpen``     the pixel, plus its difference from its four neighbours
``identity``    a convolution with it (and padding 1) returns the input unchanged
==============  ====================================================================

Each name gives a fresh, writable array every time it is read, so one caller cannot change a kernel
for everyone, and ``torch.from_numpy(kernels.sobel_x)`` takes it without a warning (torch warns on
read-only arrays, which these were up to version 0.1.0). Writing into the array you got changes
only that array. :func:`edge_kernels` and :func:`all_kernels` return fresh arrays too.

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

# The filters are served by the module __getattr__ below (a fresh writable copy per access), so
# ruff cannot see them defined: F822 is a false positive here.
__all__ = [  # noqa: F822
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


# The originals, read-only; the module's names hand out copies of them (``__getattr__`` below).
_KERNELS: dict[str, np.ndarray] = {
    "top_edge": _frozen([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
    "left_edge": _frozen([[-1, 1, 0], [-1, 1, 0], [-1, 1, 0]]),
    "diag1_edge": _frozen([[0, -1, 1], [-1, 1, 0], [1, 0, 0]]),
    "diag2_edge": _frozen([[1, -1, 0], [0, 1, -1], [0, 0, 1]]),
    "sobel_x": _frozen([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "sobel_y": _frozen([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "blur": _frozen([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "box_blur": _frozen([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9),
    "sharpen": _frozen([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "identity": _frozen([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
}


def __getattr__(name: str) -> np.ndarray:
    """``kernels.<name>``: a fresh writable copy of that kernel (PEP 562 module attribute)."""
    try:
        return _KERNELS[name].copy()
    except KeyError:
        raise AttributeError(f"module 'im2col.kernels' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *_KERNELS])


#: The order of the blog post's ``torch.stack([left_edge, top_edge, diag1_edge, diag2_edge])``.
EDGE_NAMES: tuple[str, ...] = ("left_edge", "top_edge", "diag1_edge", "diag2_edge")


def edge_kernels() -> np.ndarray:
    """The blog post's four edge kernels stacked as a convolution weight.

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
    return np.stack([_KERNELS[name] for name in EDGE_NAMES])[:, None]


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
    return {name: _KERNELS[name].copy() for name in names}
