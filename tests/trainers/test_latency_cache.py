"""Where a latency-targeted trainer measures: its device and threads, and on the CPU the backend that will run the
model (``nnUNet_pruning_backend``; a table of another backend is not reused: tests/core/test_latency.py)."""

import pytest

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.trainers.named import named_trainer_class

from tests.trainers.fake_task import make_trainer


@pytest.fixture
def trainer(task):
    return make_trainer(named_trainer_class("nnUNetTrainerRandomLargestLatency_keep60_cpu1_smoke"), task[1])


def test_latency_is_measured_on_the_backend_that_will_predict(trainer, monkeypatch):
    monkeypatch.delenv("nnUNet_pruning_backend", raising=False)
    where = trainer.latency_where()
    assert (where.device, where.threads, where.backend) == ("cpu", 1, "torch")  # auto: chosen when it predicts
    monkeypatch.setenv("nnUNet_pruning_backend", "auto")
    assert trainer.latency_where().backend == "torch"
    monkeypatch.setenv("nnUNet_pruning_backend", "onnxruntime")
    where = trainer.latency_where()
    assert where.backend == "onnxruntime" and where.describe() == "cpu, 1 threads, onnxruntime"
    monkeypatch.setenv("nnUNet_pruning_backend", "tensorrt")
    with pytest.raises(PruningError, match="nnUNet_pruning_backend='tensorrt' is not one of"):
        trainer.latency_where()


def test_a_latency_target_the_floors_hold_is_warned_at_the_start(task):
    """The trainer measures a copy at the floors before training (core: tests/core/test_latency.py): a 3-stage net
    with 4 channels at full resolution held there by ``_fullres8`` keeps far more than 10% of its time."""
    trainer = make_trainer(named_trainer_class("nnUNetTrainerRandomLargestLatency_keep10_fullres8_cpu1_smoke"), task[1])
    trainer._latency = trainer.latency_model((trainer.num_input_channels, *trainer.configuration_manager.patch_size))
    warning = trainer.make_pruner().floor_warning()
    assert warning.startswith("WARNING: with every layer at its floor, min_width=1 (min_width_full_resolution=8 at "
                              "full resolution)") and "above the target of 10%" in warning
