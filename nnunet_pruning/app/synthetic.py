"""Synthetic nnU-Net raw datasets that need a real segmentation network.

Each case holds several objects of two foreground classes placed at random:

- class 1 ("blob"): solid ellipsoids (ellipses in 2D), randomly oriented;
- class 2 ("shell"): hollow ellipsoidal shells (rings in 2D); their inside is background.

The classes' intensity ranges overlap each other and the background (per-case jittered means, Gaussian
noise, a smooth multiplicative bias field) and unlabelled *distractor* blobs of foreground-like
intensity are added, so no threshold separates them: shape and context decide, which takes capacity.
Everything is drawn from one ``numpy`` generator seeded per case, so a dataset is a pure function of its
arguments.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nnunet_pruning.adapter.datasets import dataset_folder_name, folders_with_id
from nnunet_pruning.core.errors import PruningError

__all__ = ["DatasetSpec", "LABELS", "FINE_LABELS", "TASKS", "MAX_CASE_VOXELS", "labels_of", "make_case",
           "dataset_json_of", "existing_dataset", "make_dataset", "IMAGE_IO"]

LABELS = {"background": 0, "blob": 1, "shell": 2}
#: the ``fine`` task adds thin tubes and small dots: structures one or two voxels across, which need the
#: full-resolution layers a pruner may thin out
FINE_LABELS = {**LABELS, "tube": 3, "dot": 4}
TASKS = ("shapes", "fine")
#: how the cases are written and read: nnU-Net's reader/writer classes (NibabelIO: where SimpleITK is not installed)
IMAGE_IO = ("SimpleITKIO", "NibabelIO")
#: a case larger than 256^3 voxels would need several GB of memory to generate
MAX_CASE_VOXELS = 256 ** 3
_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate.

    Args:
        dataset_id: nnU-Net dataset id (1..999).
        name: the dataset name after ``DatasetXXX_``.
        num_train: training cases (``imagesTr``/``labelsTr``).
        num_test: test cases (``imagesTs``/``labelsTs``).
        size: voxels per axis; one int for a cube/square, or one value per axis.
        dim: 2 or 3. 2D cases are written as volumes with a single slice.
        num_channels: input modalities per case.
        spacing: voxel spacing in mm, one value per axis (z, y, x for 3D; y, x for 2D).
        seed: base seed; case i uses ``seed * 100003 + i``.
        task: ``shapes`` (blobs and shells, the demo's) or ``fine`` (also thin tubes and small dots).
        image_io: ``SimpleITKIO`` (nnU-Net's default for ``.nii.gz``) or ``NibabelIO`` (written with nibabel,
            and ``dataset.json`` tells nnU-Net to read them so: for machines without SimpleITK).
    """

    dataset_id: int = 900
    name: str = "SyntheticShapes"
    num_train: int = 12
    num_test: int = 4
    size: int | Sequence[int] = 48
    dim: int = 3
    num_channels: int = 1
    spacing: Sequence[float] | None = None
    seed: int = 0
    task: str = "shapes"
    image_io: str = "SimpleITKIO"

    def validate(self) -> None:
        """Raise a one-line PruningError for any value that cannot make a dataset (nothing is written)."""
        if not 1 <= self.dataset_id <= 999:
            raise PruningError(f"dataset id {self.dataset_id} is out of range; use an id from 1 to 999")
        if not self.name or not set(self.name) <= _NAME_CHARACTERS:
            raise PruningError(f"dataset name {self.name!r} is not usable as a folder name; use letters, digits, "
                               f"'-' and '_' only (e.g. SyntheticShapes)")
        if self.dim not in (2, 3):
            raise PruningError(f"dim must be 2 or 3, not {self.dim}")
        if self.task not in TASKS:
            raise PruningError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.image_io not in IMAGE_IO:
            raise PruningError(f"image_io must be one of {', '.join(IMAGE_IO)}, not {self.image_io!r}")
        if self.num_train < 1 or self.num_test < 0:
            raise PruningError("need at least 1 training case and a non-negative number of test cases")
        if self.num_channels < 1:
            raise PruningError(f"need at least 1 input channel, not {self.num_channels}")
        shape = self.shape
        if min(shape) < 16:
            raise PruningError(f"size {shape} is too small; use at least 16 voxels per axis")
        if math.prod(shape) > MAX_CASE_VOXELS:
            raise PruningError(f"size {shape} is too large ({math.prod(shape):,} voxels per case); use at most "
                               f"{MAX_CASE_VOXELS:,} voxels per case (e.g. --size 256)")
        spacing = self.voxel_spacing
        if len(spacing) != self.dim or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise PruningError(f"spacing needs {self.dim} positive finite values, got {tuple(spacing)}")

    @property
    def shape(self) -> tuple[int, ...]:
        if isinstance(self.size, int):
            return (self.size,) * self.dim
        shape = tuple(int(s) for s in self.size)
        if len(shape) != self.dim:
            raise PruningError(f"size needs {self.dim} values for dim={self.dim}, got {shape}")
        return shape

    @property
    def voxel_spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in (self.spacing or (1.0,) * self.dim))


