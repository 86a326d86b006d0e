#!/usr/bin/env python
"""Test Dice pooled over several `nnunet-pruning benchmark` workspaces (other synthetic seeds or datasets): paired.

This is ``nnunet-pruning pool-dice`` (nnunet_pruning/app/pooling.py), kept here so that the commands docs/results.md
quotes rerun as they are:

    python scripts/pool_dice.py seed0/results.json seed1/results.json --trainers nnUNetTrainerStock_demo \\
        nnUNetTrainerSTAMP_demo nnUNetTrainerSTAMP_fullres24_demo --reference nnUNetTrainerSTAMP_demo
"""

from __future__ import annotations

import sys

from nnunet_pruning.app.cli import main as cli_main


def main(argv=None) -> int:
    return cli_main(["pool-dice", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
