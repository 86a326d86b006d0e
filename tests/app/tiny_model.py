"""A trained-looking nnU-Net model folder of a tiny 3D U-Net (folds pruned to different shapes) and a folder of
input images, written in a second, for the in-process tests of ``export`` and ``predict``."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from nnunet_pruning.adapter.networks import build_network, resolve_trainer
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.surgery import remove_channels

from tests.trainers.fake_task import DATASET_JSON, make_plans

TRAINER = "nnUNetTrainerSTAMP"


def write_model_folder(root, folds=("0", "1"), trainer=TRAINER, seed=0, architecture="plain", dim=3) -> str:
    """``root/TRAINER__nnUNetPlans__CONFIGURATION`` with plans.json, dataset.json and one checkpoint per fold;
    fold ``i`` is pruned at random with seed ``i`` (fold 0 differs from fold 1 in shape)."""
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = make_plans(architecture, dim, 3, patch=[8] * dim)
    plans["image_reader_writer"] = "SimpleITKIO"
    configuration = "3d_fullres" if dim == 3 else "2d"
    folder = root / f"{trainer}__nnUNetPlans__{configuration}"
    folder.mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
    manager = PlansManager(plans)
    for i, fold in enumerate(folds):
        torch.manual_seed(seed + i)
        net = build_network(resolve_trainer(trainer), manager, manager.get_configuration(configuration), DATASET_JSON)
        rng = random.Random(i)
        for group in find_groups(net):
            if group.width > 1 and rng.random() < 0.7:
                remove_channels(net, group, rng.sample(range(group.width), rng.randint(1, group.width - 1)))
        (folder / f"fold_{fold}").mkdir()
        torch.save({"network_weights": net.state_dict(), "trainer_name": trainer,
                    "init_args": {"configuration": configuration},
                    "inference_allowed_mirroring_axes": tuple(range(dim))},
                   folder / f"fold_{fold}" / "checkpoint_final.pth")
    return str(folder)


def write_images(folder, cases=2, size=(12, 16, 10)) -> str:
    """``cases`` two-channel images (``case_XXX_0000.nii.gz``, ``_0001``) of random blobs."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for case in range(cases):
        for channel in range(2):
            image = sitk.GetImageFromArray(rng.normal(size=size).astype(np.float32))
            sitk.WriteImage(image, str(folder / f"case_{case:03d}_{channel:04d}.nii.gz"))
    return str(folder)
