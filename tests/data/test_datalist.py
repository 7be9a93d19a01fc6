"""Tests of ``monai_ag.data.datalist``: MSD datalists, early checks, the seeded split and inference inputs."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_ag.data.datalist import (
    check_datalist,
    inference_datalist,
    load_datalist,
    split_datalist,
    train_val_datalists,
)
from monai_ag.data.images import is_dicom_series_dir

SHAPE = (8, 8, 6)
AFFINE = np.array([[1.5, 0, 0, -6.0], [0, 1.5, 0, -6.0], [0, 0, 2.5, -7.5], [0, 0, 0, 1]])
NUM_CLASSES = 5
EXPECTED_VAL_10_SEED_0 = ["/data/img_7.nii.gz", "/data/img_8.nii.gz"]


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(data, affine).to_filename(str(path))
    return path


def _image(shape=SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 1000, size=shape).astype(np.int16)


def _label(shape=SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, NUM_CLASSES, size=shape).astype(np.uint8)


def _write_fake_dicom(path: Path) -> Path:
    """A file with only the DICOM Part 10 preamble and magic: enough for detection, not for reading."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    return path


def _make_dataset(root: Path, n: int = 4, validation: int = 0, test: list | None = None, **extra) -> Path:
    """An MSD-style dataset with ``n`` training cases (and ``validation`` validation cases) in ``root``."""
    entries = {"training": [], "validation": []}
    for key, count, offset in (("training", n, 0), ("validation", validation, n)):
        for i in range(offset, offset + count):
            _write_nifti(root / "imagesTr" / f"case_{i}.nii.gz", _image(seed=i))
            _write_nifti(root / "labelsTr" / f"case_{i}.nii.gz", _label(seed=i))
            entries[key].append({"image": f"imagesTr/case_{i}.nii.gz", "label": f"labelsTr/case_{i}.nii.gz"})
    data = {"name": "tiny", "training": entries["training"]}
    if validation:
        data["validation"] = entries["validation"]
    if test is not None:
        data["test"] = test
    data.update(extra)
    _write_json(root / "dataset.json", data)
    return root


def _write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# ------------------------------------------------------------------ load_datalist: happy paths


def test_load_datalist_training_absolute_paths(tmp_path):
    root = _make_dataset(tmp_path / "ds", n=3)
    items = load_datalist(root, num_classes=NUM_CLASSES)
    assert items == [
        {"image": str(root / "imagesTr" / f"case_{i}.nii.gz"), "label": str(root / "labelsTr" / f"case_{i}.nii.gz")}
        for i in range(3)
    ]
    assert all(os.path.isabs(v) and os.path.isfile(v) for item in items for v in item.values())


def test_load_datalist_relative_dataset_dir_and_extra_keys(tmp_path, monkeypatch):
    root = _make_dataset(tmp_path / "ds", n=2)
    data = json.loads((root / "dataset.json").read_text())
    data["training"][0]["fold"] = 1
    _write_json(root / "dataset.json", data)
    monkeypatch.chdir(tmp_path)
    items = load_datalist("ds")
    assert items[0]["image"] == str(root / "imagesTr" / "case_0.nii.gz")
    assert items[0]["fold"] == 1
    assert "fold" not in items[1]


def test_load_datalist_test_strings_and_dicts(tmp_path):
    root = _make_dataset(tmp_path / "ds", n=2)
    _write_nifti(root / "imagesTs" / "a.nii.gz", _image())
    _write_nifti(root / "imagesTs" / "b.nii", _image())
    _write_json(root / "dataset.json", {"training": [], "test": ["imagesTs/a.nii.gz", "imagesTs/b.nii"]})
    items = load_datalist(root, "test", require_label=False)
    assert items == [{"image": str(root / "imagesTs" / "a.nii.gz")}, {"image": str(root / "imagesTs" / "b.nii")}]

    test = [{"image": "imagesTs/a.nii.gz", "label": "labelsTr/case_0.nii.gz"}, {"image": "imagesTs/b.nii"}]
    _write_json(root / "dataset.json", {"training": [], "test": test})
    items = load_datalist(root, "test", require_label=False, num_classes=NUM_CLASSES)
    assert items == [
        {"image": str(root / "imagesTs" / "a.nii.gz"), "label": str(root / "labelsTr" / "case_0.nii.gz")},
        {"image": str(root / "imagesTs" / "b.nii")},
    ]


