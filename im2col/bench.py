"""The benchmark runner: this library's operations beside PyTorch, as ratios, on this machine.

Run ``im2col bench`` (or ``python -m im2col.bench``); ``--help`` lists the options. It needs torch
(``pip install 'im2col[bench]'``, after installing the torch wheel you want); threadpoolctl, in the
same extra, is used to report and limit NumPy's BLAS threads. ``--plot`` needs matplotlib
(``im2col[plot]``).

    im2col bench --quick                        # every op on the ten named shapes, 3 rounds
    im2col bench --set realistic --quick        # 23 layers from published networks
    im2col bench --format markdown --json out.json --plot ratios.png

The default output is a compact table per op (shape, our time, torch's, their ratio) and a summary
line (geometric mean, best and worst shape); ``--format markdown`` prints every baseline.

How it measures (made for shared machines with noisy neighbours):

* Every implementation of one operation on one shape is a *case*. All cases of a shape run in one
  process, **interleaved**: each round times every case once, in a fresh random order, so a burst
  of noise hits all of them alike. The table reports the median per-call time over rounds and, for
  each baseline, the median over rounds of the per-round ratio ``ours / baseline`` (below 1 = ours
  faster).
* A case is warmed up (at least 3 calls and 50 ms; ``--quick``: one call) before timing, and its
  warm-up result is checked against torch's. Per round, a case's first call is timed on its own
  (it pays for switching from another library: spinning thread pools, cold caches), then a sample
  of ``number`` calls back to back, ``number`` chosen so a sample lasts about 1 ms (so the teaching
  shape's microsecond calls are not timed at clock resolution; ``im2col bench --shapes teaching``
  shows their time); times are ``time.perf_counter_ns`` deltas.
* Interleaving runs torch's OpenMP/MKL, NumPy's OpenBLAS pthreads and our OpenMP threads one after
  another, as real code does. Idle threads of one pool spin for a while and slow the next pool's
  first call (the header says which pools are loaded); this is part of what is measured.
* Peak extra memory (Linux; ``--no-memory`` skips it): in a fresh child process that does nothing
  else (run before the timing), ours and torch's counterpart run once per shape, each in a new
  thread (so no per-thread workspace of ours is already held), with the kernel's peak-RSS mark
  reset (``/proc/self/clear_refs``); extra = peak RSS during the call − RSS before it.
  The child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` (and ``malloc_trim`` before each call),
  so a buffer freed by an earlier case cannot hide a new allocation. Unlike ``tracemalloc`` this
  sees every allocator (NumPy, torch, OpenBLAS). It counts the output, any workspace kept, and the
  first call's one-time set-up (torch's oneDNN primitives, say); the thread's own stack adds up to
  ~0.1 MiB. A figure below the output's own size (marked ``*``) means already-resident pages were
  reused: read it as unknown.
* The FMA peak (the fraction of it that GFLOP/s reach): ``benchmarks/fma_peak.py`` compiled and run
  for a few seconds before the timing, when the package runs from a source checkout (the program is
  not installed with the package); ``--peak GFLOPS`` gives a figure measured elsewhere.

The 1-D and 3-D shapes (``seq1d``, ``vol3d``) time im2col, conv forward and backward (ours
``conv1d``/``conv3d``) against torch's ``conv1d``/``conv3d``; their "torch unfold" is ``F.unfold`` on an
(N, C, 1, L) view, and for 3-D (no ``F.unfold``) ``F.pad`` + ``Tensor.unfold`` along D, H, W + a copy
into the same layout. col2im is timed on the 2-D shapes only; issue 4's goals apply to 2-D shapes.
The realistic set (:data:`im2col._layers.REALISTIC`) times forward and backward against torch only;
see :mod:`im2col._bench_cases`.

Rates: a convolution's forward is ``2·N·K·(C/groups)·kh·kw·L`` flops, its backward (grad input +
grad weight) twice that; im2col and col2im report column-matrix bytes ÷ time (so the copy floor,
which reads and writes those bytes, moves twice the figure shown).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from ._bench_cases import (
    CASE_NAMES,
    GOALS,
    OPS,
    OURS,
    REALISTIC_OPS,
    SETS,
    SHAPES,
    SMALL_SHAPES,
    TORCH_REF,
    Cases,
    Shape,
    _as_list,
    check,
    make_cases,
    make_layer_cases,
    nd,
    set_cases,
    set_ops,
    set_shapes,
    set_tasks,
    torch_ref,
)
from ._bench_measure import (
    _loadavg,
    environment,
    fma_peak,
    measure_memory,
    memory_in_child,
    memory_supported,
    peak_extra_bytes,
    time_cases,
)
from ._bench_report import TITLES, WIDTH, format_report, format_text, geomean, plot_ratios, summaries

__all__ = [
    "Shape",
    "SHAPES",
    "OPS",
    "REALISTIC_OPS",
    "SETS",
    "SMALL_SHAPES",
    "GOALS",
    "TORCH_REF",
    "TITLES",
    "WIDTH",
    "Cases",
    "check",
    "environment",
    "format_report",
    "format_text",
    "geomean",
    "make_cases",
    "make_layer_cases",
    "measure_memory",
    "memory_supported",
    "peak_extra_bytes",
    "plot_ratios",
    "summaries",
    "time_cases",
    "main",
    "run",
]

_ = (_as_list, nd, set_ops, torch_ref)  # re-exported for benchmarks/conftest.py and older callers


# --- the run -------------------------------------------------------------------------------------


def _median(v: list[float]) -> float:
    return float(np.median(v)) if v else float("nan")


def _work(op: str, s: Any) -> tuple[int, str]:
    """The op's work on shape ``s``: flops for convolutions, column-matrix bytes for im2col/col2im."""
    if op in ("im2col", "col2im"):
        return s.cols_bytes(), "column-matrix byte"
    return s.flops * {"backward": 2, "train": 3}.get(op, 1), "flop"


