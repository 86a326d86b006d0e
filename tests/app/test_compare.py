"""The comparison's checks and report, on hand-made measurements (no training)."""

import csv
import json

import pytest

from nnunet_pruning.app.compare import ModelEntry, check_same_task, resolve_model_folder, summarise
from nnunet_pruning.app.report import markdown_table, ratios, write_outputs
from nnunet_pruning.core.errors import PruningError


def _entry(label, params, gflops, dice, dataset="Dataset001_A", configuration="3d_fullres", folds=("0",),
           pruned=False):
    e = ModelEntry(label=label, folder=f"/m/{label}", trainer=label, plans="nnUNetPlans", configuration=configuration,
                   dataset=dataset)
    for i, fold in enumerate(folds):
        log = {"target_reached": True, "steps": [{"epoch": 0, "params_fraction": 0.5, "gflops_fraction": 0.4,
                                                  "ema_pseudo_dice": 0.3}]} if pruned else None
        e.folds[fold] = {"architecture": "PlainConvUNet", "params": params + i, "gflops": gflops, "patch_size": [8, 8],
                         "widths": {"encoder.stages.0": [4, 4], "decoder.seg_layers.0": [2]},
                         "checkpoint": "checkpoint_final.pth", "checkpoint_bytes": 4 * params, "dice": dice + 0.01 * i,
                         "dice_per_class": {"1": dice + 0.01 * i}, "pruning_log": log}
    return e


def test_summary_averages_folds():
    s = summarise(_entry("a", 100, 2.0, 0.8, folds=("0", "1")))
    assert s["dice"] == pytest.approx(0.805) and s["params"] == 100.5 and s["params_range"] == [100, 101]


def test_ratios_against_the_first_model():
    models = [_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("flat", 100, 4.0, 0.78).as_dict()]
    models[0]["inference"] = {"median": {"total": 2.0, "network": 1.5}}
    models[1]["inference"] = {"median": {"total": 1.0, "network": 0.5}}
    r = ratios(models)
    assert r[1]["params_ratio"] == 10 and r[1]["gflops_ratio"] == 2 and r[1]["speedup_total"] == 2
    assert r[1]["speedup_network"] == 3 and r[1]["dice_delta"] == pytest.approx(-0.02)
    table = markdown_table(models, {"1": "organ"})
    assert "| stock (baseline) |" in table and "10.0x fewer" in table and "3.00x" in table and "organ 0.780" in table


@pytest.mark.parametrize("field, value, message", [("dataset", "Dataset002_B", "different datasets"),
                                                   ("configuration", "2d", "different configurations")])
def test_refuses_different_tasks(field, value, message):
    entries = [_entry("a", 10, 1.0, 0.5), _entry("b", 10, 1.0, 0.5, **{field: value})]
    with pytest.raises(PruningError, match=message):
        check_same_task(entries)


def test_checks_dataset_and_configuration_given():
    entries = [_entry("a", 10, 1.0, 0.5), _entry("b", 10, 1.0, 0.5)]
    check_same_task(entries, "1", "3d_fullres")
    check_same_task(entries, "Dataset001_A")
    with pytest.raises(PruningError, match="not dataset 2"):
        check_same_task(entries, "2")
    with pytest.raises(PruningError, match="not 2d"):
        check_same_task(entries, None, "2d")


def test_trainer_names_need_dataset_and_configuration():
    with pytest.raises(PruningError, match="pass the dataset and configuration"):
        resolve_model_folder("nnUNetTrainerSTAMP", None, None)
    with pytest.raises(PruningError, match="does not exist"):
        resolve_model_folder("./no/such/folder", None, None)


def test_write_outputs(tmp_path):
    models = [_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("stamp", 300, 2.0, 0.79, pruned=True).as_dict()]
    written = write_outputs(models, None, str(tmp_path), {"1": "organ"}, "nnunet-pruning compare stock stamp")
    assert set(written) == {"dice_vs_params", "dice_vs_gflops", "widths", "trajectories", "report", "csv", "json"}
    rows = list(csv.DictReader(open(written["csv"])))
    assert [r["model"] for r in rows] == ["stock", "stamp"] and rows[1]["pruned"] == "True"
    assert json.load(open(written["json"]))["baseline"] == "stock"
    assert "not measured" in open(written["report"]).read()


def test_no_trajectory_plot_without_pruning(tmp_path):
    models = [_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("flat", 100, 4.0, 0.78).as_dict()]
    written = write_outputs(models, None, str(tmp_path), {}, "c")
    assert "trajectories" not in written and "no pruning trajectory" in open(written["report"]).read()


@pytest.mark.parametrize("other, says", [(0.02, "0.02 CPU cores busy on average while timing (idle enough)"),
                                         (1.3, "1.30 CPU cores busy on average while timing (**suspect")])
def test_report_says_how_busy_the_machine_was_while_timing(tmp_path, other, says):
    models = [_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("flat", 100, 4.0, 0.78).as_dict()]
    for m, seconds in zip(models, (2.0, 1.0)):
        m["inference"] = {"median": {"total": seconds, "network": seconds / 2}}
    settings = {"repeats": 3, "warmup": 1, "device": "cpu", "threads": 2, "tile_step_size": 0.5,
                "use_mirroring": False}
    timing = {"settings": settings, "cases": ["a", "b"], "models": {}, "other_cpu_cores": other}
    written = write_outputs(models, timing, str(tmp_path), {}, "c")
    assert f"- other processes kept {says}" in open(written["report"]).read()
