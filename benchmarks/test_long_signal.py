"""Run benchmarks/long_signal.py once on a short signal, so the script cannot rot."""

from __future__ import annotations

from benchmarks import long_signal


def test_long_signal_runs_and_times_every_case(capsys):
    times = long_signal.main(L=3000, C=8, K=4, k=3, rounds=1)
    assert set(times) == {f"{op}, {who}" for op in ("forward", "backward")
                          for who in ("split tiles", "row tiles", "torch")}  # fmt: skip
    assert all(t > 0 for t in times.values())
    assert "| forward, split tiles |" in capsys.readouterr().out
