"""Tests of the synthetic abdominal CT phantom (``monai_ag.data.phantom``).

Small volumes (80 x 64 x 48 voxels at 4 mm: the same 320 x 256 x 192 mm field of view as the
default 160 x 128 x 96 at 2 mm) keep the whole module fast.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImage
from scipy import ndimage

from monai_ag.data import (
    PHANTOM_LABELS,
    PHANTOM_MARKER_KEY,
    ensure_phantom_dataset,
    generate_phantom_case,
    generate_phantom_dataset,
)
from monai_ag.data.phantom import main

SHAPE = (80, 64, 48)
SPACING = (4.0, 4.0, 4.0)
VOXEL_ML = float(np.prod(SPACING)) / 1000.0
SEEDS = (0, 7)
SMALL = {"shape": SHAPE, "spacing": SPACING}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def cases() -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {seed: generate_phantom_case(seed, SHAPE, SPACING) for seed in SEEDS}


def _world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    centre = np.array(ndimage.center_of_mass(mask))
    return affine[:3, :3] @ centre + affine[:3, 3]


def _all_files(root: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


# ----------------------------------------------------------------------------------------------
# single cases
# ----------------------------------------------------------------------------------------------
def test_outputs_types_and_affine(cases):
    image, label, affine = cases[SEEDS[0]]
    assert image.shape == SHAPE and label.shape == SHAPE
    assert image.dtype == np.float32 and label.dtype == np.uint8
    assert affine.shape == (4, 4)
    # RAS+, diag(spacing), field of view centred on the world origin
    np.testing.assert_allclose(np.diag(affine)[:3], SPACING)
    np.testing.assert_allclose(affine[:3, :3], np.diag(SPACING))
    far_corner = affine @ np.array([SHAPE[0] - 1, SHAPE[1] - 1, SHAPE[2] - 1, 1.0])
    np.testing.assert_allclose(far_corner[:3], -affine[:3, 3])
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    # integer HU in the CT range, so int16 storage is lossless
    assert np.array_equal(image, np.rint(image))
    assert image.min() >= -1024 and image.max() <= 3071


def test_deterministic_and_seed_dependent(cases):
    image, label, affine = cases[SEEDS[0]]
    image2, label2, affine2 = generate_phantom_case(SEEDS[0], SHAPE, SPACING)
    assert np.array_equal(image, image2)
    assert np.array_equal(label, label2)
    assert np.array_equal(affine, affine2)
    other_image, other_label, _ = cases[SEEDS[1]]
    assert not np.array_equal(image, other_image)
    assert (label != other_label).mean() > 0.005  # different shapes, not just different noise


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_present_and_not_fragmented(cases, seed):
    _, label, _ = cases[seed]
    assert set(np.unique(label).tolist()) == set(PHANTOM_LABELS) == {0, 1, 2, 3, 4}
    for value, expected_components in ((1, 1), (2, 1), (3, 2), (4, 1)):  # two kidneys share label 3
        _, n = ndimage.label(label == value)
        assert n == expected_components, (PHANTOM_LABELS[value], n)


@pytest.mark.parametrize("seed", SEEDS)
def test_organ_volumes_are_realistic(cases, seed):
    _, label, _ = cases[seed]
    volumes = {name: float((label == value).sum()) * VOXEL_ML for value, name in PHANTOM_LABELS.items()}
    assert 1000.0 <= volumes["liver"] <= 1900.0, volumes
    assert 80.0 <= volumes["spleen"] <= 300.0, volumes
    assert 30.0 <= volumes["pancreas"] <= 90.0, volumes
    kidneys, n = ndimage.label(label == 3)
    assert n == 2
    each = np.bincount(kidneys.ravel())[1:] * VOXEL_ML
    assert np.all((each >= 100.0) & (each <= 200.0)), each
    # the pancreas is thin: its volume spread over its length gives a ~15-25 mm thick organ
    z_slices = np.count_nonzero((label == 4).any(axis=(0, 1)))
    assert z_slices * SPACING[2] < 80.0


@pytest.mark.parametrize("seed", SEEDS)
def test_intensities(cases, seed):
    image, label, _ = cases[seed]
    means = {}
    for value, name in PHANTOM_LABELS.items():
        if value == 0:
            continue
        core = ndimage.binary_erosion(label == value)  # away from partial-volume boundaries
        means[name] = float(image[core].mean())
    assert 60.0 <= means["liver"] <= 110.0, means
    assert 100.0 <= means["spleen"] <= 120.0, means
    assert 150.0 <= means["kidney"] <= 200.0, means
    assert 40.0 <= means["pancreas"] <= 100.0, means
    assert means["liver"] < means["spleen"] < means["kidney"]
    # noise: a homogeneous organ interior is not flat
    liver_core = ndimage.binary_erosion(label == 1, iterations=2)
    assert 8.0 <= float(image[liver_core].std()) <= 35.0
    # air outside the body (corners of the field of view), bone and bowel gas inside
    corners = image[[0, 0, -1, -1]][:, [0, -1, 0, -1]]
    assert float(corners.mean()) < -950.0
    assert np.all(label[[0, 0, -1, -1]][:, [0, -1, 0, -1]] == 0)
    assert float(image.max()) > 400.0
    body = ndimage.binary_fill_holes(image > -500.0)
    assert np.count_nonzero(body & (image < -800.0)) > 20  # gas pockets in the bowel / stomach
    # not separable by thresholding: plenty of background voxels share the pancreas' intensities
    lo, hi = np.percentile(image[label == 4], [25, 75])
    background_like = np.count_nonzero((label == 0) & (image >= lo) & (image <= hi))
    assert background_like > 2 * np.count_nonzero(label == 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_anatomical_layout(cases, seed):
    _, label, affine = cases[seed]
    liver = _world_centroid(label == 1, affine)
    spleen = _world_centroid(label == 2, affine)
    pancreas = _world_centroid(label == 4, affine)
    kidneys, _ = ndimage.label(label == 3)
    k1, k2 = (_world_centroid(kidneys == i, affine) for i in (1, 2))
    right_kidney, left_kidney = (k1, k2) if k1[0] > k2[0] else (k2, k1)
    assert liver[0] > 0.0 > spleen[0]  # RAS: +x is the patient's right
    assert right_kidney[0] > 30.0 and left_kidney[0] < -30.0  # lateral to the spine
    assert spleen[1] < 0.0 and right_kidney[1] < liver[1]  # posterior organs
    assert liver[2] > right_kidney[2]  # liver above the right kidney
    assert pancreas[1] > left_kidney[1]  # pancreas anterior to the left kidney
    assert abs(pancreas[0]) < 50.0  # runs across the midline region towards the spleen


def test_same_anatomy_at_different_spacing():
    # geometry is defined in mm: a finer grid gives the same organs (up to discretisation)
    _, coarse, _ = generate_phantom_case(3, SHAPE, SPACING)
    _, fine, _ = generate_phantom_case(3, (107, 86, 64), (3.0, 3.0, 3.0))
    for value in (1, 2, 3, 4):
        v_coarse = (coarse == value).sum() * 64.0
        v_fine = (fine == value).sum() * 27.0
        assert abs(v_coarse - v_fine) / v_fine < 0.15, (value, v_coarse, v_fine)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (64, 64)}, r"shape must be a sequence of 3"),
        ({"shape": (64, 64, 48, 2)}, r"shape must be a sequence of 3"),
        ({"shape": (40, 32, 24)}, r"too small to hold the phantom anatomy"),
        ({"shape": (80, 64, 8)}, r"shape must contain 3 integers >= 16"),
        ({"shape": (80.5, 64, 48)}, r"shape must contain 3 integers"),
        ({"spacing": (4.0, 0.0, 4.0)}, r"spacing must contain 3 positive"),
        ({"spacing": (4.0, -4.0, 4.0)}, r"spacing must contain 3 positive"),
        ({"spacing": (4.0, 4.0)}, r"spacing must be a sequence of 3"),
        ({"spacing": (10.0, 10.0, 10.0)}, r"spacing must be at most 8.0 mm"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, r"seed must be an integer"),
    ],
)
def test_generate_case_bad_input(kwargs, match):
    args = {"seed": 0, "shape": SHAPE, "spacing": SPACING, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_phantom_case(**args)


# ----------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("phantom"))
    return generate_phantom_dataset(root, num_cases=4, num_validation=1, num_test=1, seed=5, **SMALL)


def test_dataset_json_structure(dataset):
    root = os.path.dirname(dataset)
    assert os.path.basename(dataset) == "dataset.json"
    with open(dataset) as fh:
        meta = json.load(fh)
    for key in ("name", "description", "labels", "modality", "training", "validation", "test"):
        assert key in meta
    assert meta["labels"] == {"0": "background", "1": "liver", "2": "spleen", "3": "kidney", "4": "pancreas"}
    assert meta["modality"] == {"0": "CT"}
    assert len(meta["training"]) == 2 and len(meta["validation"]) == 1 and len(meta["test"]) == 1
    marker = meta[PHANTOM_MARKER_KEY]
    assert marker["seed"] == 5 and marker["num_cases"] == 4
    assert marker["shape"] == list(SHAPE) and marker["spacing"] == list(SPACING)
    images = [e["image"] for split in ("training", "validation", "test") for e in meta[split]]
    assert len(set(images)) == 4  # validation is held out of training
    for split, folder in (("training", "Tr"), ("validation", "Tr"), ("test", "Ts")):
        for entry in meta[split]:
            assert set(entry) == {"image", "label"}
            assert entry["image"].startswith(f"./images{folder}/phantom_") and entry["image"].endswith(".nii.gz")
            assert entry["label"] == entry["image"].replace(f"./images{folder}/", f"./labels{folder}/")
            assert os.path.isfile(os.path.join(root, entry["image"]))
            assert os.path.isfile(os.path.join(root, entry["label"]))


def test_dataset_files_load_with_monai(dataset):
    with open(dataset) as fh:
        meta = json.load(fh)
    loader = LoadImage(image_only=True)
    for split in ("training", "validation", "test"):
        for item in load_decathlon_datalist(dataset, is_segmentation=True, data_list_key=split):
            image, label = loader(item["image"]), loader(item["label"])
            assert tuple(image.shape) == SHAPE == tuple(label.shape)
            np.testing.assert_allclose(image.affine.numpy(), label.affine.numpy())
            np.testing.assert_allclose(np.diag(image.affine.numpy())[:3], SPACING)
            assert set(np.unique(label.numpy()).astype(int).tolist()) == {0, 1, 2, 3, 4}
    # stored files reproduce generate_phantom_case exactly (int16 HU / uint8 labels, qform = sform)
    first = meta["training"][0]
    name = os.path.basename(first["image"]).split(".")[0]
    expected_image, expected_label, expected_affine = generate_phantom_case(
        meta[PHANTOM_MARKER_KEY]["case_seeds"][name], SHAPE, SPACING
    )
    root = os.path.dirname(dataset)
    img = nib.load(os.path.join(root, first["image"]))
    lab = nib.load(os.path.join(root, first["label"]))
    assert img.get_data_dtype() == np.int16 and lab.get_data_dtype() == np.uint8
    assert int(img.header["qform_code"]) > 0 and int(img.header["sform_code"]) > 0
    np.testing.assert_allclose(img.affine, expected_affine)
    np.testing.assert_allclose(img.get_qform(), expected_affine)
    assert np.array_equal(np.asanyarray(img.dataobj).astype(np.float32), expected_image)
    assert np.array_equal(np.asanyarray(lab.dataobj), expected_label)


def test_ensure_is_idempotent(tmp_path, caplog):
    root = str(tmp_path / "phantom")
    kwargs = {"num_cases": 3, "num_validation": 1, "num_test": 0, **SMALL}
    with caplog.at_level(logging.INFO, logger="monai_ag.data.phantom"):
        path = ensure_phantom_dataset(root, **kwargs)
    assert "Generating a synthetic phantom dataset (3 cases" in caplog.text and root in caplog.text
    files = _all_files(root)
    assert len(files) == 7  # 3 images, 3 labels, dataset.json
    stamps = {f: os.stat(f).st_mtime_ns for f in files}
    contents = {f: open(f, "rb").read() for f in files}

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monai_ag.data.phantom"):
        assert ensure_phantom_dataset(root, **kwargs) == path
    assert "Reusing" in caplog.text and "Generating" not in caplog.text
    assert {f: os.stat(f).st_mtime_ns for f in _all_files(root)} == stamps

    # a missing case file is regenerated, byte-identical; nothing else is rewritten
    victim = os.path.join(root, "labelsTr", "phantom_001.nii.gz")
    os.remove(victim)
    assert generate_phantom_dataset(root, **kwargs) == path
    assert open(victim, "rb").read() == contents[victim]
    assert all(os.stat(f).st_mtime_ns == stamps[f] for f in files if f != victim)


def test_different_parameters_refused_unless_overwrite(tmp_path):
    root = str(tmp_path / "phantom")
    generate_phantom_dataset(root, num_cases=2, num_validation=1, num_test=0, **SMALL)
    with pytest.raises(FileExistsError, match=r"different parameters: num_cases=2 \(requested 3\)"):
        ensure_phantom_dataset(root, num_cases=3, num_validation=1, num_test=0, **SMALL)
    with pytest.raises(FileExistsError, match=r"seed=0 \(requested 1\)"):
        generate_phantom_dataset(root, num_cases=2, num_validation=1, num_test=0, seed=1, **SMALL)
    path = generate_phantom_dataset(root, num_cases=3, num_validation=1, num_test=1, overwrite=True, **SMALL)
    with open(path) as fh:
        meta = json.load(fh)
    assert meta[PHANTOM_MARKER_KEY]["num_cases"] == 3
    assert len(meta["training"]) == 1 and len(meta["validation"]) == 1 and len(meta["test"]) == 1
    assert sorted(os.listdir(os.path.join(root, "imagesTr"))) == ["phantom_000.nii.gz", "phantom_001.nii.gz"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_refuses_non_phantom_dataset(tmp_path, overwrite):
    root = tmp_path / "Task09_Spleen"
    (root / "imagesTr").mkdir(parents=True)
    (root / "imagesTr" / "spleen_2.nii.gz").write_bytes(b"real data")
    original = json.dumps({"name": "Spleen", "labels": {"0": "background", "1": "spleen"}, "training": []})
    (root / "dataset.json").write_text(original)
    with pytest.raises(FileExistsError, match="not a monai_ag phantom dataset"):
        generate_phantom_dataset(str(root), num_cases=2, num_validation=1, num_test=0, overwrite=overwrite, **SMALL)
    with pytest.raises(FileExistsError, match="not a monai_ag phantom dataset"):
        ensure_phantom_dataset(str(root), num_cases=2, num_validation=1, num_test=0, **SMALL)
    assert (root / "dataset.json").read_text() == original
    assert sorted(os.listdir(root / "imagesTr")) == ["spleen_2.nii.gz"]


def test_refuses_foreign_files_without_dataset_json(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"is not empty \('notes.txt'\)"):
        generate_phantom_dataset(str(tmp_path), num_cases=2, num_validation=1, num_test=0, **SMALL)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
    other = tmp_path / "other"
    (other / "labelsTr").mkdir(parents=True)
    (other / "labelsTr" / "case_1.nii.gz").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not written by monai_ag.data.phantom"):
        ensure_phantom_dataset(str(other), num_cases=2, num_validation=1, num_test=0, **SMALL)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_cases": 1}, r"num_cases must be an integer >= 2, got 1"),
        ({"num_cases": 3, "num_validation": 1, "num_test": 2}, r"must leave at least one training case"),
        ({"num_validation": -1}, r"num_validation must be an integer >= 0, got -1"),
        ({"num_test": -2}, r"num_test must be an integer >= 0, got -2"),
        ({"shape": (80, 64)}, r"shape must be a sequence of 3"),
        ({"spacing": (4.0, 4.0, 0.0)}, r"spacing must contain 3 positive"),
    ],
)
def test_dataset_bad_input(tmp_path, kwargs, match):
    args = {"num_cases": 3, "num_validation": 1, "num_test": 0, **SMALL, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_phantom_dataset(str(tmp_path / "phantom"), **args)
    assert not (tmp_path / "phantom").exists()


def test_cli(tmp_path):
    root = str(tmp_path / "cli")
    cmd = [sys.executable, "-m", "monai_ag.data.phantom", "--output_dir", root, "--num_cases", "3"]
    cmd += ["--num_validation", "1", "--num_test", "1", "--seed", "2", "--quiet"]
    cmd += ["--shape", *map(str, SHAPE), "--spacing", *map(str, SPACING)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip().splitlines()[-1]
    assert path == os.path.join(root, "dataset.json")
    with open(path) as fh:
        meta = json.load(fh)
    assert meta[PHANTOM_MARKER_KEY]["seed"] == 2
    assert [len(meta[k]) for k in ("training", "validation", "test")] == [1, 1, 1]
    assert os.path.isfile(os.path.join(root, meta["test"][0]["label"]))


def test_cli_errors(tmp_path, capsys):
    assert main(["--output_dir", str(tmp_path / "x"), "--num_cases", "1"]) == 1
    assert "num_cases must be an integer >= 2, got 1" in capsys.readouterr().err
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "dataset.json").write_text("{}")
    args = ["--output_dir", str(tmp_path / "y"), "--num_cases", "2", "--num_validation", "1", "--num_test", "0"]
    args += ["--shape", *map(str, SHAPE), "--spacing", *map(str, SPACING)]
    assert main(args) == 1
    assert "not a monai_ag phantom dataset" in capsys.readouterr().err
