"""The nnU-Net adapter: what connects the core to nnU-Net's plans, checkpoints, folders and environment.

``networks`` (plans file / model folder -> network, as nnU-Net builds it), ``checkpoints`` (every read and
write of ``checkpoint_*.pth``), ``datasets`` (the ``DatasetXXX_Name`` rule), ``environment`` (version, path
variables, the ``nnUNet_extTrainer`` folder), ``flat`` (Flat U-Net kwargs and plans) and ``architectures``
(nnU-Net-style networks without a dataset). The trainers in :mod:`nnunet_pruning.trainers` belong to this
layer too; their import path stays where ``nnUNet_extTrainer`` settings expect it.
"""

__all__: list[str] = []
