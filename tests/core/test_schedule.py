import pytest

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.schedule import PruningSchedule


def test_pruning_epochs():
    s = PruningSchedule(warmup_epochs=3, every_epochs=2)
    assert [e for e in range(10) if s.is_pruning_epoch(e)] == [2, 4, 6, 8]
    s = PruningSchedule(warmup_epochs=0, every_epochs=3)
    assert [e for e in range(10) if s.is_pruning_epoch(e)] == [2, 5, 8]


def test_steps_and_last_epoch():
    s = PruningSchedule(keep_fraction=0.2, step_fraction=0.05, warmup_epochs=50, every_epochs=10)
    assert s.steps_needed() == 16
    assert s.last_pruning_epoch() == 50 + 15 * 10 - 1
    assert s.is_pruning_epoch(s.last_pruning_epoch())


@pytest.mark.parametrize("kwargs,message", [
    ({"keep_fraction": 0.0}, r"keep_fraction 0.0 is outside \(0, 1\)"),
    ({"keep_fraction": 1.0}, r"outside \(0, 1\)"),
    ({"keep_fraction": -0.5}, r"outside \(0, 1\)"),
    ({"step_fraction": 1.5}, "step_fraction 1.5 is outside"),
    ({"method": "magnitude"}, "unknown pruning method 'magnitude'"),
    ({"target_metric": "time"}, "unknown target metric"),
    ({"latency_device": "tpu"}, "latency_device must be"),
    ({"latency_threads": -1}, "latency_threads >= 0"),
    ({"min_width": 0}, "min_width must be >= 1"),
    ({"every_epochs": 0}, "every_epochs >= 1"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(PruningError, match=message):
        PruningSchedule(**kwargs).validate()
