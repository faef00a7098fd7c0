"""The benchmark runner (im2col.bench) runs in-process on the teaching shape and reports its tables
and JSON in the documented structure. Timings are not checked: only that they exist and are sane."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

from im2col import bench  # noqa: E402


@pytest.fixture(scope="module")
def teaching_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "out.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        status = bench.main(
            ["--quick", "--shapes", "teaching", "--rounds", "2", "--no-memory", "--json", str(path)]
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
    assert data["command"].startswith("python -m im2col.bench --quick --shapes teaching")


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
    assert {"threads_ours", "threads_torch", "numpy", "torch", "cpu", "threadpools"} <= set(
        data["env"]
    )
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
                       "--no-memory"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "## col2im (ours) vs torch fold (1 rounds)" in out and "| seq1d (" in out
    assert out.count("| seq1d (16×64×1024, 64 5 p2)") == 1  # conv only: no col2im on 1-D shapes
    assert "## conv1d forward, 1-D shapes (1 rounds)" in out and "÷ torch conv1d" in out
    assert bench.SHAPES["vol3d"].label == "2×16×16×16×16, 32 3×3×3 p1"


def test_module_runs_as_a_script():
    r = subprocess.run(
        [sys.executable, "-m", "im2col.bench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0 and "--quick" in r.stdout and "--json" in r.stdout
