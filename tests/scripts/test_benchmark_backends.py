"""``python -m scripts backends`` runs on a tiny model folder and reports consistent rows (no timing is asserted)."""

import json

import pytest

from nnunet_pruning.adapter.environment import ext_trainer_folder
from nnunet_pruning.core import runtimes

from tests.app.tiny_model import write_images, write_model_folder

pytest.importorskip("onnxruntime")


def test_every_model_on_every_backend_with_its_segmentation_checked(tmp_path, monkeypatch, capsys):
    from scripts import benchmark_backends

    monkeypatch.setenv("nnUNet_extTrainer", ext_trainer_folder())  # nnU-Net's predictor looks the trainer up
    monkeypatch.setattr(runtimes, "AUTO", ("onnxruntime",))  # auto's runtime, installed wherever this runs
    model = write_model_folder(tmp_path / "results", folds=("0",))
    images = write_images(tmp_path / "images", cases=1)
    out = tmp_path / "backends.json"
    assert benchmark_backends.main(["--models", model, "--images", images, "--backends", "torch",
                                    "onnxruntime", "auto", "--repeats", "1", "--warmup", "0", "--threads", "1",
                                    "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["model"], r["backend"]) for r in rows] == [("nnUNetTrainerSTAMP", "torch"),
                                                          ("nnUNetTrainerSTAMP", "onnxruntime"),
                                                          ("nnUNetTrainerSTAMP", "auto")]
    assert rows[2]["labels_agree"] >= 0.999 and rows[2]["ran_on"] in ("auto: torch", "auto: onnxruntime",
                                                                      "auto: on trial")
    assert rows[0]["speedup"] == 1.0 and rows[1]["labels_agree"] >= 0.999
    assert rows[1]["max_probability_difference"] < 1e-3 and "labels_agree" not in rows[0]
    assert all(t["backend"] == r["ran_on"] for r, t in zip(rows, result["timing"]["models"].values()))
    assert [r["ran_on"] for r in rows[:2]] == ["torch", "onnxruntime"]
    assert result["command"].startswith("python scripts/benchmark_backends.py --models")
    assert "labels agree" in capsys.readouterr().out
