"""Every trainer the package offers, tested the moment it exists (parametrized over the registry), and the
docs' tables, which must be the registry's."""

import os

import pytest
import torch

from nnunet_pruning.adapter.architectures import unet_spec
from nnunet_pruning.core.resizable import ResizableMixin
from nnunet_pruning.trainers import TRAINERS
from nnunet_pruning.trainers.pruning import nnUNetTrainerPruningBase

PRUNING = {name: cls for name, cls in TRAINERS.items() if issubclass(cls, nnUNetTrainerPruningBase)}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", sorted(TRAINERS))
@pytest.mark.parametrize("architecture", ["plain", "resenc"])
def test_builds_a_network_nnunet_can_predict_with(name, architecture):
    spec = unet_spec(architecture, dim=2, n_stages=3, base_width=4)
    net = TRAINERS[name].build_network_architecture(None, spec, 1, 3, enable_deep_supervision=False)
    assert net(torch.zeros(1, 1, 16, 16)).shape == (1, 3, 16, 16)
    if name in PRUNING or "FlatUNet" in name:
        assert isinstance(net, ResizableMixin)  # pruned checkpoints load into it


@pytest.mark.parametrize("name", sorted(PRUNING))
def test_pruning_schedules_are_valid_and_fit_their_training(name):
    from nnunet_pruning.trainers.budgets import PRESETS
    from nnunet_pruning.trainers.named import named_trainer_class
    from nnunet_pruning.trainers.registry import budget_of_class

    for cls in [PRUNING[name]] + [named_trainer_class(f"{name}_{preset}") for preset in PRESETS]:
        cls.pruning_schedule.validate()
        assert cls.pruning_schedule.last_pruning_epoch() < budget_of_class(cls).epochs, cls.__name__


def test_names_do_not_collide_with_nnunet():
    from nnunetv2.utilities.find_objects import recursive_find_python_class
    import nnunetv2
    import os

    folder = os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer")
    for name in TRAINERS:
        assert recursive_find_python_class(folder, name, "nnunetv2.training.nnUNetTrainer") is None, name


def test_smoke_trainers_cap_the_batch_and_leave_the_plans_alone(tmp_path, monkeypatch):
    from nnunet_pruning.trainers import nnUNetTrainerStock_smoke

    from tests.trainers.fake_task import configuration_of, make_plans, make_trainer, prepare_folders

    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "")
    plans = make_plans("plain", dim=2, n_stages=3)
    plans["configurations"][configuration_of(plans)]["batch_size"] = 80  # as ResEnc plans of small 2D images
    prepare_folders(tmp_path, plans)
    trainer = make_trainer(nnUNetTrainerStock_smoke, plans)
    assert trainer.batch_size == 2
    assert trainer.plans_manager.plans["configurations"][configuration_of(plans)]["batch_size"] == 80


@pytest.mark.parametrize("document, tables", [
    ("README.md", ("methods_table", "budgets_table")), (os.path.join("docs", "methods.md"), ("schedules_table",))])
def test_the_docs_tables_are_the_registrys(document, tables):
    """``nnunet-pruning trainers --markdown`` prints them; paste its output when the registry changes."""
    from nnunet_pruning.trainers import registry

    with open(os.path.join(ROOT, document)) as f:
        text = f.read()
    for table in tables:
        assert getattr(registry, table)() in text, f"{document} lacks the current {table} (nnunet-pruning trainers " \
                                                   f"--markdown)"
