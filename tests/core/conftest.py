"""Fixtures of the core's tests."""

import pytest
import torch

from nnunet_pruning.core import cuda_inference


@pytest.fixture
def fake_cuda(monkeypatch):
    """CPU tensors count as CUDA ones for core/cuda_inference.py, ``nnUNet_pruning_cuda_graphs=1``, and a capture is
    recorded (its input's shape) and replays the eager forward. Returns the list of captured shapes."""
    captured = []

    def capture(forward, x):
        captured.append(tuple(x.shape))
        return (lambda new: forward(new).clone()), 3 * 2 ** 20
    monkeypatch.setattr(cuda_inference, "_on_cuda", lambda x: torch.is_tensor(x))
    monkeypatch.setattr(cuda_inference, "_capture", capture)
    monkeypatch.setenv("nnUNet_pruning_cuda_graphs", "1")
    return captured
