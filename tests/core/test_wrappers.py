"""unwrap: the network inside DDP and torch.compile wrappers, in any nesting."""

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from nnunet_pruning.core.wrappers import unwrap


def test_unwraps_compile_and_ddp_in_any_nesting(tmp_path):
    net = torch.nn.Conv2d(1, 1, 1)
    assert unwrap(net) is net
    assert unwrap(torch.compile(net)) is net  # wrapping only: nothing is compiled before a call
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(net)
        assert unwrap(ddp) is net and unwrap(torch.compile(ddp)) is net
    finally:
        dist.destroy_process_group()