def _bias_field(rng: np.random.Generator, grids: list[np.ndarray], shape_mm: np.ndarray) -> np.ndarray:
    field = np.zeros(grids[0].shape)
    for _ in range(3):
        freq = rng.uniform(0.3, 1.2, size=len(grids)) * 2 * np.pi / shape_mm
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(sum(f * g for f, g in zip(freq, grids)) + phase)
    field /= max(np.abs(field).max(), 1e-6)
    return 1.0 + rng.uniform(0.15, 0.3) * field


def _ellipsoid_distance(rng: np.random.Generator, grids: list[np.ndarray], center: np.ndarray,
                        radii: np.ndarray) -> np.ndarray:
    """Normalised distance (1 on the surface) of every voxel to a randomly rotated ellipsoid."""
    dim = len(grids)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))  # random rotation
    offsets = [g - c for g, c in zip(grids, center)]
    total = np.zeros(grids[0].shape)
    for axis in range(dim):
        rotated = sum(q[axis, j] * offsets[j] for j in range(dim))
        total += (rotated / radii[axis]) ** 2
    return np.sqrt(total)


def labels_of(task: str) -> dict:
    """The dataset.json labels of a task."""
    return dict(FINE_LABELS if task == "fine" else LABELS)


def _segment_distance(grids: list[np.ndarray], start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Distance (mm) of every voxel to the line segment from ``start`` to ``end``."""
    direction = end - start
    length2 = max(float(direction @ direction), 1e-9)
    along = sum((g - s) * d for g, s, d in zip(grids, start, direction)) / length2
    along = np.clip(along, 0.0, 1.0)
    return np.sqrt(sum((g - (s + along * d)) ** 2 for g, s, d in zip(grids, start, direction)))


def _add_fine_structures(rng: np.random.Generator, grids: list[np.ndarray], extent: np.ndarray, voxel: float,
                         label: np.ndarray) -> None:
    """Thin tubes (class 3, 1-2.6 voxels across) and small dots (class 4, 2-4 voxels across)."""
    for _ in range(rng.integers(2, 5)):
        start, end = rng.uniform(0.1, 0.9, size=(2, len(grids))) * extent
        label[_segment_distance(grids, start, end) <= rng.uniform(0.5, 1.3) * voxel] = 3
    for _ in range(rng.integers(3, 7)):
        center = rng.uniform(0.1, 0.9, size=len(grids)) * extent
        radius = rng.uniform(1.0, 2.0) * voxel
        label[np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, center))) <= radius] = 4


def make_case(spec: DatasetSpec, case_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One case: images ``(C, *shape)`` float32 and labels ``shape`` uint8."""
    rng = np.random.default_rng(case_seed)
    shape = spec.shape
    spacing = np.array(spec.voxel_spacing)
    grids = [g * s for g, s in zip(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), spacing)]
    extent = np.array(shape) * spacing
    label = np.zeros(shape, dtype=np.uint8)
    distractor = np.zeros(shape, dtype=bool)

    # Objects: at least one of each class, then a few more of either.
    classes = [1, 2] + list(rng.integers(1, 3, size=rng.integers(1, 4)))
    rng.shuffle(classes)
    for cls in classes:
        radii = rng.uniform(0.09, 0.22, size=spec.dim) * extent.min()
        center = rng.uniform(0.2, 0.8, size=spec.dim) * extent
        dist = _ellipsoid_distance(rng, grids, center, radii)
        if cls == 1:
            label[dist <= 1.0] = 1
        else:
            thickness = rng.uniform(0.3, 0.5)
            label[(dist <= 1.0) & (dist >= 1.0 - thickness)] = 2
            label[dist < 1.0 - thickness] = 0  # the hollow inside is background
    for _ in range(rng.integers(1, 3)):  # unlabelled distractors with foreground-like intensity
        radii = rng.uniform(0.04, 0.08, size=spec.dim) * extent.min()
        center = rng.uniform(0.1, 0.9, size=spec.dim) * extent
        distractor |= (_ellipsoid_distance(rng, grids, center, radii) <= 1.0) & (label == 0)

    if spec.task == "fine":
        _add_fine_structures(rng, grids, extent, float(spacing.min()), label)
        distractor &= label == 0
    bias = _bias_field(rng, grids, extent)
    images = np.empty((spec.num_channels, *shape), dtype=np.float32)
    for channel in range(spec.num_channels):
        # Channel 0: blob < shell; other channels: another contrast with the classes swapped.
        # the fine structures' intensities sit between the shapes' (tubes near shells, dots near blobs)
        means = {0: 0.3, 1: 1.0, 2: 1.3, 3: 1.2, 4: 1.1} if channel % 2 == 0 else \
            {0: 0.9, 1: 0.2, 2: 0.45, 3: 0.5, 4: 0.3}
        classes = (1, 2, 3, 4) if spec.task == "fine" else (1, 2)  # the shapes task draws as it always did
        jitter = rng.uniform(-0.15, 0.15, size=len(classes) + 1)
        image = np.full(shape, means[0] + jitter[0])
        for cls in classes:
            image[label == cls] = means[cls] + jitter[cls]
        image[distractor] = rng.uniform(min(means[1], means[2]), max(means[1], means[2]))
        image = image * bias + rng.normal(0, 0.3, size=shape)
        images[channel] = image.astype(np.float32)
    return images, label


