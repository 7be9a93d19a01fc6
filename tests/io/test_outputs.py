from __future__ import annotations

import os

import numpy as np
import pytest
from dicom_testing import write_ct_series
from monai.transforms import Compose
from needs import needs_module

from monai_ag.io.outputs import check_output_request, check_outputs, output_formats, output_path
from monai_ag.transforms import SafeSaveImaged


@pytest.mark.parametrize(
    "value, expected",
    [
        ("nifti", ("nifti",)),
        ("dicom_seg", ("dicom_seg",)),
        ("nifti+dicom_seg", ("nifti", "dicom_seg")),
        (" NIfTI + dicom_seg ", ("nifti", "dicom_seg")),
        (["dicom_seg", "nifti"], ("dicom_seg", "nifti")),
    ],
)
def test_output_formats(value, expected):
    assert output_formats(value) == expected


@pytest.mark.parametrize("value", ["", "nrrd", "nifti+rtstruct", "nifti,dicom_seg"])
def test_output_formats_refuses_others(value):
    with pytest.raises(ValueError, match="is not one of nifti, dicom_seg or several joined by '\\+'"):
        output_formats(value)


def test_output_path_names_as_save_image_does(tmp_path):
    assert output_path("/data/ircad01/PATIENT_DICOM/", tmp_path, "seg", ".dcm") == tmp_path / "PATIENT_DICOM_seg.dcm"
    assert output_path("/data/ct_01.nii.gz", tmp_path, "statistics", ".json") == tmp_path / "ct_01_statistics.json"


def test_dicom_seg_needs_dicom_series_inputs(tmp_path):
    needs_module("highdicom", "DICOM", "highdicom is not installed (pip install -e '.[test]')")
    series = write_ct_series(np.zeros((8, 6, 4), np.int16), (1.0, 1.0, 2.0), tmp_path / "series")
    nifti = tmp_path / "ct.nii.gz"
    nifti.write_bytes(b"")
    assert check_output_request([{"image": str(nifti)}], ("nifti",)) == ("nifti",)
    assert check_output_request([{"image": str(series)}], ("nifti", "dicom_seg")) == ("nifti", "dicom_seg")
    with pytest.raises(ValueError, match=f"asks for a DICOM SEG.*not DICOM series: {nifti}"):
        check_output_request([{"image": str(series)}, {"image": str(nifti)}], ("nifti", "dicom_seg"))


class _Writer:
    def __init__(self, folder):
        self.folder = folder

    def output_files(self, image=None):
        return [os.path.join(self.folder, f"{os.path.basename(image or 'run')}_extra.json")]


def test_check_outputs_lists_every_writer_and_refuses_existing(tmp_path):
    out = tmp_path / "out"
    saver = SafeSaveImaged("pred", output_dir=str(out), output_postfix="seg", separate_folder=False)
    datalist = [{"image": "/data/a.nii.gz"}, {"image": "/data/b_dicom"}]
    files = check_outputs(datalist, Compose([saver, _Writer(out)]), run_writers=[None, _Writer(tmp_path)])
    assert files == [
        str(out / "a_seg.nii.gz"),
        str(out / "a.nii.gz_extra.json"),
        str(out / "b_dicom_seg.nii.gz"),
        str(out / "b_dicom_extra.json"),
        str(tmp_path / "run_extra.json"),
    ]
    assert not out.exists()  # nothing created
    out.mkdir()
    (out / "b_dicom_seg.nii.gz").write_bytes(b"")
    (out / "a_seg.nii.gz").write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"a_seg.nii.gz already exists.*--overwrite true \(1 more of this run's"):
        check_outputs(datalist, [saver])
    assert check_outputs(datalist, [saver], overwrite="true")


def test_check_outputs_refuses_an_unwritable_folder(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    saver = SafeSaveImaged("pred", output_dir=str(out), output_postfix="seg", separate_folder=False)
    with pytest.raises(PermissionError, match="output folder .*file/out cannot be created: .*file is not a folder"):
        check_outputs([{"image": "/data/a.nii.gz"}], [saver])
