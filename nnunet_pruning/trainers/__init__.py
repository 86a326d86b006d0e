"""nnU-Net trainer subclasses. Importing this module imports nnU-Net's trainer (and torch, timm).

``TRAINERS`` maps every trainer name this package offers to its class; nnU-Net itself finds them through
the folder ``nnUNet_extTrainer`` points at (``nnunet-pruning env`` prints the line).
"""

from .flat_unet import (nnUNetTrainerFlatUNet, nnUNetTrainerFlatUNet16, nnUNetTrainerFlatUNet16_smoke,
                        nnUNetTrainerFlatUNet64, nnUNetTrainerFlatUNet_smoke)
from .stock import nnUNetTrainerStock_smoke

__all__ = ["TRAINERS", "nnUNetTrainerFlatUNet", "nnUNetTrainerFlatUNet16", "nnUNetTrainerFlatUNet64",
           "nnUNetTrainerFlatUNet_smoke", "nnUNetTrainerFlatUNet16_smoke", "nnUNetTrainerStock_smoke"]

TRAINERS = {cls.__name__: cls for cls in (
    nnUNetTrainerFlatUNet, nnUNetTrainerFlatUNet16, nnUNetTrainerFlatUNet64,
    nnUNetTrainerFlatUNet_smoke, nnUNetTrainerFlatUNet16_smoke, nnUNetTrainerStock_smoke,
)}
