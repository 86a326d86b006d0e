"""Trainer names that carry their settings: the grammar, the classes made from it, and nnU-Net's lookup."""

import pickle
from dataclasses import replace

import pytest

from nnunet_pruning.adapter.environment import ext_trainer_folder
from nnunet_pruning.adapter.networks import resolve_trainer
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.trainers import TRAINERS, nnUNetTrainerRandomLargest, nnUNetTrainerSTAMP
from nnunet_pruning.trainers.catalogue import catalogue, format_catalogue
from nnunet_pruning.trainers.guards import TrainerError
from nnunet_pruning.trainers.named import (EXAMPLES, GRAMMAR, module_getattr, named_trainer_class,
                                           parse_trainer_name, quiet_lookups)

from tests.trainers.fake_task import make_plans, make_trainer, prepare_folders


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_documented_example_resolves(name):
    cls = resolve_trainer(name)
    assert cls.__name__ == name and cls is named_trainer_class(name)
    assert pickle.loads(pickle.dumps(cls)) is cls  # found again by module + name
    schedule = getattr(cls, "pruning_schedule", None)
    if schedule is not None:  # every named pruning variant reaches its target within its own epochs
        assert schedule.last_pruning_epoch() < cls.budget.epochs


@pytest.mark.parametrize("name", EXAMPLES)
def test_nnunets_own_lookup_finds_every_example(name, monkeypatch):
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    monkeypatch.setenv("nnUNet_extTrainer", ext_trainer_folder())
    assert recursive_find_trainer_class_by_name(name) is named_trainer_class(name)


def test_settings_land_where_nnunet_reads_them():
    cls = named_trainer_class("nnUNetTrainerRandomLargest_keep10_250epochs")
    assert issubclass(cls, nnUNetTrainerRandomLargest)
    assert (cls.budget.epochs, cls.budget.iterations, cls.budget.val_iterations) == (250, 250, 50)
    s = cls.pruning_schedule
    assert (s.method, s.keep_fraction, s.warmup_epochs, s.every_epochs) == ("random_largest", 0.1, 12, 2)
    cls = named_trainer_class("nnUNetTrainerSTAMP_keep10_100epochs_5iters_warmup10_minw8")
    assert (cls.budget.epochs, cls.budget.iterations, cls.budget.val_iterations) == (100, 5, 1)
    assert (cls.pruning_schedule.warmup_epochs, cls.pruning_schedule.min_width) == (10, 8)
    assert named_trainer_class("nnUNetTrainerFlatUNet48").flat_width == 48
    s = named_trainer_class("nnUNetTrainerSTAMPLatency_keep40_250epochs_cpu4").pruning_schedule
    assert (s.method, s.target_metric, s.keep_fraction, s.latency_device, s.latency_threads) == \
        ("taylor", "latency", 0.4, "cpu", 4)
    s = named_trainer_class("nnUNetTrainerRandomLargestLatency_100epochs").pruning_schedule
    assert (s.method, s.target_metric, s.keep_fraction, s.latency_device) == ("random_largest", "latency", 0.5, "")
    s = named_trainer_class("nnUNetTrainerSTAMP_keep10_minw4_fullres24_demo").pruning_schedule
    assert (s.keep_fraction, s.min_width, s.min_width_full_resolution, s.warmup_epochs) == (0.1, 4, 24, 1)
    assert (s.min_width_of(0), s.min_width_of(1)) == (24, 4)
    assert named_trainer_class("nnUNetTrainerSTAMP_250epochs_fullres24").pruning_schedule == replace(
        named_trainer_class("nnUNetTrainerSTAMP_250epochs").pruning_schedule, min_width_full_resolution=24)
    # the ablation of the same floor is this name on nnU-Net's budget
    from nnunet_pruning.trainers.ablations import nnUNetTrainerSTAMPFullResFloor
    assert named_trainer_class("nnUNetTrainerSTAMP_fullres24").pruning_schedule == \
        nnUNetTrainerSTAMPFullResFloor.pruning_schedule


def test_fitted_schedule_is_the_default_at_1000_epochs():
    assert PruningSchedule().fitted(1000) == PruningSchedule()
    assert nnUNetTrainerSTAMP.pruning_schedule.fitted(1000) == nnUNetTrainerSTAMP.pruning_schedule


@pytest.mark.parametrize("epochs", [1, 2, 3, 4, 7, 10, 25, 50, 100, 250, 500, 1000, 2000])
@pytest.mark.parametrize("keep", [0.01, 0.1, 0.2, 0.5, 0.9])
def test_fitted_schedules_reach_their_target_in_time(epochs, keep):
    s = PruningSchedule().fitted(epochs, keep)
    assert s.last_pruning_epoch() < epochs and s.keep_fraction == keep


