"""Every bad input to a trainer ends in one line (``nnunet-pruning: error: ...``) and changes no file.

The trainers run in-process on fake plans (tests/trainers/fake_task.py), exactly as nnUNetv2_train
constructs, initialises and loads them; tests/e2e/test_extremes.py checks the same through the real CLI.
"""

import hashlib
import os

import pytest
import torch

from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.surgery import remove_channels
from nnunet_pruning.trainers import nnUNetTrainerFlatUNet_smoke, nnUNetTrainerSTAMP, nnUNetTrainerSTAMP_smoke

from tests.trainers.fake_task import make_plans, make_trainer


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message.startswith("nnunet-pruning: error: ") and "\n" not in message
    return message


def _digests(folder) -> dict:
    """sha256 of every file, and every folder (None), under ``folder``."""
    found = {}
    for d, dirs, files in os.walk(folder):
        found.update({os.path.join(d, sub): None for sub in dirs})
        found.update({os.path.join(d, f): hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
                      for f in files})
    return found


def _assert_unchanged(root, existing: dict) -> None:
    """Nothing changed: every file byte for byte, no new file or folder (issue 23.4: not even the training log
    and the fold folder nnU-Net makes before our checks can run)."""
    assert _digests(root) == existing


@pytest.fixture
def pruned_checkpoint(task):
    """checkpoint_latest.pth of a STAMP run whose network lost half of two groups."""
    root, plans = task
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, plans)
    for group in find_groups(trainer.network)[:2]:
        remove_channels(trainer.network, group, range(group.width // 2), trainer.optimizer)
    path = os.path.join(trainer.output_folder, "checkpoint_latest.pth")
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize("keep", [0.0, 1.0, 1.5, -0.2])
def test_target_outside_zero_one(task, keep):
    root, plans = task
    existing = _digests(root)

    class BadTarget(nnUNetTrainerSTAMP):
        pruning_schedule = PruningSchedule(keep_fraction=keep)

    with pytest.raises(SystemExit) as excinfo:
        make_trainer(BadTarget, plans)
    assert "keep_fraction" in _one_line(excinfo) and "(0, 1)" in _one_line(excinfo)
    _assert_unchanged(root, existing)


def test_min_width_makes_target_unreachable(task, pruned_checkpoint):
    root, plans = task
    existing = _digests(root)

    class TooWide(nnUNetTrainerSTAMP):
        pruning_schedule = PruningSchedule(keep_fraction=0.2, min_width=8)

    with pytest.raises(SystemExit) as excinfo:
        make_trainer(TooWide, plans)
    message = _one_line(excinfo)
    assert "target unreachable" in message and "lower min_width or raise keep_fraction" in message
    _assert_unchanged(root, existing)


@pytest.mark.parametrize("other", [dict(n_stages=4), dict(architecture="resenc")],
                         ids=["different-stage-count", "different-architecture-class"])
def test_checkpoint_of_another_architecture(task, pruned_checkpoint, other):
    root, plans = task
    existing = _digests(root)
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, make_plans(**dict(dict(architecture="plain", dim=3,
                                                                            n_stages=3), **other)))
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    with pytest.raises(SystemExit) as excinfo:
        trainer.load_checkpoint(pruned_checkpoint)
    message = _one_line(excinfo)
    assert "checkpoint does not match this Resizable" in message and "use the matching -p/-tr/-c" in message
    _assert_unchanged(root, existing)
    after = trainer.network.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_pruned_checkpoint_loads_into_its_own_trainer(task, pruned_checkpoint):
    """The counterpart of the refusals above: the right trainer takes the pruned shapes."""
    _, plans = task
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, plans)
    trainer.load_checkpoint(pruned_checkpoint)
    saved = torch.load(pruned_checkpoint, map_location="cpu", weights_only=False)["network_weights"]
    assert {k: v.shape for k, v in trainer.network.state_dict().items()} == {k: v.shape for k, v in saved.items()}


