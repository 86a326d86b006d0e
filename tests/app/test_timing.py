"""Input checks of the inference timing (the timing itself runs in tests/e2e/test_compare.py)."""

import pytest

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.app.timing import TimingSettings, case_files

DATASET_JSON = {"file_ending": ".nii.gz", "channel_names": {"0": "CT", "1": "MR"}}


@pytest.mark.parametrize("kwargs", [{"tile_step_size": 0}, {"tile_step_size": 1.5}, {"repeats": 0},
                                    {"warmup": -1}, {"threads": 0}, {"compile": "jit"}, {"backend": "tensorrt"},
                                    {"backend": "onnxruntime", "compile": "both"}])
def test_bad_settings(kwargs):
    with pytest.raises(PruningError):
        TimingSettings(**kwargs).validate()


def test_cases_grouped_by_channel(tmp_path):
    for case in ("b", "a"):
        for channel in (0, 1):
            (tmp_path / f"{case}_{channel:04d}.nii.gz").write_bytes(b"")
    cases = case_files(str(tmp_path), DATASET_JSON)
    assert [c for c, _ in cases] == ["a", "b"] and all(len(files) == 2 for _, files in cases)
    assert len(case_files(str(tmp_path), DATASET_JSON, max_cases=1)) == 1


def test_missing_channel_and_empty_folder(tmp_path):
    with pytest.raises(PruningError, match="no images ending in .nii.gz"):
        case_files(str(tmp_path), DATASET_JSON)
    (tmp_path / "a_0000.nii.gz").write_bytes(b"")
    with pytest.raises(PruningError, match="has 1 channel files, the dataset has 2"):
        case_files(str(tmp_path), DATASET_JSON)
    with pytest.raises(PruningError, match="does not exist"):
        case_files(str(tmp_path / "nope"), DATASET_JSON)


def test_both_modes_time_every_model_eager_and_compiled(monkeypatch):
    """``--compile both``: every model timed eager and compiled, interleaved, the compiled first run reported
    (the predictor is faked here; the compiled predictor itself runs in tests/e2e/test_pruning_trainers.py)."""
    import torch
    from types import SimpleNamespace

    from nnunet_pruning.app import timing

    made = []

    class FakePredictor:
        def __init__(self, folder, folds, settings, checkpoint, compiled, backend):
            made.append((folder, compiled))
            self.compiled, self.backend = compiled, backend or "torch"
            reader = SimpleNamespace(read_images=lambda files: ("image", {}))
            self.predictor = SimpleNamespace(plans_manager=SimpleNamespace(image_reader_writer_class=lambda: reader))

        def predict(self, image, properties):
            network = 2.0 if self.compiled else 1.0
            return {"preprocess": 0.1, "network": network, "export": 0.1, "total": network + 0.2}, \
                SimpleNamespace(shape=(4, 4))

    monkeypatch.setattr(timing, "StagedPredictor", FakePredictor)
    threads = torch.get_num_threads()
    try:
        result = timing.time_models([("a", "A", ["0"], "final"), ("b", "B", ["0"], "final")], [("case", ["f"])],
                                    TimingSettings(compile="both", repeats=2, warmup=0), progress=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    assert made == [("A", False), ("A", True), ("B", False), ("B", True)]
    assert set(result["models"]) == set(result["compiled"]) == {"a", "b"}
    assert set(result["first_run_with_compile_s"]) == {"a [compiled]", "b [compiled]"}
    assert result["models"]["a"]["median"]["network"] == 1.0 and result["compiled"]["b"]["median"]["network"] == 2.0
