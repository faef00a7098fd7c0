"""The GEMM, and the reusable workspace the convolutions keep their column matrices in.

Which route (measured on this project's 2-core machines, AMD EPYC with AVX-512; see README):

* ``numpy.matmul`` right after an OpenMP loop (our im2col): NumPy's OpenBLAS wakes its own
  pthreads while the OpenMP threads still spin-wait for more work, and on two cores the pools
  fight: im2col + GEMM on the seed shape took 9.2 ms instead of 0.13 ms.
* ``torch.mm`` shares GNU OpenMP with our kernels, so no clash, but its MKL does not use AVX-512
  on AMD: 121 GFLOP/s on the 64×576 @ 576×25088 GEMM against 201 for OpenBLAS.
* So the GEMM is called from our own OpenMP threads (``_kernels.gemm`` splits the output's
  columns; ``_kernels.conv_forward_tiled`` multiplies cache-sized im2col tiles as soon as they are
  written), each thread calling a BLAS single-threaded through a function pointer
  (:func:`native_blas`: NumPy's OpenBLAS or torch's MKL, whichever measures faster on this CPU):
  one thread pool, the faster BLAS, and no Python between tiles.
  ``numpy.matmul`` / ``torch.matmul`` remain as the fallback when no such BLAS is found.
  With the GEMM in our own threads, GNU OpenMP's default spin-wait is best: shortening it
  (``GOMP_SPINCOUNT=1000``, which rescued the ``numpy.matmul`` route) made the seed shape slower
  (0.17 ms against 0.11 ms), so the library leaves OpenMP's settings alone.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
import time
from typing import NamedTuple

import numpy as np

from . import _kernels
from ._threads import threads_for_flops


def _rowmajor(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``x`` as (C-contiguous array, transposed?) without copying when either layout fits."""
    if x.flags.c_contiguous:
        return x, False
    if x.T.flags.c_contiguous:
        return x.T, True
    return np.ascontiguousarray(x), False


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray, beta: float = 0.0) -> None:
    """``out := a @ b + beta·out`` for 2-D float arrays of one dtype (transposed views welcome).

    ``out`` may be a row block or column block of a larger array (its last axis contiguous).
    """
    blas = native_blas(a, b, out)
    if blas is not None and out.ndim == 2 and out.strides[1] == out.itemsize:
        a_, ta = _rowmajor(a)
        b_, tb = _rowmajor(b)
        fn = blas.sgemm if out.dtype == np.float32 else blas.dgemm
        n_threads = threads_for_flops(2 * out.shape[0] * out.shape[1] * (a.shape[1] if a.ndim == 2 else 1))
        _kernels.gemm(a_, ta, b_, tb, out, beta, n_threads, fn, blas.ilp64, blas.set_threads_local)
        return
    if beta:
        out *= beta
        out += a @ b
        return
    torch = sys.modules.get("torch")
    if torch is not None and out.size >= _TORCH_MIN_OUTPUT:
        torch.matmul(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))
    else:
        np.matmul(a, b, out=out)


#: Below this many output elements NumPy's matmul is cheaper than wrapping three arrays for torch.
_TORCH_MIN_OUTPUT = 4096


_local = threading.local()


def workspace(slot: str, n: int, dtype: np.dtype) -> np.ndarray:
    """A reusable 1-D buffer of at least ``n`` elements, one per thread, slot and dtype.

    Fresh large allocations are paid for in page faults on first touch (75–185% on top of the copy
    itself for buffers of tens of MB), so the convolutions keep their column matrix and GEMM output
    between calls. Their size is bounded by the chunking in :mod:`im2col._conv2d_routes`.
    """
    key = (slot, np.dtype(dtype).str)
    cache = _local.__dict__.setdefault("buffers", {})
    buf = cache.get(key)
    if buf is None or buf.size < n:
        buf = np.empty(n, dtype=dtype)
        cache[key] = buf
    return buf[:n]


def release_workspace() -> None:
    """Free the calling thread's cached convolution buffers."""
    _local.__dict__.pop("buffers", None)


# --- a BLAS the kernels can call from their own threads --------------------------------------


class NativeBlas(NamedTuple):
    """Addresses of Fortran-style sgemm/dgemm in a loaded BLAS, for the tiled Cython kernels."""

    name: str
    sgemm: int
    dgemm: int
    ilp64: bool  # 64-bit integer arguments
    set_threads_local: int  # int f(int): the calling thread's BLAS thread count; 0 if absent


def _symbols(path: str, sgemm: str, dgemm: str, ilp64: bool, set_local: str, name: str) -> NativeBlas | None:
    try:
        lib = ctypes.CDLL(path)
        s, d = getattr(lib, sgemm), getattr(lib, dgemm)
    except (OSError, AttributeError):
        return None
    setter = getattr(lib, set_local, None)
    addr = lambda f: ctypes.cast(f, ctypes.c_void_p).value or 0  # noqa: E731
    return NativeBlas(name, addr(s), addr(d), ilp64, addr(setter) if setter is not None else 0)


_native: dict[str, list[NativeBlas]] = {}

#: The largest value a 32-bit BLAS integer argument (dimension, leading dimension) can take.
INT32_MAX = 2**31 - 1


