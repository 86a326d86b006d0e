"""The pipeline's resume rules, on a workspace whose commands are recorded and faked (the real commands run in
tests/e2e: its fixtures, demo and benchmark are this pipeline)."""

import json
import os

import pytest

from nnunet_pruning.adapter.datasets import dataset_id
from nnunet_pruning.app.pipeline import TRAIN_SECONDS, Pipeline, SyntheticDataset
from nnunet_pruning.app.workspace import NnUNetWorkspace
from nnunet_pruning.core.errors import PruningError

SPEC = SyntheticDataset(905, "Fake", num_train=6, num_test=2, size=16, seed=1)


class FakeWorkspace(NnUNetWorkspace):
    """Records every command; ``make-dataset``, planning and training write what the real ones write last."""

    def __init__(self, root, fail_on=None):
        super().__init__(root)
        self.commands, self.fail_on, self.extra_env = [], fail_on, []

    def run(self, *command, **kwargs) -> str:
        self.commands.append(command)
        self.extra_env.append(kwargs.get("extra_env"))
        if self.fail_on and command[0] == self.fail_on:
            raise RuntimeError(f"{command[0]} interrupted")
        if command[0] == "nnunet-pruning":
            folder = os.path.join(self.raw, "Dataset905_Fake")
            os.makedirs(os.path.join(folder, "imagesTs"), exist_ok=True)
            os.makedirs(os.path.join(folder, "labelsTs"), exist_ok=True)
            for sub in ("imagesTs", "labelsTs"):
                open(os.path.join(folder, sub, "case.nii.gz"), "w").close()
            with open(os.path.join(folder, "dataset.json"), "w") as f:
                json.dump({"numTraining": 6, "generator": {"seed": 1, "shape": [16, 16, 16], "num_test": 2,
                                                           "task": "shapes"}}, f)
        elif command[0] in ("nnUNetv2_plan_and_preprocess", "nnUNetv2_preprocess"):
            folder = os.path.join(self.preprocessed, "Dataset905_Fake")
            os.makedirs(os.path.join(folder, f"nnUNetPlans_{command[command.index('-c') + 1]}"), exist_ok=True)
            if command[0] == "nnUNetv2_plan_and_preprocess":  # nnU-Net plans 3d_lowres for large images only
                with open(os.path.join(folder, "nnUNetPlans.json"), "w") as f:
                    json.dump({"configurations": {c: {"data_identifier": f"nnUNetPlans_{c}", "batch_size": 2}
                                                  for c in ("2d", "3d_fullres")}}, f)
        elif command[0] == "nnUNetv2_train":
            fold = os.path.join(self.model_folder(905, command[5], configuration=command[2]), f"fold_{command[3]}")
            os.makedirs(fold, exist_ok=True)
            open(os.path.join(fold, "checkpoint_final.pth"), "w").close()
        return ""

    def names(self):
        return [c[0] for c in self.commands]


def test_each_step_runs_once_and_resumes(tmp_path):
    ws = FakeWorkspace(str(tmp_path))
    pipeline = Pipeline(ws, 905)
    pipeline.make_dataset(SPEC)
    pipeline.require_test_cases()
    pipeline.plan()
    fold_dir = pipeline.train("nnUNetTrainerX", 1)
    assert fold_dir == os.path.join(ws.results, "Dataset905_Fake", "nnUNetTrainerX__nnUNetPlans__3d_fullres", "fold_1")
    assert pipeline.train_seconds("nnUNetTrainerX", 1) >= 0 and os.path.isfile(os.path.join(fold_dir, TRAIN_SECONDS))
    again = Pipeline(ws, 905)
    again.make_dataset(SPEC)
    again.plan()
    again.train("nnUNetTrainerX", 1)
    assert ws.names() == ["nnunet-pruning", "nnUNetv2_plan_and_preprocess", "nnUNetv2_train"]


def test_plans_without_the_marker_are_planned_again(tmp_path):
    """nnU-Net writes its plans before preprocessing ends: an interrupted planning is no finished one."""
    ws = FakeWorkspace(str(tmp_path))
    pipeline = Pipeline(ws, 905)
    pipeline.make_dataset(SPEC)
    os.makedirs(os.path.join(ws.preprocessed, "Dataset905_Fake"))
    open(pipeline.plans_file(), "w").write("{}")
    pipeline.plan()
    assert ws.names().count("nnUNetv2_plan_and_preprocess") == 1
    pipeline.plan()
    assert ws.names().count("nnUNetv2_plan_and_preprocess") == 1
    other = FakeWorkspace(str(tmp_path / "user"))  # a dataset the user brought (-d) and planned: used as it is
    Pipeline(other, 905).make_dataset(SPEC)
    os.makedirs(os.path.join(other.preprocessed, "Dataset905_Fake", "nnUNetPlans_3d_fullres"))
    open(os.path.join(other.preprocessed, "Dataset905_Fake", "nnUNetPlans.json"), "w").write(json.dumps(
        {"configurations": {"3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres"}}}))
    Pipeline(other, 905).plan(trust_existing=True)
    assert "nnUNetv2_plan_and_preprocess" not in other.names() and "nnUNetv2_preprocess" not in other.names()


