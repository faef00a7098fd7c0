"""Threads and processes: the kernels release the GIL, give the same answer from many threads, obey
the thread-count controls, and work in spawned worker processes."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from _spawn_work import work as _work
from conftest import assert_close

import im2col
from im2col import _kernels


def test_many_python_threads_match_sequential():
    seeds = list(range(16))
    sequential = [_work(s) for s in seeds]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(_work, seeds))
    for seq, con in zip(sequential, concurrent):
        for a, b in zip(seq, con):
            assert_close(a, b, exact=True)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_results_do_not_depend_on_thread_count(n):
    base = _work(7)
    im2col.set_num_threads(n)
    try:
        assert im2col.get_num_threads() == n
        got = _work(7)
        for a, b in zip(base[:3], got[:3]):  # columns, output, grad_input: bit for bit
            assert_close(a, b, exact=True)
        # grad_weight sums per-thread partial sums, so its rounding depends on the thread count
        assert_close(got[3], base[3])
    finally:
        im2col.set_num_threads(None)


@pytest.mark.skipif(not _kernels.HAVE_OPENMP, reason="serial build")
def test_threadpoolctl_limits_the_kernels():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert im2col.get_num_threads() == 1
    assert im2col.get_num_threads() >= 1


def test_spawned_workers_run_the_kernels():
    """After OpenMP has run in this process a fork()ed child may hang; spawn is safe (see docs/threads.md)."""
    _work(0)  # start the OpenMP pool here first
    # An executor, not mp.Pool: a worker that dies (say, failing to import the task's module)
    # raises BrokenProcessPool here instead of leaving Pool.map waiting for ever. (A worker that
    # hangs alive would still hang the test: leaving the block waits for the workers.)
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_work, [1, 2]))
    # Not bit-exact: this process has imported torch, so its GEMM runs on torch's BLAS, while the
    # children (which import only NumPy) use NumPy's (see im2col/_gemm.py).
    for seed, got in zip([1, 2], results):
        for a, b in zip(_work(seed), got):
            assert_close(a, b)
