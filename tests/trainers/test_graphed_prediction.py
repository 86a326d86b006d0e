"""CUDA graphs inside nnU-Net's own predictor (core/cuda_inference.py; the capture is the ``fake_cuda`` fixture's,
on the CPU): a trainer's network, two folds pruned to different shapes, several cases, mirroring on -- one capture
per fold, and the logits of the graphs-off run (within the fp16 rounding of nnU-Net's logits)."""

import random

import torch

from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.surgery import remove_channels
from nnunet_pruning.trainers import nnUNetTrainerSTAMP_smoke

from tests.trainers.fake_task import make_trainer, predictor_of


def _fold(trainer, seed: int) -> dict:
    """A fold: the trainer's network with random channels of every group removed (its own shapes)."""
    import copy

    net = copy.deepcopy(trainer.network)
    rng = random.Random(seed)
    for group in find_groups(net):
        if group.width > 2:
            remove_channels(net, group, rng.sample(range(group.width), rng.randint(1, group.width // 2)))
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_two_pruned_folds_over_three_cases_capture_once_per_fold(task, fake_cuda, monkeypatch):
    _, plans = task
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, plans, deep_supervision=False)
    predictor = predictor_of(trainer, [_fold(trainer, 1), _fold(trainer, 2)])
    patch = list(trainer.configuration_manager.patch_size)
    cases = [torch.randn((2, *[p + p // 2 for p in patch]), generator=torch.Generator().manual_seed(c))
             for c in range(3)]
    graphed = [predictor.predict_logits_from_preprocessed_data(case) for case in cases]
    assert fake_cuda == [(1, 2, *patch)] * 2  # one tile shape, two folds' shapes: two captures in all
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "0")
    for case, logits in zip(cases, graphed):
        expected = predictor.predict_logits_from_preprocessed_data(case).float()
        # the graphs off also turn the voxel-parallel norm off: float32 rounding, then nnU-Net's fp16 logits
        assert float((expected - logits.float()).abs().max()) <= 2 ** -8 * max(1.0, float(expected.abs().max()))
    assert len(fake_cuda) == 2