@pytest.mark.parametrize("name, why", [
    ("nnUNetTrainerSTAMP_keep0", "keep0 is outside 1-99"),
    ("nnUNetTrainerSTAMP_keep100", "keep100 is outside 1-99"),
    ("nnUNetTrainerSTAMP_250epochs_keep10", "comes too late"),
    ("nnUNetTrainerSTAMP_keep10_keep20", "given twice"),
    ("nnUNetTrainerSTAMP_fast", "'fast' is not a setting"),
    ("nnUNetTrainerSTAMP_fullres0", "fullres must be at least 1"),
    ("nnUNetTrainerSTAMP_fullres24_minw4", "comes too late"),
    ("nnUNetTrainerFlatUNet_fullres24", "does not apply to the Flat U-Net"),
    ("nnUNetTrainerSTAMP_0epochs", "epochs must be at least 1"),
    ("nnUNetTrainerSTAMP_10epochs_warmup10", "leaves no epoch to prune"),
    ("nnUNetTrainerFlatUNet_keep10", "does not apply to the Flat U-Net"),
    ("nnUNetTrainerStock_keep10", "does not apply to stock nnU-Net"),
    ("nnUNetTrainerStock_warmup2", "does not apply to stock nnU-Net"),
    ("nnUNetTrainerSTAMP_5epochs_demo", "is a budget of its own"),
    ("nnUNetTrainerSTAMP_warmup5_demo", "leaves no epoch to prune"),
    ("nnUNetTrainerSTAMP_demo_warmup2", "comes too late"),
    ("nnUNetTrainerSTAMP_demo_keep10", "comes too late"),
    ("nnUNetTrainerStock_fast", "'fast' is not a setting"),
    ("nnUNetTrainerFlatUNet2000", "outside 1-1024"),
    ("nnUNetTrainerRandomLargest_keep10_", "'' is not a setting"),
    ("nnUNetTrainerSTAMP_cpu2", "applies only to STAMPLatency and RandomLargestLatency"),
    ("nnUNetTrainerSTAMPLatency_cpu0", "cpu must be at least 1"),
    ("nnUNetTrainerSTAMPLatency_cpu2_keep10", "comes too late"),
    ("nnUNetTrainerFlatUNet_cpu2", "does not apply to the Flat U-Net"),
])
def test_malformed_names_are_one_line_with_the_grammar(name, why):
    with pytest.raises(PruningError) as e:
        parse_trainer_name(name)
    message = str(e.value)
    assert why in message and GRAMMAR in message and "\n" not in message
    with pytest.raises(PruningError, match="malformed"):
        resolve_trainer(name)


@pytest.mark.parametrize("name", ["nnUNetTrainer", "nnUNetTrainer_250epochs", "nnUNetTrainerNope", "SomethingElse",
                                  "nnUNetTrainerSTAMP", "nnUNetTrainerFlatUNet", "nnUNetTrainerStock"])
def test_other_names_are_not_ours(name):
    assert parse_trainer_name(name) is None


def test_ext_module_ends_a_malformed_lookup_in_one_line(capsys, monkeypatch):
    monkeypatch.setenv("nnUNet_extTrainer", ext_trainer_folder())
    with pytest.raises(SystemExit) as e:
        module_getattr("nnUNetTrainerSTAMP_keep0")
    assert isinstance(e.value, TrainerError) and e.value.code == 2
    assert capsys.readouterr().err.strip() == str(e.value) and str(e.value).startswith("nnunet-pruning: error: ")
    with quiet_lookups(), pytest.raises(AttributeError):
        module_getattr("nnUNetTrainerSTAMP_keep0")
    with pytest.raises(AttributeError):
        module_getattr("nnUNetTrainerNope")


USER_TRAINER = '''
from nnunet_pruning.trainers import nnUNetTrainerSTAMP


class nnUNetTrainerSTAMP_custom(nnUNetTrainerSTAMP):
    """A user's own subclass, in a folder of its own, with a name our grammar does not know."""
'''


