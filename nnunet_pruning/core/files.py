"""Files written atomically, with the permissions a plain ``open(path, "w")`` would give them.

A crash during a write never leaves a truncated file: the content goes to a temporary file in the same
folder, is flushed to disk, then renamed over the target. ``tempfile.mkstemp`` creates its file with mode
0600; the rename would carry that over, so teammates on a shared cluster could not read a model that
nnU-Net itself would have written 0644. :func:`atomic_write` sets the umask's mode before the rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Callable, IO

__all__ = ["atomic_write", "atomic_write_text", "write_json", "default_file_mode", "default_folder_mode"]


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:  # Linux: read the umask without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def default_file_mode() -> int:
    """``0o666`` minus the process umask: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~_umask()


def default_folder_mode() -> int:
    """``0o777`` minus the process umask: the mode ``os.makedirs`` gives a new folder."""
    return 0o777 & ~_umask()


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[IO], None], binary: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync, then rename it over ``path``.

    Args:
        path: the final file; an existing one is replaced only when the write succeeded.
        write: writes the content into the open file object it is given.
        binary: open the temporary file in binary (default) or text mode.

    Example:
        >>> atomic_write("/tmp/x.txt", lambda f: f.write("hi"), binary=False)
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_text(text: str, path: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(text), binary=False)


def write_json(data, path: str, indent: int | None = 2) -> None:
    """Write ``data`` to ``path`` as JSON (indented; ``indent=None``: one line), atomically: a stopped run leaves the
    old file or none."""
    atomic_write_text(json.dumps(data, indent=indent) + "\n", path)
