"""How many OpenMP threads the kernels use.

By default the kernels ask OpenMP at each call (``omp_get_max_threads``), so ``OMP_NUM_THREADS`` and
``threadpoolctl.threadpool_limits(n, user_api="openmp")`` are obeyed. :func:`set_num_threads` pins a
number instead. Small problems run on one thread: starting a parallel region costs more than the
copy itself below a few tens of thousands of elements.
"""

from __future__ import annotations

from . import _kernels

_fixed: int | None = None

#: Below this many moved elements a call runs serially (fork/join costs more than it saves).
SERIAL_BELOW = 1 << 15


def get_num_threads() -> int:
    """Number of threads the kernels use for a large problem.

    Returns
    -------
    int
        The value set by :func:`set_num_threads`, or else OpenMP's current maximum (1 in a build
        without OpenMP).

    Examples
    --------
    >>> import im2col
    >>> im2col.get_num_threads() >= 1
    True
    """
    return _fixed if _fixed is not None else max(1, _kernels.max_threads())


def set_num_threads(n: int | None) -> None:
    """Pin the number of threads the kernels use, or ``None`` to follow OpenMP again.

    Parameters
    ----------
    n : int or None
        A positive thread count, or None to go back to the default (``OMP_NUM_THREADS`` /
        threadpoolctl / the number of cores). This affects only this library's kernels, not the
        BLAS that does the GEMM (use ``threadpoolctl`` for that).

    Examples
    --------
    >>> import im2col
    >>> im2col.set_num_threads(1)
    >>> im2col.get_num_threads()
    1
    >>> im2col.set_num_threads(None)
    """
    global _fixed
    if n is None:
        _fixed = None
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads(): argument 'n' must be a positive int or None, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads(): argument 'n' must be a positive int or None, got {n}")
    _fixed = n


#: Below this many floating-point operations a GEMM-carrying call runs serially. Besides the
#: fork/join cost, a parallel region on a machine whose other core is busy waits for that core:
#: tiny convolutions took 5-15 ms instead of microseconds that way (gradcheck of conv_transpose2d:
#: 72 s on two threads, 3 s on one).
SERIAL_FLOPS_BELOW = 1 << 21


def threads_for(n_elements: int) -> int:
    """Threads to use for a kernel call that moves ``n_elements`` elements."""
    return 1 if n_elements < SERIAL_BELOW else get_num_threads()


def threads_for_flops(flops: int) -> int:
    """Threads to use for a kernel call that does ``flops`` floating-point operations."""
    return 1 if flops < SERIAL_FLOPS_BELOW else get_num_threads()
