"""Synthetic CT DICOM series for the DICOM SEG tests, and the independent readers they are checked with:
dcmqi's ``segimage2itkimage`` (C++, DCMTK + ITK) and highdicom's SEG reader."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = [
    "REQUIRED_SEG_ATTRIBUTES",
    "assert_seg_of",
    "dcmqi_segments",
    "highdicom_frames",
    "itk_order",
    "write_ct_series",
]

#: attributes of the modules a Segmentation IOD requires (PS3.3 A.51), each module's type 1/2 ones
REQUIRED_SEG_ATTRIBUTES = {
    "Patient": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"),
    "General Study": (
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
    ),
    "General Series": ("Modality", "SeriesInstanceUID", "SeriesNumber"),
    "Segmentation Series": ("Modality", "SeriesNumber"),
    "Frame of Reference": ("FrameOfReferenceUID", "PositionReferenceIndicator"),
    "General Equipment": ("Manufacturer",),
    "Enhanced General Equipment": ("Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions"),
    "General Image": ("InstanceNumber",),
    "Image Pixel": (
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "PixelData",
    ),
    "Segmentation Image": ("ImageType", "ContentLabel", "SegmentationType", "SegmentSequence", "LossyImageCompression"),
    "Multi-frame Functional Groups": (
        "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence",
        "NumberOfFrames",
        "ContentDate",
        "ContentTime",
    ),
    "Multi-frame Dimension": ("DimensionOrganizationSequence", "DimensionIndexSequence"),
    "Common Instance Reference": ("ReferencedSeriesSequence",),
    "SOP Common": ("SOPClassUID", "SOPInstanceUID"),
}


def write_ct_series(
    volume: np.ndarray,
    spacing: Sequence[float],
    folder: Path,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    drop: Sequence[str] = (),
    identity_in_file_meta_only: bool = False,
    reverse_files: bool = False,
) -> Path:
    """
    Write an ``(x, y, z)`` int16 HU volume as a CT series of single-frame images with pydicom: LPS identity
    orientation, image ``k`` at ``origin + (0, 0, k * spacing[2])`` (LPS, mm), rows along y, columns along x.

    Args:
        volume: the HU volume, ``(columns, rows, slices)``.
        spacing: (x, y, z) spacing in mm.
        folder: the series folder (created).
        origin: LPS position of voxel (0, 0, 0).
        drop: attributes to leave out of every image (e.g. ``"FrameOfReferenceUID"``), as incomplete real series do.
        identity_in_file_meta_only: empty SOP Class/Instance UIDs in the data sets (the file meta keeps them), as
            in the TotalSegmentator DICOM example.
        reverse_files: name the files so that their name order is the reverse of the slice order.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    date = datetime.datetime(2024, 1, 1).strftime("%Y%m%d")
    n = volume.shape[2]
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        name = folder / f"slice_{(n - 1 - k) if reverse_files else k:03d}.dcm"
        ds = FileDataset(str(name), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        if identity_in_file_meta_only:
            ds.SOPClassUID, ds.SOPInstanceUID = "", ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientName, ds.PatientID = "CT", "Phantom^Synthetic", "phantom"
        ds.PatientBirthDate, ds.PatientSex, ds.AccessionNumber, ds.StudyID = "", "O", "", "1"
        ds.StudyDate = ds.SeriesDate = date
        ds.StudyTime, ds.ReferringPhysicianName = "120000", ""
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [float(origin[0]), float(origin[1]), float(origin[2] + k * spacing[2])]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows (y), between columns (x)
        ds.SliceThickness = float(spacing[2])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T.astype(np.int16)).tobytes()  # rows = y
        for attribute in drop:
            if attribute in ds:
                delattr(ds, attribute)
        if int(pydicom.__version__.split(".")[0]) >= 3:
            ds.save_as(name, enforce_file_format=True)
        else:  # pydicom 2, which MONAI Label's server needs (pydicom-seg): tests/monailabel write series too
            ds.save_as(name, write_like_original=False)
    return folder


