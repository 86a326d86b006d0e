"""Networks outside PyTorch: ONNX export, and the CPU runtimes ONNX Runtime and OpenVINO that run the file.

nnU-Net's predictor feeds its network one tile at a time: batch 1, the plans' patch size, every tile the same
shape (the image is padded to at least one patch, mirrored tiles have the patch's shape too). So a network is
exported for one input shape (static shapes let both runtimes plan their kernels once) and a runner is made
per shape. The export is PyTorch's TorchScript-based exporter (``dynamo=False``: no extra dependency, and it
traces the forward as the predictor runs it, with this package's oneDNN convolutions turned back into plain
ones while exporting, see :mod:`nnunet_pruning.core.onednn`).

Precision: ``f32`` everywhere; ``bf16`` (OpenVINO's inference precision hint) only where the CPU has bf16
instructions and only when asked: its effect on the segmentation has to be measured, not assumed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings

import numpy as np
import torch
from torch import nn

from nnunet_pruning.core.errors import PruningError

__all__ = ["BACKENDS", "RUNTIMES", "AUTO", "PRECISIONS", "export_onnx", "installed", "require", "make_runner", "Runner",
           "bf16_supported", "check_precision", "INSTALL_HINT"]

#: every backend a network can run on; ``torch`` is PyTorch itself
BACKENDS = ("torch", "onnxruntime", "openvino")
#: the backends that run an exported ONNX file
RUNTIMES = ("onnxruntime", "openvino")
#: the runtimes ``auto`` times against PyTorch (core/runtime_forward.py; measured: docs/results.md, "Backends"; ONNX
#: Runtime was never faster than PyTorch for a pruned model there)
AUTO = ("openvino",)
PRECISIONS = ("f32", "bf16")
INSTALL_HINT = {"onnxruntime": "pip install onnxruntime", "openvino": "pip install 'nnunet_pruning[openvino]' "
                                                                      "(or pip install openvino)"}
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
OPSET = 17


def installed(backend: str) -> bool:
    """Whether ``backend`` can run here (torch always can)."""
    return backend == "torch" or importlib.util.find_spec(_MODULES[backend]) is not None


def require(backend: str) -> None:
    """A one-line error for an unknown backend or one that is not installed."""
    if backend not in BACKENDS:
        raise PruningError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if not installed(backend):
        raise PruningError(f"backend {backend} is not installed; {INSTALL_HINT[backend]}")


def bf16_supported() -> bool:
    """Whether OpenVINO reports bf16 execution on this CPU."""
    if not installed("openvino"):
        return False
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@contextlib.contextmanager
def _quiet_export():
    """The TorchScript exporter's deprecation and tracer warnings are about its own future, not the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_onnx(network: nn.Module, input_shape: tuple[int, ...], target: str | io.BytesIO | None = None) -> bytes:
    """The ONNX bytes of ``network``'s forward in eval mode on a float32 input of ``input_shape`` (batch
    included), written to ``target`` too when given. The network's mode is restored afterwards."""
    was_training = network.training
    network.eval()
    buffer = io.BytesIO()
    try:
        with torch.inference_mode(False), torch.no_grad(), _quiet_export():
            example = torch.zeros(input_shape, dtype=torch.float32, device=next(network.parameters()).device)
            torch.onnx.export(network, (example,), buffer, dynamo=False, input_names=["input"],
                              output_names=["logits"], opset_version=OPSET, do_constant_folding=True)
    finally:
        network.train(was_training)
    data = buffer.getvalue()
    if isinstance(target, str):
        with open(target, "wb") as f:
            f.write(data)
    elif target is not None:
        target.write(data)
    return data


class Runner:
    """A compiled model of one backend: ``runner(array) -> array`` (float32, the exported input shape)."""

    def __init__(self, backend: str, precision: str, run, input_shape: tuple[int, ...]):
        self.backend, self.precision, self._run, self.input_shape = backend, precision, run, tuple(input_shape)

    def __call__(self, array: np.ndarray) -> np.ndarray:
        if tuple(array.shape) != self.input_shape:
            raise PruningError(f"this {self.backend} model was exported for input {self.input_shape}, got "
                               f"{tuple(array.shape)}; export it for this patch size")
        return self._run(np.ascontiguousarray(array, dtype=np.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same on a CPU tensor."""
        return torch.from_numpy(self(x.detach().cpu().numpy()))


def check_precision(backend: str, precision: str) -> None:
    """A one-line error for a precision ``backend`` cannot run here (bf16: OpenVINO on a CPU with bf16 only)."""
    if precision not in PRECISIONS:
        raise PruningError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and (backend != "openvino" or not bf16_supported()):
        raise PruningError("bf16 runs only on OpenVINO on a CPU with bf16 instructions "
                           f"({'this CPU has none' if backend == 'openvino' else 'not ' + backend}); use f32")


def make_runner(backend: str, model_bytes: bytes, threads: int, precision: str = "f32") -> Runner:
    """A :class:`Runner` of ONNX ``model_bytes`` (exported for one input shape) on ``threads`` CPU threads."""
    require(backend)
    if backend == "torch":
        raise PruningError("backend torch runs the PyTorch network itself, not an ONNX file; choose "
                           f"{' or '.join(RUNTIMES)}")
    check_precision(backend, precision)
    if backend == "onnxruntime":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = max(1, threads), 1
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        first = session.get_inputs()[0]
        return Runner(backend, precision, lambda a: session.run(None, {first.name: a})[0], tuple(first.shape))
    import openvino

    core = openvino.Core()
    model = core.read_model(model=model_bytes)
    compiled = core.compile_model(model, "CPU", {
        "INFERENCE_NUM_THREADS": max(1, threads), "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()

    def run(a: np.ndarray) -> np.ndarray:
        request.infer([a])
        return request.get_output_tensor(0).data.copy()
    return Runner(backend, precision, run, tuple(model.input(0).get_shape()))
