"""Pruning under torch.distributed (gloo, 2 CPU processes): identical decisions, desync detected."""

import json
import os
import sys
import subprocess

import pytest

WORKER = r'''
import datetime, gc, json, os, sys
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
sys.path.insert(0, os.environ["REPO"])
from tests.tiny import tiny_input, tiny_net
from nnunet_pruning.core.distributed import RankSync
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.surgery import remove_channels

rank, world, rendezvous, scenarios, out = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                           json.loads(sys.argv[4]), sys.argv[5])
dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world,
                        timeout=datetime.timedelta(seconds=60))
results = {}
for method, desync in scenarios:  # one process group for every scenario: a refused step stops every rank alike
    torch.manual_seed(0)
    net = tiny_net("plain", 2, 3, dtype=torch.float32, seed=0)
    step = 0.3 if desync == "settings" and rank == 1 else 0.2  # a misconfigured rank
    schedule = PruningSchedule(method=method, keep_fraction=0.4, warmup_epochs=1, every_epochs=1, step_fraction=step)
    pruner = Pruner(net, schedule, (2, 8, 8), seed=1000 + rank, sync=RankSync())  # different seeds on purpose
    pruner.attach()
    model = DDP(net, find_unused_parameters=True)  # the unused deep-supervision heads
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    result = results[f"{method}/{desync}"] = {"rank": rank}
    try:
        if desync == "widths":
            if rank == 1:
                remove_channels(net, pruner.groups[0], [0])  # this rank's network drifted
            pruner.step(0)
        for epoch in range(3):
            for _ in range(2):
                x = tiny_input(2, 3, seed=10 * epoch + rank, dtype=torch.float32)  # other data on every rank
                optimizer.zero_grad()
                model(x).square().mean().backward()
                optimizer.step()
            if pruner.maybe_step(epoch, optimizer) is not None:
                # the old wrapper's reducer keeps the parameters' gradient accumulators, with their old shapes:
                # free it completely, then wrap again
                model = None
                gc.collect()
                model = DDP(net, find_unused_parameters=True)
        result["shapes"] = [list(p.shape) for p in net.parameters()]
        result["checksum"] = float(sum(p.double().sum() for p in net.parameters()))
        result["log"] = [{k: v for k, v in r.items() if k != "ema_pseudo_dice"} for r in pruner.log]
    except PruningError as e:
        result["error"] = str(e)
    model = None
    gc.collect()
    dist.barrier()
with open(out, "w") as f:
    json.dump(results, f)
# Tear down in order: gloo's worker threads still hold work items and the DDP reducer holds the process group;
# left to interpreter finalisation they can abort the process ("terminate called without an active exception")
model = None
gc.collect()
dist.barrier()
dist.destroy_process_group()
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)  # skip finalisation: nothing of torch.distributed is destroyed while Python is torn down
'''


SCENARIOS = [("taylor", "none"), ("random_largest", "none"), ("random_largest", "widths"),
             ("random_largest", "settings")]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Both ranks' results of every scenario, from one pair of processes (each start imports torch)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, REPO=repo, OMP_NUM_THREADS="1")
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    processes = [subprocess.Popen([sys.executable, str(script), str(r), "2", str(tmp_path / "rendezvous"),
                                   json.dumps(SCENARIOS), str(outs[r])], env=env, stderr=subprocess.PIPE, text=True)
                 for r in range(2)]
    try:
        errors = [p.communicate(timeout=300)[1] for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for p, err in zip(processes, errors):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(o.read_text()) for o in outs]


@pytest.mark.parametrize("method", ["taylor", "random_largest"])
def test_ranks_prune_identically(ranks, method):
    a, b = (r[f"{method}/none"] for r in ranks)
    assert "error" not in a and "error" not in b
    def decisions(log):  # every field but the wall-clock time of the step, which differs between processes
        return [{k: v for k, v in record.items() if k != "seconds"} for record in log]

    assert len(a["log"]) == 3 and decisions(a["log"]) == decisions(b["log"])
    assert a["shapes"] == b["shapes"]
    assert a["checksum"] == pytest.approx(b["checksum"], rel=1e-9)  # DDP kept the weights identical


@pytest.mark.parametrize("desync,what", [("widths", "network's channel widths"),
                                         ("settings", "channels to remove")])
def test_desynchronised_rank_is_detected(ranks, desync, what):
    """A drifted network or a misconfigured rank stops every rank with one clear line, before any surgery."""
    a, b = (r[f"random_largest/{desync}"] for r in ranks)
    for result in (a, b):
        assert result["error"].startswith(f"ranks disagree on the {what} (rank 0 vs rank(s) [1]); every rank")
        assert "\n" not in result["error"]
