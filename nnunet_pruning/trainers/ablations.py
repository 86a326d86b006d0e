"""STAMP ablations for ``nnunet-pruning benchmark --ablations`` (docs/methods.md has the table).

Each is STAMP with one change (``schedule_changes``), a method like any other: ``nnUNetTrainerSTAMPSignedSum_demo``
is the ablation on the demo budget, which the benchmark compares with ``nnUNetTrainerSTAMP_demo`` (5 epochs x
20 iterations, 2 steps of 40% to keep 20% of the parameters, scoring and targeted dropout off once the target
is reached).
"""

from __future__ import annotations

from dataclasses import replace

from nnunet_pruning.core.dropout import TargetedDropout

from .methods import nnUNetTrainerSTAMP

__all__ = ["ABLATIONS", "nnUNetTrainerSTAMPScoreAfterTarget", "nnUNetTrainerSTAMPSignedSum", "nnUNetTrainerSTAMPTwoSteps",
           "nnUNetTrainerSTAMPThreeSteps", "nnUNetTrainerSTAMPFullResFloor", "nnUNetTrainerSTAMPFlopsWeighted",
           "nnUNetTrainerSTAMPNoDropout"]


class _Ablation(nnUNetTrainerSTAMP):
    schedule_changes: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "schedule_changes" in cls.__dict__:
            cls.pruning_schedule = replace(nnUNetTrainerSTAMP.pruning_schedule, **cls.schedule_changes)


class nnUNetTrainerSTAMPScoreAfterTarget(_Ablation):
    """Scoring and targeted dropout stay on after the target (the behaviour before they were switched off)."""

    schedule_changes = {"score_after_target": True}


class nnUNetTrainerSTAMPSignedSum(_Ablation):
    """The STAMP reference code's score: Taylor terms summed with their sign (the default sums |term| per batch)."""

    schedule_changes = {"score": "signed_sum"}


class nnUNetTrainerSTAMPTwoSteps(_Ablation):
    """Two larger steps (40%). On the demo budget the preset's own since 2026-11-30 (the same as
    ``nnUNetTrainerSTAMP_demo``); kept so that the commands of the runs before still run."""

    schedule_changes = {"step_fraction": 0.4}


class nnUNetTrainerSTAMPThreeSteps(_Ablation):
    """Three smaller steps (30%): on the demo budget after epochs 0, 1, 2, one epoch less of recovery (the demo preset
    until 2026-11-30)."""

    schedule_changes = {"step_fraction": 0.3}


class nnUNetTrainerSTAMPFullResFloor(_Ablation):
    """No full-resolution layer below 24 channels (STAMP thinned them to 12-22 on real data)."""

    schedule_changes = {"min_width_full_resolution": 24}


class nnUNetTrainerSTAMPFlopsWeighted(_Ablation):
    """Taylor scores divided by each channel's relative FLOPs cost, still to 20% of the parameters."""

    schedule_changes = {"method": "taylor_flops"}


class _NoDropout(TargetedDropout):
    """Targeted dropout that never drops: every probability stays 0 (its hooks return the output unchanged)."""

    def __init__(self, groups):
        super().__init__(groups, initial=0.0)

    def update(self, normalised, base: float = 0.0) -> None:
        pass


class nnUNetTrainerSTAMPNoDropout(_Ablation):
    """No targeted dropout: the same Taylor scores and cuts, nothing dropped while pruning."""

    def make_pruner(self, sync=None):
        pruner = super().make_pruner(sync)
        pruner.dropout = _NoDropout(pruner.groups)
        return pruner


#: (what the ablation changes, trainer name on the demo budget), the default first
ABLATIONS = [("STAMP demo default", "nnUNetTrainerSTAMP_demo")] + [
    (cls.__doc__.splitlines()[0], f"{cls.__name__}_demo") for cls in (
        nnUNetTrainerSTAMPScoreAfterTarget, nnUNetTrainerSTAMPSignedSum, nnUNetTrainerSTAMPThreeSteps,
        nnUNetTrainerSTAMPFullResFloor, nnUNetTrainerSTAMPFlopsWeighted, nnUNetTrainerSTAMPNoDropout)]