def _find_routes(torch_loaded: bool) -> list[NativeBlas]:
    """Every BLAS the kernels can call: NumPy's bundled OpenBLAS (ILP64), and torch's MKL when torch
    is loaded. ``IM2COL_NATIVE_BLAS=openblas`` or ``=mkl`` keeps only that one, ``=0`` none."""
    choice = os.environ.get("IM2COL_NATIVE_BLAS", "auto").lower()
    if choice not in ("auto", "1", "openblas", "mkl", "0", "none", "off"):
        raise ValueError(
            "environment variable IM2COL_NATIVE_BLAS must be 'auto' (or '1'), 'openblas', 'mkl' or '0' "
            f"(or 'none', 'off'), got {os.environ['IM2COL_NATIVE_BLAS']!r}"
        )
    routes: list[NativeBlas] = []
    if choice in ("0", "none", "off"):
        return routes
    if choice in ("auto", "1", "openblas"):
        libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so"))):
            found = _symbols(path, "scipy_sgemm_64_", "scipy_dgemm_64_", True,
                             "openblas_set_num_threads_local", "OpenBLAS (numpy)")  # fmt: skip
            if found is not None:
                routes.append(found)
                break
    # a module's __file__ is None for a namespace package (a torch/ directory without __init__.py)
    torch_file = sys.modules["torch"].__file__ if torch_loaded else None
    if torch_file is not None and choice in ("auto", "1", "mkl"):
        path = os.path.join(os.path.dirname(torch_file), "lib", "libtorch_cpu.so")
        found = _symbols(path, "sgemm_", "dgemm_", False, "MKL_Set_Num_Threads_Local", "MKL (torch)")
        if found is not None:
            routes.append(found)
    return routes


def _tile_gemm_ns(blas: NativeBlas, rounds: int = 5, calls: int = 3) -> list[int]:
    """Per-round times of ``calls`` single-threaded float32 GEMMs of a typical tile (64×576 by
    576×224: 64 kernels, 64 channels × 3×3, 224 columns)."""
    a, b = np.full((64, 576), 0.5, np.float32), np.full((576, 224), 0.25, np.float32)
    out = np.empty((64, 224), np.float32)
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            _kernels.gemm(a, False, b, False, out, 0.0, 1, blas.sgemm, blas.ilp64, blas.set_threads_local)
        samples.append(time.perf_counter_ns() - t0)
    return samples


def _fastest_first(routes: list[NativeBlas]) -> list[NativeBlas]:
    """``routes`` ordered by a short measurement of one tile GEMM each (best of 5 rounds, a few ms
    in all, taken once per process). Which BLAS is faster depends on the CPU: on AMD EPYC (AVX-512)
    OpenBLAS ran this tile at 168 GFLOP/s against 106 for torch's MKL, which does not use AVX-512
    there; on an Intel Xeon with ``OPENBLAS_CORETYPE=Haswell``, OpenBLAS 113–117 against MKL's
    159–162, and conv2d on 8×64×56×56 3×3 took 8.8 ms against 10.9."""
    if len(routes) < 2:
        return routes
    for blas in routes:  # first calls: the BLAS's own set-up, not timed
        _tile_gemm_ns(blas, rounds=1, calls=1)
    best = {blas.name: min(_tile_gemm_ns(blas)) for blas in routes}
    return sorted(routes, key=lambda blas: best[blas.name])


def native_blas(*operands: np.ndarray, elements: int = 0) -> NativeBlas | None:
    """The BLAS the tiled kernels should call for GEMMs over ``operands``, or None (then the
    convolution uses :func:`matmul`).

    The faster of NumPy's bundled OpenBLAS and, when torch is loaded, the MKL inside
    ``libtorch_cpu`` (see :func:`_fastest_first`; other builds, such as Accelerate or a system BLAS,
    are not called directly). MKL's integers are 32-bit, so it is only given GEMMs whose every
    dimension and leading dimension stays below 2³¹: bounded by the :func:`span` of ``operands`` and
    by ``elements`` (arrays not made yet). Past that only OpenBLAS (64-bit) will do.
    ``IM2COL_NATIVE_BLAS=openblas``, ``=mkl`` or ``=0`` picks one, or none (then ``matmul`` falls
    back to NumPy/torch).
    """
    torch_loaded = "torch" in sys.modules
    key = "torch" if torch_loaded else "numpy"
    if key not in _native:
        _native[key] = _fastest_first(_find_routes(torch_loaded))
    routes = _native[key]
    if not routes or routes[0].ilp64:  # no bound to check: the common case costs nothing more
        return routes[0] if routes else None
    if max(elements, span(*operands)) <= INT32_MAX:
        return routes[0]
    return next((blas for blas in routes if blas.ilp64), None)


def span(*arrays: np.ndarray) -> int:
    """The most elements any of ``arrays`` spans in memory (first to last element, inclusive):
    a bound on every offset and leading dimension a GEMM over them is given."""
    most = 0
    for a in arrays:
        if a.flags.forc:  # C- or Fortran-contiguous: exactly its size
            most = max(most, a.size)
        elif a.size:
            most = max(most, 1 + sum((n - 1) * abs(st) for n, st in zip(a.shape, a.strides)) // a.itemsize)
    return most
