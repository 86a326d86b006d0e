"""The latency-pruned reference network: the latency trainer's network and pruner, stopped when asked."""

from nnunet_pruning.adapter.networks import load_plans
from nnunet_pruning.app import reference_networks
from nnunet_pruning.app.reference_networks import prune_to_latency
from nnunet_pruning.core.latency import LatencyDevice
from tests.trainers.fake_task import make_plans, write_plans_file


def test_prune_to_latency_records_every_step_and_stops_when_asked(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans_manager, cm, dataset_json = load_plans(write_plans_file(tmp_path, make_plans("plain", dim=3, n_stages=2)),
                                                 "3d_fullres")
    lines, asked = [], []

    class NeverFinished(reference_networks.Pruner):  # a tiny net's times are noise: its pruner may finish at once
        finished = property(lambda self: False)

    monkeypatch.setattr(reference_networks, "Pruner", NeverFinished)
    network, record = prune_to_latency(plans_manager, cm, dataset_json, 0.1, LatencyDevice("cpu", 1), max_steps=5,
                                       log=lines.append, keep_pruning=lambda: asked.append(1) or len(asked) < 2)
    assert len(record["steps"]) == 2 and len(asked) == 2  # the second answer was no
    assert record["device"] == "cpu, 1 threads" and record["unpruned_seconds"] > 0
    assert record["pruned_seconds_at_pruning"] == record["steps"][-1]["latency_s"]
    assert lines[0].startswith("measuring the latency table on cpu, 1 threads at patch")
    assert [line.split(":")[0] for line in lines if line.startswith("latency pruning step")] == \
        ["latency pruning step 1", "latency pruning step 2"] and "stopped before its target" in lines[-1]
    assert next(network.parameters()).device.type == "cpu"
