"""``nnunet-pruning export``: a trained nnU-Net model folder as ONNX, one file per fold, beside what prediction
needs, so ``nnunet-pruning predict --backend onnxruntime|openvino`` (or any ONNX tool) runs it without the
checkpoints.

The export folder mirrors a model folder::

    DIR/plans.json, DIR/dataset.json       copies of the model folder's
    DIR/export.json                        the folds, the trainer, configuration, input shape, mirroring axes
    DIR/fold_<f>/network.onnx              the network as the predictor runs it: eval, no deep supervision,
                                           batch 1, the plans' patch size (every tile nnU-Net feeds has it)

Each fold checks itself: PyTorch and ONNX Runtime run the same random tile, and the export is refused (one
line, nothing written) when the logits differ by more than :data:`TOLERANCE` of the largest logit. The folder is
written beside its final place and renamed into it at the end, so an interrupted export leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

import torch

from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
from nnunet_pruning.adapter.networks import build_from_checkpoint, chosen_folds
from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.files import default_folder_mode

__all__ = ["export_model", "read_export", "EXPORT_INFO", "NETWORK_FILE", "TOLERANCE", "add_parser"]

EXPORT_INFO = "export.json"
NETWORK_FILE = "network.onnx"
#: the largest |logit difference| allowed between PyTorch and ONNX Runtime, relative to the largest |logit|
TOLERANCE = 1e-4


def _check(network, model: bytes, input_shape, fold: str) -> float:
    """The largest |difference| of ONNX Runtime's logits to PyTorch's on a random tile, relative."""
    tile = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = network(tile)
    got = runtimes.make_runner("onnxruntime", model, torch.get_num_threads()).forward(tile)
    difference = float((got - expected).abs().max()) / max(float(expected.abs().max()), 1e-12)
    if not difference <= TOLERANCE:
        raise PruningError(f"fold {fold}: ONNX Runtime's logits differ from PyTorch's by {difference:.2e} of the "
                           f"largest logit (allowed {TOLERANCE:.0e}); nothing was written, report this model's "
                           f"architecture")
    return difference


def export_model(model_folder: str, output: str, folds: list[str] | None = None, checkpoint: str | None = None,
                 overwrite: bool = False, progress=print) -> dict:
    """Export ``model_folder``'s folds to ``output`` (see the module docstring); return its export.json."""
    runtimes.require("onnxruntime")
    model_folder, output = os.path.abspath(model_folder), os.path.abspath(output)
    found = chosen_folds(model_folder, folds, checkpoint)
    folds = list(found)
    if os.path.exists(output) and not overwrite:
        raise PruningError(f"{output} exists; pass --overwrite to replace it, or another -o")
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output)}.partial-", dir=os.path.dirname(output))
    os.chmod(staging, default_folder_mode())
    try:
        info = {"model_folder": model_folder, "folds": {}, "torch": torch.__version__, "opset": runtimes.OPSET,
                "tolerance": TOLERANCE}
        for fold in folds:
            started = time.perf_counter()
            ck = load_checkpoint_file(found[fold])
            network, patch = build_from_checkpoint(model_folder, ck)
            network.eval()
            channels = next(p for p in network.parameters() if p.dim() > 2).shape[1]
            input_shape = (1, channels, *patch)
            os.makedirs(os.path.join(staging, f"fold_{fold}"))
            model = runtimes.export_onnx(network, input_shape, os.path.join(staging, f"fold_{fold}", NETWORK_FILE))
            difference = _check(network, model, input_shape, fold)
            common = {"trainer_name": ck["trainer_name"], "configuration": ck["init_args"]["configuration"],
                      "inference_allowed_mirroring_axes": _axes(ck.get("inference_allowed_mirroring_axes")),
                      "input_shape": list(input_shape)}
            for key, value in common.items():
                if info.setdefault(key, value) != value:
                    raise PruningError(f"fold {fold} has {key} {value}, fold {folds[0]} {info[key]}; export the "
                                       f"folds of one model")
            info["folds"][fold] = {"checkpoint": os.path.basename(found[fold]), "onnx_bytes": len(model),
                                   "max_relative_difference": difference}
            progress(f"[export] fold {fold}: {len(model) / 1e6:.1f} MB ONNX, ONNX Runtime matches PyTorch within "
                     f"{difference:.1e} of the largest logit ({time.perf_counter() - started:.1f} s)")
        for name in ("plans.json", "dataset.json"):
            shutil.copy2(os.path.join(model_folder, name), os.path.join(staging, name))
        with open(os.path.join(staging, EXPORT_INFO), "w") as f:
            json.dump(info, f, indent=2)
        if os.path.exists(output):
            old = output + ".replaced"
            os.replace(output, old)
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    progress(f"[export] {len(folds)} fold(s) in {output}")
    return info


def _axes(axes):
    return None if axes is None else [int(a) for a in axes]


def read_export(folder: str) -> dict:
    """An export folder's export.json, with a one-line error for a folder that is not one (or is damaged)."""
    path = os.path.join(folder, EXPORT_INFO)
    if not os.path.isfile(path):
        raise PruningError(f"{folder} is not an export folder (no {EXPORT_INFO}); make one with nnunet-pruning export")
    try:
        with open(path) as f:
            info = json.load(f)
        info["folds"], info["input_shape"], info["trainer_name"]
    except (ValueError, KeyError, TypeError):
        raise PruningError(f"{path} is damaged; export the model again") from None
    for name in ("plans.json", "dataset.json"):
        if not os.path.isfile(os.path.join(folder, name)):
            raise PruningError(f"{folder} has no {name}; export the model again")
    return info


def _cmd_export(args) -> int:
    output = args.output or os.path.basename(os.path.abspath(args.model_folder).rstrip("/")) + "_onnx"
    export_model(args.model_folder, output, args.folds, args.checkpoint, args.overwrite)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="a trained model folder as ONNX, one file per fold, checked against PyTorch")
    p.add_argument("model_folder", help="a trained nnU-Net model folder (TRAINER__PLANS__CONFIGURATION), pruned or not")
    p.add_argument("-f", "--folds", nargs="+", help="folds to export (default: every fold with a checkpoint)")
    p.add_argument("-chk", "--checkpoint", help="checkpoint file name in each fold (default: checkpoint_final.pth, "
                                                "else best, else latest)")
    p.add_argument("-o", "--output", help="the export folder (default: ./<model folder's name>_onnx)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export folder (default: refuse)")
    p.set_defaults(func=_cmd_export)
