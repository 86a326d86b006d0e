"""``nnunet-pruning predict``: nnU-Net's own predictor (its preprocessing, sliding window, mirroring, Gaussian
weighting, resampling and export) with the network run by PyTorch, ONNX Runtime or OpenVINO.

``-m`` is a trained model folder (any trainer whose network builds from the plans: stock nnU-Net, pruned,
Flat; folds pruned to different shapes) or an export folder of ``nnunet-pruning export`` (ONNX files only,
no PyTorch weights). From a model folder, a runtime backend exports each fold in memory on first use
(:mod:`nnunet_pruning.core.runtime_forward`); from an export folder it reads the files.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from nnunet_pruning.core import runtimes
from nnunet_pruning.core.errors import PruningError

__all__ = ["OnnxFolds", "make_predictor", "add_parser"]


class OnnxFolds(nn.Module):
    """The network of an export folder for nnU-Net's predictor: ``load_state_dict({"fold": f})`` chooses the
    fold (the predictor loads each fold's "parameters" before predicting with it), ``forward`` runs its file."""

    def __init__(self, folder: str, folds: list[str], backend: str, precision: str, input_shape):
        super().__init__()
        self.folder, self.backend, self.precision = folder, backend, precision
        self.input_shape = tuple(input_shape)
        self.fold, self._runners = folds[0], {}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.fold = state_dict["fold"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (self.fold, torch.get_num_threads())
        if key not in self._runners:
            path = os.path.join(self.folder, f"fold_{self.fold}", "network.onnx")
            try:
                with open(path, "rb") as f:
                    model = f.read()
                self._runners[key] = runtimes.make_runner(self.backend, model, torch.get_num_threads(),
                                                          self.precision)
            except PruningError:
                raise
            except Exception as e:  # the runtimes raise their own types for unreadable files
                raise PruningError(f"{path} cannot be loaded by {self.backend} ({type(e).__name__}); export the "
                                   f"model again") from None
        return self._runners[key].forward(x)


def _export_folds(folder: str, folds: list[str] | None, info: dict) -> list[str]:
    available = list(info["folds"])
    folds = [str(f) for f in folds] if folds else available
    for fold in folds:
        if fold not in available:
            raise PruningError(f"fold {fold} is not in the export {folder} (it has {', '.join(available)}); "
                               f"export it, or choose -f from those")
        if not os.path.isfile(os.path.join(folder, f"fold_{fold}", "network.onnx")):
            raise PruningError(f"{folder}/fold_{fold}/network.onnx is missing; export the model again")
    return folds


def make_predictor(model_folder: str, folds: list[str] | None, backend: str, precision: str = "f32",
                   checkpoint: str | None = None, step_size: float = 0.5, mirroring: bool = True,
                   device: str = "cpu", verbose: bool = False):
    """An initialised ``nnUNetPredictor`` whose network runs on ``backend``."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
    from nnunet_pruning.adapter.networks import build_from_checkpoint, chosen_folds, load_plans
    from nnunet_pruning.app.export import EXPORT_INFO, read_export
    from nnunet_pruning.core.runtime_forward import use_runtime

    if backend != "auto":
        runtimes.require(backend)
    if precision not in runtimes.PRECISIONS:
        raise PruningError(f"precision {precision!r} is not one of {', '.join(runtimes.PRECISIONS)}")
    if backend not in ("torch", "auto") and device != "cpu":
        raise PruningError(f"backend {backend} runs on the CPU here (GPU execution providers are untested); use "
                           f"-device cpu or --backend torch")
    if precision != "f32" and backend in ("torch", "auto"):
        raise PruningError(f"--precision bf16 is for --backend openvino; {backend} runs f32")
    model_folder = os.path.abspath(model_folder)
    if not os.path.isdir(model_folder):
        raise PruningError(f"model folder {model_folder} not found; check -m")
    predictor = nnUNetPredictor(tile_step_size=step_size, use_mirroring=mirroring, device=torch.device(device),
                                verbose=verbose, allow_tqdm=False)
    if os.path.isfile(os.path.join(model_folder, EXPORT_INFO)):
        info = read_export(model_folder)
        if backend == "torch":
            raise PruningError(f"{model_folder} is an export folder (ONNX only); use --backend onnxruntime or "
                               f"openvino, or -m the trained model folder for torch")
        if backend == "auto" and device != "cpu":
            raise PruningError(f"{model_folder} is an export folder (ONNX only), run on the CPU here; use -device cpu")
        if backend == "auto":  # no PyTorch network to time against: the runtime measured faster (results.md)
            backend = next((b for b in runtimes.AUTO + runtimes.RUNTIMES if runtimes.installed(b)), "onnxruntime")
        folds = _export_folds(model_folder, folds, info)
        plans_manager, configuration_manager, dataset_json = load_plans(
            os.path.join(model_folder, "plans.json"), info["configuration"])
        network = OnnxFolds(model_folder, folds, backend, precision, info["input_shape"])
        runtimes.check_precision(backend, precision)  # before any case is read (the files load on first use)
        axes = info.get("inference_allowed_mirroring_axes")
        predictor.manual_initialization(network, plans_manager, configuration_manager, [{"fold": f} for f in folds],
                                        dataset_json, info["trainer_name"], None if axes is None else tuple(axes))
        return predictor
    checkpoints = [load_checkpoint_file(path) for path in chosen_folds(model_folder, folds, checkpoint).values()]
    network, _ = build_from_checkpoint(model_folder, checkpoints[0])
    use_runtime(network, backend, precision)  # this backend, whatever nnUNet_pruning_backend says
    first = checkpoints[0]
    plans_manager, configuration_manager, dataset_json = load_plans(
        os.path.join(model_folder, "plans.json"), first["init_args"]["configuration"])
    predictor.manual_initialization(network, plans_manager, configuration_manager,
                                    [c["network_weights"] for c in checkpoints], dataset_json, first["trainer_name"],
                                    first.get("inference_allowed_mirroring_axes"))
    return predictor


def _cmd_predict(args) -> int:
    if not os.path.isdir(args.input):
        raise PruningError(f"input folder {args.input} not found; check -i")
    predictor = make_predictor(args.model, args.folds, args.backend, args.precision, args.checkpoint,
                               args.step_size, not args.disable_tta, args.device, args.verbose)
    threads = torch.get_num_threads()
    backend = getattr(predictor.network, "backend", args.backend)  # an export folder's: auto resolved to a runtime
    print(f"[predict] {predictor.trainer_name}, {len(predictor.list_of_parameters)} fold(s), backend {backend}"
          f" ({args.precision}), {threads} thread(s)", flush=True)
    if args.npp == 0 and args.nps == 0:  # nnU-Net's in-process path: no worker processes
        os.makedirs(args.output, exist_ok=True)
        predictor.predict_from_files_sequential(args.input, args.output, args.save_probabilities,
                                                not args.continue_prediction)
    else:
        predictor.predict_from_files(args.input, args.output, save_probabilities=args.save_probabilities,
                                     overwrite=not args.continue_prediction, num_processes_preprocessing=args.npp,
                                     num_processes_segmentation_export=args.nps)
    print(f"[predict] segmentations in {os.path.abspath(args.output)}", flush=True)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="nnU-Net's predictor with the network on PyTorch, ONNX Runtime or OpenVINO")
    p.add_argument("-i", dest="input", required=True, help="input folder (nnU-Net's file naming), as nnUNetv2_predict")
    p.add_argument("-o", dest="output", required=True, help="output folder, as nnUNetv2_predict")
    p.add_argument("-m", dest="model", required=True, help="a trained model folder (TRAINER__PLANS__CONFIGURATION) or "
                                                           "an export folder of nnunet-pruning export")
    p.add_argument("-f", dest="folds", nargs="+", help="folds to ensemble (default: every fold found)")
    from nnunet_pruning.core.runtime_forward import SETTINGS

    p.add_argument("--backend", choices=SETTINGS, default="auto",
                   help="what runs the network; onnxruntime and openvino run on the CPU; auto: on the CPU PyTorch or "
                        "OpenVINO (when installed), whichever runs the first tiles faster (an export folder: "
                        "OpenVINO, else ONNX Runtime) (default auto)")
    p.add_argument("--precision", choices=runtimes.PRECISIONS, default="f32",
                   help="f32, or bf16 with --backend openvino on CPUs with bf16 instructions (default f32)")
    p.add_argument("-chk", dest="checkpoint", help="checkpoint file name in each fold (default: checkpoint_final.pth, "
                                                   "else best, else latest)")
    p.add_argument("-step_size", type=float, default=0.5, help="sliding-window step, as nnUNetv2_predict (default 0.5)")
    p.add_argument("--disable_tta", action="store_true", help="no mirroring, as nnUNetv2_predict (default: mirror)")
    p.add_argument("--save_probabilities", action="store_true", help="also save probabilities (default: off)")
    p.add_argument("--continue_prediction", "--c", action="store_true",
                   help="keep cases already predicted in -o (default: predict every case)")
    p.add_argument("-npp", type=int, default=3, help="preprocessing processes, as nnUNetv2_predict; 0 with -nps 0: all in this "
                                                          "process (default 3)")
    p.add_argument("-nps", type=int, default=3, help="export processes, as nnUNetv2_predict (default 3)")
    p.add_argument("-device", dest="device", default="cpu", choices=("cpu", "cuda"),
                   help="cpu, or cuda with --backend torch or auto (default cpu)")
    p.add_argument("--verbose", action="store_true", help="nnU-Net's verbose output (default: off)")
    p.set_defaults(func=_cmd_predict)
