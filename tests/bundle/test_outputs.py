"""Results people use directly, from the bundle: DICOM SEG (--output_format), organ statistics (--statistics),
the QC picture (--preview), organ volumes in the result MONAI Label returns, and the run's refusals."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bundle_testing import raises, recorded_model, torchrun, workflow  # tests/bundle is on the path
from dicom_testing import assert_seg_of, write_ct_series  # tests/ is on the path
from monai.bundle import ConfigParser
from monai.transforms import LoadImage, SaveImaged
from needs import needs_module

needs_module("highdicom", "DICOM", "highdicom is not installed (pip install -e '.[test]')")

from monai_ag.data import CLASS_NAMES, ORGAN_NAMES  # noqa: E402
from monai_ag.metrics.organ_statistics import CSV_COLUMNS  # noqa: E402

SPACING = (8.0, 7.0, 9.0)
ALL_OUTPUTS = {"output_format": "nifti+dicom_seg", "statistics": "true", "preview": "true"}


@pytest.fixture
def dicom_inputs(tmp_path, tiny_phantom) -> Path:
    """A folder of two CT DICOM series (the phantom's test cases, anisotropic spacing)."""
    folder = tmp_path / "dicom"
    for i, image in enumerate(sorted((tiny_phantom / "imagesTs").glob("*.nii.gz"))):
        volume = np.asarray(nib.load(str(image)).dataobj).astype(np.int16)
        write_ct_series(volume, SPACING, folder / f"case_{'ab'[i]}", origin=(-150.0, -120.0, 30.0 + 5 * i))
    return folder


def infer(root: Path, input_path: Path, out: Path, **overrides):
    wf = workflow(
        root, ["inference.json"], "infer", input_path=str(input_path), output_dir=str(out), device="cpu", **overrides
    )
    wf.run()
    wf.finalize()
    return wf


def _numpy_statistics(image: np.ndarray, label: np.ndarray, voxel_ml: float, value: int) -> dict:
    mask = label == value
    hu = image[mask].astype(np.float64)
    return {
        "volume_ml": mask.sum() * voxel_ml,
        "hu_mean": hu.mean(),
        "hu_median": np.median(hu),
        "hu_std": hu.std(),
        "hu_p05": np.percentile(hu, 5),
        "hu_p95": np.percentile(hu, 95),
    }


def test_all_outputs_of_dicom_series(bundle_copy, dicom_inputs, tmp_path):
    """nifti+dicom_seg, statistics and preview on two synthetic series: per case the SEG holds exactly the
    written NIfTI label's voxels (read back by dcmqi and highdicom) and references its series; the statistics
    equal numpy's on the written label and the input; one combined statistics CSV for the run."""
    recorded_model(bundle_copy)
    out = tmp_path / "out"
    wf = infer(bundle_copy, dicom_inputs, out, **ALL_OUTPUTS)
    cases = ["case_a", "case_b"]
    expected = {
        f"{c}_{suffix}"
        for c in cases
        for suffix in ("seg.nii.gz", "seg.dcm", "statistics.json", "statistics.csv", "preview.png")
    } | {"statistics.csv"}
    assert {p.name for p in out.iterdir()} == expected

    for case in cases:
        series = dicom_inputs / case
        written = nib.load(str(out / f"{case}_seg.nii.gz"))
        label = np.asarray(written.dataobj)
        assert len(np.unique(label)) > 2, "an untrained model's label with fewer organs shows less"
        assert_seg_of(out / f"{case}_seg.dcm", label, written.affine, series, CLASS_NAMES, tmp_path / case)

        image = LoadImage(image_only=True)(str(series))
        np.testing.assert_allclose(np.asarray(image.affine), written.affine, atol=1e-4)
        voxel_ml = abs(np.linalg.det(written.affine[:3, :3])) / 1000
        stats = json.loads((out / f"{case}_statistics.json").read_text())
        assert stats["case"] == case and stats["image"] == str(series)
        for value, name in ORGAN_NAMES.items():
            got = stats["organs"][name]
            if not (label == value).any():
                assert got["voxels"] == 0 and got["hu_mean"] is None
                continue
            ref = _numpy_statistics(np.asarray(image), label, voxel_ml, value)
            assert abs(got["volume_ml"] - ref["volume_ml"]) <= voxel_ml
            for key in ("hu_mean", "hu_median", "hu_std", "hu_p05", "hu_p95"):
                assert abs(got[key] - ref[key]) < 1e-3, (case, name, key)
    rows = list(csv.DictReader((out / "statistics.csv").open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["case"], r["organ"]) for r in rows] == [(c, o) for c in cases for o in ORGAN_NAMES.values()]
    per_case = [r for c in cases for r in csv.DictReader((out / f"{c}_statistics.csv").open())]
    assert rows == per_case
    # the organ volumes MONAI Label returns with the label (data["result"]) are the statistics' volumes
    result = wf.evaluator.state.output[0]["result"]["organ_volumes_ml"]
    last = json.loads((out / "case_b_statistics.json").read_text())["organs"]
    assert result == {name: round(last[name]["volume_ml"], 2) for name in ORGAN_NAMES.values()}


def test_dicom_seg_alone_writes_no_nifti(bundle_copy, dicom_inputs, tmp_path):
    recorded_model(bundle_copy)
    (dicom_inputs / "case_b").rename(tmp_path / "case_b")  # one case: no combined table either
    infer(bundle_copy, dicom_inputs, tmp_path / "out", output_format="dicom_seg", statistics="true")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "case_a_seg.dcm",
        "case_a_statistics.csv",
        "case_a_statistics.json",
    ]


