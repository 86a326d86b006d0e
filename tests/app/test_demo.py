"""The demo's report text: the budget read from the trainer classes, and the chance Dice it is measured against."""

import numpy as np
import pytest
import SimpleITK as sitk

from nnunet_pruning.app.demo import DEMO_TRAINERS, THESIS_TRAINERS, budget_text, chance_dice
from nnunet_pruning.trainers.budgets import PRESETS


def test_budget_of_the_thesis_trainers_comes_from_their_classes():
    text = budget_text([t for _, t in THESIS_TRAINERS], batch_size=2)
    demo = PRESETS["demo"]
    epochs, iterations, DEMO = demo.epochs, demo.iterations, dict(demo.pruning)
    assert text.startswith(f"**Budget.** Every model trains {epochs} epochs x {iterations} iterations "
                           f"({epochs * iterations} SGD steps, batch 2;")
    needed = demo.pruning_steps  # 2 equal steps: 40% each to keep 20% of the parameters
    steps = [str(e) for e in range(epochs) if e + 1 >= DEMO["warmup_epochs"]][:needed]
    assert f"The pruning trainers prune after epochs {', '.join(steps)} (to {DEMO['keep_fraction']:.0%} of the " \
           f"parameters); {epochs - 1 - int(steps[-1])} epochs of recovery follow." in text


def test_the_demo_adds_stamp_to_half_the_measured_time_and_says_so():
    names = [t for _, t in DEMO_TRAINERS]
    assert names[:len(THESIS_TRAINERS)] == [t for _, t in THESIS_TRAINERS]
    text = budget_text(names, batch_size=2)
    assert "`nnUNetTrainerRandomLargest_demo`, `nnUNetTrainerSTAMP_demo` prune after epochs 0, 1 (to 20% of the " \
           "parameters); 3 epochs of recovery follow." in text
    assert "`nnUNetTrainerSTAMPLatency_keep50_demo` prunes after epochs 1, 2 (to 50% of the measured forward " \
           "time); 2 epochs of recovery follow." in text


def test_budget_names_each_trainer_when_they_differ():
    text = budget_text(["nnUNetTrainerStock_smoke", "nnUNetTrainerSTAMP_smoke", "nnUNetTrainerSTAMPFlops_smoke"], 4)
    assert "`nnUNetTrainerStock_smoke` trains 1 epoch x 2 iterations (2 SGD steps, batch 4;" in text
    assert "`nnUNetTrainerSTAMP_smoke`, `nnUNetTrainerSTAMPFlops_smoke` train 4 epochs x 2 iterations" in text
    assert "`nnUNetTrainerSTAMP_smoke` prunes after epochs 0, 1 (to 50% of the parameters); 2 epochs" in text
    assert "`nnUNetTrainerSTAMPFlops_smoke` prunes after epochs 0, 1 (to 50% of the GFLOPs)" in text


def test_budget_of_nnunets_default_schedule_is_summarised():
    text = budget_text(["nnUNetTrainer", "nnUNetTrainerSTAMP"], 2)
    assert "Every model trains 1000 epochs x 250 iterations (250000 SGD steps" in text
    assert ("`nnUNetTrainerSTAMP` prunes 16 times, after epochs 49, 59, ... 199 (to 20% of the parameters); "
            "800 epochs") in text


def test_chance_dice_is_the_dice_of_labelling_every_voxel_as_the_class(tmp_path):
    first = np.zeros((4, 4, 4), dtype=np.uint8)
    first[:2, :2, :2] = 1  # 8 of 64 voxels: Dice of "all voxels" = 2 * 8 / (8 + 64)
    first[3, 3, 3] = 2  # 1 voxel: 2 / 65
    second = np.zeros((4, 4, 4), dtype=np.uint8)
    second[:, :, :2] = 1  # 32 voxels: 64 / 96
    for name, seg in (("a.nii.gz", first), ("b.nii.gz", second)):
        sitk.WriteImage(sitk.GetImageFromArray(seg), str(tmp_path / name))
    chance = chance_dice(str(tmp_path))
    assert chance["1"] == pytest.approx((16 / 72 + 64 / 96) / 2)
    assert chance["2"] == pytest.approx(2 / 65)  # only the cases that hold the class


def test_the_demo_runs_on_the_device_and_configuration_it_is_given(monkeypatch):
    """``demo --device cuda -c 2d``: the pipeline (nnUNetv2_train / _predict) gets both, the report says so."""
    import torch

    from nnunet_pruning.app import demo

    seen = {}

    def stop(output, dataset, say, device, configuration):
        seen.update(device=device, configuration=configuration)
        raise RuntimeError("stop here")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(demo, "_pipeline", stop)
    with pytest.raises(RuntimeError, match="stop here"):
        demo.run_demo("unused", device="cuda", configuration="2d")
    assert seen == {"device": "cuda", "configuration": "2d"}
    made = {"numTraining": 4, "generator": {"shape": [16, 16, 16]}}
    assert "16x16x16, classes with overlapping intensities), 2d, fold 0, cuda (GPU), every command" in \
        demo._dataset_text("Dataset900_X", made, (4, 2), "cuda", "2d")
    assert "3d_fullres, fold 0, CPU, every command" in demo._dataset_text("Dataset900_X", made, (4, 2))
