"""How :mod:`im2col.bench` measures: interleaved timing, peak extra memory, the machine.

* :func:`time_cases` warms every case up, checks its result against torch's, then times the cases
  interleaved: each round calls every case once in a fresh random order (see :mod:`im2col.bench`).
* :func:`measure_memory` and :func:`peak_extra_bytes`: the peak RSS a first call adds (Linux).
* :func:`environment`: CPU, thread counts, versions and thread pools, for the report's header.
* :func:`fma_peak`: the machine's multiply-add peak, from ``benchmarks/fma_peak.py`` when the
  package runs from a source checkout (the script and its C file are not installed with it).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._bench_cases import OURS, Cases, _as_list, check, set_cases, set_tasks

__all__ = [
    "time_cases",
    "memory_supported",
    "peak_extra_bytes",
    "measure_memory",
    "environment",
    "fma_peak",
    "cpu_model",
]


# --- timing --------------------------------------------------------------------------------------


def _warm(fn: Callable[[], Any], min_s: float, min_calls: int = 3) -> tuple[float, Any]:
    """Call ``fn`` at least ``min_calls`` times and for ``min_s`` seconds.

    Returns the best seconds per call and the first call's result (for :func:`check`).
    """
    best, total, n, first = float("inf"), 0.0, 0, None
    while n < min_calls or total < min_s:
        t0 = time.perf_counter_ns()
        out = fn()
        dt = (time.perf_counter_ns() - t0) / 1e9
        if n == 0:
            first = out
        del out
        best, total, n = min(best, dt), total + dt, n + 1
        if n >= 1000:
            break
    return best, first


def time_cases(
    cases: Cases,
    rounds: int,
    warmup_s: float,
    sample_s: float,
    rng: random.Random,
    min_warm_calls: int = 3,
    tick: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Warm up, check the results against torch, then time interleaved: per round, each case once in
    random order. Returns the per-case samples.

    ``tick(i)`` is called before warming up (``i = 0``) and after each round ``i`` (progress).
    """
    names = list(cases.fns)
    number, results = {}, {}
    if tick:
        tick(0)
    for name in names:
        t, out = _warm(cases.fns[name], warmup_s, min_warm_calls)
        if name in cases.checked or name == cases.ref:
            results[name] = out
        del out
        number[name] = max(1, min(10_000, round(sample_s / max(t, 1e-9))))
    check(cases, results)
    del results
    samples: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, list[float]] = {n: [] for n in names}
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(names)
            for name in names:
                fn, k = cases.fns[name], number[name]
                # The first call after another case pays for the switch (the other library's
                # thread pool still spinning, caches cold): kept apart so it does not swamp
                # the steady per-call time, and reported on its own.
                t0 = time.perf_counter_ns()
                fn()
                t1 = time.perf_counter_ns()
                for _ in range(k):
                    fn()
                samples[name].append((time.perf_counter_ns() - t1) / k)
                first[name].append(t1 - t0)
            if tick:
                tick(len(samples[names[0]]))
    finally:
        if was_enabled:
            gc.enable()
    return {"number": number, "ns": samples, "first_ns": first}


# --- memory --------------------------------------------------------------------------------------


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def memory_supported() -> bool:
    return sys.platform.startswith("linux") and os.access("/proc/self/clear_refs", os.W_OK)


def _malloc_trim() -> None:
    """Hand glibc's free heap pages back to the kernel, so reusing them shows up as RSS again."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_extra_bytes(fn: Callable[[], Any], *, with_output: bool = False) -> Any:
    """Peak RSS above the RSS before, while ``fn()`` runs once in a new thread (result included).

    ``with_output=True`` returns ``(extra, output_bytes)``: the result is alive at the peak, so its
    size is a lower bound that tells whether the measurement saw the call's allocations at all.
    """
    box: list[Any] = []
    gc.collect()
    _malloc_trim()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join()
    peak = _status_kib("VmHWM")
    out_bytes = sum(a.nbytes for a in _as_list(box[0])) if box and box[0] is not None else 0
    box.clear()
    extra = max(0, peak - before) * 1024
    return (extra, out_bytes) if with_output else extra


def measure_memory(
    ops: list[str],
    shapes: list[str],
    seed: int = 0,
    *,
    set_name: str = "named",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Peak extra memory of ours and torch's counterpart per op and shape, in this process.

    Returns ``{"op/shape/case": {"extra": bytes, "output": bytes}}``. :func:`im2col.bench.run`
    calls it in a fresh child process with glibc told to mmap every block from 64 KiB up:
    in-process, and even in a child with glibc's defaults, pages freed by an earlier case were
    sometimes reused, and the extra memory came out below the size of the output itself.
    ``log`` gets a line per op and shape (progress).
    """
    out: dict[str, Any] = {}
    todo = set_tasks(set_name, ops, shapes)
    for i, (op, name) in enumerate(todo):
        if log:
            log(f"memory pass {i + 1}/{len(todo)}: {op} on {name}")
        cases = set_cases(set_name, op, name, seed)
        for case in (OURS, cases.ref):
            extra, out_bytes = peak_extra_bytes(cases.fns[case], with_output=True)
            out[f"{op}/{name}/{case}"] = {"extra": extra, "output": out_bytes}
        del cases
    return out


