"""optimlab.optim under DistributedDataParallel: two CPU processes (gloo), each with its own
data; DDP averages the gradients, and our optimizers must then move both replicas exactly as
torch.optim does."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import optimlab.optim as ours

WORLD = 2
STEPS = 5


def _train(rank: int, store: str, make: str, fused: bool, out: str) -> None:
    torch.set_num_threads(1)
    if os.path.exists("/sys/class/net/lo"):  # loopback only: the test needs no network
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        torch.manual_seed(0)  # the same initial weights on both ranks (DDP broadcasts anyway)
        model = nn.Sequential(nn.Linear(80, 64), nn.Tanh(), nn.Linear(64, 3))
        ddp = nn.parallel.DistributedDataParallel(model)
        kwargs = {"lr": 0.01, "fused": True} if fused else {"lr": 0.01}
        opt = (ours.Adam if make == "ours" else torch.optim.Adam)(ddp.parameters(), **kwargs)
        gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batch
        for _ in range(STEPS):
            x, y = torch.randn(16, 80, generator=gen), torch.randint(0, 3, (16,), generator=gen)
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
        torch.save([p.detach().clone() for p in model.parameters()], f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _run(make: str, fused: bool, tmp: str) -> list[list[torch.Tensor]]:
    store, out = os.path.join(tmp, f"store-{make}-{fused}"), os.path.join(tmp, f"{make}-{fused}")
    mp.start_processes(_train, args=(store, make, fused, out), nprocs=WORLD, start_method="spawn")
    return [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(WORLD)]


pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)


@pytest.fixture(scope="module")
def torch_replicas(tmp_path_factory) -> list[list[torch.Tensor]]:
    return _run("torch", False, str(tmp_path_factory.mktemp("ddp")))


@pytest.mark.parametrize("fused", [False, True], ids=["default", "fused"])
def test_ddp_replicas_move_like_torch(fused, torch_replicas, tmp_path):
    mine = _run("ours", fused, str(tmp_path))
    for rank in range(WORLD):
        for a, b, c in zip(mine[rank], torch_replicas[rank], mine[0], strict=True):
            assert torch.equal(a, c)  # the replicas agree
            if fused:
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1.3e-6)
            else:
                assert torch.equal(a, b)  # bit-identical to torch.optim
