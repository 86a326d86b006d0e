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


@pytest.mark.parametrize("other, peak, says", [
    (0.02, None, "0.02 CPU cores busy on average while timing (idle enough)"),
    (1.3, None, "1.30 CPU cores busy on average while timing (**suspect"),
    (0.02, 0.1, "0.02 CPU cores busy on average while timing, 0.10 in the busiest second (idle enough)"),
    (0.05, 1.2, "0.05 CPU cores busy on average while timing, 1.20 in the busiest second (**suspect")])
def test_report_says_how_busy_the_machine_was_while_timing(tmp_path, other, peak, says):
    models = [_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("flat", 100, 4.0, 0.78).as_dict()]
    for m, seconds in zip(models, (2.0, 1.0)):
        m["inference"] = {"median": {"total": seconds, "network": seconds / 2}}
    settings = {"repeats": 3, "warmup": 1, "device": "cpu", "threads": 2, "tile_step_size": 0.5,
                "use_mirroring": False}
    timing = {"settings": settings, "cases": ["a", "b"], "models": {}, "other_cpu_cores": other,
              "other_cpu_cores_peak": peak}
    written = write_outputs(models, timing, str(tmp_path), {}, "c")
    assert f"- other processes kept {says}" in open(written["report"]).read()


def test_report_says_what_ran_each_network(tmp_path):
    models = [_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("flat", 100, 4.0, 0.78).as_dict()]
    for m, seconds in zip(models, (2.0, 1.0)):
        m["inference"] = {"median": {"total": seconds, "network": seconds / 2}}
    settings = {"repeats": 3, "warmup": 1, "device": "cpu", "threads": 2, "tile_step_size": 0.5,
                "use_mirroring": False}
    timing = {"settings": settings, "cases": ["a"], "other_cpu_cores": 0.0,
              "models": {"stock": {"backend": "torch"}, "flat": {"backend": "openvino"}}}
    report = open(write_outputs(models, timing, str(tmp_path), {}, "c")["report"]).read()
    assert "- what ran each network (eager, on the CPU): stock: torch, flat: openvino;" in report
    timing["models"]["flat"]["backend"] = "torch"
    report = open(write_outputs(models, timing, str(tmp_path / "b"), {}, "c")["report"]).read()
    assert "what ran each network" not in report


def _model_folder(root, name, folds, checkpoint="checkpoint_final.pth", dataset="Dataset001_A"):
    folder = root / f"{name}__nnUNetPlans__3d_fullres"
    folder.mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps({"dataset_name": dataset, "plans_name": "nnUNetPlans"}))
    for fold in folds:
        (folder / f"fold_{fold}").mkdir()
        (folder / f"fold_{fold}" / checkpoint).write_bytes(b"x")
    return str(folder)


def test_different_fold_sets_are_refused_before_measuring(tmp_path):
    """Issue 14.3: fold 0 against folds 0 and 1 would average Dice and time over different folds."""
    from nnunet_pruning.app.compare import available_folds

    a = _model_folder(tmp_path, "stock", ["0"])
    b = _model_folder(tmp_path, "stamp", ["0", "1"])
    with pytest.raises(PruningError, match=r"different folds \(stock: 0; stamp: 0 1\).*-f 0$"):
        available_folds([a, b], ["stock", "stamp"], None, None)
    assert available_folds([a, b], ["stock", "stamp"], ["0"], None) == ["0"]
    with pytest.raises(PruningError, match="model stock has no checkpoint for fold 1"):
        available_folds([a, b], ["stock", "stamp"], ["0", "1"], None)
    c = _model_folder(tmp_path, "flat", ["2"])
    with pytest.raises(PruningError, match="share no fold"):
        available_folds([a, c], ["stock", "flat"], None, None)


