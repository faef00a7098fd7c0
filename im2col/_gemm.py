"""The GEMM, and the reusable workspace the convolutions keep their column matrices in.

Which BLAS (measured on this project's 2-core machines; see README, "Performance"):

* After an OpenMP loop (our im2col), NumPy's OpenBLAS runs on its own pthreads while the OpenMP
  threads are still spin-waiting for more work; on two cores the two pools fight and the GEMM took
  ~150× longer (seed shape: 9.2 ms instead of 0.06 ms for im2col + GEMM).
* PyTorch's CPU build runs its BLAS (MKL) on the same GNU OpenMP pool as our kernels, so the two
  never compete, and MKL was faster than OpenBLAS on these shapes anyway. So when the user's
  process has already imported torch we multiply with ``torch.mm`` (zero-copy views of our arrays);
  otherwise with ``numpy.matmul(out=)``, and at import we shorten OpenMP's spin-wait (see
  ``_limit_openmp_spin``) so the OpenBLAS threads get the cores back.
"""

from __future__ import annotations

import os
import sys
import threading

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out := a @ b`` (``matmul`` semantics, batched allowed); views and transposed views welcome."""
    torch = sys.modules.get("torch")
    if torch is not None and out.size >= _TORCH_MIN_OUTPUT:
        torch.matmul(torch.from_numpy(a), torch.from_numpy(b), out=torch.from_numpy(out))
    else:
        np.matmul(a, b, out=out)


#: Below this many output elements NumPy's matmul is cheaper than wrapping three arrays for torch.
_TORCH_MIN_OUTPUT = 4096


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as f:
            return "libgomp" in f.read()
    except OSError:  # not Linux: leave OpenMP alone
        return True


def limit_openmp_spin() -> None:
    """Before GNU OpenMP starts, make idle threads sleep sooner unless the user chose a policy.

    GNU OpenMP reads ``GOMP_SPINCOUNT`` once, when the library is loaded, so this only has an effect
    when nothing in the process (torch, for one) has loaded it yet, and the user's own
    ``OMP_WAIT_POLICY`` / ``GOMP_SPINCOUNT`` always win. See the module docstring for why.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if not _libgomp_loaded():
        os.environ["GOMP_SPINCOUNT"] = "1000"


_local = threading.local()


def workspace(slot: str, n: int, dtype: np.dtype) -> np.ndarray:
    """A reusable 1-D buffer of at least ``n`` elements, one per thread, slot and dtype.

    Fresh large allocations are paid for in page faults on first touch (75–185% on top of the copy
    itself for buffers of tens of MB), so the convolutions keep their column matrix and GEMM output
    between calls. Their size is bounded by the chunking in :mod:`im2col._functional`.
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
