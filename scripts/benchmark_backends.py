#!/usr/bin/env python
"""Trained models through nnU-Net's predictor with the network on PyTorch, ONNX Runtime and OpenVINO, side by side.

Every ``--models`` folder is timed with every ``--backends`` entry (``torch`` is PyTorch eager, as stock
``nnUNetv2_predict`` runs stock nnU-Net), all with the same predictor settings, on the same cases
(``app/timing.time_models``: preprocess + sliding window + export per case, warm-up first, runs interleaved,
medians). The speedup of every row is against the first model on the first backend (stock nnU-Net on PyTorch:
what a user runs today). Before timing, every backend's segmentation of every case is compared with PyTorch's
of the same model: the share of voxels with the same label, and the largest difference of the probabilities.
Parameters and GFLOPs of one patch stand beside each row.

    D=demo_output; N=Dataset900_SyntheticShapes
    python -m scripts backends --images $D/nnUNet_raw/$N/imagesTs --models \\
        $D/nnUNet_results/$N/nnUNetTrainerStock_demo__nnUNetPlans__3d_fullres \\
        $D/nnUNet_results/$N/nnUNetTrainerSTAMP_demo__nnUNetPlans__3d_fullres --json backends.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from nnunet_pruning.app.machine import OtherCpuLoad
from nnunet_pruning.app.provenance import write_result
from nnunet_pruning.app.timing import StagedPredictor, TimingSettings, case_files, time_models
from nnunet_pruning.core import runtimes
from nnunet_pruning.core.runtime_forward import SETTINGS


def _agreement(models, backends, cases, settings) -> dict:
    """``{model: {backend: {"labels_agree": share, "max_probability_difference": d}}}`` against PyTorch."""
    found = {}
    for label, folder, folds, checkpoint in models:
        outputs = {}
        for backend in ["torch"] + [b for b in backends if b != "torch"]:
            predictor = StagedPredictor(folder, folds, settings, checkpoint, backend=backend)
            reader = predictor.predictor.plans_manager.image_reader_writer_class()
            per_case = []
            for case, files in cases:
                image, properties = reader.read_images(files)
                p = predictor.predictor
                logits = p.predict_logits_from_preprocessed_data(torch.from_numpy(
                    p.configuration_manager.preprocessor_class(verbose=False).run_case_npy(
                        image, None, properties, p.plans_manager, p.configuration_manager, p.dataset_json)[0]))
                per_case.append(torch.softmax(logits.float(), 0).numpy())
            outputs[backend] = per_case
        found[label] = {backend: {
            "labels_agree": float(np.mean([np.mean(o.argmax(0) == t.argmax(0)) for o, t in zip(out, outputs["torch"])])),
            "max_probability_difference": float(max(np.abs(o - t).max() for o, t in zip(out, outputs["torch"])))}
            for backend, out in outputs.items() if backend != "torch"}
    return found


def _size(folder: str, folds: list[str], checkpoint: str) -> dict:
    from nnunet_pruning.adapter.checkpoints import load_checkpoint_file
    from nnunet_pruning.adapter.networks import build_from_checkpoint
    from nnunet_pruning.core.measure import count_gflops, count_params

    network, patch = build_from_checkpoint(folder, load_checkpoint_file(os.path.join(folder, f"fold_{folds[0]}",
                                                                                     checkpoint)))
    channels = next(p for p in network.parameters() if p.dim() > 2).shape[1]
    return {"params": count_params(network), "gflops": count_gflops(network, channels, patch), "patch": patch}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="trained model folders; the first is the baseline")
    parser.add_argument("--images", required=True, help="a folder of images (CASE_0000.nii.gz naming)")
    parser.add_argument("--backends", nargs="+", default=list(runtimes.BACKENDS), choices=SETTINGS,
                        help="auto: as nnUNetv2_predict's default, chosen by timing the first tiles (the row says "
                             "what it chose)")
    parser.add_argument("-f", "--folds", nargs="+", default=["0"])
    parser.add_argument("-chk", "--checkpoint", default="checkpoint_final.pth")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-cases", type=int)
    parser.add_argument("--tta", action="store_true", help="mirroring on (default: off)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    for backend in args.backends:
        if backend != "auto":
            runtimes.require(backend)
    torch.set_num_threads(args.threads)
    settings = TimingSettings(use_mirroring=args.tta, threads=args.threads, warmup=args.warmup,
                              repeats=args.repeats)
    labels = [os.path.basename(m.rstrip("/")).split("__")[0] for m in args.models]
    labels = [f"{label} ({i + 1})" if labels.count(label) > 1 else label for i, label in enumerate(labels)]
    models = [(label, m, args.folds, args.checkpoint) for label, m in zip(labels, args.models)]
    with open(os.path.join(args.models[0], "dataset.json")) as f:
        cases = case_files(args.images, json.load(f), args.max_cases)
    print(f"[backends] checking every backend's segmentation against PyTorch's ({len(cases)} cases)", flush=True)
    agreement = _agreement(models, args.backends, cases, settings)
    entries = [(f"{label} [{backend}]", folder, folds, checkpoint, backend)
               for label, folder, folds, checkpoint in models for backend in args.backends]
    load = OtherCpuLoad().start()
    timing = time_models(entries, cases, settings, progress=lambda line: print(line.replace("[compare]", "[backends]"),
                                                                                flush=True))
    load.stop()
    base = timing["models"][entries[0][0]]["median"]
    rows = []
    for (label, folder, folds, checkpoint), backend in ((m, b) for m in models for b in args.backends):
        t = timing["models"][f"{label} [{backend}]"]["median"]
        rows.append({"model": label, "backend": backend, "ran_on": timing["models"][f"{label} [{backend}]"]["backend"],
                     **_size(folder, folds, checkpoint),
                     "s_per_case": t["total"], "network_s_per_case": t["network"],
                     "speedup": base["total"] / t["total"], "network_speedup": base["network"] / t["network"],
                     **agreement.get(label, {}).get(backend, {})})
    print(f"\n{len(cases)} cases, {args.threads} threads, mirroring {'on' if args.tta else 'off'}, folds "
          f"{' '.join(args.folds)}; median s per case; speedup vs {entries[0][0]}")
    print(f"{'model':36s} {'backend (ran on)':26s} {'params':>11s} {'GFLOPs':>7s} {'s/case':>8s} {'speedup':>8s} "
          f"{'net s':>7s} {'net speedup':>11s} {'labels agree':>12s}")
    for r in rows:
        agree = f"{r['labels_agree']:.4%}" if "labels_agree" in r else "(itself)"
        ran = r["backend"] + (f" ({r['ran_on']})" if r["ran_on"] != r["backend"] else "")
        print(f"{r['model']:36s} {ran:26s} {r['params']:>11,} {r['gflops']:>7.2f} {r['s_per_case']:>8.3f} "
              f"{r['speedup']:>7.2f}x {r['network_s_per_case']:>7.3f} {r['network_speedup']:>10.2f}x {agree:>12s}")
    if args.json:
        write_result({"rows": rows, "timing": timing, "other_cpu_cores_while_timing": load.cores,
                      "versions": {"torch": torch.__version__,
                                   **{b: _version(b) for b in args.backends if b in runtimes.RUNTIMES}}},
                     args.json, __file__, argv, indent=1)
    return 0


def _version(backend: str) -> str:
    from importlib.metadata import version

    return version(backend)


if __name__ == "__main__":
    sys.exit(main())
