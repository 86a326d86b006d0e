"""ONNX export and the CPU runtimes (core/runtimes.py): the same logits as PyTorch, one-line refusals."""

import io

import pytest
import torch

from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.onednn import use_onednn_convolutions
from nnunet_pruning.core.runtime_forward import auto_candidates

from tests.tiny import tiny_input, tiny_net

pytest.importorskip("onnxruntime")


def _relative(a, b) -> float:
    return float((a - b).abs().max()) / float(b.abs().max())


@pytest.mark.parametrize("backend", runtimes.RUNTIMES)
@pytest.mark.parametrize("architecture, dim", [("plain", 3), ("resenc", 3), ("plain", 2), ("resenc", 2)])
def test_every_runtime_gives_pytorchs_logits(backend, architecture, dim):
    if not runtimes.installed(backend):
        pytest.skip(f"{backend} not installed")
    net = use_onednn_convolutions(tiny_net(architecture, dim, 4, dtype=torch.float32)).eval()
    x = tiny_input(dim, 4, dtype=torch.float32, batch=1)
    model = runtimes.export_onnx(net, tuple(x.shape))
    assert b"mkldnn" not in model  # the oneDNN convolutions were exported as plain ones
    runner = runtimes.make_runner(backend, model, threads=1)
    with torch.no_grad():
        expected = net(x)
    assert runner.input_shape == tuple(x.shape)
    assert _relative(runner.forward(x), expected) < 1e-4


def test_export_writes_the_file_and_restores_the_mode(tmp_path):
    net = tiny_net("plain", 3, 3, dtype=torch.float32).train()
    shape = (1, 2, 8, 8, 8)
    data = runtimes.export_onnx(net, shape, str(tmp_path / "n.onnx"))
    assert net.training and (tmp_path / "n.onnx").read_bytes() == data
    buffer = io.BytesIO()
    runtimes.export_onnx(net, shape, buffer)
    assert buffer.getvalue() == data


def test_a_runner_refuses_another_shape_in_one_line():
    net = tiny_net("plain", 3, 3, dtype=torch.float32).eval()
    runner = runtimes.make_runner("onnxruntime", runtimes.export_onnx(net, (1, 2, 8, 8, 8)), threads=1)
    with pytest.raises(PruningError, match=r"exported for input \(1, 2, 8, 8, 8\), got \(1, 2, 8, 8, 16\)"):
        runner.forward(torch.zeros(1, 2, 8, 8, 16))


def test_unknown_missing_and_unsupported_choices_are_one_line(monkeypatch):
    model = runtimes.export_onnx(tiny_net("plain", 3, 3, dtype=torch.float32), (1, 2, 8, 8, 8))
    with pytest.raises(PruningError, match="backend 'tensorrt' is not one of torch, onnxruntime, openvino"):
        runtimes.require("tensorrt")
    with pytest.raises(PruningError, match="runs the PyTorch network itself"):
        runtimes.make_runner("torch", model, 1)
    with pytest.raises(PruningError, match="precision 'fp8' is not one of f32, bf16"):
        runtimes.make_runner("onnxruntime", model, 1, "fp8")
    with pytest.raises(PruningError, match="bf16 runs only on OpenVINO"):
        runtimes.make_runner("onnxruntime", model, 1, "bf16")
    monkeypatch.setattr(runtimes, "bf16_supported", lambda: False)
    if runtimes.installed("openvino"):
        with pytest.raises(PruningError, match="this CPU has none"):
            runtimes.make_runner("openvino", model, 1, "bf16")
    monkeypatch.setattr(runtimes.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PruningError, match=r"backend openvino is not installed; pip install 'nnunet_pruning\[openvino\]'"):
        runtimes.require("openvino")
    assert auto_candidates() == ("torch",) and runtimes.installed("torch")