def test_default_run_writes_the_label_only_and_volumes_for_monai_label(bundle_copy, tiny_phantom, tmp_path):
    """Off by default, and no writer but SaveImaged instances (what MONAI Label strips) in the post-processing that
    MONAI Label builds from inference.json; the organ volumes step is on."""
    recorded_model(bundle_copy)
    parser = ConfigParser()
    parser.read_config(str(bundle_copy / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle_copy), "device": "cpu"})
    post = parser.get_parsed_content("postprocessing")
    names = [type(t).__name__ for t in post.transforms]
    assert "OrganVolumesd" in names
    writers = [n for t, n in zip(post.transforms, names) if hasattr(t, "output_files") or isinstance(t, SaveImaged)]
    assert writers == ["SafeSaveImaged"]
    infer(bundle_copy, tiny_phantom / "imagesTs", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["phantom_003_seg.nii.gz", "phantom_004_seg.nii.gz"]


def test_refusals_stop_before_the_network_runs(bundle_copy, tiny_phantom, dicom_inputs, tmp_path):
    """NIfTI input with a DICOM SEG asked for, an unknown format (both while the workflow initialises), an
    unwritable output folder, an existing output (the run's first step): each a clear error before the network
    runs, nothing written."""
    recorded_model(bundle_copy)
    out = tmp_path / "out"
    raises(
        ValueError,
        "asks for a DICOM SEG.*not DICOM series: .*phantom_003.nii.gz",
        workflow,
        bundle_copy,
        ["inference.json"],
        "infer",
        input_path=str(tiny_phantom / "imagesTs"),
        output_dir=str(out),
        output_format="nifti+dicom_seg",
    )
    raises(
        ValueError,
        "output_format 'dicom-seg' is not one of",
        workflow,
        bundle_copy,
        ["inference.json"],
        "infer",
        input_path=str(dicom_inputs),
        output_dir=str(out),
        output_format="dicom-seg",
    )
    assert not out.exists()
    (tmp_path / "file").write_text("")
    raises(
        PermissionError,
        "output folder .*file/out cannot be created",
        infer,
        bundle_copy,
        dicom_inputs,
        tmp_path / "file" / "out",
    )
    out.mkdir()
    (out / "case_b_preview.png").write_bytes(b"earlier")
    raises(
        FileExistsError,
        "case_b_preview.png already exists.*--overwrite true",
        infer,
        bundle_copy,
        dicom_inputs,
        out,
        **ALL_OUTPUTS,
    )
    assert [p.name for p in out.iterdir()] == ["case_b_preview.png"]  # case_a, segmented first, was not either
    infer(bundle_copy, dicom_inputs, out, overwrite="true", **ALL_OUTPUTS)
    assert (out / "case_b_preview.png").read_bytes() != b"earlier" and len(list(out.iterdir())) == 11


def test_evaluate_writes_the_combined_statistics(bundle_copy, tiny_phantom):
    recorded_model(bundle_copy)
    wf = workflow(
        bundle_copy,
        ["inference.json", "evaluate.json"],
        "infer",
        dataset_dir=str(tiny_phantom),
        device="cpu",
        statistics="true",
    )
    wf.run()
    wf.finalize()
    rows = list(csv.DictReader((bundle_copy / "eval" / "statistics.csv").open()))
    assert sorted({r["case"] for r in rows}) == ["phantom_003", "phantom_004"] and len(rows) == 8
    assert (bundle_copy / "eval" / "predictions" / "phantom_003_statistics.json").is_file()


def test_evaluate_without_nifti_labels_is_refused_before_the_network(bundle_copy, dicom_inputs, tmp_path):
    """evaluate.json scores the NIfTI labels it writes: a DICOM SEG alone stops at once, not after segmenting."""
    recorded_model(bundle_copy)
    raises(
        ValueError,
        r"output_format 'dicom_seg' lacks nifti, which evaluate.json \(it scores the NIfTI labels\) needs: use "
        "nifti[+]dicom_seg",
        workflow,
        bundle_copy,
        ["inference.json", "evaluate.json"],
        "infer",
        input_path=str(dicom_inputs),
        output_dir=str(tmp_path / "eval"),
        output_format="dicom_seg",
    )
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow
def test_multi_gpu_evaluate_writes_the_combined_statistics_on_rank_0(bundle_copy, tiny_phantom):
    """Under torchrun (gloo, 2 ranks) each rank writes its case's statistics and rank 0 alone the combined CSV (a
    second writer would find it existing and fail the launch)."""
    recorded_model(bundle_copy)
    configs = ["inference.json", "evaluate.json", "multi_gpu_evaluate.json"]
    run = torchrun(bundle_copy, configs, dataset_dir=str(tiny_phantom), statistics="true")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    rows = list(csv.DictReader((bundle_copy / "eval" / "statistics.csv").open()))
    assert sorted({r["case"] for r in rows}) == ["phantom_003", "phantom_004"] and len(rows) == 8


def _real_series_run(bundle_copy: Path, series: Path, tmp_path: Path, capsys) -> list[str]:
    """Our warnings of a nifti+dicom_seg run on ``series`` whose SEG holds the written label's voxels (the bundle's
    logging.conf logs to stdout)."""
    recorded_model(bundle_copy)
    out = tmp_path / "out"
    capsys.readouterr()
    infer(bundle_copy, series, out, output_format="nifti+dicom_seg")
    log = capsys.readouterr().out
    written = nib.load(str(out / f"{series.name}_seg.nii.gz"))
    label = np.asarray(written.dataobj)
    assert len(np.unique(label)) > 1, "an untrained model's constant label shows nothing"
    assert_seg_of(out / f"{series.name}_seg.dcm", label, written.affine, series, CLASS_NAMES, tmp_path)
    return [line for line in log.splitlines() if " - monai_ag." in line and " - WARNING - " in line]


@pytest.mark.slow
def test_ircad01_series(bundle_copy, shared_data, tmp_path, capsys):
    """IRCAD 01 (no Frame of Reference UID): the SEG of the bundle's label, with one warning naming the UID it made."""
    with tarfile.open(shared_data / "ircad01.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")  # CC BY-NC-ND: read in tmp only
    warnings = _real_series_run(bundle_copy, tmp_path / "ircad01" / "PATIENT_DICOM", tmp_path, capsys)
    (warning,) = [w for w in warnings if "DICOM series" in w]
    assert "FrameOfReferenceUID absent and generated" in warning


@pytest.mark.slow
def test_totalsegmentator_series(bundle_copy, shared_data, tmp_path, capsys):
    """The TotalSegmentator example (JPEG 2000, SOP UIDs only in the file meta, no study or series UID)."""
    warnings = _real_series_run(bundle_copy, shared_data / "totalseg" / "example_ct_dicom", tmp_path, capsys)
    (warning,) = [w for w in warnings if "DICOM series" in w]
    assert "SOPInstanceUID, SOPClassUID taken from the file meta" in warning
    assert "StudyInstanceUID, SeriesInstanceUID absent and generated" in warning
