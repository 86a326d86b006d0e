"""Checkpoints are written atomically: killing the writer mid-save never leaves a truncated file."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from nnunet_pruning.adapter.checkpoints import atomic_torch_save
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.adapter.checkpoints import load_checkpoint_file

WRITER = """
import sys, torch
from nnunet_pruning.adapter.checkpoints import atomic_torch_save
path = sys.argv[1]
generation = 0
while True:
    generation += 1
    big = torch.full((4_000_000,), float(generation))  # 16 MB: saving takes a while
    atomic_torch_save({"network_weights": {"w": big}, "generation": generation}, path)
    print(generation, flush=True)
"""


def test_kill_during_save_leaves_a_complete_checkpoint(tmp_path):
    path = str(tmp_path / "checkpoint_latest.pth")
    atomic_torch_save({"network_weights": {"w": torch.zeros(3)}, "generation": 0}, path)
    process = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "1"  # at least one save completed
        time.sleep(0.05)  # now most likely in the middle of the next save
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    checkpoint = load_checkpoint_file(path)  # loads: complete old or new version, never a partial one
    generation = checkpoint["generation"]
    assert generation >= 1
    assert torch.equal(checkpoint["network_weights"]["w"], torch.full((4_000_000,), float(generation)))
    leftovers = [f for f in os.listdir(tmp_path) if f != "checkpoint_latest.pth"]
    assert all(f.endswith(".tmp") for f in leftovers)  # at most the killed write's temporary file


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = str(tmp_path / "checkpoint_final.pth")
    atomic_torch_save({"network_weights": {"w": torch.ones(2)}}, path)
    with pytest.raises(Exception):
        atomic_torch_save({"network_weights": {"w": lambda: None}}, path)  # unpicklable
    assert torch.equal(load_checkpoint_file(path)["network_weights"]["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["checkpoint_final.pth"]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None], ids=["empty", "garbage", "truncated"])
def test_corrupt_checkpoint_gives_one_line(tmp_path, content):
    path = str(tmp_path / "checkpoint_final.pth")
    if content is None:
        atomic_torch_save({"network_weights": {"w": torch.ones(1000)}}, path)
        data = open(path, "rb").read()
        content = data[: len(data) // 2]
    with open(path, "wb") as f:
        f.write(content)
    before = open(path, "rb").read()
    with pytest.raises(PruningError, match=r"cannot be read .* corrupt or truncated, use another checkpoint"):
        load_checkpoint_file(path)
    assert open(path, "rb").read() == before


def test_not_an_nnunet_checkpoint(tmp_path):
    path = str(tmp_path / "weights.pth")
    torch.save({"state_dict": {}}, path)
    with pytest.raises(PruningError, match="is not an nnU-Net checkpoint"):
        load_checkpoint_file(path)


def test_saved_checkpoint_is_readable_by_the_group_like_nnunets(tmp_path):
    """Issue 14.4: mkstemp's 0600 must not survive the rename; nnU-Net's torch.save gives 0644 (umask 022)."""
    import stat

    old = os.umask(0o022)
    try:
        atomic_torch_save({"network_weights": {}}, str(tmp_path / "checkpoint_final.pth"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "checkpoint_final.pth").st_mode) == 0o644
