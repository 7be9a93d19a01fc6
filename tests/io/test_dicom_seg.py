from __future__ import annotations

import hashlib
import logging

import nibabel as nib
import numpy as np
import pytest
from dicom_testing import assert_seg_of, write_ct_series
from needs import needs_module

hd = needs_module("highdicom", "DICOM", "highdicom is not installed (pip install -e '.[test]')")
pydicom = needs_module("pydicom", "DICOM", "pydicom is not installed (pip install -e '.[test]')")

from monai.transforms import LoadImage  # noqa: E402

from monai_ag.data import CLASS_NAMES, generate_phantom_case, get_preset  # noqa: E402
from monai_ag.io.dicom_seg import ALGORITHM_NAME, SEGMENT_CODES, write_dicom_seg  # noqa: E402
from monai_ag.visualize.figures import CLASS_COLOURS  # noqa: E402

SPACING = (8.0, 7.0, 9.0)


def _warnings(caplog) -> list[str]:
    """Our warnings (MONAI 1.6 logs one about nvImageCodec whenever LoadImage is built with pydicom installed)."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("monai_ag")]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """A complete synthetic CT series, its grid as ITK reads it and the phantom label on it (spleen removed)."""
    image, label, _ = generate_phantom_case(3, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0))
    folder = write_ct_series(
        image.astype(np.int16), SPACING, tmp_path_factory.mktemp("series") / "ct", origin=(-150.0, -120.0, 30.0)
    )
    label = np.where(label == 2, 0, label).astype(np.uint8)
    affine = np.asarray(LoadImage(image_only=True)(str(folder)).affine)
    return folder, label, affine


def test_segments_hold_exactly_the_label_voxels(phantom, tmp_path, caplog):
    folder, label, affine = phantom
    sha = hashlib.sha256(b"weights").hexdigest()
    with caplog.at_level(logging.INFO, logger="monai_ag.io.dicom_seg"):
        out = write_dicom_seg(
            label, folder, tmp_path / "ct_seg.dcm", affine=affine, model_sha256=sha, colours=CLASS_COLOURS
        )
    assert "no spleen in the label, left out of the segments" in caplog.text
    assert not _warnings(caplog)  # a complete series: nothing generated
    attributes = assert_seg_of(tmp_path / "ct_seg.dcm", label, affine, folder, CLASS_NAMES, tmp_path)
    for name, attrs in attributes.items():
        assert attrs["SegmentedPropertyTypeCodeSequence"]["CodeValue"] == SEGMENT_CODES[name][0]
        assert attrs["SegmentedPropertyTypeCodeSequence"]["CodingSchemeDesignator"] == "SCT"
        assert attrs["SegmentedPropertyCategoryCodeSequence"]["CodeValue"] == "123037004"
        assert attrs["SegmentAlgorithmType"] == "AUTOMATIC" and attrs["SegmentAlgorithmName"] == ALGORITHM_NAME
    ds = pydicom.dcmread(out)
    (algorithm,) = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence
    assert f"model_sha256={sha}" in algorithm.AlgorithmParameters
    assert algorithm.AlgorithmVersion == __import__("monai_ag").__version__
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["liver", "kidney", "pancreas"]
    for segment in ds.SegmentSequence:  # the colours of the previews
        shown = hd.color.CIELabColor.from_dicom_value(tuple(segment.RecommendedDisplayCIELabValue)).to_rgb()
        np.testing.assert_allclose(shown, np.array(CLASS_COLOURS[segment.SegmentLabel][:3]) * 255, atol=2)


def test_a_flipped_label_gives_the_same_segments(phantom, tmp_path):
    """The same voxels stored with y flipped (as the TotalSegmentator DICOM example's label is): placed by
    physical position, the SEG holds the same frames."""
    folder, label, affine = phantom
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, label.shape[1] - 1
    write_dicom_seg(label[:, ::-1, :], folder, tmp_path / "flipped.dcm", affine=affine @ flip)
    assert_seg_of(tmp_path / "flipped.dcm", label, affine, folder, CLASS_NAMES, tmp_path)


def test_incomplete_series_is_completed_with_one_warning(phantom, tmp_path, caplog):
    folder, label, affine = phantom
    image = np.asarray(LoadImage(image_only=True)(str(folder)))
    partial = write_ct_series(
        image.astype(np.int16),
        SPACING,
        tmp_path / "partial",
        origin=(-150.0, -120.0, 30.0),
        drop=("FrameOfReferenceUID", "SeriesInstanceUID"),
        identity_in_file_meta_only=True,
    )
    with caplog.at_level(logging.INFO, logger="monai_ag.io.dicom_seg"):
        write_dicom_seg(label, partial, tmp_path / "partial_seg.dcm", affine=affine)
    (warning,) = _warnings(caplog)
    for name in ("SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert name in warning
    assert_seg_of(tmp_path / "partial_seg.dcm", label, affine, partial, CLASS_NAMES, tmp_path)


def test_no_organ_writes_nothing(phantom, tmp_path, caplog):
    folder, label, affine = phantom
    with caplog.at_level(logging.WARNING):
        assert write_dicom_seg(np.zeros_like(label), folder, tmp_path / "none.dcm", affine=affine) is None
    assert "holds no organ" in caplog.text and not (tmp_path / "none.dcm").exists()


def test_refusals(phantom, tmp_path):
    folder, label, affine = phantom
    with pytest.raises(ValueError, match=r"no SNOMED CT code for class\(es\) \['tumour'\]"):
        write_dicom_seg(label, folder, tmp_path / "a.dcm", {0: "background", 1: "liver", 5: "tumour"}, affine=affine)
    with pytest.raises(ValueError, match="not on the same voxel grid"):
        write_dicom_seg(label, folder, tmp_path / "b.dcm", affine=affine @ np.diag([1.0, 1.0, 0.5, 1.0]))
    (tmp_path / "c.dcm").write_bytes(b"earlier")
    with pytest.raises(FileExistsError, match="already exists"):
        write_dicom_seg(label, folder, tmp_path / "c.dcm", affine=affine)
    assert (tmp_path / "c.dcm").read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.dcm"]  # nothing half-written


@pytest.mark.slow
def test_totalsegmentator_series_with_its_flipped_reference_label(shared_data, tmp_path, caplog):
    """The TotalSegmentator DICOM example (JPEG 2000, UIDs only in the file meta, no study or series UID) with its
    reference label, whose y axis is flipped relative to the series: the SEG holds the label's voxels on the right
    frames, and the organs lie on soft tissue in the source pixels (decoded independently, by pydicom)."""
    series = shared_data / "totalseg" / "example_ct_dicom"
    ref = nib.load(str(shared_data / "totalseg" / "example_seg_dicom.nii.gz"))
    lut = np.zeros(256, np.uint8)
    for source, target in get_preset("totalsegmentator_v2").labels.items():
        lut[source] = target
    label = lut[np.asarray(ref.dataobj).astype(np.int64)]
    with caplog.at_level(logging.WARNING):
        write_dicom_seg(label, series, tmp_path / "ts_seg.dcm", affine=ref.affine)
    (warning,) = _warnings(caplog)
    assert "SOPInstanceUID, SOPClassUID taken from the file meta" in warning
    assert "StudyInstanceUID, SeriesInstanceUID absent and generated" in warning
    itk = LoadImage(image_only=True)(str(series))
    on_series = label[:, ::-1, :]  # the reference's y axis runs the other way
    assert np.allclose(ref.affine @ np.array([[1, 0, 0, 0], [0, -1, 0, 511], [0, 0, 1, 0], [0, 0, 0, 1]]), itk.affine)
    assert_seg_of(tmp_path / "ts_seg.dcm", on_series, np.asarray(itk.affine), series, CLASS_NAMES, tmp_path)
    seg = pydicom.dcmread(str(tmp_path / "ts_seg.dcm"))
    liver = [s.SegmentNumber for s in seg.SegmentSequence if s.SegmentLabel == "liver"][0]
    sources = {pydicom.dcmread(str(p)).file_meta.MediaStorageSOPInstanceUID: p for p in series.iterdir()}
    inside = []
    for frame, pixels in zip(seg.PerFrameFunctionalGroupsSequence, seg.pixel_array):
        if frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber != liver:
            continue
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        ct = pydicom.dcmread(str(sources[uid]))
        hu = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)  # JPEG 2000: pylibjpeg-openjpeg
        inside.append(hu[pixels.astype(bool)])
    hu = np.concatenate(inside)
    assert len(hu) > 1000 and np.mean(hu < -30) < 0.1, f"{np.mean(hu < -30):.0%} of the liver is fat or air"