def test_load_datalist_custom_json_name(tmp_path):
    root = _make_dataset(tmp_path / "ds", n=2)
    (root / "dataset.json").rename(root / "my_list.json")
    assert len(load_datalist(root, dataset_json="my_list.json")) == 2


def test_load_datalist_check_false_skips_reading(tmp_path):
    root = _make_dataset(tmp_path / "ds", n=2)
    (root / "imagesTr" / "case_0.nii.gz").write_bytes(b"not an image")
    assert len(load_datalist(root, check=False)) == 2
    with pytest.raises(ValueError, match=r"cannot read image .*case_0\.nii\.gz"):
        load_datalist(root)


# ------------------------------------------------------------------ load_datalist: errors


def test_load_datalist_missing_dataset_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset_dir .*nowhere does not exist"):
        load_datalist(tmp_path / "nowhere")


def test_load_datalist_dataset_dir_is_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ValueError, match=r"file\.txt is not a directory"):
        load_datalist(f)


def test_load_datalist_missing_dataset_json(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_datalist(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "dataset.json") in msg
    assert "MSD-style" in msg and '"training" list' in msg
    assert "without --dataset_dir" in msg and "phantom" in msg


def test_load_datalist_invalid_json(tmp_path):
    (tmp_path / "dataset.json").write_text('{"training": [\n  {"image": "a.nii.gz",}\n]}')
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path / 'dataset.json'))} is not valid JSON: .*line 2"):
        load_datalist(tmp_path)


def test_load_datalist_json_not_an_object(tmp_path):
    _write_json(tmp_path / "dataset.json", [{"image": "a.nii.gz"}])
    with pytest.raises(ValueError, match=r'dataset\.json must hold a JSON object with a "training" list, got .*list'):
        load_datalist(tmp_path)


