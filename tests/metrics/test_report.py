"""Tests of ``monai_ag.metrics.report`` (the whole evaluation, ``python -m monai_ag.metrics``) on tiny synthetic
NIfTIs with anisotropic (1, 2, 3) mm voxels.

Expected surface distances are computed by hand. MONAI takes the surface of a mask as the voxels removed
by a 6-connected erosion, so a 4x4x4 cube has 64 - 8 = 56 surface voxels; distances are between surface
voxel centres, scaled by the spacing of each axis.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_ag.metrics import (
    case_id_from_path,
    metric_names,
    pair_predictions,
    segmentation_report,
)
from monai_ag.metrics import report as report_mod

SPACING = (1.0, 2.0, 3.0)
AFFINE = np.diag([*SPACING, 1.0])
VOXEL_ML = 6.0 / 1000.0  # 1 x 2 x 3 mm^3
CUBE_ML = 64 * VOXEL_ML  # a 4x4x4 cube: 0.384 mL
CLASSES = {1: "liver", 2: "spleen", 3: "kidney"}
METRICS = metric_names(95.0)


def cube(arr: np.ndarray, start: tuple[int, int, int], value: int, size: int = 4) -> np.ndarray:
    x, y, z = start
    arr[x : x + size, y : y + size, z : z + size] = value
    return arr


def write(path: Path, arr: np.ndarray, affine: np.ndarray = AFFINE) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(arr.astype(np.uint8), affine), str(path))
    return str(path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def num(cell: str) -> float:
    """Parse a CSV cell; NaN is an empty field."""
    return math.nan if cell == "" else float(cell)


def empty(shape: tuple[int, int, int] = (12, 12, 12)) -> np.ndarray:
    return np.zeros(shape, dtype=np.uint8)


# --- case ids and pairing -------------------------------------------------------------------------------


def test_case_id_from_path(tmp_path):
    assert case_id_from_path("/data/imagesTs/case_001.nii.gz") == "case_001"
    assert case_id_from_path(Path("labels/case.v2.nii")) == "case.v2"
    series = tmp_path / "series.1.2"
    series.mkdir()
    assert case_id_from_path(series) == "series.1.2"  # a DICOM directory keeps its dots
    assert case_id_from_path(f"{series}{os.sep}") == "series.1.2"  # and a trailing separator is ignored


def test_pair_predictions_matches_saveimaged_naming(tmp_path):
    """The expected paths are those SaveImaged really writes (NIfTI file and DICOM-directory inputs)."""
    from monai.data import MetaTensor
    from monai.transforms import SaveImaged

    pred_dir = tmp_path / "pred"
    series = tmp_path / "ct" / "series.7"  # a DICOM series directory: SaveImage strips ".7" (splitext)
    datalist = [
        {"image": str(tmp_path / "imagesTs" / "case_a.nii.gz"), "label": "la.nii.gz"},
        {"image": str(series), "label": "lb.nii.gz"},
    ]
    saver = SaveImaged(
        "pred", output_dir=str(pred_dir), output_postfix="seg", separate_folder=False, output_ext=".nii.gz"
    )
    for item in datalist:
        img = MetaTensor(np.zeros((1, 4, 4, 4), np.float32), affine=AFFINE, meta={"filename_or_obj": item["image"]})
        saver({"pred": img})
    assert sorted(os.listdir(pred_dir)) == ["case_a_seg.nii.gz", "series_seg.nii.gz"]

    pairs = pair_predictions(pred_dir, datalist)
    assert pairs == [
        (str(pred_dir / "case_a_seg.nii.gz"), "la.nii.gz"),
        (str(pred_dir / "series_seg.nii.gz"), "lb.nii.gz"),
    ]

    datalist.append({"image": str(tmp_path / "imagesTs" / "case_c.nii.gz"), "label": "lc.nii.gz"})
    with pytest.raises(FileNotFoundError, match=r"case_c: expected .*case_c_seg\.nii\.gz"):
        pair_predictions(pred_dir, datalist)
    with pytest.raises(ValueError, match="no 'label'"):
        pair_predictions(pred_dir, [{"image": datalist[0]["image"]}])


# --- per-case metrics ------------------------------------------------------------------------------------


def test_identical_masks(tmp_path):
    ref = cube(cube(empty(), (1, 1, 1), 1), (6, 6, 6), 2)
    p = write(tmp_path / "pred" / "c1.nii.gz", ref)
    r = write(tmp_path / "ref" / "c1.nii.gz", ref)
    summary = segmentation_report([p], [r], CLASSES, tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "metrics.csv")
    assert list(rows[0]) == ["case", "class_index", "class_name", "reference", *METRICS]
    assert [(x["case"], x["class_index"], x["class_name"]) for x in rows] == [
        ("c1", "1", "liver"),
        ("c1", "2", "spleen"),
        ("c1", "3", "kidney"),
    ]
    for row in rows[:2]:
        assert num(row["dice"]) == pytest.approx(1.0)
        assert num(row["hd95_mm"]) == 0.0 and num(row["msd_mm"]) == 0.0
        assert num(row["precision"]) == 1.0 and num(row["recall"]) == 1.0
        assert num(row["pred_volume_ml"]) == pytest.approx(CUBE_ML)
        assert num(row["ref_volume_ml"]) == pytest.approx(CUBE_ML)
    assert all(rows[2][m] == "" for m in METRICS)  # kidney absent from the reference: NaN everywhere
    assert summary["mean_dice"] == pytest.approx(1.0)
    assert summary["classes"]["kidney"]["n_cases"] == 0
    assert summary["classes"]["kidney"]["metrics"]["dice"] == {"n": 0, "mean": None, "std": None, "median": None}


@pytest.mark.parametrize(
    "axis,hd95,msd",
    [
        # A 4-voxel cube shifted by one voxel along `axis` (spacing s): the 16 voxels of the trailing face are
        # s mm from the other surface, the 4 inner voxels of the leading face 1 mm (the nearest side face is
        # one voxel away along x), the other 36 surface voxels lie on both surfaces (0 mm). Symmetric.
        (0, 1.0, (16 * 1.0 + 4 * 1.0) / 56),
        (1, 2.0, (16 * 2.0 + 4 * 1.0) / 56),
        (2, 3.0, (16 * 3.0 + 4 * 1.0) / 56),  # 3 mm along z, not 1 voxel
    ],
)
def test_shifted_cube_distances_in_mm(tmp_path, axis, hd95, msd):
    ref = cube(empty(), (3, 3, 3), 1)
    pred = np.roll(ref, 1, axis=axis)
    p = write(tmp_path / "p.nii.gz", pred)
    r = write(tmp_path / "r.nii.gz", ref)
    segmentation_report([p], [r], {1: "liver"}, tmp_path / "out", case_ids=["shifted"])
    (row,) = read_csv(tmp_path / "out" / "metrics.csv")
    assert row["case"] == "shifted"
    # overlap 4*4*3 = 48 voxels of 64 in each mask
    assert num(row["dice"]) == pytest.approx(2 * 48 / (64 + 64))
    assert num(row["precision"]) == pytest.approx(48 / 64) and num(row["recall"]) == pytest.approx(48 / 64)
    assert num(row["hd95_mm"]) == pytest.approx(hd95)  # the 95th percentile falls among the largest distances
    assert num(row["msd_mm"]) == pytest.approx(msd, rel=1e-6)


# --- report files and summary ----------------------------------------------------------------------------


@pytest.fixture
def three_cases(tmp_path):
    """c1: liver exact, spleen shifted along z, kidney missed; c2: liver shifted, spleen exact, no kidney;
    c3: liver exact, no spleen (a spurious spleen is predicted), no kidney."""
    refs, preds = [], []
    liver, spleen, kidney = cube(empty(), (1, 1, 1), 1), cube(empty(), (6, 6, 1), 2), cube(empty(), (1, 6, 6), 3)
    shift = lambda a: np.roll(a, 1, axis=2)  # noqa: E731
    cases = {
        "c1": (liver + spleen + kidney, liver + shift(spleen)),
        "c2": (liver + spleen, shift(liver) + spleen),
        "c3": (liver, liver + spleen),
    }
    for name, (ref, pred) in cases.items():
        refs.append(write(tmp_path / "labels" / f"{name}.nii.gz", ref))
        preds.append(write(tmp_path / "pred" / f"{name}_seg.nii.gz", pred))
    return preds, refs


def test_report_files_and_summary(tmp_path, three_cases):
    preds, refs = three_cases
    out = tmp_path / "report"
    summary = segmentation_report(preds, refs, CLASSES, out)
    assert sorted(os.listdir(out)) == ["metrics.csv", "summary.csv", "summary.json"]  # no temporary files left
    for name in os.listdir(out):
        assert "inf" not in (out / name).read_text().lower()

    rows = {(r["case"], r["class_name"]): r for r in read_csv(out / "metrics.csv")}
    assert len(rows) == 9
    assert num(rows["c1", "kidney"]["dice"]) == 0.0 and rows["c1", "kidney"]["hd95_mm"] == ""
    assert rows["c1", "kidney"]["precision"] == "" and num(rows["c1", "kidney"]["recall"]) == 0.0
    assert all(rows["c3", "spleen"][m] == "" for m in METRICS)  # absent from reference, though predicted
    assert num(rows["c1", "spleen"]["hd95_mm"]) == pytest.approx(3.0)

    shifted_msd = 52 / 56
    # per class: statistics over the cases where the class is in the reference
    liver = summary["classes"]["liver"]
    assert liver["n_cases"] == 3 and liver["n_missed"] == 0
    assert liver["metrics"]["dice"]["n"] == 3
    assert liver["metrics"]["dice"]["mean"] == pytest.approx((1 + 0.75 + 1) / 3)
    assert liver["metrics"]["dice"]["median"] == pytest.approx(1.0)
    assert liver["metrics"]["dice"]["std"] == pytest.approx(np.std([1, 0.75, 1], ddof=1))
    assert liver["metrics"]["msd_mm"]["mean"] == pytest.approx(shifted_msd / 3, rel=1e-6)
    spleen = summary["classes"]["spleen"]
    assert spleen["n_cases"] == 2 and spleen["metrics"]["dice"]["n"] == 2  # c3 excluded
    assert spleen["metrics"]["dice"]["mean"] == pytest.approx((0.75 + 1) / 2)
    kidney = summary["classes"]["kidney"]
    assert kidney["n_cases"] == 1 and kidney["n_missed"] == 1
    assert kidney["metrics"]["dice"] == {"n": 1, "mean": 0.0, "std": None, "median": 0.0}
    assert kidney["metrics"]["hd95_mm"]["n"] == 0  # a missed organ has no distance
    assert kidney["metrics"]["ref_volume_ml"]["mean"] == pytest.approx(CUBE_ML)

    # mean over organs: per case over the organs present, then over cases
    case_dice = [(1 + 0.75 + 0) / 3, (0.75 + 1) / 2, 1.0]
    assert summary["mean_dice"] == pytest.approx(np.mean(case_dice))
    organs = summary["mean_over_organs"]
    assert organs["n_cases"] == 3
    assert organs["metrics"]["dice"]["median"] == pytest.approx(np.median(case_dice))
    assert organs["metrics"]["hd95_mm"]["mean"] == pytest.approx(np.mean([1.5, 1.5, 0.0]))  # kidney NaN skipped
    assert "pred_volume_ml" not in organs["metrics"]

    # summary.json is strict JSON and equals the returned dictionary
    assert json.loads((out / "summary.json").read_text()) == summary
    srows = read_csv(out / "summary.csv")
    assert list(srows[0]) == ["class_index", "class_name", "metric", "n", "mean", "std", "median"]
    by_key = {(r["class_name"], r["metric"]): r for r in srows}
    assert len(srows) == 3 * len(METRICS) + 5
    assert num(by_key["spleen", "dice"]["mean"]) == pytest.approx(0.875) and by_key["spleen", "dice"]["n"] == "2"
    assert by_key["kidney", "dice"]["std"] == ""
    assert by_key["mean", "dice"]["class_index"] == ""
    assert num(by_key["mean", "dice"]["mean"]) == pytest.approx(summary["mean_dice"])


def test_refuses_to_overwrite(tmp_path, three_cases):
    preds, refs = three_cases
    out = tmp_path / "report"
    segmentation_report(preds, refs, CLASSES, out)
    before = (out / "metrics.csv").read_text()
    with pytest.raises(FileExistsError, match=r"metrics\.csv.*overwrite=True"):
        segmentation_report(preds[:1], refs[:1], CLASSES, out)
    assert (out / "metrics.csv").read_text() == before
    segmentation_report(preds[:1], refs[:1], CLASSES, out, overwrite=True)
    assert len(read_csv(out / "metrics.csv")) == 3


def test_interrupted_write_leaves_no_partial_files(tmp_path, three_cases, monkeypatch):
    preds, refs = three_cases

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(report_mod.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        segmentation_report(preds, refs, CLASSES, tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_geometry_mismatch_names_both_files(tmp_path):
    ref = cube(empty(), (3, 3, 3), 1)
    r = write(tmp_path / "ref.nii.gz", ref)
    p_spacing = write(tmp_path / "pred_spacing.nii.gz", ref, affine=np.diag([1.0, 2.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"(?s)pred_spacing\.nii\.gz.*ref\.nii\.gz") as err:
        segmentation_report([p_spacing], [r], {1: "liver"}, tmp_path / "out")
    assert "(12, 12, 12)" in str(err.value)
    p_shape = write(tmp_path / "pred_shape.nii.gz", np.zeros((12, 12, 11), np.uint8))
    with pytest.raises(ValueError, match=r"(?s)pred_shape\.nii\.gz: shape \(12, 12, 11\).*ref\.nii\.gz: shape"):
        segmentation_report([p_shape], [r], {1: "liver"}, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.csv").exists()


def test_invalid_arguments(tmp_path):
    r = write(tmp_path / "r.nii.gz", empty())
    with pytest.raises(ValueError, match="background"):
        segmentation_report([r], [r], {0: "background", 1: "liver"}, tmp_path / "out")
    with pytest.raises(ValueError, match="2 labels"):
        segmentation_report([r], [r, r], {1: "liver"}, tmp_path / "out")
    with pytest.raises(ValueError, match="unique"):
        segmentation_report([r, r], [r, r], {1: "liver"}, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing"):
        segmentation_report([str(tmp_path / "missing.nii.gz")], [r], {1: "liver"}, tmp_path / "out")


# --- command line ----------------------------------------------------------------------------------------


def test_cli_end_to_end(tmp_path, capsys):
    ds = tmp_path / "dataset"
    pred_dir = tmp_path / "pred"
    test_items = []
    for name, shift in (("case_0", 0), ("case_1", 1)):
        ref = cube(cube(empty(), (1, 1, 1), 1), (6, 6, 6), 4)
        write(ds / "imagesTs" / f"{name}.nii.gz", ref)  # content irrelevant: only its name is used
        write(ds / "labelsTs" / f"{name}.nii.gz", ref)
        write(pred_dir / f"{name}_seg.nii.gz", np.roll(ref, shift, axis=2))
        test_items.append({"image": f"./imagesTs/{name}.nii.gz", "label": f"./labelsTs/{name}.nii.gz"})
    labels = {"0": "background", "1": "liver", "2": "spleen", "3": "kidney", "4": "pancreas"}
    (ds / "dataset.json").write_text(json.dumps({"labels": labels, "training": [], "test": test_items}))
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "monai_ag.metrics", "--pred_dir", str(pred_dir), "--dataset_dir", str(ds)]
    cmd += ["--output_dir", str(out)]

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr
    assert "[2/2] case_1" in proc.stderr  # per-case progress is logged
    assert "liver" in proc.stdout and "pancreas" in proc.stdout and "mean organ Dice" in proc.stdout
    rows = {(r["case"], r["class_name"]): r for r in read_csv(out / "metrics.csv")}
    assert set(rows) == {(c, k) for c in ("case_0", "case_1") for k in ("liver", "spleen", "kidney", "pancreas")}
    assert num(rows["case_1", "pancreas"]["hd95_mm"]) == pytest.approx(3.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_dice"] == pytest.approx((1.0 + 0.75) / 2)
    assert summary["classes"]["spleen"]["n_cases"] == 0

    # the remaining paths in-process (each interpreter start costs seconds of imports)
    argv = cmd[3:]
    assert report_mod.main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert report_mod.main([*argv, "--overwrite", "--quiet"]) == 0
    assert "mean organ Dice" in capsys.readouterr().out
    (pred_dir / "case_1_seg.nii.gz").unlink()
    assert report_mod.main([*argv, "--overwrite"]) == 1
    assert "case_1: expected" in capsys.readouterr().err
    assert report_mod.main([*argv, "--overwrite", "--data_list_key", "validation"]) == 1
    assert "validation" in capsys.readouterr().err


# --- real data (../shared/data; skipped when absent) -----------------------------------------------------


@pytest.mark.slow
def test_real_dicom_reference_round_trip(shared_data, tmp_path):
    """IRCAD liver mask (DICOM series, values 0/255) against its SaveImaged NIfTI copy: same grid, Dice 1,
    and the volume matches the documented ~1.49 L."""
    from monai.transforms import LoadImage, SaveImage

    with tarfile.open(shared_data / "ircad01.tar.gz") as tar:
        members = [m for m in tar.getmembers() if "/MASKS_DICOM/liver/" in m.name]
        tar.extractall(tmp_path / "ircad", members=members, filter="data")
    liver_dir = str(tmp_path / "ircad" / "ircad01" / "MASKS_DICOM" / "liver")
    img = LoadImage(image_only=True, ensure_channel_first=True)(liver_dir)
    SaveImage(output_dir=str(tmp_path / "pred"), output_postfix="seg", separate_folder=False, output_ext=".nii.gz")(img)

    ((pred, label),) = pair_predictions(tmp_path / "pred", [{"image": liver_dir, "label": liver_dir}])
    assert os.path.basename(pred) == "liver_seg.nii.gz"
    summary = segmentation_report([pred], [label], {255: "liver"}, tmp_path / "out")
    stats = summary["classes"]["liver"]["metrics"]
    assert stats["dice"]["mean"] == pytest.approx(1.0) and stats["hd95_mm"]["mean"] == 0.0
    assert stats["ref_volume_ml"]["mean"] == pytest.approx(1490, rel=0.03)


@pytest.mark.slow
def test_real_flipped_geometry_is_rejected(shared_data, tmp_path):
    """TotalSegmentator's labels for the DICOM example have the y axis flipped: same shape, other affine."""
    seg = shared_data / "totalseg" / "example_seg_dicom.nii.gz"
    series = shared_data / "totalseg" / "example_ct_dicom"
    with pytest.raises(ValueError, match=r"(?s)example_seg_dicom\.nii\.gz: shape \(512, 512, 20\).*example_ct_dicom"):
        segmentation_report([seg], [series], {5: "liver"}, tmp_path / "out")
