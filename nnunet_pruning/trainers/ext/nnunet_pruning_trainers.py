"""The one module nnU-Net imports from ``nnUNet_extTrainer``: it only re-exports this package's trainers.

nnU-Net imports the modules of that folder under top-level names, so the trainers themselves live in
``nnunet_pruning.trainers`` (keeping their real ``__module__``) and are merely named here.
"""

from nnunet_pruning.trainers import *  # noqa: F401,F403  (names come from nnunet_pruning.trainers.__all__)
from nnunet_pruning.trainers import __all__  # noqa: F401
