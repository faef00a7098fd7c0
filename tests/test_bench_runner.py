"""The benchmark runner (im2col.bench) runs in-process on tiny settings and reports its compact view,
its markdown tables, its JSON and its picture in the documented structure. Timings are not checked:
only that they exist and are sane (performance is never asserted)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from im2col import bench  # noqa: E402
from im2col._bench_cases import set_shapes  # noqa: E402
from im2col._bench_report import _ratio  # noqa: E402


@pytest.fixture(scope="module")
def teaching_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "out.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        status = bench.main(
            [
                "--quick",
                "--shapes",
                "teaching",
                "--rounds",
                "2",
                "--no-memory",
                "--no-peak",
                "--format",
                "markdown",
                "--json",
                str(path),
            ]  # fmt: skip
        )
    return status, buf.getvalue(), json.loads(path.read_text())


def test_exit_status_and_one_table_per_op(teaching_run):
    status, text, _ = teaching_run
    assert status == 0
    for op in bench.OPS:
        assert f"## {bench.TITLES[op]} (2 rounds)" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| teaching (1×1×5×5, 1 3×3 p2)")]
    assert len(rows) == len(bench.OPS)


def test_header_reports_threads_versions_and_cpu(teaching_run):
    _, text, data = teaching_run
    assert "- threads: ours " in text and ", torch " in text
    assert "numpy " + data["env"]["numpy"] in text and "torch " + data["env"]["torch"] in text
    assert "- CPU: " in text
    assert data["command"].startswith("im2col bench --quick --shapes teaching")


def test_table_columns_match_cases(teaching_run):
    _, text, _ = teaching_run
    lines = text.splitlines()
    for op in bench.OPS:
        head = lines[lines.index(f"## {bench.TITLES[op]} (2 rounds)") + 2]
        cols = [c.strip() for c in head.strip("|").split("|")]
        assert cols[:5] == ["shape", "cols MiB", "ours", "rate", "ours 1st call"]
        assert f"÷ {bench.TORCH_REF[op]}" in cols and "goal" in cols
        row = lines[lines.index(head) + 2]
        assert row.count("|") == head.count("|")


def test_json_structure(teaching_run):
    _, _, data = teaching_run
    assert set(data) >= {"env", "results", "command", "wall_s"}
    assert {"threads_ours", "threads_torch", "numpy", "torch", "cpu", "threadpools"} <= set(data["env"])
    assert [r["op"] for r in data["results"]] == bench.OPS
    for r in data["results"]:
        assert r["shape"] == "teaching" and r["rounds"] == 2
        assert set(r["samples_ns"]) == set(r["median_ns"]) and bench.OURS in r["median_ns"]
        assert all(len(v) == 2 and all(t > 0 for t in v) for v in r["samples_ns"].values())
        assert set(r["ratio_ours_over"]) == set(r["median_ns"]) - {bench.OURS}
        assert all(v > 0 for v in r["ratio_ours_over"].values())
        for g in r["goals"]:
            assert isinstance(g["pass"], bool) and g["value"] > 0
    im2col_goals = [g["goal"] for g in data["results"][0]["goals"]]
    assert im2col_goals == ["≤ 0.25× torch unfold", "≤ 1.3× copy floor", "< 10 µs per call"]


@pytest.mark.skipif(not bench.memory_supported(), reason="needs Linux /proc/self/clear_refs")
def test_memory_pass_measures_ours_and_torch():
    # In-process here; run() does the same in a fresh child process (spawning one costs ~2 s).
    mem = bench.measure_memory(["im2col"], ["seed"])
    assert set(mem) == {"im2col/seed/ours", "im2col/seed/torch unfold"}
    cols = bench.SHAPES["seed"].cols_bytes()
    for v in mem.values():
        assert v["output"] == cols and v["extra"] >= 0


def test_column_matrix_sizes_match_the_issue():
    mib = lambda name: bench.SHAPES[name].cols_bytes() / 2**20  # noqa: E731
    assert round(mib("stem")) == 56 and round(mib("vgg")) == 110


def test_peak_extra_bytes_sees_an_allocation():
    import numpy as np

    if not bench.memory_supported():
        pytest.skip("Linux only")
    extra = bench.peak_extra_bytes(lambda: np.ones(8 * 2**20, np.uint8))
    assert 7 * 2**20 < extra < 12 * 2**20


def test_ops_and_shapes_options(capsys):
    assert (
        bench.main(
            [
                "--shapes",
                "teaching",
                "--ops",
                "im2col",
                "--rounds",
                "1",
                "--no-memory",
                "--threads",
                "1",
                "--format",
                "markdown",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("\n## ") == 1 and "extra MiB" not in out
    with pytest.raises(SystemExit) as e:
        bench.main(["--shapes", "nope"])
    assert e.value.code == 2
    assert "unknown shape nope" in capsys.readouterr().err


def test_1d_and_3d_shapes_get_their_own_tables_without_col2im(capsys):
    assert bench.main(["--quick", "--shapes", "teaching,seq1d", "--ops", "col2im,conv2d", "--rounds", "1",
                       "--no-memory", "--no-peak", "--format", "markdown"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "## col2im (ours) vs torch fold (1 rounds)" in out and "| seq1d (" in out
    assert out.count("| seq1d (16×64×1024, 64 5 p2)") == 1  # conv only: no col2im on 1-D shapes
    assert "## conv1d forward, 1-D shapes (1 rounds)" in out and "÷ torch conv1d" in out
    assert bench.SHAPES["vol3d"].label == "2×16×16×16×16, 32 3×3×3 p1"


def test_module_runs_as_a_script():
    r = subprocess.run([sys.executable, "-m", "im2col.bench", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--quick" in r.stdout and "--json" in r.stdout


# --- the default (compact) view -------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """The default view on two tiny shapes, with a given peak (so no compiler run)."""
    import contextlib
    import io

    path = tmp_path_factory.mktemp("bench") / "out.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = bench.main(["--quick", "--shapes", "teaching,seq1d", "--rounds", "1", "--no-memory", "--peak", "10000",
                             "--json", str(path)])  # fmt: skip
    return status, out.getvalue(), err.getvalue(), json.loads(path.read_text())


def test_default_view_fits_100_columns_in_plain_words(text_run):
    status, text, _, _ = text_run
    assert status == 0
    assert max(len(line) for line in text.splitlines()) <= bench.WIDTH == 100
    for jargon in ("floor", "÷", "|", "**"):  # no markdown, no internal terms in the default view
        assert jargon not in text
    assert "ratio = our time / torch's time" in text and "FMA peak: 10000 GFLOP/s" in text


def test_default_view_has_a_compact_table_and_a_summary_per_op(text_run):
    _, text, _, data = text_run
    lines = text.splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.split()[:4] == ["shape", "ours", "torch", "ratio"]]
    assert len(heads) == len(bench.OPS)
    summary = re.compile(
        r"^  geomean ([\d.e-]+)× over (\d) shapes; best [\d.e-]+× \((\w+)\), worst [\d.e-]+× \((\w+)\)$"
    )
    found = [m for m in map(summary.match, lines) if m]
    assert [int(m[2]) for m in found] == [2, 1, 2, 2]  # col2im: 2-D shapes only
    by_op = {s["op"]: s for s in data["summary"]}
    for m, op in zip(found, bench.OPS):
        s = by_op[op]
        assert m[1] + "×" == _ratio(s["geomean"]) and m[3] == s["best"]["shape"] and m[4] == s["worst"]["shape"]
        ratios = [r["ratio_ours_over"][r["baseline"]] for r in data["results"] if r["op"] == op]
        assert s["best"]["ratio"] == min(ratios) and s["worst"]["ratio"] == max(ratios)
        assert min(ratios) * (1 - 1e-12) <= s["geomean"] <= max(ratios) * (1 + 1e-12)  # exp∘log rounds
    # the rows under the first table: one per shape, with ours, torch and the ratio
    assert lines[heads[0] + 1].split()[0] == "teaching" and lines[heads[0] + 2].split()[0] == "seq1d"
    assert "all shapes together: ours " in text and "of the FMA peak" in text


def test_progress_on_stderr_with_counts_and_time_left(text_run):
    _, _, err, data = text_run
    lines = err.splitlines()
    assert lines[0] == "im2col bench: loading torch..."
    steps = [ln for ln in lines if ln.startswith("[")]
    n = len(data["results"])
    assert len(steps) == n and steps[0].startswith(f"[1/{n}] im2col on teaching: ") and "left" in steps[0]
    assert lines[-1].startswith("done in ") and lines[-1].endswith(f" s ({n} op and shape pairs)")


def test_json_has_the_summary_set_and_peak(text_run):
    _, _, _, data = text_run
    assert {"env", "set", "rounds", "peak", "results", "summary", "command", "wall_s"} <= set(data)
    assert data["set"] == "named" and data["rounds"] == 1 and data["peak"]["gflops"] == 10000
    assert [s["op"] for s in data["summary"]] == bench.OPS
    for s in data["summary"]:
        assert {"geomean", "best", "worst", "shapes", "baseline"} <= set(s)
        if s["op"] in ("conv2d", "backward"):
            assert s["peak_fraction_ours"] == pytest.approx(s["gflops_ours"] / 10000)


def test_format_text_shortens_long_labels_to_the_width(text_run):
    _, _, _, data = text_run
    narrow = bench.format_text(data, width=70)
    assert max(len(line) for line in narrow.splitlines()) <= 70 and "…" in narrow


def test_rates_above_the_peak_are_flagged(text_run):
    _, text, _, data = text_run
    assert "above the measured FMA peak" not in text  # 10 TFLOP/s: beyond any 2-core machine
    low = dict(data, peak={"gflops": 1e-9, "threads": 2}, summary=None)
    assert "Note: some rates are above the measured FMA peak" in bench.format_text(low)


def test_progress_counts_and_estimates():
    import io

    stream = io.StringIO()
    p = bench.Progress([("a", 1.0), ("b", 3.0)], stream)
    p.start(0)
    p.finish(0)
    p.start(1)
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/2] a: 0 s so far, about 4 s left")
    assert (
        lines[1].startswith("[2/2] b: ") and lines[1].endswith("left") and lines[2].endswith("(2 op and shape pairs)")
    )


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.png"
    args = ["--quick", "--shapes", "teaching", "--ops", "im2col,conv2d", "--rounds", "1", "--no-memory", "--no-peak"]
    assert bench.main([*args, "--plot", str(path), "--no-progress"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_realistic_set_smoke(tmp_path, capsys):
    """--set realistic on three small layers (2-D, 1-D and the transposed one), one round."""
    path = tmp_path / "r.json"
    assert bench.main(["--set", "realistic", "--quick", "--rounds", "1", "--shapes", "mid32,text1d,dcgan_up",
                       "--no-memory", "--peak", "50", "--json", str(path)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "realistic layers, forward" in text and "realistic layers, backward" in text
    assert text.count(" over 3 layers; best ") == 3 and text.count("of the FMA peak") == 3
    data = json.loads(path.read_text())
    assert data["set"] == "realistic" and [s["op"] for s in data["summary"]] == ["forward", "backward", "train"]
    assert {r["shape"] for r in data["results"]} == {"mid32", "text1d", "dcgan_up"}
    assert all("goal" not in s for s in data["summary"])  # the goal is over the whole set only
    md = bench.format_report(data)
    assert "Goal over the set" not in md and "| mid32 (32×32×16×16, 32 3×3 p1) | small CNN" in md


def _fake_results(ratios: list[float], op: str = "forward") -> list[dict]:
    names = list(set_shapes("realistic"))[: len(ratios)]
    return [
        {"op": op, "shape": n, "baseline": "torch", "ratio_ours_over": {"torch": v}, "work_unit": "flop",
         "work": 2e9, "median_ns": {"ours": 1e7 * v, "torch": 1e7}}
        for n, v in zip(names, ratios)
    ]  # fmt: skip


def test_summary_geomean_extremes_rates_and_the_set_goal():
    ratios = [0.5, 2.0] + [1.0] * 21
    (s,) = bench.summaries({"set": "realistic", "peak": {"gflops": 400.0}, "results": _fake_results(ratios)})
    assert s["geomean"] == pytest.approx(1.0) and s["shapes"] == 23
    assert s["best"] == {"shape": "cifar_res16", "ratio": 0.5} and s["worst"] == {"shape": "cifar_res32", "ratio": 2.0}
    assert s["gflops_torch"] == pytest.approx(200.0) and s["peak_fraction_torch"] == pytest.approx(0.5)
    assert s["gflops_ours"] == pytest.approx(23 * 2e9 / (23.5e7 * 1e-9) / 1e9)  # total flops / total time
    assert s["goal"] == {"geomean_at_most": 0.85, "worst_at_most": 1.25, "pass": False}
    (s,) = bench.summaries({"set": "realistic", "results": _fake_results([0.8] * 22 + [1.2])})
    assert s["goal"]["pass"] and s["peak_fraction_ours"] is None
    (s,) = bench.summaries({"set": "realistic", "results": _fake_results([0.8] * 22 + [1.3])})
    assert not s["goal"]["pass"]  # one layer above 1.25×


def test_realistic_set_is_the_23_layers_and_takes_its_own_ops(capsys):
    assert len(set_shapes("realistic")) == 23
    with pytest.raises(SystemExit) as e:
        bench.main(["--set", "realistic", "--ops", "im2col"])
    assert e.value.code == 2 and "unknown op im2col in the realistic set" in capsys.readouterr().err
    with pytest.raises(ValueError, match="op must be one of forward, backward, train"):
        bench.make_layer_cases("conv2d", set_shapes("realistic")["mid32"])


def test_bench_extra_lists_no_test_packages():
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parent.parent
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    name = lambda req: re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0].lower()  # noqa: E731
    bench_pkgs = {name(r) for r in extras["bench"]}
    assert bench_pkgs == {"torch", "threadpoolctl"}
    assert not bench_pkgs & ({name(r) for r in extras["test"]} - {"torch", "threadpoolctl"})


def test_runs_without_pytest_hypothesis_or_threadpoolctl():
    """The bench extra's path: none of the test tools is imported, and threadpoolctl is optional."""
    code = (
        "import sys\n"
        "for m in ('pytest', 'hypothesis', 'threadpoolctl'): sys.modules[m] = None  # import fails\n"
        "from im2col import bench\n"
        "status = bench.main(['--quick', '--shapes', 'teaching', '--ops', 'conv2d', '--rounds', '1',"
        " '--no-memory', '--no-peak', '--no-progress'])\n"
        "assert status == 0, status\n"
        "loaded = {k for k, v in sys.modules.items() if v is not None}\n"
        "assert not {'_pytest', 'hypothesis'} & loaded, 'a test tool was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "geomean" in r.stdout