def dcmqi_segments(seg_file: Path, output: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """Read a DICOM SEG with dcmqi's ``segimage2itkimage``: segment label -> (mask, RAS affine, segment attributes)."""
    tool = shutil.which("segimage2itkimage")
    assert tool, "dcmqi's segimage2itkimage is not on PATH (pip install dcmqi)"
    output.mkdir(parents=True)
    command = [tool, "--inputDICOM", str(seg_file), "--outputDirectory", str(output), "--outputType", "nifti"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    meta = json.loads((output / "meta.json").read_text())
    segments = {}
    for (attributes,) in meta["segmentAttributes"]:
        img = nib.load(str(output / f"{attributes['labelID']}.nii.gz"))
        segments[attributes["SegmentLabel"]] = (np.asarray(img.dataobj) != 0, img.affine, attributes)
    return segments


def highdicom_frames(seg_file: Path, source_uids: Sequence[str]) -> dict[str, np.ndarray]:
    """Read a DICOM SEG with highdicom: segment label -> ``(len(source_uids), rows, columns)`` mask, frame ``k`` being
    the one the SEG places on the source image ``source_uids[k]`` (all zero where it has none)."""
    import highdicom as hd

    seg = hd.seg.segread(str(seg_file))
    out = {}
    for item in seg.SegmentSequence:
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=list(source_uids),
            segment_numbers=[int(item.SegmentNumber)],
            assert_missing_frames_are_empty=True,
        )
        out[str(item.SegmentLabel)] = pixels[..., 0].astype(bool)
    return out


def itk_order(folder: Path, affine: np.ndarray) -> list[str]:
    """The SOP Instance UIDs of the series in ``folder`` by slice index of the grid ``affine`` (RAS, as ITK reads the
    series), each placed by its own Image Position (Patient); the file meta's UID where the data set has none."""
    import pydicom

    inverse = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    by_slice = {}
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        lps = np.asarray(ds.ImagePositionPatient, dtype=np.float64)
        k = (inverse @ np.array([-lps[0], -lps[1], lps[2], 1.0]))[2]
        assert abs(k - round(k)) < 1e-3, f"{path.name} lies between slices"
        by_slice[int(round(k))] = str(ds.SOPInstanceUID or ds.file_meta.MediaStorageSOPInstanceUID)
    assert sorted(by_slice) == list(range(len(by_slice)))
    return [by_slice[k] for k in range(len(by_slice))]


def assert_seg_of(
    seg_file: Path, label: np.ndarray, affine: np.ndarray, source: Path, class_names: dict, work: Path
) -> dict:
    """
    The DICOM SEG ``seg_file`` is a valid SEG of the series ``source`` holding, per segment, exactly the voxels of
    ``label`` (on the series' grid ``affine``, RAS) of that class: read back by dcmqi (compared in physical space)
    and by highdicom (frame by source SOP Instance UID); organs absent from the label have no segment; it
    references every source image, and the source's study, series and frame of reference where it has them.
    Returns the segments as dcmqi describes them.
    """
    import pydicom

    ds = pydicom.dcmread(str(seg_file))
    missing = {m: [a for a in attrs if a not in ds] for m, attrs in REQUIRED_SEG_ATTRIBUTES.items()}
    assert not any(missing.values()), {m: a for m, a in missing.items() if a}
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.pixel_array.shape[0] == int(ds.NumberOfFrames)

    uids = itk_order(source, affine)
    (referenced,) = ds.ReferencedSeriesSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == set(uids)
    first = pydicom.dcmread(str(sorted(source.iterdir())[0]), stop_before_pixels=True)
    if first.get("SeriesInstanceUID"):
        assert referenced.SeriesInstanceUID == first.SeriesInstanceUID
    if first.get("FrameOfReferenceUID"):
        assert ds.FrameOfReferenceUID == first.FrameOfReferenceUID
    if first.get("StudyInstanceUID"):
        assert ds.StudyInstanceUID == first.StudyInstanceUID
    for frame in ds.PerFrameFunctionalGroupsSequence:
        (derivation,) = frame.DerivationImageSequence
        (source_image,) = derivation.SourceImageSequence
        assert source_image.ReferencedSOPInstanceUID in uids

    present = {name: int(v) for v, name in class_names.items() if int(v) != 0 and (label == int(v)).any()}
    segments = dcmqi_segments(seg_file, work / "dcmqi")
    assert set(segments) == set(present)
    inverse = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    for name, (mask, mask_affine, attributes) in segments.items():
        index = np.argwhere(mask)
        world = mask_affine[:3, :3] @ index.T + mask_affine[:3, 3:4]
        voxel = inverse[:3, :3] @ world + inverse[:3, 3:4]
        assert np.abs(voxel - np.round(voxel)).max() < 1e-3, f"{name}: dcmqi's voxels are not on the label's grid"
        voxel = np.round(voxel).astype(int)
        assert (label[voxel[0], voxel[1], voxel[2]] == present[name]).all(), f"{name}: dcmqi's voxels are not {name}"
        assert len(index) == int((label == present[name]).sum()), f"{name}: dcmqi has {len(index)} voxels"
    frames = highdicom_frames(seg_file, uids)
    assert set(frames) == set(present)
    for name, value in present.items():
        expected = np.transpose(label == value, (2, 1, 0))  # (column, row, slice) -> (slice, row, column)
        assert np.array_equal(frames[name], expected), f"{name}: highdicom's frames differ from the label"
    return {name: attributes for name, (_, _, attributes) in segments.items()}