def test_load_datalist_missing_key(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    with pytest.raises(ValueError, match=r'dataset\.json has no "validation" list \(lists present: "training"\)'):
        load_datalist(root, "validation")


def test_load_datalist_empty_list(tmp_path):
    _write_json(tmp_path / "dataset.json", {"training": []})
    with pytest.raises(ValueError, match=r'"training" in .*dataset\.json is empty'):
        load_datalist(tmp_path)


def test_load_datalist_not_a_list(tmp_path):
    _write_json(tmp_path / "dataset.json", {"training": {"image": "a.nii.gz"}})
    with pytest.raises(ValueError, match=r'"training" in .*dataset\.json must be a list, got a JSON dict'):
        load_datalist(tmp_path)


def test_load_datalist_missing_image_file(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    (root / "imagesTr" / "case_1.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r'entry #1 of "training" in .*dataset\.json: image file .*case_1\.nii'):
        load_datalist(root)


def test_load_datalist_missing_label_file(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    (root / "labelsTr" / "case_0.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r'entry #0 of "training" .*label file .*labelsTr.case_0\.nii\.gz'):
        load_datalist(root)


def test_load_datalist_entry_without_image(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    _write_json(root / "dataset.json", {"training": [{"label": "labelsTr/case_0.nii.gz"}]})
    with pytest.raises(ValueError, match=r'entry #0 of "training" in .*dataset\.json has no "image"'):
        load_datalist(root)


def test_load_datalist_entry_without_label(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    _write_json(root / "dataset.json", {"training": [{"image": "imagesTr/case_0.nii.gz"}]})
    with pytest.raises(ValueError, match=r'entry #0 of "training" in .*dataset\.json has no "label"'):
        load_datalist(root)
    assert load_datalist(root, require_label=False) == [{"image": str(root / "imagesTr" / "case_0.nii.gz")}]


def test_load_datalist_malformed_entries(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    _write_json(root / "dataset.json", {"training": ["imagesTr/case_0.nii.gz"]})
    with pytest.raises(ValueError, match=r'entry #0 of "training" .* is a string; expected a dict'):
        load_datalist(root)
    _write_json(root / "dataset.json", {"test": ["imagesTr/case_0.nii.gz", {"image": "imagesTr/case_1.nii.gz"}]})
    with pytest.raises(ValueError, match=r'"test" in .*dataset\.json mixes path strings and dicts'):
        load_datalist(root, "test", require_label=False)
    _write_json(root / "dataset.json", {"training": [{"image": ["a.nii.gz", "b.nii.gz"], "label": "l.nii.gz"}]})
    with pytest.raises(ValueError, match=r'entry #0 of "training" .*"image" must be a single non-empty path string'):
        load_datalist(root)
    _write_json(root / "dataset.json", {"training": [3]})
    with pytest.raises(ValueError, match=r'entry #0 of "training" .*must be a dict or a path string, got int'):
        load_datalist(root)


def test_load_datalist_directory_without_dicom(tmp_path):
    root = _make_dataset(tmp_path, n=1)
    (root / "empty_series").mkdir()
    _write_json(root / "dataset.json", {"training": [{"image": "empty_series", "label": "labelsTr/case_0.nii.gz"}]})
    with pytest.raises(ValueError, match=r'entry #0 of "training" .*image .*empty_series is a directory without DICOM'):
        load_datalist(root)


# ------------------------------------------------------------------ check_datalist


def _pair(tmp_path: Path, image: np.ndarray, label: np.ndarray, image_affine=AFFINE, label_affine=AFFINE) -> dict:
    return {
        "image": str(_write_nifti(tmp_path / "img.nii.gz", image, image_affine)),
        "label": str(_write_nifti(tmp_path / "lbl.nii.gz", label, label_affine)),
    }


def test_check_datalist_accepts_valid(tmp_path):
    item = _pair(tmp_path, _image(), _label())
    check_datalist([item], num_classes=NUM_CLASSES)
    check_datalist([{"image": item["image"]}], num_classes=NUM_CLASSES)  # no label: image checks only
    check_datalist([], num_classes=NUM_CLASSES)


def test_check_datalist_singleton_4th_dim_is_3d(tmp_path):
    item = _pair(tmp_path, _image()[..., None], _label()[..., None])
    check_datalist([item], num_classes=NUM_CLASSES)


def test_check_datalist_rejects_4d_image(tmp_path):
    item = _pair(tmp_path, _image(SHAPE + (2,)), _label())
    with pytest.raises(ValueError, match=r"item #0: image .*img\.nii\.gz has shape \(8, 8, 6, 2\); expected a 3D"):
        check_datalist([item])


def test_check_datalist_rejects_2d_image_and_4d_label(tmp_path):
    item = _pair(tmp_path, _image((8, 8)), _label())
    with pytest.raises(ValueError, match=r"img\.nii\.gz has shape \(8, 8\); expected a 3D image"):
        check_datalist([item])
    item = _pair(tmp_path, _image(), _label(SHAPE + (3,)))
    with pytest.raises(ValueError, match=r"label .*lbl\.nii\.gz has shape \(8, 8, 6, 3\); expected a 3D label"):
        check_datalist([item])


def test_check_datalist_unreadable_image(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"this is not a NIfTI file")
    with pytest.raises(ValueError, match=r"item #0: cannot read image .*broken\.nii\.gz: \w+"):
        check_datalist([{"image": str(bad)}])


def test_check_datalist_shape_mismatch(tmp_path):
    item = _pair(tmp_path, _image(), _label((8, 8, 5)))
    with pytest.raises(ValueError) as info:
        check_datalist([item])
    msg = str(info.value)
    assert item["image"] in msg and item["label"] in msg
    assert "image shape (8, 8, 6)" in msg and "label shape (8, 8, 5)" in msg


def test_check_datalist_affine_mismatch(tmp_path):
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.01
    item = _pair(tmp_path, _image(), _label(), label_affine=shifted)
    with pytest.raises(ValueError, match=r"differ in geometry: .*label affine \[\[1\.5, 0\.0, 0\.0, -5\.99\]"):
        check_datalist([item])
    # below the 1e-3 tolerance: accepted
    shifted[0, 3] = AFFINE[0, 3] + 2e-4
    check_datalist([_pair(tmp_path, _image(), _label(), label_affine=shifted)])


def test_check_datalist_reoriented_label(tmp_path):
    """A label on the image's voxel grid with a flipped axis: rejected with a hint, or accepted when allowed."""
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = SHAPE[0] - 1
    label_affine = AFFINE @ flip  # voxel i of the label is voxel (7 - i) of the image
    item = _pair(tmp_path, _image(), _label()[::-1], label_affine=label_affine)
    with pytest.raises(ValueError, match=r"same voxel grid .*image RAS, label LAS.*allow_reoriented=True"):
        check_datalist([item])
    check_datalist([item], num_classes=NUM_CLASSES, allow_reoriented=True)


def test_check_datalist_label_values_out_of_range(tmp_path):
    label = _label()
    label[0, 0, 0], label[1, 0, 0] = 7, 9
    item = _pair(tmp_path, _image(), label)
    with pytest.raises(
        ValueError, match=r"label .*lbl\.nii\.gz has values \[7, 9\] outside the allowed classes \[0, 1, 2, 3, 4\]"
    ):
        check_datalist([item], num_classes=NUM_CLASSES)
    check_datalist([item], num_classes=NUM_CLASSES, check_contents=False)  # values not read
    check_datalist([item])  # no num_classes: no value check
    check_datalist([item], num_classes=10)


def test_check_datalist_negative_and_float_labels(tmp_path):
    label = _label().astype(np.int16)
    label[2, 2, 2] = -1
    with pytest.raises(ValueError, match=r"has values \[-1\] outside"):
        check_datalist([_pair(tmp_path, _image(), label)], num_classes=NUM_CLASSES)
    label = _label().astype(np.float32)
    check_datalist([_pair(tmp_path, _image(), label)], num_classes=NUM_CLASSES)  # whole numbers stored as float
    label[3, 3, 3] = 1.5
    with pytest.raises(ValueError, match=r"has values \[1\.5\] outside the allowed classes"):
        check_datalist([_pair(tmp_path, _image(), label)], num_classes=NUM_CLASSES)


def test_check_datalist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"num_classes must be a positive integer or None, got 0"):
        check_datalist([], num_classes=0)
    with pytest.raises(ValueError, match=r'item #0 of the datalist has no "image"'):
        check_datalist([{"label": "x.nii.gz"}])


def test_load_datalist_runs_checks(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    label = _label(seed=1)
    label[0, 0, 0] = 5
    _write_nifti(root / "labelsTr" / "case_1.nii.gz", label)
    load_datalist(root)  # no num_classes: values not checked
    with pytest.raises(ValueError, match=r"item #1: label .*case_1\.nii\.gz has values \[5\]"):
        load_datalist(root, num_classes=NUM_CLASSES)


# ------------------------------------------------------------------ split_datalist


def _items(n: int) -> list[dict]:
    return [{"image": f"/data/img_{i}.nii.gz", "label": f"/data/lbl_{i}.nii.gz"} for i in range(n)]


@pytest.mark.parametrize(
    "n, val_fraction, n_val",
    [(2, 0.2, 1), (3, 0.2, 1), (5, 0.2, 1), (8, 0.2, 2), (10, 0.2, 2), (12, 0.25, 3), (40, 0.2, 8), (4, 0.9, 3)],
)
def test_split_datalist_sizes_disjoint_cover(n, val_fraction, n_val):
    items = _items(n)
    train, val = split_datalist(items, val_fraction=val_fraction, seed=3)
    assert len(val) == n_val and len(train) == n - n_val
    train_images, val_images = {d["image"] for d in train}, {d["image"] for d in val}
    assert not train_images & val_images
    assert train_images | val_images == {d["image"] for d in items}
    # both lists keep the input order
    assert [d["image"] for d in train] == [d["image"] for d in items if d["image"] in train_images]
    assert [d["image"] for d in val] == [d["image"] for d in items if d["image"] in val_images]


def test_split_datalist_deterministic_and_seeded():
    items = _items(20)
    assert split_datalist(items, seed=0) == split_datalist(items, seed=0)
    vals = {tuple(d["image"] for d in split_datalist(items, seed=s)[1]) for s in range(5)}
    assert len(vals) > 1  # the seed changes the split
    # fixed values guard against a silent change of the shuffle (splits must stay reproducible across releases)
    assert [d["image"] for d in split_datalist(_items(10), seed=0)[1]] == EXPECTED_VAL_10_SEED_0


def test_split_datalist_does_not_alias_or_mutate():
    items = _items(4)
    before = [dict(d) for d in items]
    train, val = split_datalist(items)
    train[0]["image"] = "changed"
    assert items == before
    assert not any(t is i for t in train + val for i in items)


@pytest.mark.parametrize("n", [0, 1])
def test_split_datalist_too_few(n):
    with pytest.raises(ValueError, match=rf"datalist of {n} case\(s\) .*at least 2 are needed"):
        split_datalist(_items(n))


@pytest.mark.parametrize("val_fraction", [1.0, -0.1, 1.5])
def test_split_datalist_bad_fraction(val_fraction):
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\) \(0: train on every case"):
        split_datalist(_items(4), val_fraction=val_fraction)


@pytest.mark.parametrize("n", [1, 4])
def test_split_datalist_zero_fraction_trains_on_every_case(n):
    items = _items(n)
    train, val = split_datalist(items, val_fraction=0, seed=3)
    assert train == items and val == []
    assert train[0] is not items[0]  # copies, as for a split


def test_train_val_datalists_zero_fraction_keeps_every_case_but_honours_a_validation_list(tmp_path):
    root = _make_dataset(tmp_path / "a", n=4)
    train, val = train_val_datalists(root, val_fraction=0, num_classes=NUM_CLASSES)
    assert (len(train), val) == (4, [])
    listed = _make_dataset(tmp_path / "b", n=3, validation=2)
    train, val = train_val_datalists(listed, val_fraction=0, num_classes=NUM_CLASSES)
    assert (len(train), len(val)) == (3, 2)


def test_few_cases_split_says_what_it_sets_aside(tmp_path, caplog):
    root = _make_dataset(tmp_path, n=4)
    with caplog.at_level("WARNING", logger="monai_ag.data.datalist"):
        train, val = train_val_datalists(root, val_fraction=0.2, seed=0, num_classes=NUM_CLASSES)
    (record,) = [r for r in caplog.records if "sets aside" in r.getMessage()]
    message = record.getMessage()
    assert f"sets aside 1 of 4 cases for validation: {Path(val[0]['image']).name}" in message
    assert "--val_fraction 0" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="monai_ag.data.datalist"):
        train_val_datalists(_make_dataset(tmp_path / "many", n=5), val_fraction=0.2, num_classes=NUM_CLASSES)
    assert not [r for r in caplog.records if "sets aside" in r.getMessage()]


# ------------------------------------------------------------------ train_val_datalists


def test_train_val_datalists_split_when_no_validation(tmp_path):
    root = _make_dataset(tmp_path, n=5)
    train, val = train_val_datalists(root, val_fraction=0.4, seed=1, num_classes=NUM_CLASSES)
    assert (len(train), len(val)) == (3, 2)
    assert (train, val) == split_datalist(load_datalist(root), val_fraction=0.4, seed=1)


def test_train_val_datalists_uses_validation_list(tmp_path):
    root = _make_dataset(tmp_path, n=3, validation=2)
    train, val = train_val_datalists(root, num_classes=NUM_CLASSES)
    assert [Path(d["image"]).name for d in train] == ["case_0.nii.gz", "case_1.nii.gz", "case_2.nii.gz"]
    assert [Path(d["image"]).name for d in val] == ["case_3.nii.gz", "case_4.nii.gz"]


def test_train_val_datalists_empty_validation_falls_back(tmp_path):
    root = _make_dataset(tmp_path, n=2)
    data = json.loads((root / "dataset.json").read_text())
    data["validation"] = []
    _write_json(root / "dataset.json", data)
    train, val = train_val_datalists(root)
    assert (len(train), len(val)) == (1, 1)


def test_train_val_datalists_errors(tmp_path):
    root = _make_dataset(tmp_path, n=1)
    with pytest.raises(ValueError, match=r"datalist of 1 case\(s\)"):
        train_val_datalists(root)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        train_val_datalists(tmp_path / "nowhere", val_fraction=1.0)
    with pytest.raises(FileNotFoundError, match=r"dataset\.json not found"):
        train_val_datalists(tmp_path / "imagesTr")


# ------------------------------------------------------------------ inference_datalist


def test_inference_datalist_single_nifti(tmp_path, monkeypatch):
    f = _write_nifti(tmp_path / "ct.nii", _image())
    monkeypatch.chdir(tmp_path)
    assert inference_datalist("ct.nii") == [{"image": str(f)}]


def test_inference_datalist_dicom_series(tmp_path):
    series = tmp_path / "series"
    for i in range(3):
        _write_fake_dicom(series / f"1.2.840.{i}")
    assert inference_datalist(series) == [{"image": str(series)}]


def test_inference_datalist_folder_sorted(tmp_path):
    _write_nifti(tmp_path / "b.nii.gz", _image())
    _write_nifti(tmp_path / "a.nii", _image())
    _write_fake_dicom(tmp_path / "c_series" / "IM1")
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "README.txt").write_text("ignored")
    _write_nifti(tmp_path / ".hidden.nii.gz", _image())
    expected = [{"image": str(tmp_path / n)} for n in ("a.nii", "b.nii.gz", "c_series")]
    assert inference_datalist(tmp_path) == expected
    assert inference_datalist(tmp_path) == expected  # deterministic


def test_inference_datalist_from_dataset_json(tmp_path):
    root = _make_dataset(tmp_path, n=2, test=["imagesTr/case_0.nii.gz", "imagesTr/case_1.nii.gz"])
    assert inference_datalist(dataset_dir=root) == [
        {"image": str(root / "imagesTr" / f"case_{i}.nii.gz")} for i in range(2)
    ]
    test = [{"image": "imagesTr/case_0.nii.gz", "label": "labelsTr/case_0.nii.gz"}]
    _make_dataset(tmp_path, n=2, test=test)
    assert inference_datalist(dataset_dir=root) == [
        {"image": str(root / "imagesTr" / "case_0.nii.gz"), "label": str(root / "labelsTr" / "case_0.nii.gz")}
    ]
    assert len(inference_datalist(dataset_dir=root, data_list_key="training")) == 2
    # input_path takes precedence over dataset_dir
    assert inference_datalist(root / "imagesTr" / "case_1.nii.gz", dataset_dir=root) == [
        {"image": str(root / "imagesTr" / "case_1.nii.gz")}
    ]


def test_inference_datalist_errors(tmp_path):
    with pytest.raises(ValueError, match=r"no input: give input_path .* or dataset_dir"):
        inference_datalist()
    with pytest.raises(FileNotFoundError, match=r"input_path .*missing\.nii\.gz does not exist"):
        inference_datalist(tmp_path / "missing.nii.gz")
    txt = tmp_path / "scan.mha"
    txt.write_text("x")
    with pytest.raises(ValueError, match=r"input_path .*scan\.mha is not a NIfTI file"):
        inference_datalist(txt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"input_path .*empty has no NIfTI files .* \(it is empty\)"):
        inference_datalist(empty)
    with pytest.raises(ValueError, match=r"has no NIfTI files .*\(it holds: empty, scan\.mha\)"):
        inference_datalist(tmp_path)
    mixed = tmp_path / "mixed"
    _write_fake_dicom(mixed / "IM1")
    _write_nifti(mixed / "x.nii.gz", _image())
    with pytest.raises(ValueError, match=r"mixed holds both DICOM files and NIfTI files \(x\.nii\.gz\)"):
        inference_datalist(mixed)
    root = _make_dataset(tmp_path / "ds", n=1)
    with pytest.raises(ValueError, match=r'dataset\.json has no "test" list'):
        inference_datalist(dataset_dir=root)
    with pytest.raises(FileNotFoundError, match=r"dataset_dir .*nowhere does not exist"):
        inference_datalist(dataset_dir=tmp_path / "nowhere")


# ------------------------------------------------------------------ real CT data (skipped when absent)

# ITK's SWIG bindings emit these DeprecationWarnings when they are first imported (third-party noise)
_itk_swig_noise = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")


@lru_cache(maxsize=None)
def _monai_geometry(path: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine of an image as MONAI's ITK reader sees it (cached: reading the series takes a second)."""
    from monai.transforms import LoadImage

    img, meta = LoadImage(reader="ITKReader", image_only=False)(path)
    return tuple(int(s) for s in img.shape), np.asarray(meta["affine"], dtype=np.float64)


def test_real_dicom_series_inference(shared_data):
    series = shared_data / "totalseg" / "example_ct_dicom"
    assert is_dicom_series_dir(series)
    assert inference_datalist(series) == [{"image": os.path.abspath(series)}]


@_itk_swig_noise
def test_real_dicom_series_with_nifti_label(shared_data, tmp_path):
    series = str(shared_data / "totalseg" / "example_ct_dicom")
    shape, affine = _monai_geometry(series)
    assert len(shape) == 3
    label = np.zeros(shape, dtype=np.uint8)
    label[200:300, 200:300, 5:15] = 1
    label_path = _write_nifti(tmp_path / "label.nii", label, affine)
    check_datalist([{"image": series, "label": str(label_path)}], num_classes=NUM_CLASSES)

    # a dataset.json whose image is the series (an absolute path) goes through load_datalist too
    _write_json(tmp_path / "dataset.json", {"training": [{"image": series, "label": "label.nii"}]})
    assert load_datalist(tmp_path, num_classes=NUM_CLASSES) == [{"image": series, "label": str(label_path)}]

    # one slice short: the geometry check names both files and shapes
    short = _write_nifti(tmp_path / "short.nii", label[..., :-1], affine)
    short_shape = re.escape(str(shape[:2] + (shape[2] - 1,)))
    pattern = rf"image .*example_ct_dicom and label .*short\.nii .*label shape {short_shape}"
    with pytest.raises(ValueError, match=pattern):
        check_datalist([{"image": series, "label": str(short)}])


@_itk_swig_noise
def test_real_dicom_series_with_reoriented_segmentation(shared_data):
    """TotalSegmentator's own segmentation of the series is stored with the y axis flipped."""
    series = str(shared_data / "totalseg" / "example_ct_dicom")
    item = {"image": series, "label": str(shared_data / "totalseg" / "example_seg_dicom.nii.gz")}
    with pytest.raises(ValueError, match=r"same voxel grid .*image LPS, label LAS"):
        check_datalist([item])
    check_datalist([item], allow_reoriented=True)


def test_real_nifti_ct(shared_data, tmp_path):
    ct = shared_data / "totalseg" / "example_ct.nii.gz"
    header = nib.load(str(ct))
    label_path = _write_nifti(tmp_path / "label.nii.gz", np.zeros(header.shape, dtype=np.uint8), header.affine)
    check_datalist([{"image": str(ct), "label": str(label_path)}], num_classes=NUM_CLASSES)
    assert inference_datalist(ct) == [{"image": str(ct)}]
