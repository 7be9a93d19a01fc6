"""The checks of inference inputs (monai_ag.data.checks): each bad image gives an error or warning naming it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_ag.data import InvalidImageError, check_inference_image, check_inference_inputs

AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def _ct(shape=(12, 10, 8)) -> np.ndarray:
    """A tiny volume in HU: air at -1000 around soft tissue at 40."""
    img = np.full(shape, 40.0, np.float32)
    img[0] = -1000.0
    return img


def _save(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, AFFINE), str(path))
    return path


def test_a_ct_passes_silently(tmp_path, caplog):
    path = _save(tmp_path / "ct.nii.gz", _ct())
    assert check_inference_image(path) == ([], [])
    single = _save(tmp_path / "ct1.nii.gz", _ct()[..., None])  # 3D with a trailing singleton
    assert check_inference_image(single) == ([], [])
    ints = _save(tmp_path / "ct_int16.nii.gz", _ct().astype(np.int16))
    with caplog.at_level(logging.WARNING, logger="monai_ag.data.checks"):
        assert check_inference_inputs([{"image": str(path)}, {"image": str(ints)}]) == [
            {"image": str(path)},
            {"image": str(ints)},
        ]
    assert not caplog.records


@pytest.mark.parametrize(
    "name, data, pattern",
    [
        (
            "four_d.nii.gz",
            np.stack([_ct()] * 3, -1),
            r"four_d.nii.gz: 4D image with 3 volumes \(shape \(12, 10, 8, 3\)\)",
        ),
        ("two_d.nii.gz", _ct()[..., 0], r"two_d.nii.gz: 2D image \(shape \(12, 10\)\); expected one 3D volume"),
        (
            "all_nan.nii.gz",
            np.full((12, 10, 8), np.nan, np.float32),
            r"all_nan.nii.gz: no finite value: all 960 voxels are NaN",
        ),
        (
            "some_nan.nii.gz",
            np.where(np.arange(960).reshape(12, 10, 8) < 96, np.nan, _ct()).astype(np.float32),
            r"some_nan.nii.gz: 96 of 960 voxels \(10 %\) are NaN or infinite; replace them",
        ),
        (
            "inf.nii.gz",
            np.where(np.arange(960).reshape(12, 10, 8) == 5, np.inf, _ct()).astype(np.float32),
            r"inf.nii.gz: 1 of 960 voxels \(0.1 %\) are NaN or infinite",
        ),
        # the reader drops the axes of an empty array: it must still be called empty, not "1D"
        (
            "empty.nii.gz",
            np.zeros((0, 10, 8), np.float32),
            r"empty.nii.gz: empty image \(shape \(0,\)\): it holds no voxels",
        ),
    ],
)
def test_bad_images_are_errors_naming_file_and_problem(tmp_path, caplog, name, data, pattern):
    path = _save(tmp_path / name, data)
    errors, warnings = check_inference_image(path)
    assert len(errors) == 1 and not warnings
    assert errors[0].startswith(str(path))
    assert re.search(pattern, errors[0]), errors[0]
    with caplog.at_level(logging.ERROR, logger="monai_ag.data.checks"), pytest.raises(InvalidImageError) as info:
        check_inference_inputs([{"image": str(path)}])
    assert str(info.value) == errors[0]  # the exception's message is the whole message
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == errors  # one ERROR line


def test_unreadable_file_is_an_error(tmp_path):
    path = tmp_path / "not_an_image.nii.gz"
    path.write_text("hello")
    (error,), warnings = check_inference_image(path)
    assert not warnings
    assert error.startswith(f"{path}: cannot read the image: ImageFileError:"), error
    missing = tmp_path / "missing.nii.gz"
    (error,), _ = check_inference_image(missing)
    assert error.startswith(f"{missing}: cannot read the image:"), error


@pytest.mark.parametrize(
    "data, pattern",
    [
        ((_ct() + 1000) / 1040, r"intensities 0 to 1, none at or below -500: a CT in Hounsfield units holds air"),
        (_ct() - 2000, r"intensities -3000 to -1960, none at or above 0: a CT in Hounsfield units holds soft tissue"),
        (_ct() * 100, r"intensities -100000 to 4000, outside the 16-bit range CT is stored in"),
    ],
)
def test_implausible_intensities_are_warnings(tmp_path, caplog, data, pattern):
    path = _save(tmp_path / "odd.nii.gz", data.astype(np.float32))
    errors, (warning,) = check_inference_image(path)
    assert not errors
    assert warning.startswith(f"{path}: ") and re.search(pattern, warning), warning
    with caplog.at_level(logging.WARNING, logger="monai_ag.data.checks"):
        assert check_inference_inputs([{"image": str(path)}]) == [{"image": str(path)}]  # the run goes on
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [warning]


def test_thresholds_are_arguments(tmp_path):
    path = _save(tmp_path / "ct.nii.gz", _ct())
    assert check_inference_image(path, air_hu=-1001.0)[1]  # no voxel at or below -1001
    assert check_inference_image(path, tissue_hu=41.0)[1]  # no voxel at or above 41


def test_every_bad_image_of_a_list_is_reported(tmp_path, caplog):
    good = _save(tmp_path / "good.nii.gz", _ct())
    four_d = _save(tmp_path / "four_d.nii.gz", np.stack([_ct()] * 2, -1))
    nan = _save(tmp_path / "nan.nii.gz", np.full((4, 4, 4), np.nan, np.float32))
    items = [{"image": str(good)}, {"image": str(four_d)}, {"image": str(nan)}, {"label": "x"}]
    with caplog.at_level(logging.ERROR, logger="monai_ag.data.checks"), pytest.raises(InvalidImageError) as info:
        check_inference_inputs(items)
    lines = str(info.value).splitlines()
    assert lines[0] == "3 input images cannot be segmented:"
    assert lines[1].startswith(f"{four_d}: 4D image with 2 volumes")
    assert lines[2].startswith(f"{nan}: no finite value")
    assert lines[3].startswith('item #3 of the datalist has no "image"')
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 3


def test_dicom_series(shared_data):
    series = shared_data / "totalseg" / "example_ct_dicom"
    assert check_inference_image(series) == ([], [])
