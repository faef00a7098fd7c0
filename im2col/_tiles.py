"""How the convolutions cut their work: the tile and chunk sizes, and the rules that pick the tiles.

Part of the engine layer (see tests/test_imports.py). The BLAS routes of conv2d, its backward,
conv_transpose2d and the 3-D convolutions (im2col/_conv2d_routes.py, _conv2d_nhwc.py,
_conv3d_routes.py, _nd.py) and the call plans (im2col/_plans.py) all ask these questions, so the
answers are written once: how many images a chunk of the matmul fallback holds, how many output
rows or pixels one cache-sized tile covers, and whether a convolution takes the row tiles or the
colsᵀ tiles. Tests shrink the sizes by patching this module's constants
(``monkeypatch.setattr(_tiles, "TILE_BYTES", 64)``), so every reader looks them up here at call
time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._geometry import Geometry

#: conv2d, its backward and conv_transpose2d work through the batch in chunks whose column matrix
#: fits in this many bytes, so the full N·C·kh·kw·L matrix of a large batch is never held at once.
#: A chunk is at least one image.
WORKSPACE_BYTES = 64 * 2**20

#: The tiled forward (see csrc/_kernels.pyx) unrolls about this many bytes of columns per thread
#: at a time, and at least this many output positions so that each GEMM call stays efficient.
#: Measured on 8×64×56×56 with 64 3×3 kernels: 128 KiB 10.2 ms, 512 KiB 9.0 ms, 2 MiB 9.2 ms.
#: On 8×256×14×14 with 256 3×3 kernels (2.3 MiB of weights, packed again by every GEMM call) 192
#: columns take whole 14-row images instead of tiles of 10 + 4 rows: forward 1.15-1.18× torch
#: instead of 1.23-1.27× with OpenBLAS's AVX-512 kernels, the backward 3-7% faster too
#: (benchmarks/gemm_breakdown.py).
TILE_BYTES = 512 * 2**10
TILE_MIN_COLUMNS = 192
#: The lower bound for the channels-last tiles (rows of colsᵀ, output pixels).
TILE_MIN_PIXELS = 128
#: Output-row tiles larger than this (one row of a long 1-D signal can be hundreds of MB of columns)
#: go to the colsᵀ tiles instead, which split rows (see :func:`rows_too_coarse`).
ROW_TILE_MAX_BYTES = 2 * 2**20


def images_per_chunk(rows: int, L: int, N: int, itemsize: int) -> int:
    """Images per chunk of ``N`` so that one chunk's column matrices (``rows × L`` each) fit in
    WORKSPACE_BYTES; at least one."""
    return max(1, min(N, WORKSPACE_BYTES // max(rows * L * itemsize, 1)))


def chunk(g: Geometry, itemsize: int) -> int:
    """Images per chunk of a 2-D convolution (:func:`images_per_chunk`)."""
    return images_per_chunk(g.rows, g.L, g.N, itemsize)


def tile_rows(g: Geometry, itemsize: int) -> int:
    """Output rows per tile of the tiled forward: about TILE_BYTES of columns, ≥ TILE_MIN_COLUMNS wide."""
    by_bytes = TILE_BYTES // max(g.rows * g.OW * itemsize, 1)
    by_width = -(-TILE_MIN_COLUMNS // g.OW)
    return max(1, min(g.OH, max(by_bytes, by_width)))


def rows_too_coarse(g: Geometry, rows: int, itemsize: int, n_threads: int, groups: int) -> bool:
    """Whether tiles of whole output rows serve this convolution badly and the colsᵀ tiles, which
    split rows, should take it.

    A row is the smallest plane tile, so a long 1-D signal (one row) unrolls ``C·k·L`` values per tile
    (conv1d of 1×64×200000 with k=5: 256 MB, where the colsᵀ tiles use 512 KiB) and, with one image,
    keeps all but one thread idle. The colsᵀ tiles pay only with several channels per group.
    """
    if not groups_of_channels(g, groups):
        return False
    if g.rows * rows * g.OW * itemsize > ROW_TILE_MAX_BYTES:
        return True
    tiles = g.N * -(-g.OH // rows)
    # idle threads: only worth the detour if the colsᵀ tiles are more (not so for 1×512×7×7)
    return tiles < n_threads and g.N * -(-g.L // tile_pixels(g, itemsize, g.L, 1)) > tiles


def takes_cols_t(g: Geometry, x: np.ndarray, mode: int, rows: int, n_threads: int, groups: int) -> bool:
    """Whether the forward runs on the colsᵀ tiles rather than the row tiles: for channels-last
    ``x`` (with several channels per group), or rows too wide to be a tile (not for a 1×1
    convolution read in place, ``mode`` ≠ 0). The plans (im2col/_plans.py) ask the same question."""
    if groups_of_channels(g, groups) and channels_contiguous(x):
        return True
    return not mode and rows_too_coarse(g, rows, x.dtype.itemsize, n_threads, groups)


def grad_output_buffer(gy: np.ndarray) -> tuple[np.ndarray, bool]:
    """(C-contiguous buffer, channels-last?) of ``gy`` (N, K, L): as it is when it is (N, K, L) or
    (N, L, K) in memory, else copied into whichever of the two its strides are closer to."""
    if gy.flags.c_contiguous:
        return gy, False
    t = gy.transpose(0, 2, 1)
    if t.flags.c_contiguous or gy.strides[1] < gy.strides[2]:
        return np.ascontiguousarray(t), True
    return np.ascontiguousarray(gy), False


def channels_contiguous(x: np.ndarray | None) -> bool:
    """Whether ``x`` (N, C, H, W) holds each pixel's channels side by side."""
    return x is not None and x.strides[1] == x.itemsize


def groups_of_channels(g: Geometry, groups: int) -> bool:
    """Whether the colsᵀ tiles pay: at least 2 channels per group. A depthwise convolution's runs are
    single elements, as in the plane tiles but copied in per-pixel loops: about 2× slower on
    8×64×56×56 3×3 (forward and backward)."""
    return g.C // groups > 1


def tile_pixels(g: Geometry, itemsize: int, limit: int, multiple: int, at_least: int = 1) -> int:
    """Output pixels per colsᵀ tile: about TILE_BYTES of columns, ≥ TILE_MIN_PIXELS and ``at_least``,
    ≤ ``limit`` (the pixels a tile may cover), evened out so that the tiles of ``limit`` pixels
    come in a multiple of ``multiple`` (the threads, times 2 for the backward's phases)."""
    by_bytes = TILE_BYTES // max(g.rows * itemsize, 1)
    pixels = max(1, min(limit, max(by_bytes, TILE_MIN_PIXELS, at_least)))
    n_tiles = -(-limit // pixels)
    n_tiles = -(-n_tiles // multiple) * multiple
    return min(limit, max(-(-limit // n_tiles), at_least))
