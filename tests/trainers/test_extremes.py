"""Extremes of the pruning trainers: 2D and 3D, Plain and ResEnc plans, deep supervision on and off, and
every group pruned to its minimum width -- each still trains (nnU-Net's own train_step, loss and SGD)
and predicts through nnU-Net's sliding-window predictor."""

import pytest
import torch

from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.measure import count_params
from nnunet_pruning.core.surgery import remove_channels
from nnunet_pruning.trainers import nnUNetTrainerRandomLargest_smoke, nnUNetTrainerSTAMP_smoke
from nnunet_pruning.trainers.batches import synthetic_batch

from tests.trainers.fake_task import make_plans, make_trainer, predictor_of, prepare_folders


@pytest.fixture(autouse=True)
def paths(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    return tmp_path


def _predict(trainer, plans) -> torch.Tensor:
    """nnU-Net's predictor, set up the way the trainer's own validation sets it up, on a volume larger
    than the patch (several tiles; for 2D plans a stack of 3 slices)."""
    trainer.set_deep_supervision_enabled(False)
    trainer.network.eval()
    predictor = predictor_of(trainer)
    patch = list(trainer.configuration_manager.patch_size)
    spatial = [p + p // 2 for p in patch] if len(patch) == 3 else [3] + [p + p // 2 for p in patch]  # 2D: slices
    volume = torch.randn((2, *spatial))
    logits = predictor.predict_sliding_window_return_logits(volume)
    assert logits.shape == (3, *volume.shape[1:]) and torch.isfinite(logits.float()).all()
    return logits


def _train_steps(trainer, n=2) -> None:
    trainer.network.train()
    for i in range(n):
        loss = trainer.train_step(synthetic_batch(trainer, seed=i))["loss"]
        assert loss == loss  # not NaN


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("deep_supervision", [True, False], ids=["ds", "no-ds"])
@pytest.mark.parametrize("trainer_class", [nnUNetTrainerSTAMP_smoke, nnUNetTrainerRandomLargest_smoke],
                         ids=["stamp", "random-largest"])
def test_prune_then_train_and_predict(paths, architecture, dim, deep_supervision, trainer_class):
    plans = make_plans(architecture, dim=dim, n_stages=4 if dim == 2 else 3)
    prepare_folders(paths, plans)
    trainer = make_trainer(trainer_class, plans, deep_supervision=deep_supervision)
    pruner = trainer.make_pruner()  # as on_train_start does
    pruner.attach()
    _train_steps(trainer)
    before = count_params(trainer.network)
    for epoch in range(2):
        record = pruner.step(epoch, trainer.optimizer)
        assert record["channels_removed"] > 0
        _train_steps(trainer, 1)
    pruner.detach()
    assert pruner.finished and count_params(trainer.network) <= 0.5 * before + 1
    _predict(trainer, plans)


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("dim", [2, 3])
def test_every_group_at_minimum_width(paths, architecture, dim):
    plans = make_plans(architecture, dim=dim, n_stages=3)
    prepare_folders(paths, plans)
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, plans)
    min_width = trainer.pruning_schedule.min_width
    for group in find_groups(trainer.network):
        remove_channels(trainer.network, group, range(group.width - min_width), trainer.optimizer, min_width)
    assert all(g.width == min_width for g in find_groups(trainer.network))
    _train_steps(trainer)
    _predict(trainer, plans)
