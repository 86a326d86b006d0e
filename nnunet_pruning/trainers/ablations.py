"""STAMP ablations on the demo budget, for ``nnunet-pruning benchmark`` (docs/methods.md has the table).

Each changes one thing of ``nnUNetTrainerSTAMP_demo`` (5 epochs x 20 iterations, 3 steps of 30% to keep
20% of the parameters, scoring and targeted dropout off once the target is reached):
"""

from __future__ import annotations

from dataclasses import replace

from .schedules import DemoSchedule
from .stamp import nnUNetTrainerSTAMP, nnUNetTrainerSTAMP_demo

__all__ = ["ABLATIONS", "nnUNetTrainerSTAMPScoreAfterTarget_demo", "nnUNetTrainerSTAMPSignedSum_demo",
           "nnUNetTrainerSTAMPTwoSteps_demo", "nnUNetTrainerSTAMPFullResFloor_demo",
           "nnUNetTrainerSTAMPFlopsWeighted_demo"]

_DEMO = nnUNetTrainerSTAMP_demo.pruning_schedule


class nnUNetTrainerSTAMPScoreAfterTarget_demo(DemoSchedule, nnUNetTrainerSTAMP):
    """Scoring and targeted dropout stay on after the target (the behaviour before they were switched off)."""

    pruning_schedule = replace(_DEMO, score_after_target=True)


class nnUNetTrainerSTAMPSignedSum_demo(DemoSchedule, nnUNetTrainerSTAMP):
    """The STAMP reference code's score: Taylor terms summed with their sign (the default sums |term| per batch)."""

    pruning_schedule = replace(_DEMO, score="signed_sum")


class nnUNetTrainerSTAMPTwoSteps_demo(DemoSchedule, nnUNetTrainerSTAMP):
    """Two larger steps (40%) after epochs 0 and 1: one more epoch of recovery."""

    pruning_schedule = replace(_DEMO, step_fraction=0.4)


class nnUNetTrainerSTAMPFullResFloor_demo(DemoSchedule, nnUNetTrainerSTAMP):
    """No full-resolution layer below 24 channels (STAMP thinned them to 12-22 on real data)."""

    pruning_schedule = replace(_DEMO, min_width_full_resolution=24)


class nnUNetTrainerSTAMPFlopsWeighted_demo(DemoSchedule, nnUNetTrainerSTAMP):
    """Taylor scores divided by each channel's relative FLOPs cost, still to 20% of the parameters."""

    pruning_schedule = replace(_DEMO, method="taylor_flops")


#: (what the ablation changes, trainer name), the default first
ABLATIONS = [("STAMP demo default", "nnUNetTrainerSTAMP_demo")] + [
    (cls.__doc__.splitlines()[0], cls.__name__) for cls in (
        nnUNetTrainerSTAMPScoreAfterTarget_demo, nnUNetTrainerSTAMPSignedSum_demo, nnUNetTrainerSTAMPTwoSteps_demo,
        nnUNetTrainerSTAMPFullResFloor_demo, nnUNetTrainerSTAMPFlopsWeighted_demo)]
