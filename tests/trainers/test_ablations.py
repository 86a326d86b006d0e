"""STAMP's no-dropout ablation: the same scores and cuts, and its training-mode forward drops nothing."""

import pytest
import torch

from nnunet_pruning.adapter.networks import resolve_trainer
from nnunet_pruning.trainers.ablations import ABLATIONS, nnUNetTrainerSTAMPNoDropout
from nnunet_pruning.trainers.batches import synthetic_batch

from tests.trainers.fake_task import make_plans, make_trainer, prepare_folders


@pytest.fixture(autouse=True)
def paths(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    return tmp_path


def test_no_dropout_scores_and_prunes_but_never_drops(paths):
    plans = make_plans("plain", dim=3, n_stages=3)
    prepare_folders(paths, plans)
    trainer = make_trainer(resolve_trainer("nnUNetTrainerSTAMPNoDropout_smoke"), plans)
    pruner = trainer.make_pruner()
    pruner.attach()
    trainer.network.train()
    trainer.train_step(synthetic_batch(trainer, seed=0))
    record = pruner.step(0, trainer.optimizer)
    assert record["channels_removed"] > 0  # Taylor scores as STAMP's
    assert set(pruner.dropout.probabilities.values()) == {0.0}  # updated after the step: still nothing to drop
    x = synthetic_batch(trainer, seed=1)["data"]
    with torch.no_grad():
        first, second = trainer.network(x), trainer.network(x)  # training mode, hooks attached
    first, second = (o[0] if isinstance(o, (list, tuple)) else o for o in (first, second))
    assert torch.equal(first, second)  # a dropout with p > 0 would draw another mask


def test_the_ablation_is_benchmarked_and_listed():
    assert ("No targeted dropout: the same Taylor scores and cuts, nothing dropped while pruning.",
            "nnUNetTrainerSTAMPNoDropout_demo") in ABLATIONS
    assert issubclass(resolve_trainer("nnUNetTrainerSTAMPNoDropout_demo"), nnUNetTrainerSTAMPNoDropout)
