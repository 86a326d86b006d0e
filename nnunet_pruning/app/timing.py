"""Measured inference time of several trained models through nnU-Net's own predictor, side by side.

Every model gets the same cases and the same predictor settings (tile step, mirroring/TTA, device,
threads). Each case goes through the predictor's three stages, timed separately:

1. ``preprocess``: the configuration's preprocessor (crop, normalise, resample), as ``nnUNetv2_predict``;
2. ``network``: ``nnUNetPredictor.predict_logits_from_preprocessed_data`` (sliding window, Gaussian
   weighting, mirroring when on, every selected fold as an ensemble);
3. ``export``: logits -> segmentation in the original geometry.

Reading the image files is done once per case, outside the timed region (it does not depend on the
model). Runs are interleaved (repeat -> case -> model), after warm-up runs of every model, and the
reported figure per case is the median over repeats.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import statistics
import time
from dataclasses import asdict, dataclass

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.app.machine import OtherCpuLoad

__all__ = ["COMPILE_MODES", "TimingSettings", "case_files", "time_models", "StagedPredictor", "network_predictor",
           "time_networks"]

#: ``--compile``: time the networks eager, compiled (as ``nnUNet_compile=1 nnUNetv2_predict``), or both
COMPILE_MODES = ("eager", "compiled", "both")
COMPILED = " [compiled]"


@dataclass
class TimingSettings:
    """Predictor settings shared by every timed model (the ``nnUNetv2_predict`` flags in brackets)."""

    tile_step_size: float = 0.5  # -step_size
    use_mirroring: bool = False  # not --disable_tta
    device: str = "cpu"  # -device
    threads: int = 2  # torch threads
    warmup: int = 1  # untimed runs of each model before timing
    repeats: int = 3  # timed runs of each model per case
    compile: str = "eager"  # eager, compiled (torch.compile, as nnUNet_compile=1 nnUNetv2_predict) or both
    backend: str | None = None  # what runs every network (core/runtime_forward.py); None: as nnUNetv2_predict runs each

    def validate(self) -> None:
        if not 0 < self.tile_step_size <= 1:
            raise PruningError(f"tile step size must be in (0, 1], got {self.tile_step_size}")
        if self.repeats < 1 or self.warmup < 0 or self.threads < 1:
            raise PruningError(f"repeats and threads must be >= 1 and warm-up >= 0 (got repeats {self.repeats}, "
                               f"threads {self.threads}, warm-up {self.warmup})")
        if self.compile not in COMPILE_MODES:
            raise PruningError(f"compile mode {self.compile!r} is not one of {', '.join(COMPILE_MODES)}")
        kind = self.device.split(":")[0]
        if self.backend is not None:
            from nnunet_pruning.core.runtimes import require

            if self.backend != "auto":  # auto: PyTorch where no runtime applies (compiled, GPU)
                require(self.backend)
            if self.backend not in ("torch", "auto") and (kind != "cpu" or self.compile != "eager"):
                raise PruningError(f"backend {self.backend} runs eager on the CPU here; time it with --device cpu "
                                   f"--compile eager")
        from nnunet_pruning.app.pipeline import DEVICES

        if kind not in DEVICES:
            raise PruningError(f"device {self.device!r} is not one of {', '.join(DEVICES)} (as nnUNetv2_predict "
                               f"-device)")
        if kind == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise PruningError(f"device {self.device} asked for, but CUDA is not available on this machine; "
                                   f"time on the CPU with --device cpu")

    def as_dict(self) -> dict:
        return asdict(self)


def case_files(images_folder: str, dataset_json: dict, max_cases: int | None = None) -> list[tuple[str, list[str]]]:
    """``[(case_id, [channel files])]`` of an nnU-Net images folder (``CASE_0000.nii.gz`` naming)."""
    from nnunetv2.utilities.utils import create_lists_from_splitted_dataset_folder, \
        get_identifiers_from_splitted_dataset_folder

    if not os.path.isdir(images_folder):
        raise PruningError(f"images folder {images_folder} does not exist; pass a folder of CASE_0000"
                           f"{dataset_json['file_ending']} files")
    ending = dataset_json["file_ending"]
    identifiers = list(get_identifiers_from_splitted_dataset_folder(images_folder, ending))
    if not identifiers:
        raise PruningError(f"no images ending in {ending} in {images_folder}; pass a folder of CASE_0000{ending} "
                           f"files")
    identifiers = identifiers[:max_cases] if max_cases else identifiers
    files = create_lists_from_splitted_dataset_folder(images_folder, ending, identifiers, num_processes=1)
    channels = len(dataset_json["channel_names"])
    for case, channel_files in zip(identifiers, files):
        if len(channel_files) != channels:
            raise PruningError(f"case {case} in {images_folder} has {len(channel_files)} channel files, the dataset "
                               f"has {channels} channels")
    return list(zip(identifiers, files))


class StagedPredictor:
    """An ``nnUNetPredictor`` for one model folder whose prediction of a case is timed stage by stage."""

    def __init__(self, model_folder: str, folds: list[str], settings: TimingSettings,
                 checkpoint_name: str = "checkpoint_final.pth", compiled: bool = False, backend: str | None = None):
        import torch
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        device = torch.device(settings.device)
        with contextlib.redirect_stdout(io.StringIO()):  # nnU-Net prints notes about the device and trainers
            self.predictor = nnUNetPredictor(tile_step_size=settings.tile_step_size, use_gaussian=True,
                                             use_mirroring=settings.use_mirroring,
                                             perform_everything_on_device=device.type == "cuda", device=device,
                                             verbose=False, verbose_preprocessing=False, allow_tqdm=False)
            self.predictor.initialize_from_trained_model_folder(
                model_folder, [int(f) if f != "all" else f for f in folds], checkpoint_name)
        from nnunet_pruning.core.runtime_forward import use_runtime
        from nnunet_pruning.core.wrappers import unwrap

        backend = backend if backend is not None else settings.backend
        if backend is not None:  # else: as nnUNetv2_predict runs it (this package's networks: nnUNet_pruning_backend)
            use_runtime(unwrap(self.predictor.network), backend)
        #: what runs the network (a runtime only in eager mode on the CPU: compiled and GPU runs are PyTorch's)
        self.runs_eager_on_cpu = not compiled and device.type == "cpu"
        if compiled:  # what the predictor does itself with nnUNet_compile=1 (each fold loads into _orig_mod)
            self.predictor.network = torch.compile(self.predictor.network)
        self.device = device

    @property
    def backend(self) -> str:
        """What ran the network: ``torch``, a runtime, or ``auto: <what it chose>``."""
        from nnunet_pruning.core.runtime_forward import backend_in_use
        from nnunet_pruning.core.wrappers import unwrap

        return backend_in_use(unwrap(self.predictor.network)) if self.runs_eager_on_cpu else "torch"

    def predict(self, image, properties: dict) -> tuple[dict, object]:
        """``({"preprocess": s, "network": s, "export": s, "total": s}, segmentation)`` for one case."""
        import torch
        from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

        p = self.predictor
        seconds = {}
        started = time.perf_counter()
        preprocessor = p.configuration_manager.preprocessor_class(verbose=False)
        data, _, data_properties = preprocessor.run_case_npy(image, None, copy.deepcopy(properties), p.plans_manager,
                                                              p.configuration_manager, p.dataset_json)
        data = torch.from_numpy(data)
        seconds["preprocess"] = time.perf_counter() - started
        started = time.perf_counter()
        logits = p.predict_logits_from_preprocessed_data(data).cpu()  # .cpu() waits for the device
        seconds["network"] = time.perf_counter() - started
        started = time.perf_counter()
        segmentation = convert_predicted_logits_to_segmentation_with_correct_shape(
            logits, p.plans_manager, p.configuration_manager, p.label_manager, data_properties)
        seconds["export"] = time.perf_counter() - started
        seconds["total"] = sum(seconds.values())
        return seconds, segmentation


def time_models(models: list[tuple], cases: list[tuple[str, list[str]]], settings: TimingSettings,
                progress=print) -> dict:
    """Time every ``(label, model_folder, folds, checkpoint_name[, backend])`` on every case; per model the
    per-case medians (``backend``: force one, see :mod:`nnunet_pruning.core.runtimes`; default: as
    ``nnUNetv2_predict`` runs the model).

    Returns ``{label: {"per_case": {case: {stage: s}}, "median": {stage: s}, "mean": {stage: s}}}`` plus
    the settings under ``"settings"``; "median" and "mean" are over cases of the per-case medians.
    """
    import torch

    settings.validate()
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        raise PruningError("inference timing on cuda was asked for but torch sees no CUDA device; use --device cpu")
    torch.set_num_threads(settings.threads)
    modes = {"eager": (False,), "compiled": (True,), "both": (False, True)}[settings.compile]
    predictors = {entry[0] + (COMPILED if compiled and settings.compile == "both" else ""):
                  StagedPredictor(entry[1], entry[2], settings, entry[3], compiled, (entry[4:] or [None])[0])
                  for entry in models for compiled in modes}
    reader = predictors[next(iter(predictors))].predictor.plans_manager.image_reader_writer_class()
    images = {}
    for case, files in cases:
        images[case] = reader.read_images(files)
    first = cases[0][0]
    compile_seconds = {}
    for label, predictor in predictors.items():
        compiles = settings.compile == "compiled" or label.endswith(COMPILED)
        for i in range(max(settings.warmup, 1 if compiles else 0)):  # a compiled model compiles on its first run
            seconds, _ = predictor.predict(*images[first])
            if compiles and i == 0:
                compile_seconds[label] = seconds["total"]
                progress(f"[compare] {label}: first run, with torch.compile, {seconds['total']:.1f} s")
    runs = {label: {case: [] for case, _ in cases} for label in predictors}
    total_runs = settings.repeats * len(cases) * len(predictors)
    done = 0
    load = OtherCpuLoad().start()
    for repeat in range(settings.repeats):
        for case, _ in cases:
            shapes = set()
            for label, predictor in predictors.items():
                seconds, segmentation = predictor.predict(*images[case])
                shapes.add(tuple(segmentation.shape))
                runs[label][case].append(seconds)
                done += 1
                progress(f"[compare] timing {done}/{total_runs}: repeat {repeat + 1}, case {case}, {label}: "
                         f"{seconds['total']:.3f} s (network {seconds['network']:.3f} s)")
            if len(shapes) != 1:
                raise PruningError(f"the models predicted case {case} with different shapes {sorted(shapes)}")
    load.stop()
    if load.warning():
        progress(f"[compare] {load.warning('the timing runs')}")
    result = {"settings": settings.as_dict(), "cases": [case for case, _ in cases], "models": {},
              "other_cpu_cores": load.cores, "other_cpu_cores_peak": load.peak,
              "first_run_with_compile_s": compile_seconds}
    stages = ("preprocess", "network", "export", "total")
    for label, per_case_runs in runs.items():
        per_case = {case: {s: statistics.median(r[s] for r in rs) for s in stages}
                    for case, rs in per_case_runs.items()}
        kind = "compiled" if label.endswith(COMPILED) else "models"
        result.setdefault(kind, {})[label.removesuffix(COMPILED)] = {
            "backend": predictors[label].backend,
            "per_case": per_case,
            "median": {s: statistics.median(c[s] for c in per_case.values()) for s in stages},
            "mean": {s: statistics.fmean(c[s] for c in per_case.values()) for s in stages},
        }
    return result


def network_predictor(network, plans_file: str, configuration: str, device, use_mirroring: bool, step_size: float,
                      compiled: bool = False):
    """An ``nnUNetPredictor`` around an in-memory network (``manual_initialization``, as nnU-Net's own validation
    sets it up); ``compiled``: as the predictor compiles with ``nnUNet_compile=1``."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnunet_pruning.adapter.networks import load_plans

    plans_manager, cm, dataset_json = load_plans(plans_file, configuration)
    with contextlib.redirect_stdout(io.StringIO()):
        predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True, use_mirroring=use_mirroring,
                                    perform_everything_on_device=device.type == "cuda", device=device,
                                    allow_tqdm=False)
    network = network.to(device).eval()
    predictor.manual_initialization(network, plans_manager, cm, [network.state_dict()], dataset_json,
                                    "benchmark", tuple(range(len(cm.patch_size))))
    if compiled:  # what the predictor does with nnUNet_compile=1
        predictor.network = torch.compile(network)
    return predictor


