"""What :mod:`im2col.bench` prints: a compact terminal view, full markdown tables, a picture.

* :func:`format_text` (the default): per op a table of shape, our time, torch's time and their ratio
  (with GFLOP/s for convolutions), then one summary line: the geometric mean of the ratios, the
  best and the worst shape. It fits 100 columns.
* :func:`format_report` (``--format markdown``): every baseline (NumPy, the copy and GEMM floors),
  first calls, goals and memory, one table per op and number of dimensions.
* :func:`plot_ratios` (``--plot PATH``): the ratios per shape, one panel per op, on a log scale.

:func:`summaries` computes the per-op summary both views (and the JSON) show.

>>> from im2col._bench_report import geomean, fmt_time
>>> round(geomean([0.5, 2.0]), 6)
1.0
>>> fmt_time(1234.0), fmt_time(2.5e7)
('1.23 µs', '25 ms')
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Hashable
from typing import Any

from ._bench_cases import OURS, SET_GOALS, nd
from ._layers import REALISTIC

__all__ = ["TITLES", "WIDTH", "format_report", "format_text", "geomean", "plot_ratios", "summaries"]

#: The widest line :func:`format_text` prints.
WIDTH = 100

#: Table titles (markdown view) per op of the named set.
TITLES = {
    "im2col": "im2col (ours) vs torch unfold",
    "col2im": "col2im (ours) vs torch fold",
    "conv2d": "conv2d forward",
    "backward": "conv2d backward (grad input + grad weight)",
}

#: Titles of the compact view, in plain words.
PLAIN_TITLES = {
    "im2col": "im2col (unrolling patches into columns): ours vs torch's unfold",
    "col2im": "col2im (folding columns back, summing overlaps): ours vs torch's fold",
    "conv2d": "convolution forward: ours vs torch's conv1d/conv2d/conv3d",
    "backward": "convolution backward (input and weight gradients): ours vs torch autograd",
    "forward": "convolution forward: ours vs torch.nn.functional",
}

REALISTIC_TITLES = {
    "forward": "realistic layers, forward: ours vs torch.nn.functional",
    "backward": "realistic layers, backward (grad input + grad weight, torch.autograd.grad on both sides)",
    "train": "realistic layers, forward + backward with autograd: im2col.nn vs torch.nn.functional",
}


PLOT_TITLES = {
    "im2col": "im2col vs torch unfold",
    "col2im": "col2im vs torch fold",
    "conv2d": "convolution forward vs torch",
    "backward": "convolution backward (grad input + grad weight) vs torch autograd",
    "forward": "convolution forward vs torch",
    "train": "forward + backward with autograd: im2col.nn vs torch",
}


def geomean(values: list[float]) -> float:
    """The geometric mean: the typical ratio, where 2× slower and 2× faster cancel out."""
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def fmt_time(ns: float) -> str:
    """A duration in ns as a short string with three significant digits."""
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.3g} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e9:.3g} s"


def _rate(r: dict[str, Any], case: str = OURS) -> float:
    """Work per second of ``case`` (flop/s or column-matrix bytes/s)."""
    return r["work"] / (r["median_ns"][case] / 1e9)


def _fmt_rate(r: dict[str, Any]) -> str:
    per_s = _rate(r)
    return f"{per_s / 1e9:.3g} GFLOP/s" if r["work_unit"] == "flop" else f"{per_s / 1e9:.3g} GB/s"


def _mib(b: float) -> str:
    return f"{b / 2**20:.3g}"


def _ratio(v: float) -> str:
    return f"{v:.2f}×" if v >= 0.1 else f"{v:.2g}×"


def _gflops(g: float) -> str:
    return f"{g:.0f}" if g >= 10 else f"{g:.2g}"


def _pct(fraction: float | None) -> str:
    return "" if fraction is None else f"{100 * fraction:.0f}%"


def _by_op(
    results: list[dict[str, Any]], key: Callable[[dict[str, Any]], Hashable] = lambda r: r["op"]
) -> dict[Any, list[dict[str, Any]]]:
    """The results grouped by ``key`` (the op by default): groups and their rows in run order."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    return groups


