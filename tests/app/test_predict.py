"""``nnunet-pruning predict`` (app/predict.py): nnU-Net's predictor with the network on each backend, from a model
folder or an export folder: the segmentations PyTorch makes."""

import os

import numpy as np
import pytest

from nnunet_pruning.app import cli
from nnunet_pruning.app.export import export_model
from nnunet_pruning.app.predict import make_predictor
from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError

from tests.app.tiny_model import write_images, write_model_folder

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    folder = write_model_folder(root / "results")
    export_model(folder, str(root / "exported"), progress=lambda line: None)
    return folder, str(root / "exported"), write_images(root / "images")


def _predict(model_folder, images, out, backend):
    assert cli.main(["predict", "-i", images, "-o", str(out), "-m", model_folder, "-f", "0", "1", "--backend",
                     backend, "-npp", "0", "-nps", "0", "--save_probabilities"]) == 0
    return {name: np.load(out / name)["probabilities"] for name in sorted(os.listdir(out)) if name.endswith(".npz")}


def test_every_backend_from_a_model_or_an_export_folder_segments_as_pytorch(model, tmp_path, capsys):
    folder, exported, images = model
    expected = _predict(folder, images, tmp_path / "torch", "torch")
    assert len(expected) == 2
    runs = [(folder, b) for b in runtimes.RUNTIMES + ("auto",)] + [(exported, b) for b in runtimes.RUNTIMES + ("auto",)]
    for source, backend in runs:
        if backend != "auto" and not runtimes.installed(backend):
            continue
        got = _predict(source, images, tmp_path / f"{backend}_{os.path.basename(source)}", backend)
        for case, probabilities in expected.items():
            assert np.abs(got[case] - probabilities).max() < 1e-3, (source, backend, case)
            agree = (got[case].argmax(0) == probabilities.argmax(0)).mean()
            assert agree >= 0.999, (source, backend, case, agree)
    out = capsys.readouterr().out
    assert "[predict] nnUNetTrainerSTAMP, 2 fold(s), backend onnxruntime (f32)" in out
    assert "[predict] nnUNetTrainerSTAMP, 2 fold(s), backend auto (f32)" in out  # (from the model folder)
    assert out.count("[predict] nnUNetTrainerSTAMP, 2 fold(s), backend auto") == 1  # the export folder's: resolved


@pytest.mark.parametrize("architecture, dim", [("resenc", 3), ("plain", 2)])
def test_resenc_and_2d_plans_through_an_export(tmp_path, architecture, dim):
    backend = "openvino" if runtimes.installed("openvino") else "onnxruntime"
    folder = write_model_folder(tmp_path / "results", architecture=architecture, dim=dim)
    export_model(folder, str(tmp_path / "exported"), progress=lambda line: None)
    images = write_images(tmp_path / "images", cases=1)
    expected = _predict(folder, images, tmp_path / "torch", "torch")
    got = _predict(str(tmp_path / "exported"), images, tmp_path / backend, backend)
    for case, probabilities in expected.items():
        assert np.abs(got[case] - probabilities).max() < 1e-3
        assert (got[case].argmax(0) == probabilities.argmax(0)).mean() >= 0.999


def test_misuse_is_one_line(model, tmp_path, capsys):
    folder, exported, images = model
    cases = [
        (["-m", exported, "--backend", "torch"], r"is an export folder \(ONNX only\); use --backend onnxruntime"),
        (["-m", exported, "--backend", "onnxruntime", "-f", "4"], "fold 4 is not in the export"),
        (["-m", folder, "--backend", "onnxruntime", "-f", "4"], "fold 4 of .* has no checkpoint"),
        (["-m", str(tmp_path / "none"), "--backend", "onnxruntime"], "model folder .* not found"),
        (["-m", folder, "--backend", "onnxruntime", "-device", "cuda"], "runs on the CPU here"),
        (["-m", folder, "--precision", "bf16"], "--precision bf16 is for --backend openvino; auto runs f32"),
        (["-m", exported, "-device", "cuda"], r"is an export folder \(ONNX only\), run on the CPU here"),
    ]
    for extra, message in cases:
        assert cli.main(["predict", "-i", images, "-o", str(tmp_path / "out"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("nnunet-pruning: error: "), err
        assert __import__("re").search(message, err), (message, err)
    assert not (tmp_path / "out").exists()
    assert cli.main(["predict", "-i", str(tmp_path / "no"), "-o", str(tmp_path / "out"), "-m", folder]) == 2
    assert "input folder" in capsys.readouterr().err


def test_a_corrupt_onnx_file_is_one_line(model, tmp_path):
    import shutil

    _, exported, images = model
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "fold_1" / "network.onnx").write_bytes(b"not onnx")
    predictor = make_predictor(str(broken), ["1"], "onnxruntime")
    with pytest.raises(PruningError, match=r"fold_1/network.onnx cannot be loaded by onnxruntime .*; export the "
                                           r"model again"):
        predictor.network.load_state_dict({"fold": "1"})
        predictor.network(__import__("torch").zeros(1, 2, 8, 8, 8))
    (broken / "fold_1" / "network.onnx").unlink()
    with pytest.raises(PruningError, match="fold_1/network.onnx is missing"):
        make_predictor(str(broken), ["1"], "onnxruntime")
