"""What every trainer of this package adds to nnU-Net's: checks with one-line errors.

nnU-Net's ``nnUNetv2_train`` prints a full traceback for any exception. The trainers here turn their own
errors (:class:`~nnunet_pruning.core.errors.PruningError`: a checkpoint of another architecture, a corrupt file,
an unreachable target, too few cases for 5 folds, ...) into ``SystemExit("nnunet-pruning: error: ...")``:
one line on stderr, exit status 1, and nothing written after the check failed.
"""

from __future__ import annotations

import functools
import os

from nnunet_pruning.core.errors import PruningError

__all__ = ["TrainerGuards", "one_line_errors", "MIN_CASES_FOR_FOLDS"]

#: nnU-Net's automatic split is a 5-fold cross-validation
MIN_CASES_FOR_FOLDS = 5


def one_line_errors(method):
    """Re-raise a PruningError from ``method`` as a one-line SystemExit (what the CLIs print)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except PruningError as e:
            raise SystemExit(f"nnunet-pruning: error: {e}") from None
    return wrapper


class TrainerGuards:
    """Mixin for nnU-Net trainers; put it before ``nnUNetTrainer`` in the bases.

    Subclasses check their own settings in :meth:`check_settings` (called at construction) and the network
    in :meth:`check_network` (called at the end of ``initialize``).
    """

    @one_line_errors
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict, device=None):
        import torch

        super().__init__(plans, configuration, fold, dataset_json,
                         torch.device("cuda") if device is None else device)
        self.check_settings()
        self.loaded_checkpoint: dict | None = None

    def check_settings(self) -> None:
        """Raise a PruningError for settings that cannot work (default: nothing to check)."""

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
