"""What every trainer of this package adds to nnU-Net's: checks with one-line errors.

nnU-Net's ``nnUNetv2_train`` prints a full traceback for any exception. The trainers here turn their own
errors (:class:`~nnunet_pruning.core.errors.PruningError`: a checkpoint of another architecture, a corrupt file,
an unreachable target, too few cases for 5 folds, ...) into ``SystemExit("nnunet-pruning: error: ...")``:
one line on stderr, exit status 2 (as the ``nnunet-pruning`` commands), and nothing written after the check
failed.

``-pretrained_weights`` is checked here too: nnU-Net's ``load_pretrained_weights`` asserts on a shape
mismatch and prints a whole tensor, and a corrupt file ends in a traceback. While one of these trainers is
initialised, ``nnunetv2.run.run_training`` calls :func:`checked_pretrained_weights` instead, which reads the
file with the same one-line errors as checkpoints, refuses pruned or foreign weights in one line, and then
calls nnU-Net's own function unchanged.
"""

from __future__ import annotations

import functools
import os
import sys

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.core.wrappers import unwrap

__all__ = ["TrainerGuards", "TrainerError", "FailedStart", "one_line_errors", "checked_pretrained_weights",
           "MIN_CASES_FOR_FOLDS"]

#: nnU-Net's automatic split is a 5-fold cross-validation
MIN_CASES_FOR_FOLDS = 5


class TrainerError(SystemExit):
    """Ends ``nnUNetv2_train`` with exit status 2 after its one line was printed; ``str()`` is that line."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def one_line_errors(method):
    """Re-raise a PruningError from ``method`` as one line on stderr and exit status 2 (what the CLIs do); a
    failure before the first epoch first removes what the failed start created (:class:`FailedStart`)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except PruningError as e:
            message = f"nnunet-pruning: error: {e}"
            print(message, file=sys.stderr, flush=True)
            start = getattr(self, "_failed_start", None)
            if start is not None:
                start.undo()
            raise TrainerError(message) from None
    return wrapper


class FailedStart:
    """What a start of ``nnUNetv2_train`` creates before its first epoch, so that a refused start leaves nothing.

    nnU-Net's trainer makes the fold folder and opens its training log in ``__init__``, before any check of
    ours can run on the built network. Recorded before that: the folders that did not exist yet and the files
    the fold folder held. :meth:`undo` removes the fold folder's new files and the folders that are new and
    empty again. Files beside the fold folder are never touched (another fold may be starting there).
    """

    def __init__(self, plans: dict, configuration: str, fold, trainer_name: str):
        from nnunetv2.paths import nnUNet_results

        self.fold_dir = None
        if not nnUNet_results or (hasattr(nnUNet_results, "is_set") and not nnUNet_results.is_set()):
            return
        dataset_dir = os.path.join(str(nnUNet_results), plans["dataset_name"])
        base = os.path.join(dataset_dir, f"{trainer_name}__{plans['plans_name']}__{configuration}")
        self.fold_dir = os.path.join(base, f"fold_{fold}")
        self.new_folders = [p for p in (self.fold_dir, base, dataset_dir, str(nnUNet_results)) if not os.path.isdir(p)]
        self.files = set(os.listdir(self.fold_dir)) if os.path.isdir(self.fold_dir) else set()
        # nnU-Net appends to a training log of the same second's name: those are cut back to their size
        self.log_sizes = {name: os.path.getsize(os.path.join(self.fold_dir, name)) for name in self.files
                          if name.startswith("training_log")}

    def undo(self) -> None:
        if self.fold_dir is None:
            return
        if os.path.isdir(self.fold_dir):
            for name in set(os.listdir(self.fold_dir)) - self.files:
                path = os.path.join(self.fold_dir, name)
                if os.path.isfile(path) or os.path.islink(path):
                    os.remove(path)
            for name, size in self.log_sizes.items():
                path = os.path.join(self.fold_dir, name)
                if os.path.isfile(path) and os.path.getsize(path) > size:
                    os.truncate(path, size)
        for folder in self.new_folders:  # deepest first
            try:
                os.rmdir(folder)
            except OSError:
                break  # not empty (or gone): the folders above it stay too


def _compare_pretrained(network, weights: dict, path: str) -> None:
    """A one-line PruningError when ``weights`` cannot initialise ``network`` the way nnU-Net transfers them."""
    module = unwrap(network)  # DDP, torch.compile
    for key, value in module.state_dict().items():
        if ".seg_layers." in key:  # nnU-Net does not transfer the segmentation heads
            continue
        if key not in weights:
            raise PruningError(f"-pretrained_weights {path} has no {key}: it was trained with another architecture "
                               f"(plans or trainer); pass a checkpoint of the same plans and configuration")
        if tuple(weights[key].shape) != tuple(value.shape):
            pruned = weights[key].dim() == value.dim() and all(a <= b for a, b in zip(weights[key].shape, value.shape))
            what = "a pruned network" if pruned else "another architecture"
            raise PruningError(
                f"-pretrained_weights {path} holds {what} ({key}: {tuple(weights[key].shape)} vs this network's "
                f"{tuple(value.shape)}); nnU-Net transfers only weights of the same shapes: start from an unpruned "
                f"checkpoint of the same plans, or continue the pruned run itself with --c")


