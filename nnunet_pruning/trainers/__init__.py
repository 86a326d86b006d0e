"""nnU-Net trainer subclasses. Importing this module imports nnU-Net's trainer (and torch, timm).

``TRAINERS`` maps each method's class name to its class (:mod:`.registry`, the one list); names with a budget
(``nnUNetTrainerSTAMP_demo``, ``nnUNetTrainerStock_250epochs``) are made on first use (:mod:`.named`).
nnU-Net itself finds them all through the folder ``nnUNet_extTrainer`` points at (``nnunet-pruning env``
prints the line).
"""

from .registry import TRAINERS

globals().update(TRAINERS)
__all__ = ["TRAINERS", *TRAINERS]


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    from nnunet_pruning.core.errors import PruningError

    from .named import named_trainer_class

    try:
        cls = named_trainer_class(name)
    except PruningError:
        cls = None
    if cls is None:
        raise AttributeError(name)
    return cls