def summarize(cases: Cases, timing: dict[str, Any]) -> dict[str, Any]:
    """One op on one shape: medians, ratios of ours to every baseline, goals, raw samples."""
    s, op = cases.shape, cases.op
    ns = timing["ns"]
    ours = ns[OURS]
    ratios = {name: _median([a / b for a, b in zip(ours, ns[name], strict=True)]) for name in ns if name != OURS}
    med = {name: _median(v) for name, v in ns.items()}
    first = {name: _median(v) for name, v in timing["first_ns"].items()}
    work, unit = _work(op, s)
    goals = []
    for base, limit, where in GOALS.get(op, []) if isinstance(s, Shape) else []:
        if s.name not in (where or [n for n, v in SHAPES.items() if v.dims == 2]):
            continue
        if base == "per call µs":
            value = med[OURS] / 1e3
            goals.append({"goal": f"< {limit:g} µs per call", "value": value, "pass": value < limit})
        else:
            value = ratios[base]
            strict = limit == 1.0
            ok = value < limit if strict else value <= limit
            text = f"{'<' if strict else '≤'} {limit:g}× {base}"
            goals.append({"goal": text, "baseline": base, "limit": limit, "value": value, "pass": ok})
    out = {
        "op": op,
        "shape": s.name,
        "shape_label": s.label,
        "geometry": asdict(s),
        "baseline": cases.ref,
        "work": work,
        "work_unit": unit,
        "median_ns": med,
        "median_first_call_ns": first,
        "min_ns": {name: float(min(v)) for name, v in ns.items()},
        "ratio_ours_over": ratios,
        "goals": goals,
        "number": timing["number"],
        "samples_ns": ns,
        "first_call_samples_ns": timing["first_ns"],
    }
    if isinstance(s, Shape):
        out["cols_bytes"] = s.cols_bytes()
    else:
        out["source"] = s.source
    return out


class Progress:
    """Counts and time left on stderr: one line per task, or one line redrawn on a terminal.

    The time left starts from a guess of each task's cost (its work at a modest rate, times the
    calls the timing makes) and is rescaled by how long the finished tasks really took.
    """

    def __init__(self, tasks: list[tuple[str, float]], stream: Any = None) -> None:
        self.tasks, self.stream = tasks, stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self.done_guess = self.done_real = 0.0
        self.i, self.last_draw, self.task_t0 = 0, 0.0, self.t0

    def _left(self, fraction: float) -> str:
        guesses = [g for _, g in self.tasks]
        now = time.perf_counter()
        done = self.done_guess + fraction * guesses[self.i]
        real = self.done_real + (now - self.task_t0)
        scale = (real + 2.0) / (done + 2.0)  # the guess counts as 2 s of evidence at first
        left = max(0.0, (sum(guesses) - done) * scale)
        return f"{left:.0f} s" if left < 90 else f"{left / 60:.1f} min"

    def _draw(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text[: WIDTH - 1] + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, i: int) -> None:
        """Task ``i`` begins."""
        self.i, self.task_t0 = i, time.perf_counter()
        name = self.tasks[i][0]
        elapsed = time.perf_counter() - self.t0
        self._draw(f"[{i + 1}/{len(self.tasks)}] {name}: {elapsed:.0f} s so far, about {self._left(0)} left")

    def tick(self, fraction: float) -> None:
        """Part of the current task is done (redrawn on a terminal at most 5 times a second)."""
        now = time.perf_counter()
        if self.tty and now - self.last_draw > 0.2:
            self.last_draw = now
            name = self.tasks[self.i][0]
            self._draw(
                f"[{self.i + 1}/{len(self.tasks)}] {name} {100 * fraction:3.0f}%: "
                f"{now - self.t0:.0f} s so far, about {self._left(fraction)} left"
            )

    def finish(self, i: int) -> None:
        self.done_guess += self.tasks[i][1]
        self.done_real += time.perf_counter() - self.task_t0

    def close(self) -> None:
        self._draw(f"done in {time.perf_counter() - self.t0:.1f} s ({len(self.tasks)} op and shape pairs)", final=True)