def test_interrupted_planning_leaves_no_marker(tmp_path):
    ws = FakeWorkspace(str(tmp_path), fail_on="nnUNetv2_plan_and_preprocess")
    pipeline = Pipeline(ws, 905)
    pipeline.make_dataset(SPEC)
    with pytest.raises(RuntimeError, match="interrupted"):
        pipeline.plan()
    assert not os.path.exists(os.path.join(ws.root, ".pipeline"))


def test_dataset_made_with_other_settings_is_refused_naming_them(tmp_path):
    ws = FakeWorkspace(str(tmp_path))
    Pipeline(ws, 905).make_dataset(SPEC)
    other = SyntheticDataset(905, "Fake", num_train=8, num_test=2, size=16, seed=2)
    with pytest.raises(PruningError, match=r"made with --train 6 \(asked: 8\), --seed 1 \(asked: 2\); pass the"):
        Pipeline(ws, 905).make_dataset(other)


def test_dataset_folder_without_its_json_is_made_again(tmp_path):
    """make-dataset writes dataset.json last: a folder without it was interrupted."""
    ws = FakeWorkspace(str(tmp_path))
    os.makedirs(os.path.join(ws.raw, "Dataset905_Fake", "imagesTr"))
    Pipeline(ws, 905).make_dataset(SPEC)
    assert ws.commands[0][:2] == ("nnunet-pruning", "make-dataset") and "--overwrite" in ws.commands[0]


def test_missing_test_cases_are_one_line(tmp_path):
    ws = FakeWorkspace(str(tmp_path))
    os.makedirs(os.path.join(ws.raw, "Dataset905_Fake", "imagesTs"))
    with pytest.raises(PruningError, match="Dataset905_Fake has no imagesTs in .*test Dice needs held-out cases"):
        Pipeline(ws, 905).require_test_cases()


@pytest.mark.parametrize("text, expected", [("4", 4), ("004", 4), ("Dataset004_Hippocampus", 4), ("999", 999)])
def test_dataset_ids(text, expected):
    assert dataset_id(text) == expected


@pytest.mark.parametrize("text", ["0", "1000", "Hippocampus", "Dataset_4", ""])
def test_bad_dataset_ids(text):
    with pytest.raises(PruningError, match="neither an id"):
        dataset_id(text)


def test_a_users_dataset_is_checked_before_the_output_folder_is_made(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    for name in ("raw", "pre", "results"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "results"))
    with pytest.raises(PruningError, match=r"dataset 7 is not in nnUNet_raw=.*; pass the id of a dataset there"):
        Pipeline.of_user_dataset(str(tmp_path / "out"), 7)
    assert not (tmp_path / "out").exists()
    for sub in ("imagesTs", "labelsTs"):
        (raw / "Dataset007_Mine" / sub).mkdir(parents=True)
        (raw / "Dataset007_Mine" / sub / "case.nii.gz").write_bytes(b"")
    pipeline = Pipeline.of_user_dataset(str(tmp_path / "out"), 7)
    assert pipeline.ws.raw == str(raw) and pipeline.ws.root == str(tmp_path / "out") and pipeline.name == \
        "Dataset007_Mine"


def test_a_checkpoint_left_mid_write_is_no_finished_training(tmp_path):
    """Issue 23.1: nnU-Net's own outputs are no markers; a checkpoint_final.pth cut short by a kill is set aside
    and the fold trains again (with --c), one that loads (trained outside the pipeline) is reused."""
    import torch

    ws = FakeWorkspace(str(tmp_path))
    pipeline = Pipeline(ws, 905)
    pipeline.make_dataset(SPEC)
    pipeline.plan()
    fold_dir = pipeline.fold_folder("nnUNetTrainerX", 0)
    os.makedirs(fold_dir)
    with open(os.path.join(fold_dir, "checkpoint_final.pth"), "wb") as f:
        f.write(b"PK\x03\x04 cut short")
    pipeline.train("nnUNetTrainerX", 0)
    assert ws.commands[-1][:8] == ("nnUNetv2_train", "905", "3d_fullres", "0", "-tr", "nnUNetTrainerX", "-device",
                                   "cpu") and "--c" in ws.commands[-1]
    assert os.path.isfile(os.path.join(fold_dir, "checkpoint_final.pth.interrupted"))
    other = pipeline.fold_folder("nnUNetTrainerX", 1)
    os.makedirs(other)
    torch.save({"network_weights": {}, "trainer_name": "nnUNetTrainerX"}, os.path.join(other, "checkpoint_final.pth"))
    trained = len(ws.commands)
    pipeline.train("nnUNetTrainerX", 1)
    assert len(ws.commands) == trained  # a loadable checkpoint of a finished model: reused


