"""The benchmark shapes, shared with the runner (:mod:`im2col.bench` is their single source).

``SHAPES`` maps a name to an :class:`im2col.bench.Shape` (N, C, H, W, K kernels kh × kw, stride,
padding); ``SMALL_SHAPES`` is the subset a plain ``pytest`` run (benchmarking disabled) uses.
"""

from im2col.bench import OPS, SHAPES, SMALL_SHAPES, Shape

__all__ = ["OPS", "SHAPES", "SMALL_SHAPES", "Shape"]
