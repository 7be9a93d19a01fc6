"""Partial labels in the evaluation: a class a case does not annotate is "not annotated", not "absent"."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from monai_ag.metrics import segmentation_report
from monai_ag.metrics.report import main

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
CLASSES = {1: "liver", 2: "spleen", 3: "kidney"}


def _write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), AFFINE), str(path))
    return str(path)


@pytest.fixture
def cases(tmp_path):
    """c1: liver and spleen labelled (kidney absent); c2: liver only annotated; the prediction has a spleen in
    both (right in c1; in c2 it may be right too, the reference cannot say)."""
    ref = np.zeros((16, 16, 16), np.uint8)
    ref[2:8, 2:8, 2:8] = 1
    pred = ref.copy()
    pred[10:14, 10:14, 10:14] = 2
    ref1 = ref.copy()
    ref1[10:14, 10:14, 10:14] = 2
    return {
        "preds": [_write(tmp_path / "pred" / "c1_seg.nii.gz", pred), _write(tmp_path / "pred" / "c2_seg.nii.gz", pred)],
        "refs": [_write(tmp_path / "labelsTr" / "c1.nii.gz", ref1), _write(tmp_path / "labelsTr" / "c2.nii.gz", ref)],
        "root": tmp_path,
    }


def test_not_annotated_is_distinct_from_absent(cases, tmp_path):
    summary = segmentation_report(cases["preds"], cases["refs"], CLASSES, tmp_path / "r", annotated=[None, [1]])
    with open(tmp_path / "r" / "metrics.csv", newline="") as fh:
        rows = {(r["case"], r["class_name"]): r for r in csv.DictReader(fh)}
    assert rows["c1", "kidney"]["reference"] == "absent" and rows["c1", "spleen"]["reference"] == "present"
    assert rows["c2", "spleen"]["reference"] == "not annotated" and rows["c2", "kidney"]["reference"] == "not annotated"
    assert rows["c2", "spleen"]["dice"] == "" and rows["c2", "liver"]["dice"] == "1.0"
    spleen = summary["classes"]["spleen"]
    assert spleen["n_cases"] == 1 and spleen["n_not_annotated"] == 1 and spleen["metrics"]["dice"]["mean"] == 1.0
    assert summary["classes"]["kidney"]["n_not_annotated"] == 1 and summary["mean_dice"] == 1.0
    # without the annotation the c2 spleen is "absent" and its predicted voxels look like false positives
    plain = segmentation_report(cases["preds"], cases["refs"], CLASSES, tmp_path / "p")
    assert plain["classes"]["spleen"]["n_not_annotated"] == 0
    with pytest.raises(ValueError, match="got 1 annotated lists for 2 cases"):
        segmentation_report(cases["preds"], cases["refs"], CLASSES, tmp_path / "x", annotated=[[1]])


def test_command_reads_annotated_from_dataset_json(cases, capsys):
    root = cases["root"]
    (root / "imagesTr").mkdir()
    for c in ("c1", "c2"):
        _write(root / "imagesTr" / f"{c}.nii.gz", np.zeros((16, 16, 16)))
    items = [
        {"image": "imagesTr/c1.nii.gz", "label": "labelsTr/c1.nii.gz", "annotated": [1, 2, 3]},
        {"image": "imagesTr/c2.nii.gz", "label": "labelsTr/c2.nii.gz", "annotated": [1]},
    ]
    (root / "dataset.json").write_text(json.dumps({"training": items}))
    assert (
        main(
            [
                "--pred_dir",
                str(root / "pred"),
                "--dataset_dir",
                str(root),
                "--data_list_key",
                "training",
                "--output_dir",
                str(root / "report"),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "not_annotated" in out.splitlines()[0]
    summary = json.loads((root / "report" / "summary.json").read_text())
    assert summary["classes"]["spleen"]["n_not_annotated"] == 1