def _ran_on(name: str, predictor, device) -> str:
    """What ran a timed entry's network: PyTorch when compiled or on a GPU, else its backend on the CPU (``auto:
    openvino`` when ``nnUNet_pruning_backend=auto`` chose OpenVINO, as ``nnUNetv2_predict`` would have)."""
    if device.type != "cpu" or name.endswith("[compiled]"):
        return "torch"
    from nnunet_pruning.core.runtime_forward import backend_in_use
    from nnunet_pruning.core.wrappers import unwrap

    return backend_in_use(unwrap(predictor.network))


def time_networks(networks: dict, plans_file: str, configuration: str, volumes: list, device, args) -> dict:
    """Every network of ``{name: network}`` in a predictor of the same plans and settings, timed on the same
    preprocessed ``volumes`` (interleaved, after ``args.warmup`` runs; ``args.compile``: eager, compiled or both);
    and one forward pass of one patch, times the tiles, as the network's share. ``args``: compile, warmup,
    repeats, tta, step_size, warmup_volume ("volume" or "patch"), backends (optional: on the CPU each network also
    runs eager on each runtime named, as ``NAME [backend]``; its first warm-up run compiles the runtime's model)."""
    import torch

    from nnunet_pruning.core.clock import interleaved_seconds, seconds_once

    modes = {"eager": [False], "compiled": [True], "both": [False, True]}[args.compile]
    if True in modes:  # every compiled network (and each thread setting) is an entry of the one U-Net forward's
        from torch._dynamo import config as dynamo_config  # cache: past its limit (8) dynamo silently runs eager

        dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, 16 * len(networks))
    runtimes = [b for b in getattr(args, "backends", None) or () if b != "torch"]  # eager CPU entries besides
    predictors, compile_seconds = {}, {}
    for name, net in networks.items():
        for compiled in modes:
            label = f"{name} [compiled]" if compiled else name
            predictors[label] = network_predictor(copy.deepcopy(net) if compiled else net, plans_file, configuration,
                                               device, args.tta, args.step_size, compiled)
        for backend in runtimes if device.type == "cpu" else ():  # the same network on a runtime: `NAME [backend]`
            from nnunet_pruning.core.runtime_forward import use_runtime

            predictors[f"{name} [{backend}]"] = network_predictor(use_runtime(copy.deepcopy(net), backend),
                                                                  plans_file, configuration, device, args.tta,
                                                                  args.step_size, False)
    warmup_volume = volumes[0]
    if getattr(args, "warmup_volume", "volume") == "patch":  # one tile: the same network calls (and compiled graph) as every tile
        patch_size = next(iter(predictors.values())).configuration_manager.patch_size
        warmup_volume = volumes[0][(slice(None), *(slice(0, p) for p in patch_size))]
    for name, predictor in predictors.items():
        if name.endswith("[compiled]") and args.warmup:  # the first run compiles
            compile_seconds[name] = seconds_once(lambda p=predictor: p.predict_logits_from_preprocessed_data(
                warmup_volume), device)
            print(f"[benchmark {device.type}] {name}: first run (compiles) {compile_seconds[name]:.1f} s", flush=True)
        for _ in range(args.warmup - (name in compile_seconds)):
            predictor.predict_logits_from_preprocessed_data(warmup_volume)
    times = {name: [] for name in predictors}
    for v, volume in enumerate(volumes):  # per volume, the models interleaved
        def report(r, name, seconds, v=v):
            print(f"[benchmark {device.type}] repeat {r + 1}/{args.repeats}, volume {v + 1}: {name} {seconds:.3f} s",
                  flush=True)
        runs = {name: (lambda p=predictor, x=volume: p.predict_logits_from_preprocessed_data(x))
                for name, predictor in predictors.items()}
        for name, t in interleaved_seconds(runs, 0, args.repeats, device, report).items():
            times[name] += t
    # the network alone: one forward pass of one patch, times the number of tiles the predictor runs
    first = next(iter(predictors.values()))
    tiles = len(first._internal_get_sliding_window_slicers(
        [max(s, p) for s, p in zip(volumes[0].shape[1:], first.configuration_manager.patch_size)]))
    patch = torch.randn((1, volumes[0].shape[0], *first.configuration_manager.patch_size), device=device)
    autocast = torch.autocast("cuda") if device.type == "cuda" else contextlib.nullcontext()  # as the predictor
    # its own load figure: these few seconds can be distorted by a short burst of other work that the whole run's
    # average hides (forward passes 2x too slow at 0.1 cores over the run, docs/results.md)
    with torch.inference_mode(), autocast, OtherCpuLoad() as load:
        forward = interleaved_seconds({name: (lambda p=predictor: p.network(patch))
                                       for name, predictor in predictors.items()}, args.warmup, args.repeats, device)
    warning = load.warning("the forward-pass timing")
    if warning:
        print(f"[benchmark {device.type}] {warning}", flush=True)
    return {name: {"median_s": statistics.median(t), "runs_s": t, "tiles": tiles,
                   "backend": _ran_on(name, predictors[name], device),
                   "first_run_with_compile_s": compile_seconds.get(name),
                   "forward_per_tile_median_s": statistics.median(forward[name]),
                   "other_cpu_cores_forward": load.cores, "other_cpu_cores_forward_peak": load.peak,
                   "network_share": tiles * statistics.median(forward[name]) / statistics.median(t)}
            for name, t in times.items()}
