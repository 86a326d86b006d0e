"""The one module nnU-Net imports from ``nnUNet_extTrainer``: it only re-exports this package's trainers.

nnU-Net imports the modules of that folder under top-level names, so the trainers themselves live in
``nnunet_pruning.trainers`` (keeping their real ``__module__``) and are merely named here. Names that carry
their settings (``nnUNetTrainerSTAMP_keep10_250epochs``) are made on first use by
:mod:`nnunet_pruning.trainers.named`, which nnU-Net's ``hasattr`` lookup reaches through ``__getattr__``.
"""

from nnunet_pruning.trainers import *  # noqa: F401,F403  (names come from nnunet_pruning.trainers.__all__)
from nnunet_pruning.trainers import __all__  # noqa: F401


def __getattr__(name: str):
    from nnunet_pruning.trainers.named import module_getattr

    return module_getattr(name)
