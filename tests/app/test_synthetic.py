import json
import os

import numpy as np
import pytest

from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.app.synthetic import LABELS, DatasetSpec, make_case, make_dataset


@pytest.mark.parametrize("dim,size,channels", [(3, 24, 1), (2, 40, 1), (3, 20, 2), (2, 32, 3)])
def test_case_shapes_and_classes(dim, size, channels):
    spec = DatasetSpec(dim=dim, size=size, num_channels=channels)
    images, label = make_case(spec, 0)
    assert images.shape == (channels,) + (size,) * dim
    assert label.shape == (size,) * dim
    assert set(np.unique(label)) == {0, 1, 2}  # both foreground classes in every case
    assert images.dtype == np.float32 and label.dtype == np.uint8


def test_deterministic_for_seed():
    spec = DatasetSpec(size=20)
    a, la = make_case(spec, 7)
    b, lb = make_case(spec, 7)
    c, lc = make_case(spec, 8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(la, lc)


def _best_interval_dice(x, target):
    qs = np.quantile(x, np.linspace(0, 1, 41))
    best = 0.0
    for i in range(len(qs)):
        for j in range(i + 1, len(qs)):
            pred = (x >= qs[i]) & (x < qs[j])
            best = max(best, 2 * (pred & target).sum() / (pred.sum() + target.sum()))
    return best


def test_no_intensity_threshold_solves_the_task():
    spec = DatasetSpec(size=40)
    for seed in range(3):
        images, label = make_case(spec, seed)
        for cls in (1, 2):
            assert _best_interval_dice(images[0], label == cls) < 0.8


def test_varied_objects_between_cases():
    spec = DatasetSpec(size=24)
    volumes = [(make_case(spec, s)[1] == 1).sum() for s in range(6)]
    assert len(set(volumes)) == 6


def test_anisotropic_spacing_makes_objects_anisotropic():
    spec = DatasetSpec(size=(16, 48, 48), spacing=(3.0, 1.0, 1.0))
    images, label = make_case(spec, 1)
    assert label.shape == (16, 48, 48)


def test_make_dataset_layout(tmp_path):
    import SimpleITK as sitk

    spec = DatasetSpec(dataset_id=42, name="Tiny", num_train=3, num_test=2, size=(16, 24, 20), num_channels=2,
                       spacing=(2.5, 1.0, 0.8))
    folder = make_dataset(spec, str(tmp_path), progress=None)
    assert os.path.basename(folder) == "Dataset042_Tiny"
    meta = json.load(open(os.path.join(folder, "dataset.json")))
    assert meta["labels"] == LABELS and meta["numTraining"] == 3 and meta["file_ending"] == ".nii.gz"
    assert meta["channel_names"] == {"0": "synthetic0", "1": "synthetic1"}
    assert len(os.listdir(os.path.join(folder, "imagesTr"))) == 6
    assert len(os.listdir(os.path.join(folder, "labelsTr"))) == 3
    assert len(os.listdir(os.path.join(folder, "imagesTs"))) == 4
    assert sorted(os.listdir(os.path.join(folder, "labelsTs"))) == ["tiny_003.nii.gz", "tiny_004.nii.gz"]
    image = sitk.ReadImage(os.path.join(folder, "imagesTr", "tiny_000_0001.nii.gz"))
    assert image.GetSize() == (20, 24, 16)
    assert image.GetSpacing() == pytest.approx((0.8, 1.0, 2.5))


def test_make_dataset_2d_is_single_slice(tmp_path):
    import SimpleITK as sitk

    folder = make_dataset(DatasetSpec(dataset_id=43, num_train=1, num_test=0, size=32, dim=2), str(tmp_path),
                          progress=None)
    image = sitk.ReadImage(os.path.join(folder, "imagesTr", "syntheticshapes_000_0000.nii.gz"))
    assert image.GetSize() == (32, 32, 1)


def test_nibabel_cases_read_back_through_nnunets_nibabel_reader_as_simpleitk_reads_its_own(tmp_path):
    """``--image-io NibabelIO`` (for a machine without SimpleITK, such as the lent GPU machines): dataset.json tells
    nnU-Net to read with NibabelIO, which gives the very arrays and spacing SimpleITKIO gives for the same case."""
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    kwargs = dict(num_train=1, num_test=0, size=(16, 24, 20), spacing=(2.5, 1.0, 0.8))
    nib = make_dataset(DatasetSpec(dataset_id=45, name="Nib", image_io="NibabelIO", **kwargs), str(tmp_path),
                       progress=None)
    itk = make_dataset(DatasetSpec(dataset_id=46, name="Itk", **kwargs), str(tmp_path), progress=None)
    assert json.load(open(os.path.join(nib, "dataset.json")))["overwrite_image_reader_writer"] == "NibabelIO"
    assert "overwrite_image_reader_writer" not in json.load(open(os.path.join(itk, "dataset.json")))
    for reader, nib_file, itk_file in (("read_images", "imagesTr/nib_000_0000.nii.gz", "imagesTr/itk_000_0000.nii.gz"),
                                       ("read_seg", "labelsTr/nib_000.nii.gz", "labelsTr/itk_000.nii.gz")):
        nib_path, itk_path = os.path.join(nib, nib_file), os.path.join(itk, itk_file)
        got, got_props = (NibabelIO().read_images([nib_path]) if reader == "read_images"
                          else NibabelIO().read_seg(nib_path))
        want, want_props = (SimpleITKIO().read_images([itk_path]) if reader == "read_images"
                            else SimpleITKIO().read_seg(itk_path))
        assert got.shape == want.shape == (1, 16, 24, 20) and np.array_equal(got, want)
        assert list(got_props["spacing"]) == pytest.approx([2.5, 1.0, 0.8])
        assert list(want_props["spacing"]) == pytest.approx([2.5, 1.0, 0.8])


def test_existing_id_is_refused_without_overwrite(tmp_path):
    spec = DatasetSpec(dataset_id=44, num_train=1, num_test=0, size=16)
    make_dataset(spec, str(tmp_path), progress=None)
    before = sorted(os.listdir(tmp_path / "Dataset044_SyntheticShapes" / "imagesTr"))
    with pytest.raises(PruningError, match="already exists.*--overwrite"):
        make_dataset(spec, str(tmp_path), progress=None)
    assert sorted(os.listdir(tmp_path / "Dataset044_SyntheticShapes" / "imagesTr")) == before
    make_dataset(spec, str(tmp_path), overwrite=True, progress=None)


def test_the_same_command_again_keeps_the_dataset_another_is_refused(tmp_path, capsys):
    """make-dataset run again with the same settings (e.g. after an interruption that came after the swap) keeps
    the dataset and succeeds; other settings still need --overwrite."""
    from nnunet_pruning.app import cli

    argv = ["make-dataset", "--id", "45", "--size", "16", "--train", "2", "--test", "1", "--raw", str(tmp_path)]
    assert cli.main(argv) == 0
    folder = tmp_path / "Dataset045_SyntheticShapes"
    stamp = os.path.getmtime(folder / "dataset.json")
    assert cli.main(argv) == 0 and os.path.getmtime(folder / "dataset.json") == stamp
    assert capsys.readouterr().out.count(f"kept {folder}: it was made with exactly these settings before") == 1
    assert cli.main(argv[:-2] + ["--seed", "3", "--raw", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs,message", [
    ({"dim": 4}, "dim must be 2 or 3"),
    ({"size": 8}, "too small"),
    ({"num_channels": 0}, "at least 1 input channel"),
    ({"spacing": (1.0, 1.0)}, "spacing needs 3"),
    ({"dataset_id": 0}, "out of range"),
    ({"size": (32, 32)}, "size needs 3 values"),
    ({"image_io": "PNG"}, "image_io must be one of SimpleITKIO, NibabelIO"),
])
def test_bad_specs(kwargs, message, tmp_path):
    with pytest.raises(PruningError, match=message):
        make_dataset(DatasetSpec(**kwargs), str(tmp_path), progress=None)


def _files(folder):
    return {os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs}


def test_overwrite_replaces_every_case_and_keeps_test_apart(tmp_path):
    """Issue 14.2: 6 cases overwritten by 3 leave exactly 3, and no test image equals a training image."""
    make_dataset(DatasetSpec(dataset_id=45, num_train=6, num_test=2, size=16), str(tmp_path), progress=None)
    folder = make_dataset(DatasetSpec(dataset_id=45, num_train=3, num_test=2, size=16), str(tmp_path),
                          overwrite=True, progress=None)
    assert len(os.listdir(os.path.join(folder, "imagesTr"))) == 3
    assert len(os.listdir(os.path.join(folder, "labelsTr"))) == 3
    def contents(sub):
        return [open(os.path.join(folder, sub, f), "rb").read() for f in os.listdir(os.path.join(folder, sub))]

    train, test = set(contents("imagesTr")), contents("imagesTs")
    assert not any(t in train for t in test)
    assert os.listdir(tmp_path) == ["Dataset045_SyntheticShapes"]  # no staging folder left


def test_overwrite_with_another_name_leaves_one_folder_per_id(tmp_path):
    make_dataset(DatasetSpec(dataset_id=46, num_train=1, num_test=0, size=16), str(tmp_path), progress=None)
    make_dataset(DatasetSpec(dataset_id=46, name="Other", num_train=1, num_test=0, size=16), str(tmp_path),
                 overwrite=True, progress=None)
    assert os.listdir(tmp_path) == ["Dataset046_Other"]


def test_a_failing_write_leaves_nothing_and_keeps_the_old_dataset(tmp_path, monkeypatch):
    from nnunet_pruning.app import synthetic

    folder = make_dataset(DatasetSpec(dataset_id=47, num_train=2, num_test=0, size=16), str(tmp_path), progress=None)
    before = _files(folder)

    def fail(*args):
        raise MemoryError("simulated")

    monkeypatch.setattr(synthetic, "_write_volume", fail)
    with pytest.raises(MemoryError):
        make_dataset(DatasetSpec(dataset_id=47, num_train=3, num_test=0, size=16), str(tmp_path), overwrite=True,
                     progress=None)
    assert os.listdir(tmp_path) == ["Dataset047_SyntheticShapes"] and _files(folder) == before


@pytest.mark.parametrize("kwargs,message", [
    ({"size": 100000}, "too large"),
    ({"name": "a/b"}, "not usable as a folder name"),
    ({"name": ""}, "not usable as a folder name"),
    ({"spacing": (float("nan"), 1.0, 1.0)}, "positive finite"),
    ({"spacing": (float("inf"), 1.0, 1.0)}, "positive finite"),
])
def test_bad_specs_write_nothing(kwargs, message, tmp_path):
    with pytest.raises(PruningError, match=message):
        make_dataset(DatasetSpec(**kwargs), str(tmp_path / "raw"), progress=None)
    assert not os.path.exists(tmp_path / "raw")


def test_fine_task_adds_thin_tubes_and_small_dots_and_keeps_the_shapes_task():
    from nnunet_pruning.app.synthetic import FINE_LABELS, labels_of

    shapes_image, shapes_label = make_case(DatasetSpec(size=32), 7)
    fine_image, fine_label = make_case(DatasetSpec(size=32, task="fine"), 7)
    assert set(np.unique(shapes_label)) <= {0, 1, 2} and set(np.unique(fine_label)) == {0, 1, 2, 3, 4}
    assert labels_of("fine") == FINE_LABELS and labels_of("shapes") == LABELS
    tube = fine_label == 3
    inner = tube.copy()  # a tube is thin: few of its voxels have all 6 neighbours inside it
    for axis in range(3):
        for shift in (1, -1):
            inner &= np.roll(tube, shift, axis=axis)
    assert inner.sum() < 0.25 * tube.sum()
    assert 0 < (fine_label == 4).sum() < 0.02 * fine_label.size
    with pytest.raises(PruningError, match="task must be one of shapes, fine"):
        DatasetSpec(task="hard").validate()
