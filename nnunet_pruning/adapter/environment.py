"""The nnU-Net environment: versions, nnU-Net's path variables, and the trainer folder nnU-Net scans.

``nnunet-pruning env`` prints shell lines built here. The checks return one-line problems; the CLI turns
the first blocking one into a :class:`~nnunet_pruning.core.errors.PruningError`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from importlib import metadata

from nnunet_pruning.core.errors import PruningError

__all__ = [
    "NNUNET_MIN", "NNUNET_BELOW", "PATH_VARIABLES", "ext_trainer_folder", "nnunet_version",
    "check_nnunet_version", "require_nnunet_version", "require_path_variable", "ext_trainer_problem",
    "environment_problems", "shell_lines", "environment_set",
]

NNUNET_MIN = (2, 8, 1)
NNUNET_BELOW = (2, 9)
PATH_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


@contextlib.contextmanager
def environment_set(values: dict[str, str]):
    """``os.environ`` with ``values`` set, for in-process nnU-Net code; the previous values come back after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ext_trainer_folder() -> str:
    """The folder to put in ``nnUNet_extTrainer``: it holds one module re-exporting our trainers."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(package, "trainers", "ext")


def nnunet_version() -> str | None:
    try:
        return metadata.version("nnunetv2")
    except metadata.PackageNotFoundError:
        return None


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_nnunet_version(version: str | None = None) -> str | None:
    """Return a one-line problem when nnunetv2 is missing or outside ``>=2.8.1,<2.9``, else None."""
    version = nnunet_version() if version is None else version
    if version is None:
        return "nnunetv2 is not installed; run: pip install 'nnunetv2>=2.8.1,<2.9'"
    v = _version_tuple(version)
    if not (NNUNET_MIN <= v < NNUNET_BELOW):
        return (f"nnunetv2 {version} is installed but nnunet_pruning needs >=2.8.1,<2.9 "
                f"(nnUNet_extTrainer and the build_network_architecture signature); "
                f"run: pip install 'nnunetv2>=2.8.1,<2.9'")
    return None


def require_nnunet_version() -> None:
    problem = check_nnunet_version()
    if problem:
        raise PruningError(problem)


def require_path_variable(name: str) -> str:
    """The folder an nnU-Net path variable names; a one-line error when it is unset or missing."""
    value = os.environ.get(name)
    if not value:
        raise PruningError(f"{name} is not set; run `eval \"$(nnunet-pruning env --base DIR)\"` "
                           f"or export {name}=/path/to/folder")
    if not os.path.isdir(value):
        raise PruningError(f"{name}={value} does not exist; create it (mkdir -p {shlex.quote(value)}) or point {name} "
                           f"at an existing folder")
    return value


def ext_trainer_problem() -> str | None:
    value = os.environ.get("nnUNet_extTrainer")
    wanted = ext_trainer_folder()
    if not value:
        return f"nnUNet_extTrainer is not set, so nnU-Net cannot find this package's trainers; " \
               f"run: export nnUNet_extTrainer={shlex.quote(wanted)}"
    folders = [os.path.abspath(p) for p in value.split(os.pathsep) if p.strip()]
    if os.path.abspath(wanted) not in folders:
        return f"nnUNet_extTrainer={value} does not include {wanted}, so nnU-Net cannot find this " \
               f"package's trainers; run: export nnUNet_extTrainer={shlex.quote(wanted)}"
    return None


def environment_problems() -> list[str]:
    """Every problem with the current setup, one line each (empty when all is well)."""
    problems = []
    version_problem = check_nnunet_version()
    if version_problem:
        problems.append(version_problem)
    for name in PATH_VARIABLES:
        try:
            require_path_variable(name)
        except PruningError as e:
            problems.append(str(e))
    ext = ext_trainer_problem()
    if ext:
        problems.append(ext)
    return problems


def shell_lines(base: str | None = None) -> list[str]:
    """``export`` lines to paste into a shell (or ``eval``), plus ``#`` comments on what is missing.

    Every value is shell-quoted, so a path with spaces, quotes or ``;`` stays one word and never a command.
    """
    lines = []
    for name in PATH_VARIABLES:
        if base is not None:
            folder = shlex.quote(os.path.join(os.path.abspath(base), name))
            lines.append(f"export {name}={folder}")
            lines.append(f"mkdir -p -- {folder}")
        elif os.environ.get(name):
            lines.append(f"export {name}={shlex.quote(os.environ[name])}")
    existing = [p for p in os.environ.get("nnUNet_extTrainer", "").split(os.pathsep) if p.strip()]
    wanted = ext_trainer_folder()
    folders = [wanted] + [p for p in existing if os.path.abspath(p) != os.path.abspath(wanted)]
    lines.append(f"export nnUNet_extTrainer={shlex.quote(os.pathsep.join(folders))}")
    version_problem = check_nnunet_version()
    if version_problem:
        lines.append(_comment(f"PROBLEM: {version_problem}"))
    if base is None:
        for name in PATH_VARIABLES:
            try:
                require_path_variable(name)
            except PruningError as e:
                lines.append(_comment(f"PROBLEM: {e}"))
    return lines


def _comment(text: str) -> str:
    """A shell comment: one line, whatever the text holds."""
    return "# " + " ".join(text.splitlines())
