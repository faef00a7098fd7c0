"""Run each hand-run benchmark script once, one round, so that none of them can rot.

The numbers are not checked (one round on a busy machine means nothing); that the scripts still run
against the current library, and print their tables, is.
"""

from __future__ import annotations

import pytest

from benchmarks import (
    blas_routes,
    channels_last,
    depthwise,
    engine_layers,
    floor_breakdown,
    gemm_breakdown,
    long_signal,
    nhwc_im2col,
    nn_overhead,
)


def test_channels_last_runs(capsys):
    channels_last.main(["--rounds", "1", "--shapes", "res14,pw"])
    out = capsys.readouterr().out
    assert "| res14 (8×256×14×14, 256 3×3 p1) | conv2d_backward |" in out
    assert out.count("×") > 8


@pytest.mark.parametrize("part", ["main", "col2im_stride", "pointwise"])
def test_floor_breakdown_runs(part, capsys):
    getattr(floor_breakdown, part)(rounds=1)
    assert "ms" in capsys.readouterr().out


def test_gemm_breakdown_runs(capsys, monkeypatch):
    monkeypatch.setattr(gemm_breakdown, "SHAPES", {"res14": gemm_breakdown.SHAPES["res14"]})
    gemm_breakdown.child(rounds=1)
    out = capsys.readouterr().out
    assert "GFLOP/s" in out and "torch" in out


def test_blas_routes_runs(capsys):
    blas_routes.main(["--rounds", "1", "--shapes", "batch1"])
    out = capsys.readouterr().out
    assert "chosen:" in out and "| batch1 | backward |" in out


def test_long_signal_runs_and_times_every_case(capsys):
    times = long_signal.main(L=3000, C=8, K=4, k=3, rounds=1)
    assert set(times) == {f"{op}, {who}" for op in ("forward", "backward")
                          for who in ("split tiles", "row tiles", "torch")}  # fmt: skip
    assert all(t > 0 for t in times.values())
    assert "| forward, split tiles |" in capsys.readouterr().out


def test_nhwc_im2col_runs_and_times_every_case(capsys):
    times = nhwc_im2col.main({"tiny": (2, 16, 9, 9, 3, 1, 1)}, rounds=1)
    assert set(times) == {f"tiny {op} {layout}" for op in ("im2col", "col2im")
                          for layout in ("NCHW", "NHWC", "NHWC planes")}  # fmt: skip
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())
    assert "| tiny (2×16×9×9, 3×3 p1) | col2im |" in capsys.readouterr().out


def test_engine_layers_runs(capsys):
    engine_layers.main(["--rounds", "1", "--threads", "1", "--layers", "mid32,named:teaching"])
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "| mid32 | 32×32×16×16, 32 3×3 p1 |" in out
    assert "REALISTIC engine/torch: geomean" in out


def test_nn_overhead_runs(capsys):
    results = nn_overhead.main(["--quick"])
    assert set(results) == set(nn_overhead.CASES)
    assert all(ours > 0 and torch > 0 for ours, torch, _ in results.values())
    assert "| Conv2d(1, 1, 3) on 1×1×5×5 |" in capsys.readouterr().out


def test_depthwise_runs(capsys):
    results = depthwise.main(["--smoke", "--threads", "1"])
    assert set(results) == {f"{op}, 1 thread(s)" for op in ("forward", "backward", "grad_input")}
    for r in results.values():
        assert set(r) == set(depthwise.SMOKE)
        assert all(x["engine/torch"] > 0 and x["GFLOP/s"] > 0 for x in r.values())
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "| smoke_3x3 | smoke | 2×8×12×12, 3×3 p1 |" in out


def test_engine_cpu_time_runs(capsys):
    from benchmarks import engine_cpu_time

    engine_cpu_time.main(["--rounds", "1", "--layers", "mid32"])
    out = capsys.readouterr().out
    assert "| mid32 |" in out and "geomean engine/BLAS" in out


def test_small_channels_runs(capsys):
    from benchmarks import small_channels

    out = small_channels.main(["--smoke", "--threads", "1"])
    assert set(out) == {"1 thread(s)"} and out["1 thread(s)"] > 0
    assert "| 2×8×10×10, 8 3×3 p1 |" in capsys.readouterr().out
