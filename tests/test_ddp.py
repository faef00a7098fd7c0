"""im2col.nn under torch's DistributedDataParallel: 2 spawned ranks, gloo on 127.0.0.1.

Runs examples/train_ddp.py's training (its model and data) and checks that the im2col.nn model ends
with the parameters of its torch.nn twin trained the same way, on both ranks, in float64.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import train_ddp  # noqa: E402


def test_ddp_training_matches_torch_nn_twin():
    steps = 4
    states = train_ddp.run(steps=steps, dtype=torch.float64)
    torch.manual_seed(0)
    initial = train_ddp.build(torch.nn).to(torch.float64).state_dict()
    for rank in range(train_ddp.WORLD):
        ours, twin = states[f"im2col-rank{rank}"], states[f"torch-rank{rank}"]
        assert ours.keys() == twin.keys()
        for key in ours:
            assert ours[key].dtype == torch.float64
            torch.testing.assert_close(ours[key], twin[key], rtol=1e-12, atol=1e-12, msg=f"rank {rank} {key}")
            # DDP keeps the ranks in step: the same parameters everywhere
            torch.testing.assert_close(ours[key], states["im2col-rank0"][key], rtol=0, atol=0)
    assert any(not torch.equal(states["im2col-rank0"][k], initial[k]) for k in initial), "nothing was trained"
