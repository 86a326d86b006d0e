"""Drive the stock ``nnUNetv2_*`` commands in subprocesses inside one self-contained nnU-Net folder.

Used by the demo and by the end-to-end tests, so both exercise exactly what a user types.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

from nnunet_pruning.adapter.datasets import folders_with_id
from nnunet_pruning.adapter.environment import ext_trainer_folder
from nnunet_pruning.core.errors import PruningError

__all__ = ["NnUNetWorkspace", "CommandFailed"]


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGINT to a command (it ends as after Ctrl-C: nnU-Net's workers stopped, files closed), SIGKILL after
    ``grace`` seconds if it is still running."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class CommandFailed(RuntimeError):
    """A command of the workspace failed or ran too long; ``str()`` holds its last output."""

    def __init__(self, command: tuple, reason: str, output: str, log: str | None):
        self.command, self.reason, self.output, self.log = " ".join(command), reason, output, log
        super().__init__(f"{self.command} {reason}:\n{output[-4000:]}")

    def one_line(self) -> str:
        """What failed, its last output line, and where the rest is."""
        last = next((line.strip() for line in reversed(self.output.splitlines()) if line.strip()), "no output")
        where = f"; its full output is in {self.log}" if self.log else ""
        return f"`{self.command}` {self.reason} ({last[:300]}){where}"


class NnUNetWorkspace:
    """``root/nnUNet_raw``, ``root/nnUNet_preprocessed``, ``root/nnUNet_results`` and a CPU-friendly env.

    Args:
        root: folder that holds everything.
        threads: torch threads per process (and ``nnUNet_def_n_proc``).
        nnunet_folders: (raw, preprocessed, results) elsewhere, instead of the three under ``root``.
    """

    def __init__(self, root: str, threads: int = 2, nnunet_folders: tuple[str, str, str] | None = None):
        self.root = os.path.abspath(root)
        self.raw, self.preprocessed, self.results = nnunet_folders or (
            os.path.join(self.root, n) for n in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"))
        for folder in (self.root, self.raw, self.preprocessed, self.results):
            os.makedirs(folder, exist_ok=True)
        self.env = dict(os.environ, nnUNet_raw=self.raw, nnUNet_preprocessed=self.preprocessed,
                        nnUNet_results=self.results, nnUNet_extTrainer=ext_trainer_folder(),
                        nnUNet_n_proc_DA="0", nnUNet_def_n_proc=str(threads), nnUNet_compile="false",
                        OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1")

    @classmethod
    def from_environment(cls, root: str, threads: int = 2) -> "NnUNetWorkspace":
        """The user's own nnU-Net folders (``$nnUNet_raw``, ``$nnUNet_preprocessed``, ``$nnUNet_results``);
        ``root`` holds only what this package writes (predictions, reports, the command log)."""
        from nnunet_pruning.adapter.environment import require_path_variable

        folders = tuple(os.path.abspath(require_path_variable(n))
                        for n in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"))
        return cls(root, threads, folders)

    @staticmethod
    def executable(name: str) -> str:
        """A console script of the running interpreter's environment (the venv's ``bin``), else the one on ``PATH``
        (``pip install --user`` puts them in ``~/.local/bin``, ``pip install --target DIR`` in ``DIR/bin``)."""
        import shutil

        path = os.path.join(os.path.dirname(sys.executable), name)
        if os.path.exists(path):
            return path
        found = shutil.which(name)
        if found is None:
            raise PruningError(f"{name} not found beside {sys.executable} nor on PATH; install nnunetv2 and "
                               f"nnunet_pruning into this environment (./run test does it)")
        return found

    def run(self, *command: str, timeout: float = 3600, extra_env: dict | None = None,
            log: str | None = None, progress: re.Pattern | None = None) -> str:
        """Run a console script; return its output, or raise with its last lines when it fails.

        Args:
            log: also append the command and its output to this file.
            progress: print output lines matching this pattern as they come (for long training runs).
        """
        env = dict(self.env, **(extra_env or {}))
        started = time.time()
        lines, timed_out = [], threading.Event()
        with subprocess.Popen([self.executable(command[0]), *command[1:]], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=self.root) as process:
            def stop() -> None:  # also when the command hangs without printing anything
                timed_out.set()
                process.kill()

            timer = threading.Timer(timeout, stop)
            timer.start()
            try:
                for line in process.stdout:
                    lines.append(line)
                    if progress is not None and progress.search(line):
                        print(f"    {line.rstrip()}", flush=True)
                returncode = process.wait()
            except BaseException:  # interrupted (SIGTERM, or SIGINT sent to us alone): the command stops too
                _stop(process)
                if log:
                    with open(log, "a") as f:
                        f.write(f"$ {' '.join(command)}\n{''.join(lines)}\n[interrupted after "
                                f"{time.time() - started:.1f} s]\n")
                raise
            finally:
                timer.cancel()
        output = "".join(lines)
        if log:
            with open(log, "a") as f:
                f.write(f"$ {' '.join(command)}\n{output}\n[{time.time() - started:.1f} s, exit {returncode}]\n")
        if timed_out.is_set():
            raise CommandFailed(command, f"ran longer than {timeout:.0f} s and was stopped", output, log)
        if returncode != 0:
            raise CommandFailed(command, f"failed with exit {returncode}", output, log)
        return output

    @contextlib.contextmanager
    def exported(self):
        """Set this workspace's nnU-Net variables in ``os.environ`` for in-process nnU-Net code (the predictor
        looks trainers up there), and restore the previous values afterwards."""
        from nnunet_pruning.adapter.environment import environment_set

        names = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_extTrainer")
        with environment_set({k: self.env[k] for k in names}):
            yield self

    def dataset_name(self, dataset_id: int) -> str:
        matches = folders_with_id(self.raw, dataset_id)
        if not matches:
            raise PruningError(f"dataset {dataset_id} not in {self.raw}; make it first")
        return matches[0]

    def model_folder(self, dataset_id: int, trainer: str, plans: str = "nnUNetPlans",
                     configuration: str = "3d_fullres") -> str:
        return os.path.join(self.results, self.dataset_name(dataset_id), f"{trainer}__{plans}__{configuration}")