def _write_volume(array: np.ndarray, spacing: Sequence[float], path: str, image_io: str = "SimpleITKIO") -> None:
    volume = array if array.ndim == 3 else array[None]  # 2D cases are single-slice volumes
    spacing_zyx = tuple(spacing) if array.ndim == 3 else (999.0, *spacing)
    if image_io == "NibabelIO":  # nnU-Net's NibabelIO reads x, y, z and transposes to z, y, x
        import nibabel

        affine = np.diag([*(float(s) for s in reversed(spacing_zyx)), 1.0])
        nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine), path)
        return
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(volume)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))  # SimpleITK wants x, y, z
    sitk.WriteImage(image, path, useCompression=True)


def make_dataset(spec: DatasetSpec, raw_root: str, overwrite: bool = False, progress=print) -> str:
    """Write a complete nnU-Net raw dataset and return its folder.

    Layout: ``dataset.json``, ``imagesTr``, ``labelsTr``, ``imagesTs`` and ``labelsTs`` (the reference
    labels of the test cases, for ``nnUNetv2_evaluate_folder``).

    The dataset is written into a hidden folder beside its final place and swapped in only when complete:
    a failure leaves nothing behind, and ``overwrite`` replaces every folder with the same id (whatever its
    name) with exactly the new cases.
    """
    spec.validate()
    folder = os.path.join(raw_root, dataset_folder_name(spec.dataset_id, spec.name))
    taken = folders_with_id(raw_root, spec.dataset_id)
    if taken and not overwrite:
        raise PruningError(f"dataset id {spec.dataset_id} already exists in {raw_root} ({taken[0]}); "
                           f"pick another id or pass --overwrite")
    os.makedirs(raw_root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", suffix=".partial", dir=raw_root)
    try:
        _write_cases(spec, staging, progress)
        for old in taken:  # swap: the old folders go only once the new one is complete
            shutil.rmtree(os.path.join(raw_root, old))
        os.chmod(staging, 0o777 & ~_umask())
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _umask() -> int:
    from nnunet_pruning.core.files import default_file_mode

    return 0o666 & ~default_file_mode()


def _write_cases(spec: DatasetSpec, folder: str, progress) -> None:
    for sub in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        os.makedirs(os.path.join(folder, sub))
    total = spec.num_train + spec.num_test
    for index in range(total):
        split = "Tr" if index < spec.num_train else "Ts"
        case = f"{spec.name.lower()}_{index:03d}"
        images, label = make_case(spec, spec.seed * 100003 + index)
        for channel, image in enumerate(images):
            _write_volume(image, spec.voxel_spacing,
                          os.path.join(folder, f"images{split}", f"{case}_{channel:04d}.nii.gz"), spec.image_io)
        _write_volume(label, spec.voxel_spacing, os.path.join(folder, f"labels{split}", f"{case}.nii.gz"),
                      spec.image_io)
        if progress and ((index + 1) % max(1, total // 4) == 0 or index + 1 == total):
            progress(f"make-dataset: {index + 1}/{total} cases written")
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump(dataset_json_of(spec), f, indent=2)


def dataset_json_of(spec: DatasetSpec) -> dict:
    """The ``dataset.json`` of the dataset ``spec`` describes (it records every setting)."""
    reader = {} if spec.image_io == "SimpleITKIO" else {"overwrite_image_reader_writer": spec.image_io}
    return {
        **reader,
        "channel_names": {str(c): f"synthetic{c}" for c in range(spec.num_channels)},
        "labels": labels_of(spec.task),
        "numTraining": spec.num_train,
        "file_ending": ".nii.gz",
        "name": spec.name,
        "description": "nnunet_pruning synthetic shapes: blobs (1) vs hollow shells (2)"
                       + (", thin tubes (3) and small dots (4)" if spec.task == "fine" else "")
                       + ", overlapping intensities, noise, smooth bias field, unlabelled distractors",
        "generator": {"seed": spec.seed, "shape": list(spec.shape), "spacing": list(spec.voxel_spacing),
                      "num_test": spec.num_test, "task": spec.task},
    }


def existing_dataset(spec: DatasetSpec, raw_root: str) -> str | None:
    """The folder of this very dataset (same id, name and settings) when ``raw_root`` already holds it complete:
    ``make-dataset`` run again (after an interruption, say) then keeps it."""
    folder = os.path.join(raw_root, dataset_folder_name(spec.dataset_id, spec.name))
    path = os.path.join(folder, "dataset.json")
    if folders_with_id(raw_root, spec.dataset_id) != [os.path.basename(folder)] or not os.path.isfile(path):
        return None
    with open(path) as f:
        return folder if json.load(f) == json.loads(json.dumps(dataset_json_of(spec))) else None
