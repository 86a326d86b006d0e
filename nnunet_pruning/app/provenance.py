"""Where a benchmark's figures came from: every JSON a script in ``scripts/`` writes opens with the command that
reruns it, the date, and the machine and versions it ran on (docs/results.md quotes these files).

:func:`write_result` is the last step of every script: with ``--json PATH`` it stamps :func:`provenance` in front of
the script's own keys (a key the script sets itself wins), writes the file atomically and says where.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time

from nnunet_pruning.core.clock import cpu_model
from nnunet_pruning.core.files import write_json

__all__ = ["provenance", "write_result"]


def provenance(script: str, argv: list[str] | None = None) -> dict:
    """The command that reruns ``script`` (a file in ``scripts/``, usually ``__file__``) with ``argv`` (default
    ``sys.argv[1:]``), today's date, and the machine and versions this process runs on."""
    import torch

    args = list(sys.argv[1:] if argv is None else argv)
    return {"command": shlex.join(["python", f"scripts/{os.path.basename(script)}", *args]),
            "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "platform": platform.platform(),
            "processor": cpu_model(), "cpu_count": os.cpu_count()}


def write_result(result: dict, path: str | None, script: str, argv: list[str] | None = None,
                 indent: int | None = 2, say=print) -> dict | None:
    """Write ``result`` with its :func:`provenance` in front to ``path`` (nothing when ``path`` is empty: the script
    ran without ``--json``) and say so; returns what was written."""
    if not path:
        return None
    stamped = {**provenance(script, argv), **result}
    write_json(stamped, path, indent=indent)
    say(f"wrote {path}")
    return stamped