@pytest.mark.parametrize("trainer_class", [nnUNetTrainerSTAMP_smoke, nnUNetTrainerFlatUNet_smoke])
def test_truncated_checkpoint(task, pruned_checkpoint, trainer_class):
    root, plans = task
    with open(pruned_checkpoint, "rb") as f:
        data = f.read()
    with open(pruned_checkpoint, "wb") as f:
        f.write(data[: len(data) // 3])
    existing = _digests(root)
    trainer = make_trainer(trainer_class, plans)
    with pytest.raises(SystemExit) as excinfo:
        trainer.load_checkpoint(pruned_checkpoint)
    assert "corrupt or truncated" in _one_line(excinfo)
    _assert_unchanged(root, existing)


def test_fewer_than_five_cases_for_folds(task):
    root, plans = task  # prepare_folders made 3 cases
    existing = _digests(root)
    trainer = make_trainer(nnUNetTrainerFlatUNet_smoke, plans, fold=2)
    with pytest.raises(SystemExit) as excinfo:
        trainer.run_training()
    message = _one_line(excinfo)
    assert "has 3 training cases, too few for nnU-Net's 5-fold split (fold 2)" in message
    assert "splits_final.json" in message
    _assert_unchanged(root, existing)
    assert not any(name.endswith("splits_final.json") for name in _digests(root))


def test_plans_with_an_architecture_we_cannot_prune(task):
    root, plans = task
    existing = _digests(root)
    other = make_plans("resenc", class_name="dynamic_network_architectures.architectures.unet.ResidualUNet")
    for trainer_class in (nnUNetTrainerSTAMP_smoke, nnUNetTrainerFlatUNet_smoke):
        with pytest.raises(SystemExit) as excinfo:
            make_trainer(trainer_class, other)
        assert "ResidualUNet" in _one_line(excinfo)
    _assert_unchanged(root, existing)


def test_errors_exit_with_status_two(task):
    """The trainers end like the nnunet-pruning commands: one line on stderr, exit status 2."""
    _, plans = task

    class BadTarget(nnUNetTrainerSTAMP):
        pruning_schedule = PruningSchedule(keep_fraction=2.0)

    with pytest.raises(SystemExit) as excinfo:
        make_trainer(BadTarget, plans)
    assert excinfo.value.code == 2


def test_initialise_routes_pretrained_weights_through_the_check(task):
    import nnunetv2.run.run_training as run_training

    from nnunet_pruning.trainers.guards import checked_pretrained_weights

    make_trainer(nnUNetTrainerSTAMP_smoke, task[1])
    assert run_training.load_pretrained_weights is checked_pretrained_weights


def test_pruned_checkpoint_as_pretrained_weights_is_one_line(task, pruned_checkpoint, capsys):
    """Issue 14.5: nnU-Net's assertion printed a whole tensor; now one line names the key and both shapes."""
    from nnunet_pruning.trainers.guards import checked_pretrained_weights

    root, plans = task
    existing = _digests(root)  # the refused start leaves nothing, not even the fold folder nnU-Net made
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, plans, fold=1)
    before = {k: v.clone() for k, v in trainer.network.state_dict().items()}
    with pytest.raises(SystemExit) as excinfo:
        checked_pretrained_weights(trainer.network, pruned_checkpoint)
    message = _one_line(excinfo)
    assert "holds a pruned network" in message and "start from an unpruned checkpoint" in message
    assert excinfo.value.code == 2 and capsys.readouterr().err.strip() == message
    _assert_unchanged(root, existing)
    assert all(torch.equal(before[k], v) for k, v in trainer.network.state_dict().items())


def test_corrupt_pretrained_weights_are_one_line(task, pruned_checkpoint):
    from nnunet_pruning.trainers.guards import checked_pretrained_weights

    _, plans = task
    with open(pruned_checkpoint, "wb") as f:
        f.write(b"not a checkpoint")
    trainer = make_trainer(nnUNetTrainerSTAMP_smoke, plans)
    with pytest.raises(SystemExit) as excinfo:
        checked_pretrained_weights(trainer.network, pruned_checkpoint)
    assert "corrupt or truncated" in _one_line(excinfo)


def test_unpruned_pretrained_weights_still_load(task):
    """nnU-Net's transfer is unchanged for weights of the same shapes."""
    from nnunet_pruning.trainers.guards import checked_pretrained_weights

    _, plans = task
    source = make_trainer(nnUNetTrainerSTAMP_smoke, plans)
    path = os.path.join(source.output_folder, "checkpoint_source.pth")
    source.save_checkpoint(path)
    target = make_trainer(nnUNetTrainerSTAMP_smoke, plans, fold=1)
    checked_pretrained_weights(target.network, path)
    weights = torch.load(path, map_location="cpu", weights_only=False)["network_weights"]
    assert all(torch.equal(weights[k], v) for k, v in target.network.state_dict().items() if ".seg_layers." not in k)
