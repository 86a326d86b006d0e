"""From plans files and model folders to networks, exactly as nnU-Net builds them.

This is the one path from "plans + configuration + trainer" or "trained model folder" to an
``nn.Module``; ``count``, reports and tests all use it.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os

from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
from nnunet_pruning.core.errors import PruningError

__all__ = ["resolve_trainer", "check_predictor_finds", "named_class_exists", "load_plans", "build_network",
           "build_from_plans", "model_folder_folds", "chosen_folds",
           "build_from_checkpoint"]

CHECKPOINT_NAMES = ("checkpoint_final.pth", "checkpoint_best.pth", "checkpoint_latest.pth")


def resolve_trainer(name: str):
    """The trainer class called ``name``: this package's own (also names that carry settings, see
    :mod:`nnunet_pruning.trainers.named`), else nnU-Net's lookup (its own trainers and every folder of
    ``nnUNet_extTrainer``, so users' subclasses resolve too)."""
    from nnunet_pruning.trainers import TRAINERS
    from nnunet_pruning.trainers.named import named_trainer_class, quiet_lookups

    if name in TRAINERS:
        return TRAINERS[name]
    malformed = None
    try:
        named = named_trainer_class(name)
    except PruningError as e:  # maybe a user's own class of that name: ask nnU-Net first
        named, malformed = None, e
    if named is not None:
        return named
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    try:
        with quiet_lookups(), contextlib.redirect_stdout(io.StringIO()):  # nnU-Net narrates its search
            return recursive_find_trainer_class_by_name(name)
    except RuntimeError:
        if malformed is not None:
            raise malformed from None
        raise PruningError(f"trainer {name} not found in nnU-Net or nnunet_pruning; check the name (nnunet-pruning "
                           f"trainers lists them) or add its folder to nnUNet_extTrainer") from None


def check_predictor_finds(name: str) -> None:
    """A one-line error when nnU-Net's own lookup (what ``nnUNetv2_predict`` uses) cannot find trainer ``name``.

    Our trainers need this package's folder on ``nnUNet_extTrainer``; a user's subclass needs its own
    folder there. Nothing else is required.
    """
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    from nnunet_pruning.trainers import TRAINERS
    from nnunet_pruning.trainers.named import quiet_lookups

    try:
        with quiet_lookups(), contextlib.redirect_stdout(io.StringIO()):
            recursive_find_trainer_class_by_name(name)
        return
    except RuntimeError:
        pass
    from nnunet_pruning.adapter.environment import ext_trainer_problem

    try:
        ours = name in TRAINERS or named_class_exists(name)
    except PruningError:
        ours = False
    problem = ext_trainer_problem() if ours else None
    hint = problem or (f"add the folder that defines {name} to nnUNet_extTrainer (now "
                       f"{os.environ.get('nnUNet_extTrainer') or 'unset'})")
    raise PruningError(f"nnU-Net's predictor cannot find trainer {name}: {hint}")


def named_class_exists(name: str) -> bool:
    """Whether ``name`` is a trainer name of :mod:`nnunet_pruning.trainers.named`'s grammar."""
    from nnunet_pruning.trainers.named import named_trainer_class

    return named_trainer_class(name) is not None


def _read_json(path: str, what: str) -> dict:
    if not os.path.isfile(path):
        raise PruningError(f"{what} {path} not found; check the path")
    with open(path) as f:
        return json.load(f)


def load_plans(plans_file: str, configuration: str, dataset_json_file: str | None = None):
    """``(plans_manager, configuration_manager, dataset_json)`` for a plans file.

    The dataset.json defaults to the one beside the plans file (preprocessed and model folders have one).
    """
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = _read_json(plans_file, "plans file")
    dataset_json_file = dataset_json_file or os.path.join(os.path.dirname(os.path.abspath(plans_file)),
                                                          "dataset.json")
    dataset_json = _read_json(dataset_json_file, "dataset.json")
    plans_manager = PlansManager(plans)
    if configuration not in plans["configurations"]:
        raise PruningError(f"configuration {configuration} is not in {plans_file}; choose one of "
                           f"{', '.join(plans['configurations'])}")
    return plans_manager, plans_manager.get_configuration(configuration), dataset_json