def test_scored_runs_are_the_predictions_newer_than_their_checkpoint(tmp_path):
    """What the benchmark keeps of earlier invocations: every trainer's and fold's scored test predictions."""
    ws = FakeWorkspace(str(tmp_path))
    pipeline = Pipeline(ws, 905)
    pipeline.make_dataset(SPEC)
    pipeline.plan()

    def scored(trainer, fold, checkpoint=True, summary=True, older=False):
        if checkpoint:
            os.makedirs(pipeline.fold_folder(trainer, fold), exist_ok=True)
            open(os.path.join(pipeline.fold_folder(trainer, fold), "checkpoint_final.pth"), "w").close()
        if summary:
            os.makedirs(pipeline.predictions_folder(trainer, fold), exist_ok=True)
            path = os.path.join(pipeline.predictions_folder(trainer, fold), "summary.json")
            open(path, "w").close()
            when = os.path.getmtime(os.path.join(pipeline.fold_folder(trainer, fold), "checkpoint_final.pth")) \
                if checkpoint else 0
            os.utime(path, (when - 10, when - 10) if older else (when + 10, when + 10))

    assert pipeline.scored_runs() == []  # no predictions folder yet
    scored("nnUNetTrainerB", 1)
    scored("nnUNetTrainerA", 0)
    scored("nnUNetTrainerA", 2)
    scored("nnUNetTrainerA", 3, older=True)  # trained again since: its predictions are stale
    scored("nnUNetTrainerA", 4, checkpoint=False)  # the model is gone
    scored("nnUNetTrainerC", 0, summary=False)  # trained, never predicted
    open(os.path.join(ws.root, "predictions", "notes.txt"), "w").close()
    os.makedirs(os.path.join(ws.root, "predictions", "nnUNetTrainerA", "fold_"))
    assert pipeline.scored_runs() == [("nnUNetTrainerA", "0"), ("nnUNetTrainerA", "2"), ("nnUNetTrainerB", "1")]
    assert pipeline.scored("nnUNetTrainerA", 0) and not pipeline.scored("nnUNetTrainerA", 3)


def test_every_command_runs_on_the_pipelines_device(tmp_path, monkeypatch):
    """benchmark --device cuda: nnUNetv2_train and nnUNetv2_predict get -device cuda (default cpu)."""
    import torch

    from nnunet_pruning.app.pipeline import check_device

    ws = FakeWorkspace(str(tmp_path))
    pipeline = Pipeline(ws, 905, device="cuda")
    pipeline.make_dataset(SPEC)
    pipeline.plan()
    pipeline.train("nnUNetTrainerX", 0)
    with pytest.raises(FileNotFoundError):  # the fake predicts nothing: no summary to read
        pipeline.predict_and_evaluate("nnUNetTrainerX", 0)
    train, predict = ws.commands[-3], ws.commands[-2]
    assert train[0] == "nnUNetv2_train" and train[train.index("-device") + 1] == "cuda"
    assert predict[0] == "nnUNetv2_predict" and predict[predict.index("-device") + 1] == "cuda"
    assert Pipeline(ws, 905).device == "cpu"
    # data augmentation: nnU-Net's own worker count on a GPU (the user's nnUNet_n_proc_DA wins), in-process on the CPU
    monkeypatch.setenv("nnUNet_n_proc_DA", "1")  # (nnU-Net caps it at the CPU count)
    assert pipeline._augmentation_env() == {"nnUNet_n_proc_DA": "1"} and Pipeline(ws, 905)._augmentation_env() == {}
    pipeline.train("nnUNetTrainerX", 1)
    assert ws.commands[-1][0] == "nnUNetv2_train" and ws.extra_env[-1] == {"nnUNet_n_proc_DA": "1"}
    assert check_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert check_device("cuda") == "cuda"
    with pytest.raises(PruningError, match=r"device 'cuda:1' is not one of cpu, cuda, mps .*CUDA_VISIBLE_DEVICES"):
        check_device("cuda:1")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(PruningError, match="device mps asked for, but MPS is not available on this machine"):
        check_device("mps")


