from __future__ import annotations

import numpy as np
import pytest
from dicom_testing import write_ct_series
from needs import needs_module

pydicom = needs_module("pydicom", "DICOM", "pydicom is not installed (pip install -e '.[test]')")

from monai.transforms import LoadImage  # noqa: E402

from monai_ag.io.dicom_series import read_series  # noqa: E402

SPACING = (0.8, 0.7, 2.5)
ORIGIN = (-20.0, 10.0, -50.0)


def _volume(shape=(12, 10, 6)) -> np.ndarray:
    return (np.arange(np.prod(shape)).reshape(shape) % 400 - 100).astype(np.int16)


@pytest.mark.parametrize("reverse_files", [False, True])
def test_grid_and_order_are_itks(tmp_path, reverse_files):
    folder = write_ct_series(_volume(), SPACING, tmp_path / "ct", origin=ORIGIN, reverse_files=reverse_files)
    series = read_series(folder)
    itk = LoadImage(image_only=True)(str(folder))
    assert series.shape == tuple(itk.shape)
    np.testing.assert_allclose(series.affine, np.asarray(itk.affine), atol=1e-6)
    # slice k of ITK's volume is the k-th header: its pixels, read back by pydicom
    for k, path in enumerate(series.files):
        np.testing.assert_array_equal(pydicom.dcmread(path).pixel_array.T, np.asarray(itk[..., k]))
    assert series.generated == [] and series.from_file_meta == [] and series.completion_note() is None


def test_missing_uids_are_taken_from_the_file_meta_or_generated_once(tmp_path):
    folder = write_ct_series(
        _volume(),
        SPACING,
        tmp_path / "ct",
        drop=("FrameOfReferenceUID", "StudyInstanceUID"),
        identity_in_file_meta_only=True,
    )
    series = read_series(folder)
    assert series.generated == ["StudyInstanceUID", "FrameOfReferenceUID"]
    assert series.from_file_meta == ["SOPInstanceUID", "SOPClassUID"]
    note = series.completion_note()
    for name in (*series.generated, *series.from_file_meta):
        assert name in note
    assert len({ds.FrameOfReferenceUID for ds in series.datasets}) == 1
    assert len({ds.StudyInstanceUID for ds in series.datasets}) == 1
    for path, ds in zip(series.files, series.datasets):
        assert ds.SOPInstanceUID == pydicom.dcmread(path).file_meta.MediaStorageSOPInstanceUID


def test_images_that_cannot_be_referenced_are_refused(tmp_path):
    folder = write_ct_series(_volume(), SPACING, tmp_path / "ct", identity_in_file_meta_only=True)
    victim = sorted(folder.iterdir())[2]
    ds = pydicom.dcmread(victim)
    ds.file_meta.MediaStorageSOPInstanceUID = ""
    ds.save_as(victim)
    with pytest.raises(ValueError, match=f"image {victim.name} has no SOPInstanceUID.*cannot be referenced"):
        read_series(folder)


def test_two_series_in_one_folder_are_refused(tmp_path):
    folder = write_ct_series(_volume(), SPACING, tmp_path / "ct")
    other = write_ct_series(_volume(), SPACING, tmp_path / "other")
    (other / "slice_000.dcm").rename(folder / "other_000.dcm")
    with pytest.raises(ValueError, match="2 different StudyInstanceUIDs .*: put each series in its own folder"):
        read_series(folder)


def test_a_missing_slice_is_refused(tmp_path):
    folder = write_ct_series(_volume(), SPACING, tmp_path / "ct")
    (folder / "slice_002.dcm").unlink()
    with pytest.raises(ValueError, match="not evenly spaced"):
        read_series(folder)


def test_no_images(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("not DICOM")
    with pytest.raises(ValueError, match="holds no DICOM images"):
        read_series(tmp_path / "empty")
