"""nnU-Net trainer subclasses. Importing this module imports nnU-Net's trainer (and torch, timm).

``TRAINERS`` maps every trainer name this package offers to its class; nnU-Net itself finds them through
the folder ``nnUNet_extTrainer`` points at (``nnunet-pruning env`` prints the line).
"""

from . import ablations, flat_unet, stamp, stock
from .ablations import *  # noqa: F401,F403
from .flat_unet import *  # noqa: F401,F403
from .stamp import *  # noqa: F401,F403
from .stock import *  # noqa: F401,F403

_MODULES = (flat_unet, stamp, stock, ablations)
__all__ = ["TRAINERS"] + [name for module in _MODULES for name in module.__all__ if name.startswith("nnUNet")]

TRAINERS = {name: getattr(module, name) for module in _MODULES for name in module.__all__ if name.startswith("nnUNet")}