def test_users_subclasses_in_their_own_folder_resolve(tmp_path, monkeypatch, capsys):
    """Issue 12.4: count and compare resolve trainers from any nnUNet_extTrainer folder, also names that look
    like ours; nnU-Net's own lookup finds them even when our folder comes first."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

    folder = tmp_path / "my_trainers"
    folder.mkdir()
    (folder / "my_module_for_test.py").write_text(USER_TRAINER)
    monkeypatch.setenv("nnUNet_extTrainer", f"{ext_trainer_folder()}:{folder}")
    assert resolve_trainer("nnUNetTrainerSTAMP_custom").__name__ == "nnUNetTrainerSTAMP_custom"
    assert recursive_find_trainer_class_by_name("nnUNetTrainerSTAMP_custom").__name__ == "nnUNetTrainerSTAMP_custom"


def test_a_named_trainer_builds_and_reaches_its_target(tmp_path, monkeypatch):
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(variable, "")
    plans = make_plans("plain", dim=3, n_stages=3)
    prepare_folders(tmp_path, plans)
    trainer = make_trainer(named_trainer_class("nnUNetTrainerRandomLargest_keep10_2epochs_2iters"), plans)
    assert (trainer.num_epochs, trainer.num_iterations_per_epoch) == (2, 2)
    trainer.pruner = trainer.make_pruner()
    record = trainer.pruner.maybe_step(0, trainer.optimizer)
    assert record["target_reached"] and record["params_fraction"] <= 0.1


def test_trainers_catalogue_lists_every_trainer_and_the_grammar():
    names = [row["name"] for row in catalogue(include_extra=True)]
    assert names == list(TRAINERS)
    text = format_catalogue()
    from nnunet_pruning.trainers.named import PATTERNS

    assert all(p in text for p in PATTERNS) and all(example in text for example in EXAMPLES) and "CANNOT" not in text


def test_stock_and_every_method_take_the_same_budget_by_name():
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from nnunet_pruning.trainers.registry import METHODS

    stock = named_trainer_class("nnUNetTrainerStock_2epochs_5iters")
    assert issubclass(stock, nnUNetTrainer) and not hasattr(stock, "pruning_schedule")
    for token in METHODS:
        cls = named_trainer_class(f"nnUNetTrainer{token}_2epochs_5iters")
        assert (cls.budget.epochs, cls.budget.iterations, cls.budget.val_iterations) == (2, 5, 1), token
        schedule = getattr(cls, "pruning_schedule", None)
        assert schedule is None or schedule.last_pruning_epoch() < 2, token


def test_preset_budgets_demo_and_smoke():
    demo = named_trainer_class("nnUNetTrainerSTAMP_demo")
    assert (demo.budget.epochs, demo.budget.iterations, demo.budget.val_iterations) == (5, 20, 5)
    s = demo.pruning_schedule
    assert (s.method, s.keep_fraction, s.warmup_epochs, s.every_epochs, s.step_fraction) == ("taylor", 0.2, 1, 1, 0.4)
    assert named_trainer_class("nnUNetTrainerStock_demo").budget.epochs == 5
    assert named_trainer_class("nnUNetTrainerSTAMP_keep10_demo").pruning_schedule.keep_fraction == 0.1
    # the smoke budget gives the pruning methods room for their steps; only tests use it
    assert named_trainer_class("nnUNetTrainerStock_smoke").budget.epochs == 1
    smoke = named_trainer_class("nnUNetTrainerSTAMPFlops_smoke")
    assert smoke.budget.epochs == 4 and smoke.budget.for_tests and smoke.budget.max_batch_size == 2
    assert (smoke.pruning_schedule.target_metric, smoke.pruning_schedule.keep_fraction) == ("gflops", 0.5)
    # an ablation keeps its one change on a preset budget
    # two equal steps whatever the target: half of what it removes each
    latency = named_trainer_class("nnUNetTrainerSTAMPLatency_keep50_demo").pruning_schedule
    assert (latency.keep_fraction, latency.step_fraction, latency.steps_needed()) == (0.5, 0.25, 2)
    # a latency target starts one epoch later on the demo budget: after epochs 1 and 2
    assert latency.warmup_epochs == 2 and replace(latency, warmup_epochs=1, keep_fraction=0.2, step_fraction=0.4,
                                                  method="taylor", target_metric="params") == s
    assert named_trainer_class("nnUNetTrainerRandomLargestLatency_demo").pruning_schedule.warmup_epochs == 2
    assert named_trainer_class("nnUNetTrainerSTAMP_keep10_demo").pruning_schedule.step_fraction == pytest.approx(0.45)
    three = named_trainer_class("nnUNetTrainerSTAMPThreeSteps_demo").pruning_schedule
    assert three == replace(s, step_fraction=0.3)
    assert named_trainer_class("nnUNetTrainerSTAMPTwoSteps_demo").pruning_schedule == s  # the preset's own since 11-30
    assert named_trainer_class("nnUNetTrainerSTAMPSignedSum_demo").pruning_schedule == replace(s, score="signed_sum")
    # a name's warm-up on a preset: the same equal steps, from another epoch (warmup1: the latency schedule before)
    early = named_trainer_class("nnUNetTrainerSTAMPLatency_keep50_warmup1_demo")
    assert early.budget == named_trainer_class("nnUNetTrainerSTAMPLatency_keep50_demo").budget
    assert early.pruning_schedule == replace(latency, warmup_epochs=1)
    assert [e for e in range(5) if early.pruning_schedule.is_pruning_epoch(e)][:2] == [0, 1]
    assert named_trainer_class("nnUNetTrainerSTAMP_warmup2_demo").pruning_schedule == replace(s, warmup_epochs=2)


@pytest.mark.parametrize("document", ["README.md", "docs/getting-started.md", "docs/methods.md"])
def test_the_docs_show_the_grammar_as_the_cli_does(document):
    import os

    from nnunet_pruning.trainers.named import PATTERNS

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(root, document)).read()
    assert all(pattern in text for pattern in PATTERNS), [p for p in PATTERNS if p not in text]
    assert all(pattern in GRAMMAR for pattern in PATTERNS)
