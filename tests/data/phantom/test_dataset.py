"""Tests of the phantom dataset writer (``monai_ag.data.phantom.dataset``, ``python -m monai_ag.data.phantom``).

Small volumes (80 x 64 x 48 voxels at 4 mm: the same 320 x 256 x 192 mm field of view as the
default 160 x 128 x 96 at 2 mm) keep the whole module fast.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.data import load_decathlon_datalist
from monai.transforms import LoadImage

from monai_ag.data.phantom import PHANTOM_MARKER_KEY, generate_phantom_case, generate_phantom_dataset, main
from monai_ag.utils.fileio import temporary_path

SHAPE = (80, 64, 48)
SPACING = (4.0, 4.0, 4.0)
SMALL = {"shape": SHAPE, "spacing": SPACING}
REPO_ROOT = str(Path(__file__).resolve().parents[3])


def _all_files(root: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


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


def test_generation_is_idempotent(tmp_path, caplog):
    root = str(tmp_path / "phantom")
    kwargs = {"num_cases": 3, "num_validation": 1, "num_test": 0, **SMALL}
    with caplog.at_level(logging.INFO, logger="monai_ag.data.phantom"):
        path = generate_phantom_dataset(root, **kwargs)
    assert "Generating a synthetic phantom dataset (3 cases" in caplog.text and root in caplog.text
    files = _all_files(root)
    assert len(files) == 7  # 3 images, 3 labels, dataset.json
    stamps = {f: os.stat(f).st_mtime_ns for f in files}
    contents = {f: open(f, "rb").read() for f in files}

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monai_ag.data.phantom"):
        assert generate_phantom_dataset(root, **kwargs) == path
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
        generate_phantom_dataset(root, num_cases=3, num_validation=1, num_test=0, **SMALL)
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
        generate_phantom_dataset(str(root), num_cases=2, num_validation=1, num_test=0, **SMALL)
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
        generate_phantom_dataset(str(other), num_cases=2, num_validation=1, num_test=0, **SMALL)


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


def test_leftovers_of_an_interrupted_run_are_replaced(tmp_path):
    """Temporary files of atomic_write are the writer's own: not foreign, and gone after the next run."""
    root = tmp_path / "phantom"
    (root / "imagesTr").mkdir(parents=True)
    leftover = temporary_path(root / "imagesTr" / "phantom_000.nii.gz")
    leftover.write_bytes(b"half a case")
    temporary_path(root / "dataset.json").write_text("{")
    path = generate_phantom_dataset(str(root), num_cases=2, num_validation=1, num_test=0, **SMALL)
    assert sorted(os.path.relpath(f, root) for f in _all_files(str(root))) == [
        "dataset.json",
        os.path.join("imagesTr", "phantom_000.nii.gz"),
        os.path.join("imagesTr", "phantom_001.nii.gz"),
        os.path.join("labelsTr", "phantom_000.nii.gz"),
        os.path.join("labelsTr", "phantom_001.nii.gz"),
    ]
    assert os.path.isfile(path)