def build_network(trainer_class, plans_manager, configuration_manager, dataset_json,
                  deep_supervision: bool = False):
    """Call the trainer's ``build_network_architecture`` the way nnU-Net's predictor does."""
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels

    num_input_channels = determine_num_input_channels(plans_manager, configuration_manager, dataset_json)
    num_outputs = plans_manager.get_label_manager(dataset_json).num_segmentation_heads
    return trainer_class.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                    num_outputs, enable_deep_supervision=deep_supervision)


def build_from_plans(plans_file: str, configuration: str, trainer_name: str = "nnUNetTrainer",
                     dataset_json_file: str | None = None, deep_supervision: bool = False):
    """The network ``trainer_name`` would train from these plans, and the configuration's patch size."""
    plans_manager, configuration_manager, dataset_json = load_plans(plans_file, configuration, dataset_json_file)
    network = build_network(resolve_trainer(trainer_name), plans_manager, configuration_manager, dataset_json,
                            deep_supervision)
    return network, list(configuration_manager.patch_size)


def model_folder_folds(model_folder: str, checkpoint_name: str | None = None) -> list[tuple[str, str]]:
    """``[(fold, checkpoint_path)]`` for every ``fold_*`` folder with a checkpoint.

    Without ``checkpoint_name`` each fold uses the first of final, best, latest that exists.
    """
    if not os.path.isfile(os.path.join(model_folder, "plans.json")):
        raise PruningError(f"{model_folder} is not a trained nnU-Net model folder (no plans.json); pass the "
                           f"folder named TRAINER__PLANS__CONFIGURATION")
    found = []
    for fold_dir in sorted(glob.glob(os.path.join(model_folder, "fold_*"))):
        names = (checkpoint_name,) if checkpoint_name else CHECKPOINT_NAMES
        for name in names:
            path = os.path.join(fold_dir, name)
            if os.path.isfile(path):
                found.append((os.path.basename(fold_dir)[len("fold_"):], path))
                break
    if not found:
        raise PruningError(f"no fold in {model_folder} has a checkpoint"
                           f"{' named ' + checkpoint_name if checkpoint_name else ''}; train a fold first")
    return found


def chosen_folds(model_folder: str, folds: list | None, checkpoint_name: str | None = None) -> dict[str, str]:
    """``{fold: checkpoint_path}`` of ``folds`` (default: every fold with a checkpoint), in that order; a fold
    without one is a one-line error that lists the folds that have one."""
    found = dict(model_folder_folds(model_folder, checkpoint_name))
    folds = [str(f) for f in folds] if folds else list(found)
    for fold in folds:
        if fold not in found:
            raise PruningError(f"fold {fold} of {model_folder} has no checkpoint"
                               f"{' ' + checkpoint_name if checkpoint_name else ''}; folds with one: "
                               f"{', '.join(found)}")
    return {fold: found[fold] for fold in folds}


def build_from_checkpoint(model_folder: str, checkpoint: dict):
    """The network stored in a checkpoint of ``model_folder``, built and loaded as the predictor does.

    The network is made resizable first, so pruned checkpoints load whatever trainer wrote them.
    """
    from nnunet_pruning.core.resizable import make_resizable

    plans_manager, configuration_manager, dataset_json = load_plans(
        os.path.join(model_folder, "plans.json"), checkpoint["init_args"]["configuration"])
    network = build_network(resolve_trainer(checkpoint["trainer_name"]), plans_manager, configuration_manager,
                            dataset_json, deep_supervision=False)
    try:
        network = make_resizable(network)
    except PruningError:
        pass  # an architecture we cannot prune: it loads exactly as nnU-Net loads it
    network.load_state_dict(checkpoint["network_weights"])
    return network, list(configuration_manager.patch_size)
