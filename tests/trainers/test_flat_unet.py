"""The Flat U-Net trainers build flat networks for every architecture, dimension and width."""

import os

import pytest
import torch

from nnunet_pruning.adapter.architectures import unet_spec
from nnunet_pruning.adapter.environment import ext_trainer_folder
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.measure import architecture_name, conv_widths
from nnunet_pruning.trainers import (TRAINERS, nnUNetTrainerFlatUNet, nnUNetTrainerFlatUNet16,
                                     nnUNetTrainerFlatUNet64)


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("trainer,width", [(nnUNetTrainerFlatUNet, 32), (nnUNetTrainerFlatUNet16, 16),
                                           (nnUNetTrainerFlatUNet64, 64)])
@pytest.mark.parametrize("deep_supervision", [False, True])
def test_builds_flat_network(architecture, dim, trainer, width, deep_supervision):
    spec = unet_spec(architecture, dim=dim, n_stages=4)
    net = trainer.build_network_architecture(None, spec, 2, 3, enable_deep_supervision=deep_supervision)
    assert architecture_name(net) == ("PlainConvUNet" if architecture == "plain" else "ResidualEncoderUNet")
    assert type(net).__name__.startswith("Resizable")  # pruned flat checkpoints load too
    for stage, widths in conv_widths(net).items():
        assert widths == ([3] if "seg_layers" in stage else [width] * len(widths)), stage
    out = net(torch.zeros((1, 2) + (16,) * dim))
    if deep_supervision:
        assert [o.shape[2:] for o in out] == [(16 // 2 ** i,) * dim for i in range(3)]
    else:
        assert out.shape == (1, 3) + (16,) * dim


def test_refuses_unsupported_architecture():
    spec = unet_spec()
    spec.network_arch_class_name = "my.models.MedNeXt"
    with pytest.raises(PruningError, match="not a U-Net nnunet_pruning supports"):
        nnUNetTrainerFlatUNet.build_network_architecture(None, spec, 1, 2)


def test_every_trainer_is_found_by_nnunet_lookup(monkeypatch):
    """nnU-Net's own lookup, with nnUNet_extTrainer as `nnunet-pruning env` prints it, finds our classes (in this
    process: nnU-Net reads the variable at each lookup). Each lookup walks all of nnU-Net's trainer modules, so
    it runs for one class of each module; the folder's one module exports every other class."""
    import contextlib
    import importlib.util
    import io

    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find

    monkeypatch.setenv("nnUNet_extTrainer", ext_trainer_folder())
    names = list(TRAINERS)  # (names made by the grammar: tests/trainers/test_named.py, in-process)
    one_per_module = {TRAINERS[name].__module__: name for name in names}
    with contextlib.redirect_stdout(io.StringIO()):
        found = {name: find(name) for name in one_per_module.values()}
    assert len(found) >= 4 and all(found[name] is TRAINERS[name] for name in found), found
    spec = importlib.util.spec_from_file_location("ext_trainers", os.path.join(ext_trainer_folder(),
                                                                               "nnunet_pruning_trainers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert all(getattr(module, name) is TRAINERS[name] for name in names)