def checked_pretrained_weights(network, fname, verbose=False):
    """nnU-Net's ``load_pretrained_weights`` after one-line checks of the file and of every shape."""
    from nnunetv2.run.load_pretrained_weights import load_pretrained_weights

    from nnunet_pruning.adapter.checkpoints import load_checkpoint_file

    try:
        _compare_pretrained(network, load_checkpoint_file(fname)["network_weights"], fname)
    except PruningError as e:
        message = f"nnunet-pruning: error: {e}"
        print(message, file=sys.stderr, flush=True)
        start, trainer = _STARTING.get("start", (None, None))
        if start is not None and trainer.network is network:  # its start made the fold folder: nothing may remain
            start.undo()
        raise TrainerError(message) from None
    return load_pretrained_weights(network, fname, verbose)


#: the FailedStart of the trainer this process is starting (nnUNetv2_train starts one; -pretrained_weights is
#: checked between its initialize and its training, where only module state reaches)
_STARTING: dict[str, tuple] = {}


def _guard_pretrained_weights() -> None:
    """Make ``nnUNetv2_train -pretrained_weights`` call :func:`checked_pretrained_weights` in this process."""
    module = sys.modules.get("nnunetv2.run.run_training")
    if module is not None and getattr(module, "load_pretrained_weights", None) is not checked_pretrained_weights:
        module.load_pretrained_weights = checked_pretrained_weights


class TrainerGuards:
    """Mixin for nnU-Net trainers; put it before ``nnUNetTrainer`` in the bases.

    Subclasses check their own settings in :meth:`check_settings` (called at construction) and the network
    in :meth:`check_network` (called at the end of ``initialize``).
    """

    @one_line_errors
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device=None):
        import torch

        self.check_settings()  # before nnU-Net creates the fold folder
        self._failed_start: FailedStart | None = FailedStart(plans, configuration, fold, type(self).__name__)
        super().__init__(plans, configuration, fold, dataset_json,
                         torch.device("cuda") if device is None else device)
        self.loaded_checkpoint: dict | None = None

    def check_settings(self) -> None:
        """Raise a PruningError for settings that cannot work (default: nothing to check). Called before
        nnU-Net's ``__init__``: only class attributes and the environment can be read."""

    def on_epoch_start(self):
        self._failed_start = None  # training runs: from here on the fold folder holds the run's own files
        _STARTING.pop("start", None)
        return super().on_epoch_start()

    def do_split(self):
        """nnU-Net's split, refusing (before splits_final.json is written) a 5-fold split of < 5 cases."""
        if self.fold != "all" and not os.path.isfile(os.path.join(self.preprocessed_dataset_folder_base,
                                                                  "splits_final.json")):
            from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

            dataset_class = self.dataset_class or infer_dataset_class(self.preprocessed_dataset_folder)
            cases = len(dataset_class.get_identifiers(self.preprocessed_dataset_folder))
            if cases < MIN_CASES_FOR_FOLDS:
                raise PruningError(
                    f"{self.plans_manager.dataset_name} has {cases} training cases, too few for nnU-Net's "
                    f"{MIN_CASES_FOR_FOLDS}-fold split (fold {self.fold}); add cases, train fold 'all' "
                    f"(nnUNetv2_train ... all), or write splits_final.json with your own folds into "
                    f"{self.preprocessed_dataset_folder_base}")
        return super().do_split()

    @one_line_errors
    def initialize(self):
        """nnU-Net's initialize, then :meth:`check_network` (before any data is read or file written)."""
        was_initialized = self.was_initialized
        _guard_pretrained_weights()
        if self._failed_start is not None:
            _STARTING["start"] = (self._failed_start, self)
        super().initialize()
        if not was_initialized:
            self.check_network()

    def check_network(self) -> None:
        """Raise a PruningError when the built network cannot work (default: nothing to check)."""

    @one_line_errors
    def run_training(self):
        return super().run_training()

    @one_line_errors
    def load_checkpoint(self, filename_or_checkpoint):
        """nnU-Net's load, after reading the file once here: a corrupt or foreign file is one line.

        The checkpoint read stays in ``self.loaded_checkpoint`` for subclasses. nnU-Net's own load reads the
        path again (passing it the dict instead fails in nnunetv2 2.8.1: ``checkpoint`` unbound).
        """
        from nnunet_pruning.adapter.checkpoints import load_checkpoint_file

        self.loaded_checkpoint = load_checkpoint_file(filename_or_checkpoint) \
            if isinstance(filename_or_checkpoint, str) else filename_or_checkpoint
        return super().load_checkpoint(filename_or_checkpoint)

    @one_line_errors
    def perform_actual_validation(self, save_probabilities: bool = False):
        return super().perform_actual_validation(save_probabilities)
