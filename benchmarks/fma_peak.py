"""Measure this machine's multiply-add peak per instruction set, dtype and thread count.

Compiles ``fma_peak.c`` (beside this file) with the system C compiler (``$CC``, else ``cc``,
``gcc`` or ``clang``; ``-O2 -fopenmp``, or without OpenMP if that fails, then one thread only)
into a temporary directory, and runs its loop of independent FMAs for every instruction set the
CPU has (AVX-512F, AVX2+FMA, SSE2, portable scalar), in fp32 and fp64, on 1 and 2 threads. Each
figure is the best of ``--repeats`` runs of about ``--seconds`` each: the peak is what the FMA
units can do, and a co-tenant on a shared core only ever makes a run slower.

    python benchmarks/fma_peak.py                  # the table
    python benchmarks/fma_peak.py --json           # the same as JSON
    python benchmarks/fma_peak.py --best --threads 2 --dtype fp32 --json   # what im2col bench uses

``im2col bench`` runs this script (``--best``) to print GFLOP/s as a fraction of the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ISAS = ["avx512f", "avx2", "sse2", "scalar"]
DTYPES = ["fp32", "fp64"]
SOURCE = Path(__file__).with_name("fma_peak.c")


def compiler() -> str | None:
    """The C compiler to use: ``$CC`` if set, else the first of cc, gcc, clang on PATH."""
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


def build(workdir: str) -> tuple[str, bool]:
    """Compile fma_peak.c into ``workdir``; return (executable, has OpenMP). Raises RuntimeError."""
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC, or install gcc or clang)")
    exe = os.path.join(workdir, "fma_peak")
    errors = []
    for flags, omp in ((["-fopenmp"], True), ([], False)):
        r = subprocess.run([cc, "-O2", *flags, str(SOURCE), "-o", exe], capture_output=True, text=True)
        if r.returncode == 0:
            return exe, omp
        errors.append(r.stderr.strip()[-500:])
    raise RuntimeError(f"{cc} failed to compile {SOURCE.name}:\n" + "\n".join(errors))


def _rate(exe: str, isa: str, dtype: str, threads: int, iters: int) -> float | None:
    r = subprocess.run([exe, isa, dtype, str(threads), str(iters)], capture_output=True, text=True)
    if r.returncode == 3:
        return None
    if r.returncode != 0:
        raise RuntimeError(f"fma_peak {isa} {dtype} {threads} failed: {r.stderr.strip()}")
    return float(r.stdout)


def measure(exe: str, isa: str, dtype: str, threads: int, seconds: float, repeats: int) -> float | None:
    """Best GFLOP/s of ``repeats`` runs of about ``seconds`` each, or None if unsupported."""
    first = _rate(exe, isa, dtype, threads, 200_000)  # a ~ms calibration run
    if first is None:
        return None
    # Flops per iteration differ per kernel; size the runs from the calibration's rate.
    per_iter = {"avx512f": 512, "avx2": 192, "sse2": 96, "scalar": 24}[isa] // (2 if dtype == "fp64" else 1)
    iters = max(1000, int(seconds * first * 1e9 / (per_iter * threads)))
    return max([first] + [_rate(exe, isa, dtype, threads, iters) or 0.0 for _ in range(repeats)])


def run(isas: list[str], dtypes: list[str], threads: list[int], seconds: float, repeats: int) -> dict:
    """Every requested combination: ``{"results": [{isa, dtype, threads, gflops}], ...}``."""
    with tempfile.TemporaryDirectory(prefix="fma_peak_") as d:
        t0 = time.perf_counter()
        exe, omp = build(d)
        built = time.perf_counter() - t0
        results = []
        for isa in isas:
            for dtype in dtypes:
                for t in threads:
                    if t > 1 and not omp:
                        continue
                    g = measure(exe, isa, dtype, t, seconds, repeats)
                    if g is not None:
                        results.append({"isa": isa, "dtype": dtype, "threads": t, "gflops": round(g, 1)})
    return {"compiler": compiler(), "openmp": omp, "compile_s": round(built, 2), "results": results}


def best(data: dict) -> dict | None:
    """The fastest result (the peak a fraction is taken of), or None."""
    return max(data["results"], key=lambda r: r["gflops"], default=None)


def format_table(data: dict) -> str:
    """One row per instruction set and dtype, one column per thread count."""
    threads = sorted({r["threads"] for r in data["results"]})
    by = {(r["isa"], r["dtype"], r["threads"]): r["gflops"] for r in data["results"]}
    head = f"{'ISA':8} {'dtype':5} " + " ".join(f"{f'{t} thread' + ('s' if t > 1 else ''):>11}" for t in threads)
    lines = [f"FMA peak, GFLOP/s (compiler {data['compiler']}, OpenMP {'yes' if data['openmp'] else 'no'})", head]
    for isa in ISAS:
        for dtype in DTYPES:
            if any((isa, dtype, t) in by for t in threads):
                cells = [f"{by[(isa, dtype, t)]:11.1f}" if (isa, dtype, t) in by else f"{'—':>11}" for t in threads]
                lines.append(f"{isa:8} {dtype:5} " + " ".join(cells))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Measure the FMA peak per instruction set (see the module docstring).")
    p.add_argument("--isa", default=",".join(ISAS), help=f"comma-separated, from {','.join(ISAS)}")
    p.add_argument("--dtype", default=",".join(DTYPES), help="comma-separated, from fp32,fp64")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--seconds", type=float, default=0.2, help="length of one run (default 0.2)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure; the best is kept (default 3)")
    p.add_argument("--best", action="store_true", help="report only the fastest combination")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    isas, dtypes = args.isa.split(","), args.dtype.split(",")
    bad = [v for v in isas if v not in ISAS] + [v for v in dtypes if v not in DTYPES]
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        p.error(f"--threads: expected comma-separated integers, got {args.threads!r}")
    if bad:
        p.error(f"unknown --isa/--dtype value {', '.join(bad)}; choose from {','.join(ISAS)} / {','.join(DTYPES)}")
    if min(threads) < 1 or args.seconds <= 0 or args.repeats < 1:
        p.error("--threads, --seconds and --repeats must be positive")
    try:
        data = run(isas, dtypes, threads, args.seconds, args.repeats)
    except RuntimeError as e:
        print(f"fma_peak: {e}", file=sys.stderr)
        return 1
    if args.best:
        data["best"] = best(data)
    if args.json:
        print(json.dumps(data))
    elif args.best:
        b = data["best"]
        print("no result" if b is None else f"{b['gflops']} GFLOP/s ({b['isa']}, {b['dtype']}, {b['threads']} threads)")
    else:
        print(format_table(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
