from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from monai_ag.data import CLASS_NAMES, ORGAN_NAMES, generate_phantom_case
from monai_ag.metrics.organ_statistics import (
    CSV_COLUMNS,
    ORGAN_FIELDS,
    StatisticsTable,
    main,
    organ_statistics,
    organ_volumes,
    statistics_files,
    write_statistics,
)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A phantom CT and label (spleen removed, a stray liver island added) as NIfTI files with an oblique-free,
    flipped, anisotropic affine."""
    image, label, _ = generate_phantom_case(5, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0))
    label = np.where(label == 2, 0, label).astype(np.uint8)
    label[1:3, 1:3, 1:3] = 1
    affine = np.array([[-7.0, 0, 0, 100.0], [0, 8.0, 0, -50.0], [0, 0, 9.0, 20.0], [0, 0, 0, 1]])
    root = tmp_path_factory.mktemp("stats")
    nib.save(nib.Nifti1Image(image.astype(np.int16), affine), str(root / "ct.nii.gz"))
    nib.save(nib.Nifti1Image(label, affine), str(root / "label.nii.gz"))
    return root, image, label, affine


def _numpy_statistics(image, label, affine, value):
    """The statistics computed independently with numpy and scipy, on the arrays as given."""
    mask = label == value
    hu = image[mask].astype(np.float64)
    idx = np.argwhere(mask).astype(np.float64)
    world = (affine[:3, :3] @ idx.T).T + affine[:3, 3]
    return {
        "voxels": int(mask.sum()),
        "volume_ml": mask.sum() * abs(np.linalg.det(affine[:3, :3])) / 1000,
        "hu_mean": hu.mean(),
        "hu_median": np.median(hu),
        "hu_std": hu.std(),
        "hu_p05": np.percentile(hu, 5),
        "hu_p95": np.percentile(hu, 95),
        "components": ndimage.label(mask, np.ones((3, 3, 3)))[1],
        "centroid": world.mean(0),
        "bbox_min": world.min(0),
        "bbox_max": world.max(0),
    }


def test_statistics_equal_numpys(case):
    root, image, label, affine = case
    stats = organ_statistics(root / "ct.nii.gz", root / "label.nii.gz")
    assert stats["case"] == "ct" and stats["shape"] == [40, 32, 24] and stats["spacing_mm"] == [7.0, 8.0, 9.0]
    assert list(stats["organs"]) == list(ORGAN_NAMES.values())
    for value, name in ORGAN_NAMES.items():
        got = stats["organs"][name]
        assert set(got) == {"class_index", *ORGAN_FIELDS} and got["class_index"] == value
        if value == 2:  # removed: empty, not zero
            assert got["voxels"] == 0 and got["volume_ml"] == 0 and got["components"] == 0
            assert all(got[f] is None for f in ORGAN_FIELDS if f not in ("voxels", "volume_ml", "components"))
            continue
        ref = _numpy_statistics(image, label, affine, value)
        assert got["voxels"] == ref["voxels"] and got["components"] == ref["components"]
        assert abs(got["volume_ml"] - ref["volume_ml"]) < 7 * 8 * 9 / 1000  # within one voxel's volume
        for key in ("hu_mean", "hu_median", "hu_std", "hu_p05", "hu_p95"):
            assert abs(got[key] - ref[key]) < 1e-3, key
        for i, axis in enumerate("xyz"):
            assert got[f"centroid_{axis}_mm"] == pytest.approx(ref["centroid"][i], abs=1e-6)
            assert got[f"bbox_min_{axis}_mm"] == pytest.approx(ref["bbox_min"][i], abs=1e-6)
            assert got[f"bbox_max_{axis}_mm"] == pytest.approx(ref["bbox_max"][i], abs=1e-6)
    assert stats["organs"]["liver"]["components"] == 2  # the stray island


def test_a_label_indexed_otherwise_gives_the_same_statistics(case, tmp_path):
    root, image, label, affine = case
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, label.shape[1] - 1
    nib.save(nib.Nifti1Image(label[:, ::-1, :].copy(), affine @ flip), str(tmp_path / "flipped.nii.gz"))
    assert (
        organ_statistics(root / "ct.nii.gz", tmp_path / "flipped.nii.gz")["organs"]
        == organ_statistics(root / "ct.nii.gz", root / "label.nii.gz")["organs"]
    )
    nib.save(nib.Nifti1Image(label, affine @ np.diag([1.0, 1.0, 0.5, 1.0])), str(tmp_path / "other.nii.gz"))
    with pytest.raises(ValueError, match="not on the same voxel grid"):
        organ_statistics(root / "ct.nii.gz", tmp_path / "other.nii.gz")


def test_volumes_alone(case):
    root, _, label, affine = case
    volumes = organ_volumes(label, affine, {"0": "background", "1": "liver", "2": "spleen"})
    assert volumes == {"liver": pytest.approx((label == 1).sum() * 0.504), "spleen": 0.0}


def test_files_and_combined_table(case, tmp_path):
    root, image, label, affine = case
    stats = organ_statistics(image, label, CLASS_NAMES, affine=affine, case="a")
    json_file, csv_file = statistics_files("/data/a.nii.gz", tmp_path)
    assert (json_file.name, csv_file.name) == ("a_statistics.json", "a_statistics.csv")
    write_statistics(stats, json_file, csv_file)
    assert json.loads(json_file.read_text()) == json.loads(json.dumps(stats))
    rows = list(csv.DictReader(csv_file.open()))
    assert tuple(rows[0]) == CSV_COLUMNS and [r["organ"] for r in rows] == list(ORGAN_NAMES.values())
    assert rows[1]["hu_mean"] == "" and rows[1]["voxels"] == "0"  # the empty spleen
    assert float(rows[0]["volume_ml"]) == stats["organs"]["liver"]["volume_ml"]
    with pytest.raises(FileExistsError):
        write_statistics(stats, json_file, csv_file)
    write_statistics({**stats, "case": "b"}, *statistics_files("/data/b.nii.gz", tmp_path))

    table = StatisticsTable([{"image": "/data/a.nii.gz"}, {"image": "/data/b.nii.gz"}], tmp_path, tmp_path / "all.csv")
    assert table.output_files() == [str(tmp_path / "all.csv")]
    table.write()
    combined = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert [(r["case"], r["organ"]) for r in combined] == [(c, o) for c in "ab" for o in ORGAN_NAMES.values()]
    assert StatisticsTable([{"image": "/data/a.nii.gz"}], tmp_path, tmp_path / "one.csv").write() is None
    with pytest.raises(FileNotFoundError, match="c_statistics.json"):
        StatisticsTable(
            [{"image": "/data/a.nii.gz"}, {"image": "/data/c.nii.gz"}], tmp_path, tmp_path / "x.csv"
        ).write()
    assert not (tmp_path / "x.csv").exists()


def test_command_line(case, tmp_path, capsys):
    root, *_ = case
    args = ["--image", str(root / "ct.nii.gz"), "--label", str(root / "label.nii.gz"), "--output_dir", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ct liver:" in out and "ct spleen: 0.00 mL, 0 component(s)" in out
    assert (tmp_path / "ct_statistics.json").is_file() and (tmp_path / "ct_statistics.csv").is_file()
    assert main(args) == 1 and "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--class_names", '{"1": "liver"}']) == 0
    assert list(json.loads((tmp_path / "ct_statistics.json").read_text())["organs"]) == ["liver"]


@pytest.mark.slow
def test_ircad01_reference_matches_the_importers_summary(shared_data, tmp_path, capsys):
    """IRCAD 01 (the DICOM series) with its reference label as the importer writes it: the standalone command's
    volumes and mean HU equal the importer's summary within its rounding (0.01 mL, 0.1 HU)."""
    import tarfile

    from monai_ag.data.import_ct import import_ct

    with tarfile.open(shared_data / "ircad01.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    dataset = import_ct([tmp_path / "ircad01"], tmp_path / "dataset", verbose=False)
    summary = json.loads(Path(dataset).read_text())["import_summary"]["ircad01"]["organs"]
    series = tmp_path / "ircad01" / "PATIENT_DICOM"
    label = tmp_path / "dataset" / "labelsTr" / "ircad01.nii.gz"
    stats_dir = tmp_path / "stats"
    assert main(["--quiet", "--image", str(series), "--label", str(label), "--output_dir", str(stats_dir)]) == 0
    stats = json.loads((tmp_path / "stats" / "PATIENT_DICOM_statistics.json").read_text())["organs"]
    for name, ref in summary.items():
        if not ref["volume_ml"]:
            assert stats[name]["voxels"] == 0
            continue
        assert abs(stats[name]["volume_ml"] - ref["volume_ml"]) <= 0.005 + 1e-9, name
        assert abs(stats[name]["hu_mean"] - ref["mean_hu"]) <= 0.05 + 1e-9, name
    assert 1480 < stats["liver"]["volume_ml"] < 1500 and 105 < stats["liver"]["hu_mean"] < 115  # ≈ 1.49 L at ≈ 111 HU
