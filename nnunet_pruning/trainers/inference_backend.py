"""What runs this package's networks in inference: on the CPU the backend ``nnUNet_pruning_backend`` names, by
default ``auto``: PyTorch or OpenVINO, whichever runs the first tiles faster inside the predictor (see
:mod:`nnunet_pruning.core.runtime_forward`, which says why it is measured, not fixed); on a GPU, with
``nnUNet_pruning_cuda_graphs=1``, graphed forwards and voxel-parallel norms (:mod:`nnunet_pruning.core.
cuda_inference`; off by default: not yet measured on a GPU).

The pruning trainers and the Flat U-Net build their networks through :func:`with_inference_backend`, so with
the variables set ``nnUNetv2_predict``, ``--val`` and ``compare --time`` run them that way with no other flag;
training and ``torch.compile`` keep PyTorch's own forward. Stock nnU-Net's trainers (``nnUNetTrainer``,
``nnUNetTrainerStock``) are left as nnU-Net made them: the baseline every speedup is measured against.
"""

from __future__ import annotations

import sys

from nnunet_pruning.core.cuda_inference import cuda_inference_enabled, use_cuda_inference
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.runtime_forward import runtime_setting, use_runtime

__all__ = ["with_inference_backend", "check_backend_setting"]


def check_backend_setting() -> None:
    """Raise a one-line PruningError for a bad ``nnUNet_pruning_backend`` / ``_precision`` /
    ``nnUNet_pruning_cuda_graphs``."""
    runtime_setting()
    cuda_inference_enabled()


def with_inference_backend(network):
    """``network`` with the environment's inference backend; a bad setting ends the command (``nnUNetv2_predict``
    included) with one line on stderr and exit status 2."""
    try:
        check_backend_setting()
        return use_runtime(use_cuda_inference(network))
    except PruningError as e:
        from nnunet_pruning.trainers.guards import TrainerError

        message = f"nnunet-pruning: error: {e}"
        print(message, file=sys.stderr, flush=True)
        raise TrainerError(message) from None