def test_another_configuration_trains_predicts_and_keeps_its_own_predictions(tmp_path):
    """benchmark -c 2d: every command gets the configuration; its test predictions do not mix with 3d_fullres's."""
    ws = FakeWorkspace(str(tmp_path))
    pipeline = Pipeline(ws, 905, configuration="2d")
    pipeline.make_dataset(SPEC)
    pipeline.plan()
    assert ws.commands[-1][:5] == ("nnUNetv2_plan_and_preprocess", "-d", "905", "-c", "2d")
    pipeline.train("nnUNetTrainerX", 0)
    assert ws.commands[-1][:4] == ("nnUNetv2_train", "905", "2d", "0")
    assert pipeline.fold_folder("nnUNetTrainerX", 0).endswith("nnUNetTrainerX__nnUNetPlans__2d/fold_0")
    assert pipeline.predictions_folder("nnUNetTrainerX", 0) == os.path.join(ws.root, "predictions_2d", "nnUNetTrainerX",
                                                                            "fold_0")
    assert Pipeline(ws, 905).predictions_folder("nnUNetTrainerX", 0) == os.path.join(ws.root, "predictions",
                                                                                     "nnUNetTrainerX", "fold_0")
    with pytest.raises(PruningError, match="the plans nnUNetPlans of Dataset905_Fake have no configuration 3d_lowres "
                                           r"\(nnU-Net made 2d, 3d_fullres: it plans 3d_lowres only for large images\); choose one of "
                                           "those with -c"):
        Pipeline(ws, 905, configuration="3d_lowres").plan()
    with pytest.raises(PruningError, match="configuration '3d_cascade_fullres' is not one of 3d_fullres, 2d, 3d_lowres"):
        Pipeline(ws, 905, configuration="3d_cascade_fullres")


def test_a_users_plans_without_the_configurations_data_are_preprocessed_not_planned_again(tmp_path):
    """-d 4 -c 2d on a dataset planned and preprocessed for 3d_fullres only: nnUNetv2_preprocess -c 2d with the
    user's own plans (planning again would overwrite them); a configuration already preprocessed runs nothing."""
    ws = FakeWorkspace(str(tmp_path))
    Pipeline(ws, 905).make_dataset(SPEC)
    Pipeline(ws, 905).plan()  # the user's plans, 3d_fullres preprocessed
    os.remove(os.path.join(ws.root, ".pipeline", "planned_Dataset905_Fake_nnUNetPlans_3d_fullres"))
    before = len(ws.commands)
    Pipeline(ws, 905).plan(trust_existing=True)
    assert len(ws.commands) == before
    Pipeline(ws, 905, configuration="2d").plan(trust_existing=True)
    assert ws.commands[before:] == [("nnUNetv2_preprocess", "-d", "905", "-plans_name", "nnUNetPlans", "-c", "2d",
                                     "-np", "2")]
    Pipeline(ws, 905, configuration="2d").plan(trust_existing=True)
    assert len(ws.commands) == before + 1


class _Runs(Pipeline):
    """Runs that take 60 s each on a clock the test reads, but those scored before, which are read back at once."""

    def __init__(self, ws, scored_before, said):
        super().__init__(ws, 905, say=said.append)
        self.before, self.now = scored_before, 0.0

    def scored(self, trainer, fold):
        return (trainer, fold) in self.before

    def test_run(self, trainer, fold, progress=None):
        if (trainer, fold) not in self.before:
            self.now += 60.0
        return {"trainer": trainer, "fold": fold, "test_dice": 0.8}


def test_each_run_says_how_far_and_how_long_is_left(tmp_path):
    said = []
    pipeline = _Runs(FakeWorkspace(str(tmp_path)), {("stock", "0"), ("stamp", "0")}, said)
    todo = [(t, f) for f in "012" for t in ("stock", "stamp")]
    runs = pipeline.test_runs(todo, lambda t, f: f"{t} fold {f}", clock=lambda: pipeline.now)
    assert [(r["trainer"], r["fold"]) for r in runs] == [("stock", "0"), ("stamp", "0"), ("stock", "1"),
                                                          ("stamp", "1"), ("stock", "2"), ("stamp", "2")]
    assert said == ["2 of the 6 runs scored before: reused",
                    "stock fold 0: test Dice 0.800 (run 1 of 6)",
                    "stamp fold 0: test Dice 0.800 (run 2 of 6)",
                    "stock fold 1: test Dice 0.800 (run 3 of 6, about 3 min left)",
                    "stamp fold 1: test Dice 0.800 (run 4 of 6, about 2 min left)",
                    "stock fold 2: test Dice 0.800 (run 5 of 6, about 1 min left)",
                    "stamp fold 2: test Dice 0.800 (run 6 of 6)"]
