"""Channels-last training on the CPU (trainers/memory_format.py): parameters and inputs in NDHWC while
training, again after each pruning step, nnU-Net's layout back when training ends; the variable turns it off."""

import pytest
import torch

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.trainers import nnUNetTrainerFlatUNet_smoke, nnUNetTrainerRandomLargest_smoke
from nnunet_pruning.trainers.batches import synthetic_batch
from nnunet_pruning.trainers.memory_format import CHANNELS_LAST_VARIABLE, channels_last_enabled

from tests.trainers.fake_task import make_plans, make_trainer, prepare_folders

CL = torch.channels_last_3d


def _trainer(cls, tmp_path, monkeypatch, dim=3):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans = make_plans("plain", dim=dim, n_stages=3)
    prepare_folders(tmp_path, plans)
    return make_trainer(cls, plans)


def _weights(trainer):
    return [p for p in trainer.network.parameters() if p.dim() == 5]


def _first_conv_input_format(trainer):
    seen = []
    conv = next(m for m in trainer.network.modules() if isinstance(m, torch.nn.Conv3d))
    handle = conv.register_forward_hook(lambda m, args, out: seen.append(args[0].is_contiguous(memory_format=CL)))
    trainer.train_step(synthetic_batch(trainer, seed=0))
    handle.remove()
    return seen[0]


def test_channels_last_while_training_and_after_each_pruning_step(tmp_path, monkeypatch):
    monkeypatch.delenv(CHANNELS_LAST_VARIABLE, raising=False)
    trainer = _trainer(nnUNetTrainerRandomLargest_smoke, tmp_path, monkeypatch)
    optimized = [id(p) for group in trainer.optimizer.param_groups for p in group["params"]]
    assert trainer.channels_last_training()
    trainer.apply_channels_last()
    assert all(p.is_contiguous(memory_format=CL) for p in _weights(trainer))
    assert _first_conv_input_format(trainer)  # the batch was converted too
    trainer.pruner = trainer.make_pruner()
    trainer.pruner.step(0, trainer.optimizer)
    trainer.apply_channels_last()  # what on_epoch_end does after a step
    assert all(p.is_contiguous(memory_format=CL) for p in _weights(trainer))
    assert _first_conv_input_format(trainer)
    trainer.restore_default_layout()
    assert all(p.is_contiguous() for p in _weights(trainer)) and not _first_conv_input_format(trainer)
    assert [id(p) for group in trainer.optimizer.param_groups for p in group["params"]] == optimized


def test_the_flat_unet_trains_channels_last_too(tmp_path, monkeypatch):
    trainer = _trainer(nnUNetTrainerFlatUNet_smoke, tmp_path, monkeypatch)
    trainer.apply_channels_last()
    assert _first_conv_input_format(trainer)


def test_off_by_variable_on_2d_and_off_the_cpu(tmp_path, monkeypatch):
    trainer = _trainer(nnUNetTrainerRandomLargest_smoke, tmp_path, monkeypatch)
    monkeypatch.setenv(CHANNELS_LAST_VARIABLE, "0")
    trainer.apply_channels_last()
    assert not trainer.channels_last_training() and not _first_conv_input_format(trainer)
    monkeypatch.setenv(CHANNELS_LAST_VARIABLE, "1")
    trainer.device = torch.device("cuda")  # not measured there: nnU-Net's layout
    assert not trainer.channels_last_training()
    flat_2d = _trainer(nnUNetTrainerFlatUNet_smoke, tmp_path / "2d", monkeypatch, dim=2)
    assert not flat_2d.channels_last_training()


def test_a_bad_value_is_one_line(monkeypatch):
    monkeypatch.setenv(CHANNELS_LAST_VARIABLE, "sometimes")
    with pytest.raises(PruningError, match=f"{CHANNELS_LAST_VARIABLE}='sometimes' is neither on nor off"):
        channels_last_enabled()
    for value, expected in (("off", False), ("TRUE", True), (" 0 ", False)):
        monkeypatch.setenv(CHANNELS_LAST_VARIABLE, value)
        assert channels_last_enabled() is expected


def test_a_bad_value_stops_the_trainer_before_nnunet_makes_its_fold_folder(tmp_path, monkeypatch, capsys):
    """Issue 23.4: a bad nnUNet_pruning_channels_last is one line (exit 2) and leaves no fold folder or log."""
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans = make_plans("plain", dim=3, n_stages=3)
    prepare_folders(tmp_path, plans)
    monkeypatch.setenv(CHANNELS_LAST_VARIABLE, "maybe")
    with pytest.raises(SystemExit) as stopped:
        make_trainer(nnUNetTrainerRandomLargest_smoke, plans)
    assert stopped.value.code == 2 and "is neither on nor off" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
