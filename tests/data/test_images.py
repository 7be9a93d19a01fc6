"""What an image path is (NIfTI file, DICOM series folder) and reading it as the bundle does."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from monai_ag.data.images import is_dicom_series_dir, is_nifti_file, read_image

AFFINE = np.diag([2.0, 3.0, 4.0, 1.0])


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(data, affine).to_filename(str(path))
    return path


def _image(shape=(6, 5, 4)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.int16).reshape(shape)


def _write_fake_dicom(path: Path) -> Path:
    """A file with only the DICOM Part 10 preamble and magic: enough for detection, not for reading."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 16)
    return path


def test_is_dicom_series_dir(tmp_path):
    series = tmp_path / "series"
    _write_fake_dicom(series / "IM0001")  # no .dcm suffix: detected by the magic
    assert is_dicom_series_dir(series)
    assert not is_dicom_series_dir(series / "IM0001")  # a file, not a directory
    assert not is_dicom_series_dir(tmp_path / "nowhere")
    assert not is_dicom_series_dir(tmp_path)  # DICOM files only in a subdirectory
    other = tmp_path / "other"
    _write_nifti(other / "a.nii.gz", _image())
    (other / "notes.dcm").write_text("a .dcm suffix without the DICM magic" * 10)
    (other / "short").write_bytes(b"DICM")
    assert not is_dicom_series_dir(other)
    media = tmp_path / "media"
    _write_fake_dicom(media / "DICOMDIR")  # an index file alone is not a series
    _write_fake_dicom(media / ".hidden")
    assert not is_dicom_series_dir(media)


def test_is_nifti_file(tmp_path):
    f = _write_nifti(tmp_path / "A.NII.GZ", _image())
    assert is_nifti_file(f) and not is_nifti_file(tmp_path / "missing.nii") and not is_nifti_file(tmp_path)


def test_read_image_gives_the_shape_affine_and_voxels_monai_loads(tmp_path):
    data = _image()
    path = _write_nifti(tmp_path / "ct.nii.gz", data)
    shape, affine, voxels = read_image(str(path))
    assert shape == (6, 5, 4)
    np.testing.assert_allclose(affine, AFFINE)
    np.testing.assert_array_equal(voxels, data)
    assert read_image(str(path), with_data=False)[2] is None
