"""Atomic writes: complete or absent, never truncated, with the mode a plain open() would give."""

import json
import os
import stat

import pytest

from nnunet_pruning.core.files import atomic_write, atomic_write_text, default_file_mode, write_json


@pytest.fixture
def umask():
    """``umask(value)`` sets the process umask for the test; the old one comes back afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_mode_follows_the_umask_like_open(tmp_path, umask, mask, mode):
    umask(mask)
    assert default_file_mode() == mode
    atomic_write_text("x", str(tmp_path / "atomic.txt"))
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode) == mode
    assert stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode) == mode


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text("old", str(path))

    def fail(f):
        f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(str(path), fail, binary=False)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_write_json_writes_indented_json_and_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "results.json"
    write_json({"a": [1, 2]}, str(path))
    assert json.loads(path.read_text()) == {"a": [1, 2]} and path.read_text().startswith("{\n  ")
    with pytest.raises(TypeError):
        write_json({"b": object()}, str(path))
    assert json.loads(path.read_text()) == {"a": [1, 2]}
