"""A fake nnU-Net task for trainer tests without preprocessing: plans, dataset.json and folders.

nnU-Net's trainers need plans with one configuration, a dataset.json, the three path variables and a
preprocessed folder whose files tell ``initialize()`` which dataset class to use. Nothing here trains
on data; tests feed ``train_step`` synthetic batches.
"""

from __future__ import annotations

import copy
import json
import os

import torch

from nnunet_pruning.adapter.architectures import unet_spec

DATASET = "Dataset990_Fake"


def make_plans(architecture="plain", dim=3, n_stages=3, patch=None, features=None, class_name=None) -> dict:
    """Plans with one configuration (``2d`` or ``3d_fullres``) holding an nnU-Net-style U-Net."""
    spec = unet_spec(architecture, dim=dim, n_stages=n_stages, features=features or [4 * 2 ** i for i in
                                                                                     range(n_stages)])
    patch = patch or [2 ** n_stages] * dim
    configuration = "2d" if dim == 2 else "3d_fullres"
    return {
        "dataset_name": DATASET, "plans_name": "nnUNetPlans", "original_median_spacing_after_transp": [1.0] * 3,
        "original_median_shape_after_transp": [32, 32, 32], "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {
            str(c): {"max": 1.0, "mean": 0.0, "median": 0.0, "min": -1.0, "percentile_00_5": -1.0,
                     "percentile_99_5": 1.0, "std": 1.0} for c in range(2)},
        "configurations": {configuration: {
            "data_identifier": f"nnUNetPlans_{configuration}", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": patch, "median_image_size_in_voxels": [2 * p for p in patch],
            "spacing": [1.0] * dim, "normalization_schemes": ["ZScoreNormalization"] * 2,
            "use_mask_for_norm": [False, False], "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape", "resampling_fn_data_kwargs": {
                "is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                   "force_separate_z": None},
            "batch_dice": True,
            "architecture": {"network_class_name": class_name or spec.network_arch_class_name,
                             "arch_kwargs": spec.network_arch_init_kwargs,
                             "_kw_requires_import": spec.network_arch_init_kwargs_req_import}}},
    }


DATASET_JSON = {"channel_names": {"0": "a", "1": "b"}, "labels": {"background": 0, "x": 1, "y": 2},
                "numTraining": 3, "file_ending": ".nii.gz"}


def configuration_of(plans: dict) -> str:
    return next(iter(plans["configurations"]))


def prepare_folders(root, plans: dict, cases: int = 3) -> str:
    """Point nnU-Net's path variables at ``root`` and write a preprocessed folder with ``cases`` fake cases.

    Returns the preprocessed dataset folder (where splits_final.json would go)."""
    os.environ["nnUNet_raw"] = os.environ["nnUNet_preprocessed"] = os.path.join(str(root), "pre")
    os.environ["nnUNet_results"] = os.path.join(str(root), "results")
    base = os.path.join(str(root), "pre", DATASET)
    data = os.path.join(base, plans["configurations"][configuration_of(plans)]["data_identifier"])
    os.makedirs(data, exist_ok=True)
    for i in range(cases):
        open(os.path.join(data, f"case_{i:03d}.b2nd"), "wb").close()
    return base


def write_plans_file(root, plans: dict) -> str:
    """:func:`prepare_folders`, plus ``nnUNetPlans.json`` and ``dataset.json`` in the preprocessed dataset folder, as
    the benchmark scripts read them; returns the plans file's path."""
    base = prepare_folders(root, plans)
    with open(os.path.join(base, "dataset.json"), "w") as f:
        json.dump(DATASET_JSON, f)
    with open(os.path.join(base, "nnUNetPlans.json"), "w") as f:
        json.dump(plans, f)
    return os.path.join(base, "nnUNetPlans.json")


def make_trainer(cls, plans: dict, fold=0, deep_supervision: bool = True):
    """An initialised trainer of ``cls`` on the CPU (network, optimizer, loss), as nnUNetv2_train makes it
    (``deep_supervision=False`` as nnU-Net's nnUNetTrainerNoDeepSupervision does it)."""
    trainer = cls(dict(copy.deepcopy(plans), continue_training=False), configuration_of(plans), fold,
                  copy.deepcopy(DATASET_JSON), torch.device("cpu"))
    trainer.enable_deep_supervision = deep_supervision
    trainer.initialize()
    return trainer


def predictor_of(trainer, parameters=None):
    """nnU-Net's predictor on the trainer's network, set up as the trainer's own validation sets it up (tile step
    0.5, Gaussian, mirroring, on the CPU); ``parameters``: the folds' state dicts it loads before every case."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.manual_initialization(trainer.network, trainer.plans_manager, trainer.configuration_manager,
                                    parameters, trainer.dataset_json, trainer.__class__.__name__,
                                    trainer.inference_allowed_mirroring_axes)
    return predictor
