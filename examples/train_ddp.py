"""Train an im2col.nn CNN with torch's DistributedDataParallel: 2 processes, gloo, one host.

Each process (a "rank") holds a full copy of the model and trains on its own share of every batch;
after each backward, DDP averages the gradients across ranks (an all-reduce over gloo, on
127.0.0.1), so every rank takes the same optimizer step. Nothing here is specific to this library:
im2col.nn's modules subclass torch.nn's, their parameters are ordinary torch Parameters, and their
gradients come from registered autograd operators, so DDP treats them as it treats torch.nn's.

The same run trains a torch.nn twin (same initial weights, same data) beside it, so the two can be
compared; ``tests/test_ddp.py`` checks that they end with the same parameters.

    python examples/train_ddp.py                 # 2 ranks, 20 steps, float32
    python examples/train_ddp.py --steps 5 --float64

Processes are started with ``spawn``: a fork()ed child of a process that has run OpenMP can hang.
Everything is bounded: a fixed number of steps, and a 60 s timeout on the process group.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

import im2col.nn

WORLD = 2
BATCH = 16  # per step, over all ranks: each rank sees BATCH // WORLD images


def build(nn) -> torch.nn.Module:
    """A small CNN for 1×8×8 images and 4 classes, from ``nn`` = im2col.nn or torch.nn."""
    return torch.nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 4),
    )


def batch(step: int, rank: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of step ``step``: noise images labelled by their brightest quadrant."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    x = torch.randn(BATCH // WORLD, 1, 8, 8, generator=g, dtype=dtype)
    quadrants = x.reshape(-1, 2, 4, 2, 4).sum((2, 4)).reshape(-1, 4)
    return x, quadrants.argmax(1)


def train(rank: int, port: int, steps: int, dtype: torch.dtype, out_dir: str) -> None:
    """One rank: join the gloo group, train our model and the torch twin with DDP, save both."""
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60)
    )
    try:
        torch.set_num_threads(1)  # two ranks on a two-core machine
        torch.manual_seed(0)
        ours = build(im2col.nn).to(dtype)
        twin = build(torch.nn).to(dtype)
        twin.load_state_dict(ours.state_dict())
        for name, model in (("im2col", ours), ("torch", twin)):
            ddp = DDP(model)  # broadcasts rank 0's parameters, then all-reduces gradients
            opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
            for step in range(steps):
                x, y = batch(step, rank, dtype)
                loss = F.cross_entropy(ddp(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if rank == 0:
                print(f"{name:>6}: loss after {steps} steps {loss.item():.4f}")
            torch.save(model.state_dict(), os.path.join(out_dir, f"{name}-rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A free TCP port on the loopback interface (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(steps: int = 20, dtype: torch.dtype = torch.float32) -> dict[str, dict[str, torch.Tensor]]:
    """Train on WORLD spawned ranks; the final state_dicts as ``{"im2col-rank0": ..., "torch-rank1": ...}``."""
    with tempfile.TemporaryDirectory() as out_dir:
        mp.start_processes(train, args=(free_port(), steps, dtype, out_dir), nprocs=WORLD, start_method="spawn")
        return {
            f"{name}-rank{rank}": torch.load(os.path.join(out_dir, f"{name}-rank{rank}.pt"))
            for name in ("im2col", "torch")
            for rank in range(WORLD)
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--float64", action="store_true")
    args = parser.parse_args(argv)
    states = run(args.steps, torch.float64 if args.float64 else torch.float32)
    worst = max(
        (states["im2col-rank0"][k] - states["torch-rank0"][k]).abs().max().item() for k in states["torch-rank0"]
    )
    print(f"largest parameter difference, im2col.nn vs torch.nn: {worst:.2e}")


if __name__ == "__main__":
    main()