def test_run_compare_checks_folds_output_and_timing_before_measuring(tmp_path, monkeypatch):
    from nnunet_pruning.app import compare
    from nnunet_pruning.app.timing import TimingSettings

    measured = []
    monkeypatch.setattr(compare, "collect_model", lambda *a, **k: measured.append(a) or pytest.fail("measured"))
    a = _model_folder(tmp_path, "stock", ["0"])
    b = _model_folder(tmp_path, "stamp", ["0", "1"])
    (tmp_path / "a_file").write_text("keep")
    cases = [
        (dict(output=str(tmp_path / "a_file")), "is a file, not a folder"),
        (dict(output=str(tmp_path / "out"), folds=None), "different folds"),
        (dict(output=str(tmp_path / "out"), folds=["0"], time_images=str(tmp_path / "none")), "does not exist"),
        (dict(output=str(tmp_path / "out"), folds=["0"], time_images="auto", settings=TimingSettings(repeats=0)),
         "repeats and threads must be >= 1"),
        (dict(output=str(tmp_path / "out"), folds=["0"], time_images="auto", max_cases=0), "--max-cases"),
    ]
    if not __import__("torch").cuda.is_available():
        cases.append((dict(output=str(tmp_path / "out"), folds=["0"], time_images="auto",
                           settings=TimingSettings(device="cuda")), "CUDA is not available"))
    for kwargs, message in cases:
        with pytest.raises(PruningError, match=message):
            compare.run_compare([a, b], progress=lambda line: None, **kwargs)
    assert measured == [] and (tmp_path / "a_file").read_text() == "keep" and not (tmp_path / "out").exists()


def test_different_datasets_are_refused_before_measuring(tmp_path, monkeypatch):
    from nnunet_pruning.app import compare

    monkeypatch.setattr(compare, "collect_model", lambda *a, **k: pytest.fail("measured"))
    a = _model_folder(tmp_path, "stock", ["0"])
    b = _model_folder(tmp_path / "other", "stamp", ["0"], dataset="Dataset002_B")
    with pytest.raises(PruningError, match="different datasets"):
        compare.run_compare([a, b], str(tmp_path / "out"), progress=lambda line: None)


def test_checkpoint_other_than_final_is_flagged(tmp_path):
    """Issue 14.3: a model measured from checkpoint_best.pth says so in the report."""
    from nnunet_pruning.app.compare import checkpoint_notes

    stock, stamp = _entry("stock", 1000, 8.0, 0.8), _entry("stamp", 300, 2.0, 0.79)
    stamp.folds["0"]["checkpoint"] = "checkpoint_best.pth"
    notes = checkpoint_notes([stock, stamp])
    assert len(notes) == 1 and notes[0].startswith("**stamp is measured from checkpoint_best.pth, not checkpoint_final")
    written = write_outputs([stock.as_dict(), stamp.as_dict()], None, str(tmp_path), {}, "c", notes)
    assert notes[0] in open(written["report"]).read()


def test_a_larger_model_is_more_not_fewer(tmp_path):
    """Issue 14.6: a model twice the baseline's size reads "2.0x more", not "0.5x fewer"."""
    from nnunet_pruning.app.report import times_fewer

    assert times_fewer(2.0) == "2.0x fewer" and times_fewer(0.5) == "2.0x more" and times_fewer(1.0) == "1.0x fewer"
    table = markdown_table([_entry("stock", 1000, 8.0, 0.8).as_dict(), _entry("wide", 2000, 16.0, 0.8).as_dict()], {})
    assert "2.0x more" in table and "2.00x more" in table and "0.5x fewer" not in table


