"""Compiled training in the pruning trainers: eager while the network changes, ``torch.compile`` once the
target is reached, and only where nnU-Net itself would compile (its ``_do_i_compile`` rules)."""

import functools
import os

import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch._dynamo import OptimizedModule

from nnunet_pruning.trainers import nnUNetTrainerRandomLargest_smoke
from nnunet_pruning.trainers.batches import synthetic_batch

from tests.trainers.fake_task import make_plans, make_trainer, prepare_folders


def _with_pruner(cls, tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans = make_plans("plain", dim=3, n_stages=3)
    prepare_folders(tmp_path, plans)
    trainer = make_trainer(cls, plans)
    trainer.pruner = trainer.make_pruner()
    return trainer


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    return _with_pruner(nnUNetTrainerRandomLargest_smoke, tmp_path, monkeypatch)


@pytest.fixture
def traced_compile(monkeypatch):
    """``torch.compile`` as the trainers call it, with the ``eager`` backend: dynamo traces the module as it would
    for inductor (graph breaks, guards, recompiles on new shapes) without AOTAutograd and inductor's C++ build
    (a minute on this CPU). These tests are about when the trainers compile and what they wrap; that inductor
    runs pruned networks right is tests/core/test_compiled.py and the compiled predictor e2e."""
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", functools.partial(compile_, backend="eager"))


def _prune_to_target(trainer):
    for epoch in range(4):
        if not trainer.pruner.finished:
            trainer.pruner.step(epoch, trainer.optimizer)
    assert trainer.pruner.finished


def test_never_compiled_where_nnunet_would_not(trainer):
    assert not nnUNetTrainer._do_i_compile(trainer)  # the CPU: nnU-Net does not compile
    _prune_to_target(trainer)
    assert not trainer.compile_when_final() and not isinstance(trainer.network, OptimizedModule)


def test_compiled_once_the_target_is_reached(trainer, monkeypatch, traced_compile):
    monkeypatch.setattr(nnUNetTrainer, "_do_i_compile", lambda self: True)  # as on CUDA
    assert trainer._do_i_compile() is False  # nnU-Net's initialize() did not compile
    assert not trainer.compile_when_final()  # still pruning: stays eager
    _prune_to_target(trainer)
    module = trainer._module()
    assert trainer.compile_when_final()
    assert isinstance(trainer.network, OptimizedModule) and trainer._module() is module
    assert not trainer.compile_when_final()  # once
    trainer.network.train()
    loss = trainer.train_step(synthetic_batch(trainer, seed=0))["loss"]  # nnU-Net's step, compiled
    assert loss == loss
    path = os.path.join(trainer.output_folder, "checkpoint_test.pth")
    trainer.save_checkpoint(path)
    weights = torch.load(path, map_location="cpu", weights_only=False)["network_weights"]
    assert not any(k.startswith("_orig_mod") for k in weights)
    assert weights.keys() == module.state_dict().keys()


def test_hook_free_pruning_compiles_from_the_start_and_recompiles_after_each_step_when_it_pays(trainer, monkeypatch,
                                                                                               traced_compile):
    from nnunet_pruning.trainers import compile_policy as pruning

    monkeypatch.setattr(nnUNetTrainer, "_do_i_compile", lambda self: True)  # as on CUDA
    interval = trainer.pruning_schedule.every_epochs * trainer.num_iterations_per_epoch
    monkeypatch.setattr(pruning, "RECOMPILE_BREAK_EVEN_ITERATIONS", interval + 1)
    assert not trainer.compile_while_pruning()  # steps too close together: a recompile would not pay
    monkeypatch.setattr(pruning, "RECOMPILE_BREAK_EVEN_ITERATIONS", interval)
    assert trainer.compile_while_pruning()
    module = trainer._module()
    trainer._compile_for_pruning("from the start")
    first = trainer.network
    assert isinstance(first, OptimizedModule) and trainer._module() is module
    batch = synthetic_batch(trainer, seed=0)
    trainer.network.train()
    trainer.train_step(batch)
    widths = [p.shape for p in module.parameters()]
    trainer.pruner.step(0, trainer.optimizer)  # surgery on the module inside the compiled wrapper
    assert [p.shape for p in module.parameters()] != widths
    trainer._compile_for_pruning("recompiled after step 1")
    assert trainer.network is not first and trainer._module() is module
    loss = trainer.train_step(synthetic_batch(trainer, seed=1))["loss"]  # the new shapes, compiled afresh
    assert loss == loss


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_stamp_compiles_while_pruning_where_its_scores_come_from_parameter_gradients(architecture, tmp_path,
                                                                                     monkeypatch, traced_compile):
    """A PlainConvUNet's Taylor scores are read off parameter gradients (no hook in the forward pass; targeted
    dropout's hooks trace into the graph): STAMP trains compiled like random-largest, nnU-Net's train_step scores
    through the compiled wrapper. A ResEnc residual stream is scored by activation hooks: eager."""
    from nnunet_pruning.trainers import compile_policy as pruning, nnUNetTrainerSTAMP_smoke

    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans = make_plans(architecture, dim=3, n_stages=3)
    prepare_folders(tmp_path, plans)
    stamp = make_trainer(nnUNetTrainerSTAMP_smoke, plans)
    stamp.pruner = stamp.make_pruner()
    monkeypatch.setattr(nnUNetTrainer, "_do_i_compile", lambda self: True)
    monkeypatch.setattr(pruning, "RECOMPILE_BREAK_EVEN_ITERATIONS", 1)
    assert stamp.compile_while_pruning() == (architecture == "plain")
    if architecture == "resenc":
        return
    stamp.pruner.attach()
    stamp._compile_for_pruning("from the start")
    stamp.network.train()
    stamp.train_step(synthetic_batch(stamp, seed=0))
    assert all(float(s.abs().sum()) > 0 for s in stamp.pruner.scorer.scores.values())


def test_checkpoint_is_nnunets_own_plus_the_pruning_state(trainer, tmp_path):
    """save_checkpoint extends nnU-Net's (no copy of it that could drift): the same keys, plus ``pruning``."""
    ours, theirs = str(tmp_path / "ours.pth"), str(tmp_path / "theirs.pth")
    trainer.pruner.step(0, trainer.optimizer)
    trainer.save_checkpoint(ours)
    nnUNetTrainer.save_checkpoint(trainer, theirs)
    ours, theirs = (torch.load(p, map_location="cpu", weights_only=False) for p in (ours, theirs))
    assert set(ours) == set(theirs) | {"pruning"}
    assert ours["pruning"]["log"] == trainer.pruner.log and len(ours["pruning"]["log"]) == 1
    assert ours["network_weights"].keys() == theirs["network_weights"].keys()
    assert all(torch.equal(ours["network_weights"][k], v) for k, v in theirs["network_weights"].items())
