"""``nnunet-pruning``: env | make-dataset | flat-plans | count | compare | trainers | benchmark | demo | pool-dice |
export | predict.

Every misuse ends in one line on stderr, ``nnunet-pruning: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import warnings

from nnunet_pruning.adapter.datasets import resolve_dataset_folder
from nnunet_pruning.app.synthetic import IMAGE_IO, TASKS
from nnunet_pruning.core.errors import PruningError

#: the values of --backend: core/runtime_forward.SETTINGS, spelled here so that the parser imports no torch
#: (tests/app/test_cli.py checks they agree)
BACKEND_SETTINGS = ("auto", "torch", "onnxruntime", "openvino")

__all__ = ["main", "build_parser", "OneLineParser", "split_time_argument", "QUIET_WARNINGS"]


def _cmd_env(args) -> int:
    from nnunet_pruning.adapter.environment import environment_problems, shell_lines

    for line in shell_lines(args.base):
        print(line)
    if args.check:
        problems = environment_problems()
        for problem in problems:
            print(f"# PROBLEM: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


def _cmd_make_dataset(args) -> int:
    from nnunet_pruning.adapter.environment import require_path_variable
    from nnunet_pruning.app.synthetic import DatasetSpec, existing_dataset, make_dataset

    raw = args.raw or require_path_variable("nnUNet_raw")
    size = args.size[0] if len(args.size) == 1 else tuple(args.size)
    spec = DatasetSpec(dataset_id=args.id, name=args.name, num_train=args.train, num_test=args.test, size=size,
                       dim=args.dim, num_channels=args.channels, spacing=args.spacing, seed=args.seed,
                       task=args.task, image_io=args.image_io)
    spec.validate()
    kept = None if args.overwrite else existing_dataset(spec, raw)
    if kept:
        print(f"kept {kept}: it was made with exactly these settings before")
    folder = kept or make_dataset(spec, raw, overwrite=args.overwrite)
    if not kept:
        print(f"wrote {folder}")
    print(f"next: nnUNetv2_plan_and_preprocess -d {args.id} -c {'2d' if args.dim == 2 else '3d_fullres'} "
          f"--verify_dataset_integrity")
    return 0


def _cmd_flat_plans(args) -> int:
    from nnunet_pruning.adapter.environment import require_nnunet_version
    from nnunet_pruning.adapter.flat import write_flat_plans

    require_nnunet_version()
    if bool(args.dataset) == bool(args.dataset_flag):
        raise PruningError("flat-plans needs one dataset: pass it as the first argument or with -d (e.g. "
                           "nnunet-pruning flat-plans 4 --width 32)")
    args.dataset = args.dataset or args.dataset_flag
    folder = resolve_dataset_folder(args.dataset)
    path = write_flat_plans(folder, args.width, args.plans)
    name = os.path.splitext(os.path.basename(path))[0]
    print(f"wrote {path}")
    print(f"train with: nnUNetv2_train {args.dataset} 3d_fullres 0 -p {name}")
    return 0


def _cmd_count(args) -> int:
    from nnunet_pruning.app.count import count_model_folder, count_plans, format_count
    from nnunet_pruning.adapter.environment import require_nnunet_version

    require_nnunet_version()
    source = args.source
    if os.path.isfile(source) and not source.endswith(".json"):
        raise PruningError(f"{source} is a file; count takes a trained model folder (TRAINER__PLANS__CONFIGURATION, "
                           f"choose its checkpoint with --checkpoint NAME), a plans .json file or a dataset id")
    if not os.path.exists(source) and (os.sep in source or source.endswith(".json") or source.startswith(".")):
        raise PruningError(f"{source} does not exist; pass a trained model folder, a plans .json file or a "
                           f"dataset id")
    with contextlib.redirect_stdout(sys.stderr):  # nnU-Net prints; keep stdout for the result
        if os.path.isdir(source):
            result = count_model_folder(source, args.checkpoint)
        else:
            if not source.endswith(".json"):  # a dataset id or name: use the plans in nnUNet_preprocessed
                source = os.path.join(resolve_dataset_folder(source), args.plans + ".json")
            if not args.configuration:
                raise PruningError("counting a plans file needs a configuration; add -c 3d_fullres (or 2d, "
                                   "3d_lowres)")
            result = count_plans(source, args.configuration, args.trainer)
    print(json.dumps(result, indent=2) if args.json else format_count(result))
    return 0


def _stdout_line(line: str) -> None:
    print(line, file=sys.__stdout__, flush=True)


def _cmd_compare(args) -> int:
    from nnunet_pruning.app.compare import run_compare
    from nnunet_pruning.adapter.environment import require_nnunet_version
    from nnunet_pruning.app.timing import TimingSettings

    require_nnunet_version()
    models, time_images = split_time_argument(args.models + args.trainers, args.time)
    settings = TimingSettings(tile_step_size=args.step_size, use_mirroring=not args.disable_tta, device=args.device,
                              threads=args.threads, warmup=args.warmup, repeats=args.repeats, compile=args.compile,
                              backend=args.backend)
    with contextlib.redirect_stdout(sys.stderr):  # nnU-Net prints; our progress goes to stderr too
        run_compare(models, args.output, dataset=args.dataset, configuration=args.configuration,
                    folds=args.folds, labels=args.labels, time_images=time_images, max_cases=args.max_cases,
                    settings=settings, checkpoint_name=args.checkpoint, command=args.command_line,
                    progress=_stdout_line, plans=args.plans)
    return 0


def split_time_argument(models: list[str], time: str | None) -> tuple[list[str], str | None]:
    """``(models, images)``: undo argparse's ``--time`` taking the first model as its images folder.

    ``compare -d 4 -c 3d_fullres --time nnUNetTrainer nnUNetTrainerSTAMP`` gives ``--time`` the value
    ``nnUNetTrainer``. A value that is not a folder of images (a trainer name, or a model folder with a
    plans.json) is the first model, and the images default to the dataset's.
    """
    if time is None or time == "auto":
        return list(models), time
    is_images = os.path.isdir(time) and not os.path.isfile(os.path.join(time, "plans.json"))
    looks_like_path = os.sep in time or time.startswith(".")
    if is_images or (looks_like_path and not os.path.isdir(time)):
        return list(models), time  # a folder of images (a missing one is reported by compare)
    return [time, *models], "auto"


def _cmd_trainers(args) -> int:
    from nnunet_pruning.trainers.catalogue import format_catalogue

    with contextlib.redirect_stdout(sys.stderr):  # importing nnU-Net may print
        if args.markdown:
            from nnunet_pruning.trainers.registry import budgets_table, methods_table, schedules_table

            text = "\n\n".join([methods_table(args.all), budgets_table(), schedules_table()])
        else:
            text = format_catalogue(include_extra=args.all)
    print(text)
    return 0


def _default_trainers(command: str) -> list[str]:
    """What ``demo`` and ``benchmark`` train without ``--trainers``, from where each list is defined."""
    from nnunet_pruning.app.benchmark import DEFAULT_TRAINERS
    from nnunet_pruning.app.demo import DEMO_TRAINERS

    return DEFAULT_TRAINERS if command == "benchmark" else [name for _, name in DEMO_TRAINERS]


def _cmd_benchmark(args) -> int:
    from nnunet_pruning.adapter.environment import require_nnunet_version
    from nnunet_pruning.app.benchmark import run_benchmark
    from nnunet_pruning.app.workspace import CommandFailed

    require_nnunet_version()
    trainers = args.trainers
    if args.ablations:
        from nnunet_pruning.trainers.ablations import ABLATIONS

        if trainers:
            raise PruningError("--ablations chooses the trainers itself; pass either --ablations or --trainers")
        trainers = ["nnUNetTrainerStock_demo"] + [name for _, name in ABLATIONS]
        args.reference = args.reference or ABLATIONS[0][1]  # each ablation against STAMP's default too
    synthetic = {"size": 32, "train": 10, "test": 4, "seed": 0, "task": "shapes"}
    given = [f"--{k}" for k in synthetic if getattr(args, k) is not None]
    if args.dataset and given:
        raise PruningError(f"{' '.join(given)}: options of the synthetic dataset; with -d {args.dataset} the "
                           f"benchmark uses that dataset as it is: drop them")
    for key, default in synthetic.items():
        setattr(args, key, default if getattr(args, key) is None else getattr(args, key))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            run_benchmark(args.output, trainers, args.folds, size=args.size, num_train=args.train,
                          num_test=args.test, seed=args.seed, task=args.task, time_inference=args.time,
                          progress=_stdout_line, threads=args.threads, reference=args.reference,
                          dataset=args.dataset, backend=args.backend, command=args.command_line,
                          device=args.device, configuration=args.configuration)
    except CommandFailed as e:
        raise PruningError(f"the benchmark stopped: {e.one_line()}; fix that and rerun the same command (finished "
                           f"runs are kept)") from None
    return 0


def _cmd_demo(args) -> int:
    from nnunet_pruning.app.compare import check_output_folder
    from nnunet_pruning.app.demo import run_demo
    from nnunet_pruning.app.workspace import CommandFailed

    if args.trainers:  # every trainer must resolve before the dataset is planned and the first one trains
        from nnunet_pruning.adapter.environment import require_nnunet_version
        from nnunet_pruning.adapter.networks import resolve_trainer

        require_nnunet_version()
        if len(args.trainers) < 2:
            raise PruningError("--trainers needs at least two trainers: the baseline first, then the ones to compare")
        if len(set(args.trainers)) != len(args.trainers):
            raise PruningError(f"a trainer is listed twice ({' '.join(args.trainers)}); list each once")
        with contextlib.redirect_stdout(sys.stderr):
            for name in args.trainers:
                resolve_trainer(name)
    check_output_folder(args.output)
    try:
        return run_demo(args.output, [(t, t) for t in args.trainers] if args.trainers else None,
                        dataset=args.dataset, device=args.device, configuration=args.configuration)
    except CommandFailed as e:
        raise PruningError(f"the demo stopped: {e.one_line()}; fix that and rerun the same command (finished "
                           f"models are kept)") from None


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong, and where the help is), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"nnunet-pruning: error: {self.prog}: {message}; see {self.prog} --help\n")


def _run_arguments(p) -> None:
    """--device and -c, as benchmark and demo take them (the values: app/pipeline.py's DEVICES, CONFIGURATIONS)."""
    p.add_argument("-device", "--device", default="cpu", choices=("cpu", "cuda", "mps"),
                   help="what every model trains, predicts and is timed on, as nnUNetv2_train -device (default cpu; "
                        "a latency trainer measures its target there)")
    p.add_argument("-c", "--configuration", default="3d_fullres", choices=("3d_fullres", "2d", "3d_lowres"),
                   help="the nnU-Net configuration every model trains and predicts (default 3d_fullres)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nnunet-pruning",
                           description=__doc__.split("\n\n")[0].replace("\n", " ").replace("``", ""))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("env", help="print the shell lines that make nnU-Net find this package's trainers")
    p.add_argument("--base", help="also set nnUNet_raw/_preprocessed/_results under this folder (default: keep them)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 and list problems when the setup is incomplete (default: off)")
    p.set_defaults(func=_cmd_env)

    p = sub.add_parser("make-dataset", help="write a synthetic nnU-Net raw dataset")
    p.add_argument("--id", type=int, default=900, help="dataset id, 1-999 (default 900)")
    p.add_argument("--name", default="SyntheticShapes", help="name after DatasetXXX_ (default SyntheticShapes)")
    p.add_argument("--train", type=int, default=12, help="training cases (default 12)")
    p.add_argument("--test", type=int, default=4, help="test cases with reference labels (default 4)")
    p.add_argument("--size", type=int, nargs="+", default=[48],
                   help="voxels per axis: one value or one per axis (default 48)")
    p.add_argument("--dim", type=int, choices=(2, 3), default=3, help="2 or 3 dimensions (default 3)")
    p.add_argument("--channels", type=int, default=1, help="input channels (modalities) (default 1)")
    p.add_argument("--spacing", type=float, nargs="+", help="voxel spacing per axis in mm, e.g. 3 1 1 (default 1 mm)")
    p.add_argument("--seed", type=int, default=0, help="the dataset is a pure function of its seed (default 0)")
    p.add_argument("--task", choices=TASKS, default="shapes",
                   help="shapes: blobs and shells (the demo's); fine: also thin tubes and small dots, structures "
                        "1-4 voxels across (default shapes)")
    p.add_argument("--image-io", choices=IMAGE_IO, default="SimpleITKIO",
                   help="write with SimpleITK (nnU-Net's default reader) or with nibabel, and tell nnU-Net to read "
                        "with NibabelIO (for a machine without SimpleITK) (default SimpleITKIO)")
    p.add_argument("--raw", help="raw data root (default: $nnUNet_raw)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace every dataset with this id, atomically (default: refuse an existing id)")
    p.set_defaults(func=_cmd_make_dataset)

    p = sub.add_parser("flat-plans", help="write <plans>Flat<width>.json that reuses the preprocessed data")
    p.add_argument("dataset", nargs="?", help="dataset id or DatasetXXX_Name (or -d)")
    p.add_argument("-d", dest="dataset_flag", metavar="DATASET", help="dataset id or name, as nnUNetv2_train -d")
    p.add_argument("--width", type=int, default=32, help="filters in every stage, 1-1024 (default 32)")
    p.add_argument("-p", "--plans", default="nnUNetPlans", help="source plans name (default nnUNetPlans)")
    p.set_defaults(func=_cmd_flat_plans)

    p = sub.add_parser("count", help="params, GFLOPs, widths and checkpoint sizes")
    p.add_argument("source", help="a plans .json file, a dataset id/name, or a trained model folder")
    p.add_argument("-c", "--configuration", help="configuration, for plans, e.g. 3d_fullres (default: none)")
    p.add_argument("-tr", "--trainer", default="nnUNetTrainer",
                   help="trainer that builds the network from plans (default nnUNetTrainer)")
    p.add_argument("-p", "--plans", default="nnUNetPlans", help="plans name, with a dataset id/name (default "
                                                                  "nnUNetPlans)")
    p.add_argument("-chk", "--checkpoint", help="checkpoint file name in each fold (default: checkpoint_final.pth, "
                                                "else best, else latest)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (default: table)")
    p.set_defaults(func=_cmd_count)

    p = sub.add_parser("compare", help="models side by side with the first (baseline): Dice, size, FLOPs, time")
    p.add_argument("models", nargs="*", help="model folders (TRAINER__PLANS__CONFIGURATION), or trainer names "
                                             "(TRAINER or TRAINER__PLANS) with -d and -c; the first is the baseline")
    p.add_argument("-tr", dest="trainers", nargs="+", metavar="TRAINER", default=[],
                   help="trainer names, after the positional models (default: none)")
    p.add_argument("-d", "--dataset", help="dataset id or name (needed for trainer names; checked otherwise)")
    p.add_argument("-c", "--configuration", help="configuration (needed for trainer names; checked otherwise)")
    p.add_argument("-p", "--plans", default="nnUNetPlans",
                   help="plans of models given by trainer name (default nnUNetPlans)")
    p.add_argument("-f", "--folds", nargs="+", help="folds to use (default: every fold; all models must have the "
                                                    "same folds)")
    p.add_argument("--labels", nargs="+", help="a display name per model (default: the trainer names)")
    p.add_argument("-o", "--output", default="compare_output",
                   help="folder for report.md, CSV, JSON, plots (default compare_output)")
    p.add_argument("--time", nargs="?", const="auto", metavar="IMAGES",
                   help="also time nnU-Net's predictor, on IMAGES or by default the dataset's imagesTs, else "
                        "imagesTr (default: no timing)")
    p.add_argument("--max-cases", type=int, help="time at most this many cases (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per model and case (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per model first (default 1)")
    p.add_argument("-device", "--device", default="cpu", help="cpu or cuda, as nnUNetv2_predict -device "
                                                              "(default cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--step-size", type=float, default=0.5,
                   help="sliding-window tile step, as nnUNetv2_predict -step_size (default 0.5)")
    p.add_argument("--disable-tta", action="store_true", default=True,
                   help="mirroring off: the default here, UNLIKE nnUNetv2_predict (which mirrors unless "
                        "--disable_tta); timing compares the networks, mirroring multiplies every model alike")
    p.add_argument("--tta", dest="disable_tta", action="store_false",
                   help="mirroring (test-time augmentation) on, as nnUNetv2_predict's default (default: off)")
    p.add_argument("--compile", choices=("eager", "compiled", "both"), default="eager",
                   help="with --time: time the networks eager, compiled with torch.compile (as nnUNet_compile=1 "
                        "nnUNetv2_predict does), or both side by side (default eager)")
    p.add_argument("-chk", "--checkpoint", help="checkpoint file of every fold, as nnUNetv2_predict -chk (default: "
                                                "checkpoint_final.pth, else best, else latest, flagged in the report)")
    p.add_argument("--backend", choices=BACKEND_SETTINGS,
                   help="with --time: run every network on this backend (auto: PyTorch or OpenVINO, whichever runs "
                        "its first tiles faster) (default: as nnUNetv2_predict runs each: stock on PyTorch, this "
                        "package's networks on $nnUNet_pruning_backend, default auto)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("trainers", help="every trainer of this package, its method, target and schedule, and how "
                                        "to name any budget")
    p.add_argument("--all", action="store_true", help="also STAMP's ablations and the channels-last stock baseline "
                                                       "(default: off)")
    p.add_argument("--markdown", action="store_true", help="the docs' tables (README: methods, budgets; "
                                                            "docs/methods.md: schedules) as markdown")
    p.set_defaults(func=_cmd_trainers)

    p = sub.add_parser("benchmark", help="train each trainer on several folds of one synthetic dataset; test Dice "
                                         "mean +- sd and paired differences to the first (resumable)")
    p.add_argument("-o", "--output", default="benchmark_output", help="folder for data, models and the report (default "
                                                                "benchmark_output)")
    p.add_argument("--trainers", nargs="+", metavar="TRAINER",
                   help="the first is the baseline (default: " + " ".join(_default_trainers("benchmark")) + ")")
    p.add_argument("--ablations", action="store_true",
                   help="benchmark stock nnU-Net against STAMP and its ablations (docs/methods.md) instead of "
                        "--trainers (default: off)")
    p.add_argument("--reference", metavar="TRAINER",
                   help="also report paired differences to this trainer (default: none; with --ablations: "
                        "nnUNetTrainerSTAMP_demo)")
    p.add_argument("-f", "--folds", nargs="+", default=["0", "1", "2"],
                   help="folds, one run each (default 0 1 2)")
    p.add_argument("-d", "--dataset", help="use this dataset of your nnU-Net folders ($nnUNet_raw, with imagesTs and "
                                           "labelsTs) instead of a synthetic one; models train into "
                                           "$nnUNet_results (default: synthetic dataset 901 in --output)")
    p.add_argument("--size", type=int, help="voxels per axis of the synthetic cases (default 32)")
    p.add_argument("--train", type=int, help="synthetic training cases (default 10)")
    p.add_argument("--test", type=int, help="synthetic held-out test cases (default 4)")
    p.add_argument("--seed", type=int, help="seed of the synthetic dataset (default 0)")
    p.add_argument("--task", choices=("shapes", "fine"),
                   help="synthetic task, as make-dataset --task (default shapes)")
    p.add_argument("--threads", type=int, default=2, help="torch threads of every nnU-Net command (default 2)")
    p.add_argument("--no-time", dest="time", action="store_false",
                   help="skip timing nnU-Net's predictor (default: time the first fold of every trainer)")
    p.add_argument("--backend", choices=BACKEND_SETTINGS,
                   help="time every network on this backend, as compare --backend (default: as nnUNetv2_predict "
                        "runs each)")
    _run_arguments(p)
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("demo", help="synthetic dataset -> plan -> train -> predict -> evaluate -> report")
    p.add_argument("--output", default="demo_output", help="folder for data, models and the report (default "
                                                           "demo_output)")
    p.add_argument("--trainers", nargs="+", metavar="TRAINER",
                   help="train and compare these trainers instead (the first is the baseline; default: "
                        + ", ".join(_default_trainers("demo")) + ")")
    p.add_argument("-d", "--dataset", help="use this dataset of your nnU-Net folders ($nnUNet_raw, with imagesTs and "
                                           "labelsTs) instead of the synthetic one; models train into "
                                           "$nnUNet_results (default: synthetic dataset 900 in --output)")
    _run_arguments(p)
    p.set_defaults(func=_cmd_demo)

    from nnunet_pruning.app import export, pooling, predict

    pooling.add_parser(sub)
    export.add_parser(sub)
    predict.add_parser(sub)
    return parser


#: deprecation notices that libraries below nnU-Net print on import; a user can do nothing about them, and
#: they would turn a one-line error into three lines
QUIET_WARNINGS = (r"`torch\.jit\.interface` is deprecated",)


def main(argv: list[str] | None = None) -> int:
    from nnunet_pruning.app.interrupts import report_interrupt, sigterm_as_interrupt

    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["nnunet-pruning", *(sys.argv[1:] if argv is None else argv)])  # for reports
    try:
        with sigterm_as_interrupt():
            return args.func(args)
    except PruningError as e:
        print(f"nnunet-pruning: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return report_interrupt(e)


if __name__ == "__main__":
    sys.exit(main())
