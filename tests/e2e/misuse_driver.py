"""Run misuse rows in-process, one after the other: ``python misuse_driver.py ROWS OUT``.

ROWS is JSON ``{"rows": {id: [command, *args]}, "roots": [folders to snapshot], "new": path that must not
appear}``, the command ``nnunet-pruning`` (run by ``cli.main``) or ``nnUNetv2_train`` (nnU-Net's own entry point,
``run_training_entry``, with ``sys.argv`` set as the console script sets it); OUT gets ``{id: {"returncode",
"stderr", "before", "after", "new_exists"}}``. Run by tests/e2e/test_misuse.py in a process whose environment
is the test workspace's, so nnU-Net's path constants are the workspace's.
"""

import contextlib
import io
import json
import os
import sys
import traceback


def _snapshot(roots: list[str]) -> dict:
    """Every file ([size, mtime]) and every folder (None) under the roots."""
    found = {}
    for root in roots:
        for d, dirs, files in os.walk(root):
            found.update({os.path.join(d, sub): None for sub in dirs})
            found.update({os.path.join(d, f): [os.path.getsize(os.path.join(d, f)), os.path.getmtime(os.path.join(d, f))]
                          for f in files})
    return found


def _run(command: str, args: list[str]) -> int:
    if command == "nnunet-pruning":
        from nnunet_pruning.app import cli

        return cli.main(args)
    from nnunetv2.run.run_training import run_training_entry

    argv = sys.argv
    sys.argv = [command, *args]
    try:
        run_training_entry()
        return 0
    finally:
        sys.argv = argv


def main(rows_path: str, out_path: str) -> int:
    with open(rows_path) as f:
        spec = json.load(f)
    results = {}
    for row_id, (command, *args) in spec["rows"].items():
        before = _snapshot(spec["roots"])
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = _run(command, args)
            except SystemExit as e:  # argparse's errors and the trainers' one-line errors exit
                code = e.code
            except BaseException:  # not the promised one line: recorded, so the row fails with it
                traceback.print_exc()
                code = 1
        results[row_id] = {"returncode": code, "stderr": stderr.getvalue(), "before": before,
                           "after": _snapshot(spec["roots"]), "new_exists": os.path.exists(spec["new"])}
    with open(out_path, "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