def _guess_seconds(
    set_name: str, op: str, s: Any, rounds: int, warmup_s: float, sample_s: float, min_warm_calls: int
) -> float:
    """A rough cost of timing ``op`` on ``s``: each case at 30 GFLOP/s or 2 GB/s plus 20 µs a call."""
    work, unit = _work(op, s)
    t = 20e-6 + (work / 30e9 if unit == "flop" else work / 2e9)
    per_case = max(warmup_s, min_warm_calls * t) + 2 * t + rounds * (t + max(t, sample_s))
    return len(CASE_NAMES[set_name][op]) * per_case


def run(
    ops: list[str],
    shapes: list[str],
    rounds: int,
    *,
    set_name: str = "named",
    warmup_s: float = 0.03,
    sample_s: float = 0.001,
    memory: bool = True,
    min_warm_calls: int = 3,
    seed: int = 0,
    peak: dict[str, Any] | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time every op on every shape of ``set_name``; return a JSON-ready dict.

    Keys: ``env`` (:func:`environment`), ``set``, ``rounds``, ``peak`` (as given), ``results`` (one
    dict per op and shape, see :func:`summarize`) and ``summary`` (per op, see
    :func:`summaries`). ``progress`` writes counts and the time left to stderr; ``log`` gets one
    line per finished op and shape.
    """
    env = environment()
    results = []
    rng = random.Random(seed)
    todo = set_tasks(set_name, ops, shapes)
    mem = None
    if memory and memory_supported():
        if progress:
            print(f"measuring peak memory in a fresh process ({len(todo)} first calls)...", file=sys.stderr, flush=True)
        mem = memory_in_child(ops, shapes, seed, set_name, progress)
    catalogue = set_shapes(set_name)
    guesses = [
        (f"{op} on {name}", _guess_seconds(set_name, op, catalogue[name], rounds, warmup_s, sample_s, min_warm_calls))
        for op, name in todo
    ]
    bar = Progress(guesses) if progress else None
    for i, (op, name) in enumerate(todo):
        t0 = time.perf_counter()
        if bar:
            bar.start(i)
        cases = set_cases(set_name, op, name, seed)
        tick = (lambda k: bar.tick((1 + k) / (1 + rounds))) if bar else None  # noqa: E731
        timing = time_cases(cases, rounds, warmup_s, sample_s, rng, min_warm_calls, tick=tick)
        r = summarize(cases, timing)
        r["rounds"] = rounds
        if mem is not None:
            r["peak_extra_bytes"] = {n: mem[f"{op}/{name}/{n}"]["extra"] for n in (OURS, cases.ref)}
            r["output_bytes"] = {n: mem[f"{op}/{name}/{n}"]["output"] for n in (OURS, cases.ref)}
        results.append(r)
        if bar:
            bar.finish(i)
        if log:
            log(f"  {op:8s} {name:12s} {time.perf_counter() - t0:6.1f} s")
        del cases
    if bar:
        bar.close()
    data = {"env": env, "set": set_name, "rounds": rounds, "peak": peak, "results": results}
    data["summary"] = summaries(data)
    return data


# --- command line --------------------------------------------------------------------------------


def _names(value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {value!r}")
    return names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="im2col bench",
        description="Time im2col/col2im/convolution forward and backward against torch (and NumPy and "
        "the copy/GEMM floors), interleaved over many rounds in one process; print ours ÷ torch.",
    )
    p.add_argument("--quick", action="store_true", help="3 rounds, 1 warm-up call, no memory pass")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per shape (default 30, quick 3)")
    p.add_argument(
        "--set",
        dest="set_name",
        choices=SETS,
        default="named",
        help="named: the ten shapes of the tables in docs/performance.md (ops im2col, col2im, conv2d, "
        "backward); realistic: 23 layers of published networks (ops forward, backward, train)",
    )
    p.add_argument(
        "--shapes",
        type=_names,
        default=None,
        help=f"comma-separated (default: all of the set); named: {', '.join(SHAPES)}; realistic: the "
        "layers of im2col/_layers.py (cifar_res16, r50_3x3_s2, mbv2_dw, ...)",
    )
    p.add_argument("--ops", type=_names, default=None, help="comma-separated (default: all of the set)")
    p.add_argument(
        "--format",
        choices=["text", "markdown"],
        default="text",
        help="text: compact tables and a summary per op, 100 columns (default); markdown: every baseline",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="threads for ours, torch and NumPy's BLAS (default: as they are)"
    )
    p.add_argument("--json", metavar="PATH", help="also save every number (and raw samples) as JSON")
    p.add_argument("--plot", metavar="PATH", help="also save a PNG of ours ÷ torch per shape (needs matplotlib)")
    p.add_argument(
        "--memory",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure peak extra memory in a child process (default: yes, except with --quick)",
    )
    p.add_argument(
        "--peak",
        metavar="GFLOPS",
        type=float,
        default=None,
        help="the machine's FMA peak in GFLOP/s, instead of measuring it with benchmarks/fma_peak.py",
    )
    p.add_argument("--no-peak", action="store_true", help="do not measure the FMA peak (no fraction of it shown)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs and the case order")
    p.add_argument("--_memory-child", dest="memory_child", action="store_true", help=argparse.SUPPRESS)
    return p


def _pick(p: argparse.ArgumentParser, given: list[str] | None, allowed: list[str], what: str, set_name: str) -> list:
    if given is None:
        return list(allowed)
    bad = [n for n in given if n not in allowed]
    if bad:
        p.error(f"unknown {what} {', '.join(bad)} in the {set_name} set; choose from {', '.join(allowed)}")
    return given


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``im2col bench`` / ``python -m im2col.bench``; returns the exit status."""
    p = _parser()
    args = p.parse_args(argv)
    ops = _pick(p, args.ops, set_ops(args.set_name), "op", args.set_name)
    shapes = _pick(p, args.shapes, list(set_shapes(args.set_name)), "shape", args.set_name)
    if args.rounds is not None and args.rounds < 1:
        print(f"im2col bench: --rounds must be at least 1, got {args.rounds}", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print(f"im2col bench: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    if args.peak is not None and not args.peak > 0:
        print(f"im2col bench: --peak must be a positive GFLOP/s figure, got {args.peak}", file=sys.stderr)
        return 2
    say = (lambda m: None) if args.no_progress else (lambda m: print(m, file=sys.stderr, flush=True))  # noqa: E731
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("im2col bench: --plot needs matplotlib: pip install 'im2col[plot]'", file=sys.stderr)
            return 2
    if not args.memory_child:
        say("im2col bench: loading torch...")
    try:
        import torch
    except ImportError as e:
        print(f"im2col bench needs torch ({e}); pip install 'im2col[bench]'", file=sys.stderr)
        return 2
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None

    import im2col

    limiter, torch_threads = None, torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        im2col.set_num_threads(args.threads)
        if threadpoolctl is not None:
            limiter = threadpoolctl.threadpool_limits(args.threads, user_api="blas")
        else:
            say("im2col bench: threadpoolctl is not installed, so NumPy's BLAS keeps its own thread count")
    rounds = args.rounds or (3 if args.quick else 30)
    warmup_s, min_warm_calls = (0.0, 1) if args.quick else (0.05, 3)
    command = "im2col bench " + " ".join(sys.argv[1:] if argv is None else argv)
    memory = not args.quick if args.memory is None else args.memory
    t0 = time.perf_counter()
    try:
        if args.memory_child:  # the memory pass of run(), at the timed thread counts: JSON on stdout
            json.dump(measure_memory(ops, shapes, args.seed, set_name=args.set_name, log=say), sys.stdout)
            return 0
        if args.peak is not None:
            peak = {"gflops": args.peak, "threads": im2col.get_num_threads(), "how": "given with --peak"}
        elif args.no_peak or not any(op in ("conv2d", "backward", "forward", "train") for op in ops):
            peak = None
        else:
            say("measuring the FMA peak with benchmarks/fma_peak.py (a few seconds)...")
            peak = fma_peak(im2col.get_num_threads())
        data = run(
            ops, shapes, rounds, set_name=args.set_name, warmup_s=warmup_s, memory=memory, seed=args.seed,
            min_warm_calls=min_warm_calls, peak=peak, progress=not args.no_progress,
        )  # fmt: skip
    finally:
        if args.threads is not None:  # main() may run inside another program (tests, notebooks)
            if limiter is not None:
                limiter.restore_original_limits()
            torch.set_num_threads(torch_threads)
            im2col.set_num_threads(None)
    data["command"] = command.strip()
    data["wall_s"] = time.perf_counter() - t0
    data["loadavg_at_end"] = _loadavg()
    if args.format == "markdown":
        print(format_report(data, data["command"]) + f"\n(total {data['wall_s']:.1f} s)")
    else:
        print(format_text(data), end="")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    if args.plot:
        plot_ratios(data, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