# --- the summary -----------------------------------------------------------------------------------


def summaries(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per op: the geomean of ours/torch over the shapes, the best and worst shape, GFLOP/s.

    ``GFLOP/s`` over the set is the total work over the total of the median times (so large layers
    weigh more, as in a network); ``peak_fraction`` divides it by the FMA peak when one is known.
    On the realistic set, when every layer ran, ``goal`` says whether issue 10's goal is met.

    Parameters
    ----------
    data : dict
        What :func:`im2col.bench.run` returns: ``results`` (and optionally ``peak`` and ``set``).

    Returns
    -------
    list of dict
        One per op, in the order the results come: ``op``, ``shapes``, ``geomean``, ``best`` and
        ``worst`` (``{"shape", "ratio"}``), and for convolutions ``gflops_ours``, ``gflops_torch``,
        ``peak_fraction_ours``, ``peak_fraction_torch``.

    Examples
    --------
    >>> from im2col._bench_report import summaries
    >>> row = lambda name, ratio: {"op": "conv2d", "shape": name, "baseline": "torch conv2d",
    ...     "ratio_ours_over": {"torch conv2d": ratio}, "work_unit": "flop", "work": 1e9,
    ...     "median_ns": {"ours": 1e7 * ratio, "torch conv2d": 1e7}}
    >>> (s,) = summaries({"results": [row("a", 0.5), row("b", 2.0)], "peak": {"gflops": 200.0}})
    >>> s["geomean"], s["best"], s["worst"]["shape"]
    (1.0, {'shape': 'a', 'ratio': 0.5}, 'b')
    >>> round(s["gflops_torch"]), round(s["peak_fraction_torch"], 2)
    (100, 0.5)
    """
    peak = (data.get("peak") or {}).get("gflops")
    out = []
    for op, rs in _by_op(data["results"]).items():
        ratios = [(r["ratio_ours_over"][r["baseline"]], r["shape"]) for r in rs]
        best, worst = min(ratios), max(ratios)
        s: dict[str, Any] = {
            "op": op,
            "shapes": len(rs),
            "baseline": "torch",
            "geomean": geomean([v for v, _ in ratios]),
            "best": {"shape": best[1], "ratio": best[0]},
            "worst": {"shape": worst[1], "ratio": worst[0]},
        }
        if rs[0]["work_unit"] == "flop":
            work = sum(r["work"] for r in rs)
            for key in ("ours", "torch"):
                seconds = sum(r["median_ns"][OURS if key == "ours" else r["baseline"]] for r in rs) / 1e9
                s[f"gflops_{key}"] = work / seconds / 1e9
                s[f"peak_fraction_{key}"] = s[f"gflops_{key}"] / peak if peak else None
        # The goal is over the whole set: a subset's geomean says nothing about it.
        if data.get("set") == "realistic" and op in SET_GOALS and {r["shape"] for r in rs} == set(REALISTIC):
            g, w = SET_GOALS[op]
            s["goal"] = {"geomean_at_most": g, "worst_at_most": w, "pass": s["geomean"] <= g and worst[0] <= w}
        out.append(s)
    return out


def _summary_lines(s: dict[str, Any], what: str) -> list[str]:
    lines = [
        f"geomean {_ratio(s['geomean'])} over {s['shapes']} {what}; best {_ratio(s['best']['ratio'])} "
        f"({s['best']['shape']}), worst {_ratio(s['worst']['ratio'])} ({s['worst']['shape']})"
    ]
    if "gflops_ours" in s:
        line = f"all {what} together: ours {_gflops(s['gflops_ours'])} GFLOP/s"
        if s.get("peak_fraction_ours") is not None:
            line += f" ({_pct(s['peak_fraction_ours'])} of the FMA peak)"
        line += f", torch {_gflops(s['gflops_torch'])}"
        if s.get("peak_fraction_torch") is not None:
            line += f" ({_pct(s['peak_fraction_torch'])})"
        lines.append(line)
    return lines


# --- the compact view --------------------------------------------------------------------------


def _header_text(data: dict[str, Any]) -> list[str]:
    env = data["env"]
    load = env.get("loadavg_at_start")
    peak = data.get("peak") or {}
    lines = [
        f"im2col bench: {data.get('set', 'named')} shapes, {data['rounds']} rounds, {env['date']}",
        f"CPU: {env['cpu']} ({env['logical_cpus']} logical CPUs)"
        + (f", load average {load[0]:g} at start" if load else ""),
        f"threads: ours {env['threads_ours']}, torch {env['threads_torch']}; im2col {env['im2col']}, "
        f"torch {env['torch']}, numpy {env['numpy']}, Python {env['python']}",
    ]
    if peak.get("gflops"):
        how = f"{peak['isa']}, measured by benchmarks/fma_peak.py" if peak.get("isa") else peak.get("how", "given")
        lines.append(f"FMA peak: {peak['gflops']:.0f} GFLOP/s on {peak['threads']} threads ({how})")
    elif peak.get("why"):
        lines.append(f"FMA peak not measured ({peak['why']}): GFLOP/s shown without a fraction of it")
    if load and env.get("logical_cpus") and load[0] > env["logical_cpus"]:
        lines.append(
            f"Note: the load average ({load[0]:g}) is above the number of CPUs: other programs are "
            "competing for them, so the times are noisy (ratios less so, as the cases alternate)."
        )
    lines.append("ratio = our time / torch's time, the median of the per-round ratios: below 1 ours is faster.")
    return lines


def _fit(line: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False) or [""]


def format_text(data: dict[str, Any], width: int = WIDTH) -> str:
    """The default terminal view: per op a compact table and a summary line, ``width`` columns.

    Parameters
    ----------
    data : dict
        What :func:`im2col.bench.run` returns (with ``summary``; computed here when missing).
    width : int, default 100
        The longest line allowed; shape labels are shortened to fit.

    Returns
    -------
    str
        Plain text, one table per op.
    """
    peak = (data.get("peak") or {}).get("gflops")
    realistic = data.get("set") == "realistic"
    what = "layers" if realistic else "shapes"
    summary = {s["op"]: s for s in (data.get("summary") or summaries(data))}
    lines = [ln for h in _header_text(data) for ln in _fit(h, width)]
    for op, rs in _by_op(data["results"]).items():
        flops = rs[0]["work_unit"] == "flop"
        title = (REALISTIC_TITLES if realistic else PLAIN_TITLES).get(op, op)
        name_w = max(len(r["shape"]) for r in rs)
        rest = 2 + name_w + 2 + (10 + 10 + 8) + (17 if flops else 0)
        label_w = max(5, min(max(len(r["shape_label"]) for r in rs), width - rest))
        head = f"  {'shape':<{name_w + 2 + label_w}}{'ours':>10}{'torch':>10}{'ratio':>8}"
        if flops:
            head += f"{'ours GFLOP/s':>17}"
        lines += ["", *_fit(title, width), head]
        for r in rs:
            label = r["shape_label"]
            if len(label) > label_w:
                label = label[: label_w - 1] + "…"
            ref = r["baseline"]
            row = (
                f"  {r['shape']:<{name_w}}  {label:<{label_w}}{fmt_time(r['median_ns'][OURS]):>10}"
                f"{fmt_time(r['median_ns'][ref]):>10}{_ratio(r['ratio_ours_over'][ref]):>8}"
            )
            if flops:
                g = _rate(r) / 1e9
                row += f"{_gflops(g):>10}" + (f" ({_pct(g / peak):>4})" if peak else "")
            lines.append(row)
        for s in _summary_lines(summary[op], what):
            lines += _fit("  " + s, width)
    if peak and any(_rate(r) / 1e9 > peak for r in data["results"] if r["work_unit"] == "flop"):
        lines += [""] + _fit(
            "Note: some rates are above the measured FMA peak, so the peak was measured while other "
            "programs were using the CPU; give one measured on a quiet machine with --peak GFLOPS.",
            width,
        )
    lines += [""] + _fit(
        "More: --format markdown (every baseline, first calls, goals), --json PATH, --plot PATH.", width
    )
    return "\n".join(lines) + "\n"


# --- the markdown view -------------------------------------------------------------------------------


def format_report(data: dict[str, Any], command: str = "") -> str:
    """Markdown: a header with the environment, then one table per op (and per dimension count)."""
    env = data["env"]
    realistic = data.get("set") == "realistic"
    blas = (
        ", ".join(
            f"{p['internal_api']}{' ' + p['version'] if p.get('version') else ''} "
            f"({p['user_api']}, {p['num_threads']} threads)"
            for p in env["threadpools"]
        )
        if env.get("threadpools") is not None
        else "unknown (threadpoolctl is not installed)"
    )
    peak = data.get("peak") or {}
    lines = [
        f"# im2col benchmark — {env['date']}",
        "",
        f"- command: `{command}`" if command else "",
        f"- CPU: {env['cpu']} ({env['logical_cpus']} logical CPUs); load average "
        f"{env.get('loadavg_at_start')} at start, {data.get('loadavg_at_end')} at the end",
        f"- threads: ours {env['threads_ours']} (OpenMP), torch {env['threads_torch']}, "
        f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']}",
        f"- versions: im2col {env['im2col']}, numpy {env['numpy']}, torch {env['torch']}, python {env['python']}",
        f"- thread pools loaded: {blas}; our GEMM calls: {env['ours_gemm_blas']}",
        (
            f"- FMA peak: {peak['gflops']:.1f} GFLOP/s ({peak.get('how', 'given with --peak')})"
            if peak.get("gflops")
            else (f"- FMA peak: not measured ({peak['why']})" if peak.get("why") else "")
        ),
        "- cases run interleaved in one process (random order per round), so one library's "
        "spinning idle threads can slow the next call of another: that is measured, not removed.",
        '- per round, each case\'s first call (right after another case: "ours 1st call") is timed '
        "apart from the steady calls that follow; times and ratios below are the steady ones.",
        "- ratio = median over rounds of (ours / baseline) in the same round: below 1× ours is "
        "faster. Baseline median time in brackets.",
    ]
    if any("peak_extra_bytes" in r for r in data["results"]):
        lines.append(
            "- extra MiB: peak RSS above the start during one first call in a fresh process "
            "(output included); * = below the output's size, so not trustworthy."
        )
    lines = [ln for ln in lines if ln != ""]
    summary = {s["op"]: s for s in (data.get("summary") or summaries(data))}
    # one table per op and number of dimensions (their cases differ)
    by_op = _by_op(data["results"], lambda r: (r["op"], 0 if realistic else r["geometry"].get("dims", 2)))
    for (op, dims), rs in by_op.items():
        ref = rs[0]["baseline"]
        bases = [n for n in rs[0]["median_ns"] if n != OURS]
        has_mem = all("peak_extra_bytes" in r for r in rs)
        has_goals = any(r["goals"] for r in rs) or not realistic
        head = ["shape", "cols MiB"] if not realistic else ["layer", "from"]
        head += ["ours", "rate"] + (["% of peak"] if peak.get("gflops") and rs[0]["work_unit"] == "flop" else [])
        head += ["ours 1st call"] + [f"÷ {b}" for b in bases] + (["goal"] if has_goals else [])
        if has_mem:
            head += [f"extra MiB ours / {ref}"]
        if realistic:
            title = REALISTIC_TITLES.get(op, op)
        else:
            title = nd(TITLES.get(op, op), dims) + ("" if dims == 2 else f", {dims}-D shapes")
        lines += ["", f"## {title} ({rs[0]['rounds']} rounds)", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for r in rs:
            cells = [f"{r['shape']} ({r['shape_label']})"]
            cells.append(r.get("source", "") if realistic else _mib(r["cols_bytes"]))
            cells += [fmt_time(r["median_ns"][OURS]), _fmt_rate(r)]
            if "% of peak" in head:
                cells.append(_pct(_rate(r) / 1e9 / peak["gflops"]))
            cells.append(fmt_time(r["median_first_call_ns"][OURS]))
            cells += [f"{r['ratio_ours_over'][b]:.2f}× ({fmt_time(r['median_ns'][b])})" for b in bases]
            if has_goals:
                goal = "; ".join(
                    f"{g['goal']}: **{'pass' if g['pass'] else 'miss'}**"
                    + (f" ({g['value']:.2f}×)" if "baseline" in g else f" ({g['value']:.3g} µs)")
                    for g in r["goals"]
                )
                cells.append(goal or "—")
            if has_mem:
                m, o = r["peak_extra_bytes"], r.get("output_bytes", {})
                # "*": below the output's own size, so the call reused already-resident pages.
                marks = {n: "*" if m[n] < 0.95 * o.get(n, 0) - 2**16 else "" for n in (OURS, ref)}
                cells.append(f"{_mib(m[OURS])}{marks[OURS]} / {_mib(m[ref])}{marks[ref]}")
            lines.append("| " + " | ".join(cells) + " |")
        if realistic or len(by_op) == len(summary):  # one table per op: its summary fits under it
            s = summary[op]
            lines += [""] + [f"{ln}." for ln in _summary_lines(s, "layers" if realistic else "shapes")]
            if "goal" in s:
                g = s["goal"]
                lines.append(
                    f"Goal over the set (issue 10): geomean ≤ {g['geomean_at_most']:g}× and no layer above "
                    f"{g['worst_at_most']:g}×: **{'met' if g['pass'] else 'missed'}**."
                )
    if not realistic and len(by_op) != len(summary):
        lines += ["", "## Summary per op (ours ÷ torch, all shapes)", ""]
        for s in summary.values():
            lines.append(f"- {s['op']}: " + "; ".join(_summary_lines(s, "shapes")))
    return "\n".join(lines) + "\n"


# --- the picture ---------------------------------------------------------------------------------------


def plot_ratios(data: dict[str, Any], path: str) -> None:
    """Save a PNG of ours ÷ torch per shape: one panel per op, log scale, a line at 1 (parity).

    Uses matplotlib's Agg canvas directly, so it changes no global backend (safe in notebooks).
    Raises ImportError when matplotlib is missing.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    summary = {s["op"]: s for s in (data.get("summary") or summaries(data))}
    by_op = _by_op(data["results"])
    n = max(len(rs) for rs in by_op.values())
    fig = Figure(figsize=(max(8.0, 0.42 * n + 2), 2.6 * len(by_op) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(by_op), 1, squeeze=False)[:, 0]
    for ax, (op, rs) in zip(axes, by_op.items()):
        ratios = [r["ratio_ours_over"][r["baseline"]] for r in rs]
        names = [r["shape"] for r in rs]
        colors = ["tab:green" if v < 1 else "tab:red" for v in ratios]
        # Bars start at parity (1×) and go down when ours is faster, up when slower.
        ax.bar(range(len(rs)), [v - 1 for v in ratios], bottom=1.0, color=colors)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axhline(1.0, color="black", linewidth=1)
        gm = summary[op]["geomean"]
        ax.axhline(gm, color="tab:blue", linestyle="--", linewidth=1, label=f"geomean {gm:.2f}×")
        ax.set_xticks(range(len(rs)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("ours ÷ torch")
        title = PLOT_TITLES.get(op, op) + (" (realistic layers)" if data.get("set") == "realistic" else "")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
        lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
        ax.set_ylim(lo / 1.5, hi * 1.5)
    env = data["env"]
    fig.suptitle(f"im2col bench: below 1 ours is faster ({env['cpu']}, {env['threads_ours']} threads)", fontsize=10)
    fig.savefig(path, dpi=110)
