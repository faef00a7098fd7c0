"""Per-call cost of ``im2col.nn`` against ``torch.nn`` on tiny layers: forward + backward with autograd.

On a 1×1×5×5 input the work is a few hundred flops, so what this measures is the fixed cost of a call:
module and argument handling, the way into the operator (autograd.Function or torch.library custom op),
the tensor ↔ array conversions and the kernels' own entry. Both sides run in one process, interleaved
round by round; the figure reported is the median over rounds of the per-round ratio ours / torch.

    python benchmarks/nn_overhead.py              # 25 rounds of 300 steps per case
    python benchmarks/nn_overhead.py --threads 1  # torch and the kernels on one thread
    python benchmarks/nn_overhead.py --quick      # 3 rounds of 50 steps (a smoke run)

Wall-clock ratios on a shared machine move with the load (torch's OpenMP pool suffers most when the
other core is busy). For a figure that does not, ``--callgrind FILE`` counts instructions per step
(callgrind's Ir, each side's loop alone, an empty loop's count subtracted) under

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=FILE \
        python benchmarks/nn_overhead.py --callgrind FILE --steps 200
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import time

import torch

import im2col
import im2col.nn
from im2col._bench_measure import cpu_model

#: name -> (module factory arguments, input shape); the layers are built twice, ours and torch's
CASES = {
    "Conv2d(1, 1, 3) on 1×1×5×5": ("Conv2d", (1, 1, 3), (1, 1, 5, 5)),
    "Conv2d(3, 8, 3, p1) on 4×3×8×8": ("Conv2d", (3, 8, 3, 1, 1), (4, 3, 8, 8)),
    "Conv1d(2, 4, 3) on 1×2×16": ("Conv1d", (2, 4, 3), (1, 2, 16)),
    "ConvTranspose2d(1, 1, 3) on 1×1×5×5": ("ConvTranspose2d", (1, 1, 3), (1, 1, 5, 5)),
    "ConvTranspose1d(2, 4, 3) on 1×2×16": ("ConvTranspose1d", (2, 4, 3), (1, 2, 16)),
    "Conv3d(1, 1, 3) on 1×1×5×5×5": ("Conv3d", (1, 1, 3), (1, 1, 5, 5, 5)),
}


def _step(module: torch.nn.Module, x: torch.Tensor) -> None:
    module(x).sum().backward()


def _callgrind(*args: str) -> None:
    """Send a command to the callgrind this process runs under (and wait for it to be done: callgrind
    reads its commands while the program runs, so this spins rather than sleeps)."""
    p = subprocess.Popen(["callgrind_control", *args, str(os.getpid())], stdout=subprocess.DEVNULL)
    while p.poll() is None:
        pass


def _instructions(out_file: str, loop, steps: int) -> float:
    """Instructions callgrind counts in ``loop()`` of ``steps`` steps, per step."""
    _callgrind("-z")
    loop()
    _callgrind("-d")
    # callgrind's dumps are FILE.1, FILE.2, ...: other files that merely start with FILE. are not
    dumps = [f for f in glob.glob(out_file + ".*") if f.rsplit(".", 1)[1].isdigit()]
    last = max(dumps, key=lambda f: int(f.rsplit(".", 1)[1]))
    with open(last) as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("summary:"))
    return total / steps


def _count(out_file: str, steps: int) -> dict[str, tuple[float, float, float]]:
    print(f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads; callgrind, {steps} steps")
    print("| layer (forward + backward) | im2col.nn instructions | torch.nn instructions | ratio |")
    print("|---|---|---|---|")
    _callgrind("-i", "on")
    empty = _instructions(out_file, lambda: [None for _ in range(steps)], steps)
    results = {}
    for name, (ours, twin, x) in _cases():
        a, b = (_instructions(out_file, lambda m=m: _loop(m, x, steps), steps) - empty for m in (ours, twin))
        results[name] = (a, b, a / b)
        print(f"| {name} | {a / 1e3:.0f}k | {b / 1e3:.0f}k | {a / b:.2f}× |")
    return results


def _cases():
    """(name, (our module, torch's twin with the same parameters, input)) per case, warmed up."""
    for name, (cls, ctor, shape) in CASES.items():
        torch.manual_seed(0)
        ours = getattr(im2col.nn, cls)(*ctor)
        twin = getattr(torch.nn, cls)(*ctor)
        twin.load_state_dict(ours.state_dict())
        x = torch.randn(shape, requires_grad=True)
        for m in (ours, twin):  # warm up: plans, allocator, autograd graph caches
            _loop(m, x, 20)
        yield name, (ours, twin, x)


def _loop(module, x, steps: int) -> None:
    for _ in range(steps):
        _step(module, x)


def _time(module, x, steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        _step(module, x)
    return (time.perf_counter() - t) / steps


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 50 steps: a smoke run")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="threads for torch and for the kernels")
    parser.add_argument("--callgrind", metavar="FILE", help="count instructions (run under callgrind, see above)")
    args = parser.parse_args(argv)
    rounds, steps = (3, 50) if args.quick else (args.rounds, args.steps)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        im2col.set_num_threads(args.threads)
    if args.callgrind:
        return _count(args.callgrind, args.steps)
    print(
        f"{cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{rounds} rounds × {steps} steps, medians"
    )
    print("| layer (forward + backward) | im2col.nn µs | torch.nn µs | ratio |")
    print("|---|---|---|---|")
    results = {}
    for name, (ours, twin, x) in _cases():
        a, b, ratios = [], [], []
        for _ in range(rounds):
            ta, tb = _time(ours, x, steps), _time(twin, x, steps)
            a.append(ta)
            b.append(tb)
            ratios.append(ta / tb)
        results[name] = (statistics.median(a) * 1e6, statistics.median(b) * 1e6, statistics.median(ratios))
        print(f"| {name} | {results[name][0]:.1f} | {results[name][1]:.1f} | {results[name][2]:.2f}× |")
    return results


if __name__ == "__main__":
    main()