def test_plots_keep_small_dice_changes_small(tmp_path):
    """Issue 14.6: a 0.0004 change in EMA Dice must not fill the axis; epochs are whole numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnunet_pruning.trainers.progress_plot import MIN_SCORE_SPAN, set_score_limits

    for values in ([0.8, 0.8004], [0.999, 0.9994], [0.0, 0.0001], [0.2, 0.9]):
        fig, ax = plt.subplots()
        set_score_limits(ax, values)
        low, high = ax.get_ylim()
        assert high - low >= MIN_SCORE_SPAN - 1e-9 and 0 <= low <= min(values) and max(values) <= high <= 1
        plt.close(fig)


def test_a_model_that_missed_its_target_is_flagged(tmp_path):
    """Issue 12.3: a 100-epoch run that stopped at 59% of the parameters must not look like a finished one."""
    from nnunet_pruning.app.compare import target_notes

    stock, short = _entry("stock", 1000, 8.0, 0.8), _entry("stamp", 590, 5.0, 0.79, pruned=True)
    short.folds["0"]["pruning_log"] = {"schedule": {"target_metric": "params", "keep_fraction": 0.2},
                                       "target_reached": False,
                                       "steps": [{"epoch": 99, "params_fraction": 0.59, "gflops_fraction": 0.6}]}
    notes = target_notes([stock, short])
    assert notes == ["**stamp fold 0 did not reach its pruning target** (keeps 59.0% of the params, target <= 20%: "
                     "NOT reached, out of epochs or still pruning (1 step, after epoch 99)): train longer, or choose a schedule that fits (see nnunet-pruning trainers)."]
    models = [stock.as_dict(), short.as_dict()]
    assert models[1]["summary"]["target_reached"] is False and models[0]["summary"]["target_reached"] is None
    written = write_outputs(models, None, str(tmp_path), {}, "c", notes)
    report = open(written["report"]).read()
    assert "stamp (**pruning target NOT reached**)" in report and notes[0] in report
    rows = list(csv.DictReader(open(written["csv"])))
    assert [r["target_reached"] for r in rows] == ["", "False"]
    reached = _entry("ok", 200, 2.0, 0.8, pruned=True)
    assert target_notes([stock, reached]) == [] and "NOT reached" not in markdown_table(
        [stock.as_dict(), reached.as_dict()], {})


def test_a_latency_run_says_what_it_measured():
    """Per pruned fold with a latency target: one line with the time it measured; stock and params runs: none."""
    from nnunet_pruning.app.compare import latency_notes

    stock, params = _entry("stock", 1000, 8.0, 0.8), _entry("stamp", 200, 2.0, 0.8, pruned=True)
    timed = _entry("fast", 500, 4.0, 0.8, pruned=True)
    timed.folds["0"]["pruning_log"] = {"schedule": {"target_metric": "latency", "keep_fraction": 0.5},
                                       "target_reached": True, "outcome": "reached", "latency": {"device": "cpu"},
                                       "steps": [{"epoch": 3, "latency_fraction": 0.45, "latency": 0.09}]}
    assert latency_notes([stock, params, timed]) == [
        "fast fold 0: keeps 45.0% of the latency, target <= 50%: reached (1 step, after epoch 3); measured latency "
        "90.0 ms per forward pass "
        "at the patch size (45.0% of unpruned, cpu, during training)."]


def test_count_says_whether_the_target_was_reached():
    from nnunet_pruning.app.count import format_count

    network = {"architecture": "PlainConvUNet", "params": 10, "gflops": 1.0, "patch_size": [8, 8], "widths": {},
               "checkpoint_bytes": 40, "pruning": {"target_metric": "params", "keep_fraction": 0.2,
                                                   "kept_fraction": 0.59, "target_reached": False}}
    text = format_count({"source": "/m", "trainer": "t", "configuration": "2d", "gflops_unit": "u",
                         "networks": {"fold_0": network}})
    assert "pruning of fold_0: keeps 59.0% of the params, target <= 20%: NOT reached" in text


def test_trajectories_plot_the_measured_time_where_a_run_pruned_to_it(tmp_path, monkeypatch):
    """A latency run adds a panel of its measured forward time (named by device); params-only runs keep three."""
    from nnunet_pruning.app import plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    params = _entry("stamp", 200, 2.0, 0.8, pruned=True)
    timed = _entry("fast", 500, 4.0, 0.8, pruned=True)
    timed.folds["0"]["pruning_log"] = {"latency": {"device": "cpu, 2 threads"}, "steps": [
        {"epoch": 0, "params_fraction": 0.9, "gflops_fraction": 0.6, "latency_fraction": 0.7, "ema_pseudo_dice": 0.2},
        {"epoch": 1, "params_fraction": 0.5, "gflops_fraction": 0.3, "latency_fraction": 0.45}]}
    assert plots.plot_trajectories([params.as_dict()], str(tmp_path / "a.png"))
    assert plots.plot_trajectories([params.as_dict(), timed.as_dict()], str(tmp_path / "b.png"))
    titles = [[ax.get_title() for ax in fig.axes] for fig in figures]
    assert titles[0] == ["parameters", "GFLOPs at the patch size", "EMA pseudo-Dice at each step"]
    assert titles[1][2] == "measured forward time (cpu, 2 threads)" and len(titles[1]) == 4
    time_lines = figures[1].axes[2].get_lines()
    assert len(time_lines) == 1 and list(time_lines[0].get_ydata()) == pytest.approx([100.0, 70.0, 45.0])
