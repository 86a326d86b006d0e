"""The Flat U-Net trainers build flat networks for every architecture, dimension and width."""

import os
import subprocess
import sys

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


def test_every_trainer_is_found_by_nnunet_lookup():
    """nnU-Net's own lookup, with nnUNet_extTrainer as `nnunet-pruning env` prints it, finds our classes."""
    code = ("import sys\n"
            "from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find\n"
            "for name in sys.argv[1:]:\n"
            "    cls = find(name)\n"
            "    print('FOUND', name, cls.__module__)\n")
    env = dict(os.environ, nnUNet_extTrainer=ext_trainer_folder())
    names = list(TRAINERS)  # (names made by the grammar: tests/trainers/test_named.py, in-process)
    result = subprocess.run([sys.executable, "-c", code, *names], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = [line.split() for line in result.stdout.splitlines() if line.startswith("FOUND")]
    assert [f[1] for f in found] == names
    assert all(f[2].startswith("nnunet_pruning.trainers.") for f in found)
