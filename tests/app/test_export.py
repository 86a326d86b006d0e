"""``nnunet-pruning export`` (app/export.py): one checked ONNX file per fold, nothing half-written."""

import json
import os

import pytest

from nnunet_pruning.app import cli
from nnunet_pruning.app.export import export_model, read_export
from nnunet_pruning.core.errors import PruningError

from tests.app.tiny_model import TRAINER, write_model_folder

pytest.importorskip("onnxruntime")


def test_every_fold_exported_beside_what_prediction_needs(tmp_path, capsys):
    model = write_model_folder(tmp_path / "results")
    out = tmp_path / "exported"
    assert cli.main(["export", model, "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["[export] fold 0", "[export] fold 1"]
    assert "ONNX Runtime matches PyTorch within" in lines[0] and lines[-1] == f"[export] 2 fold(s) in {out}"
    assert sorted(os.listdir(out)) == ["dataset.json", "export.json", "fold_0", "fold_1", "plans.json"]
    assert oct(os.stat(out).st_mode & 0o777) == oct(0o777 & ~_umask())
    info = read_export(str(out))
    assert info["trainer_name"] == TRAINER and info["configuration"] == "3d_fullres"
    assert info["input_shape"] == [1, 2, 8, 8, 8] and info["inference_allowed_mirroring_axes"] == [0, 1, 2]
    sizes = {f: info["folds"][f]["onnx_bytes"] for f in ("0", "1")}
    assert sizes["0"] != sizes["1"]  # the folds were pruned to different shapes
    assert all(info["folds"][f]["max_relative_difference"] <= info["tolerance"] for f in "01")
    assert [os.path.getsize(out / f"fold_{f}" / "network.onnx") for f in "01"] == [sizes["0"], sizes["1"]]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_refusals_are_one_line_and_leave_nothing(tmp_path, monkeypatch):
    model = write_model_folder(tmp_path / "results", folds=("0",))
    out = tmp_path / "exported"
    with pytest.raises(PruningError, match=r"fold 3 of .* has no checkpoint; folds with one: 0"):
        export_model(model, str(out), ["3"])
    with pytest.raises(PruningError, match="is not a trained nnU-Net model folder"):
        export_model(str(tmp_path), str(out))
    from nnunet_pruning.app import export

    monkeypatch.setattr(export, "TOLERANCE", 0.0)  # PyTorch and ONNX Runtime never agree to the last bit
    with pytest.raises(PruningError, match=r"fold 0: ONNX Runtime's logits differ from PyTorch's by .* nothing was "
                                           r"written"):
        export_model(model, str(out))
    assert os.listdir(tmp_path) == ["results"]  # no output, no staging folder
    monkeypatch.undo()
    export_model(model, str(out), progress=lambda line: None)
    before = (out / "export.json").read_text()
    with pytest.raises(PruningError, match="exists; pass --overwrite"):
        export_model(model, str(out))
    export_model(model, str(out), overwrite=True, progress=lambda line: None)
    assert (out / "export.json").read_text() == before and sorted(os.listdir(tmp_path)) == ["exported", "results"]


def test_a_damaged_export_folder_is_one_line(tmp_path):
    with pytest.raises(PruningError, match="is not an export folder"):
        read_export(str(tmp_path))
    (tmp_path / "export.json").write_text("{")
    with pytest.raises(PruningError, match="export.json is damaged; export the model again"):
        read_export(str(tmp_path))
    (tmp_path / "export.json").write_text(json.dumps({"folds": {}, "input_shape": [1], "trainer_name": "x"}))
    with pytest.raises(PruningError, match="has no plans.json"):
        read_export(str(tmp_path))
