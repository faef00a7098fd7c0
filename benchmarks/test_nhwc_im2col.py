"""Run benchmarks/nhwc_im2col.py once on a small shape, so the script cannot rot."""

from __future__ import annotations

from benchmarks import nhwc_im2col


def test_nhwc_im2col_runs_and_times_every_case(capsys):
    times = nhwc_im2col.main({"tiny": (2, 16, 9, 9, 3, 1, 1)}, rounds=1)
    assert set(times) == {f"tiny {op} {layout}" for op in ("im2col", "col2im")
                          for layout in ("NCHW", "NHWC", "NHWC planes")}  # fmt: skip
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())
    assert "| tiny (2×16×9×9, 3×3 p1) | col2im |" in capsys.readouterr().out