def memory_in_child(
    ops: list[str], shapes: list[str], seed: int, set_name: str = "named", progress: bool = True
) -> dict[str, Any] | None:
    """:func:`measure_memory` in a fresh ``python -m im2col.bench`` process; None if that fails.

    The child runs at this process's thread count (workspaces are per thread, so the memory is
    that of the calls being timed). Its progress lines (with ``progress``) go straight to this
    process's stderr.
    """
    import im2col

    cmd = [sys.executable, "-m", "im2col.bench", "--_memory-child", "--set", set_name, "--ops", ",".join(ops)]
    cmd += ["--threads", str(im2col.get_num_threads())]
    cmd += ["--shapes", ",".join(shapes), "--seed", str(seed)] + ([] if progress else ["--no-progress"])
    # Every block from 64 KiB up gets its own mmap and goes back to the kernel when freed, so no
    # call can reuse pages an earlier one left resident (the child times nothing; speed is moot).
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0:
        print(f"im2col bench: the memory pass failed (exit status {r.returncode}); see above", file=sys.stderr)
        return None
    return json.loads(r.stdout)


# --- environment ---------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """Thread counts, library versions, BLAS and CPU, for the header and the JSON."""
    import torch

    import im2col

    try:  # only reported: the run works without it
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    pools = (
        None
        if threadpool_info is None
        else [
            {
                k: p.get(k)
                for k in (
                    "user_api",
                    "internal_api",
                    "num_threads",
                    "version",
                    "prefix",
                    "threading_layer",
                )
            }
            for p in threadpool_info()
        ]
    )
    native = None
    try:
        from ._gemm import native_blas

        nb = native_blas()
        native = nb.name if nb is not None else None
    except Exception:  # noqa: BLE001 - informational only
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "im2col": getattr(im2col, "__version__", "?"),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "threads_ours": im2col.get_num_threads() if hasattr(im2col, "get_num_threads") else None,
        "threads_torch": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "ours_gemm_blas": native,
        "threadpools": pools,
        "loadavg_at_start": _loadavg(),
    }


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s "Model name", from /proc/cpuinfo), else platform's guess."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages: above the core count, co-tenants are taking CPU time."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# --- the machine's peak ----------------------------------------------------------------------------

#: Where the FMA-peak program lives in a source checkout (it is not installed with the package).
FMA_PEAK_SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fma_peak.py"


def fma_peak(threads: int, script: Path | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """The best float32 multiply-add rate of this machine on ``threads`` threads, in GFLOP/s.

    Runs ``benchmarks/fma_peak.py --best`` (a C loop of independent FMAs per instruction set,
    compiled on the spot) in a child process: a few seconds. Returns ``{"gflops": float, "isa": str,
    "threads": int, "how": str}``, or ``{"gflops": None, "why": str}`` when the script is not there
    (an installed package without its source checkout), no C compiler is found, or it fails.
    """
    script = FMA_PEAK_SCRIPT if script is None else script
    if not script.is_file():
        return {"gflops": None, "why": f"{script} not found: the peak program ships with the source checkout only"}
    cmd = [sys.executable, str(script), "--best", "--dtype", "fp32", "--threads", str(threads), "--json"]
    cmd += ["--seconds", "0.1", "--repeats", "3"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"gflops": None, "why": f"benchmarks/fma_peak.py did not finish: {e}"}
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1]
        return {"gflops": None, "why": f"benchmarks/fma_peak.py failed: {last}"}
    best = json.loads(r.stdout).get("best")
    if not best:
        return {"gflops": None, "why": "benchmarks/fma_peak.py found no usable instruction set"}
    how = f"benchmarks/fma_peak.py: independent fp32 FMAs, {best['isa']}, {best['threads']} threads, best of 4 runs"
    return {"gflops": float(best["gflops"]), "isa": best["isa"], "threads": best["threads"], "how": how}
