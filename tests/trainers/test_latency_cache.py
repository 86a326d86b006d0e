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
