"""The headers of a DICOM image series, completed so that a derived object (a DICOM SEG) can reference them.

Real series are not always complete: the 3D-IRCADb series have no Frame of Reference UID, the TotalSegmentator
DICOM example keeps its SOP Class and SOP Instance UIDs only in the file meta (Media Storage SOP Class/Instance
UID) and has empty Study and Series Instance UIDs. :func:`read_series` takes what exists (the file meta
included), generates what DICOM requires and the series lacks (one value per series), and records both, so
the caller can say so in one warning (:meth:`SourceSeries.completion_note`). A series whose images cannot
be referenced at all (no SOP Instance UID or SOP Class UID anywhere) is refused.

The images are sorted along the slice normal and the series' voxel grid is derived from their positions:
``affine`` maps ``(column, row, slice)`` indices to RAS world coordinates (mm), the convention of MONAI's
ITK reader; DICOM's own patient coordinates are LPS. Only the headers are read (no pixel data, so a JPEG 2000
series needs no decoder).

Needs ``pydicom`` (``pip install monai-ag[dicom]``).

Example::

    from monai_ag.io.dicom_series import read_series

    series = read_series("ircad01/PATIENT_DICOM")
    series.shape, series.affine  # (512, 512, 129), RAS
    series.completion_note()  # "... lacks FrameOfReferenceUID ..."
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.utils import optional_import

__all__ = ["GENERATED_ATTRIBUTES", "SourceSeries", "read_series", "require_pydicom"]

#: UIDs a derived object needs from its source, which may be generated (one per series) when it lacks them
GENERATED_ATTRIBUTES = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
#: the image's own identity: from the dataset, else its file meta; without it an image cannot be referenced
_IDENTITY = {"SOPInstanceUID": "MediaStorageSOPInstanceUID", "SOPClassUID": "MediaStorageSOPClassUID"}
#: type 2 attributes that derived objects copy: present (maybe empty) in every completed header
_TYPE2 = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
#: how far (as a fraction of the slice step) a slice may lie from an evenly spaced stack
_SLICE_TOLERANCE = 0.05


def require_pydicom() -> Any:
    """The ``pydicom`` module, or an ``ImportError`` naming the extra that installs it."""
    pydicom, has = optional_import("pydicom")
    if not has:
        raise ImportError("reading DICOM headers needs pydicom: pip install monai-ag[dicom]")
    return pydicom


@dataclass
class SourceSeries:
    """
    A single-frame DICOM image series: its completed headers in slice order and its voxel grid.

    Attributes:
        folder: the series folder.
        datasets: the completed headers (no pixel data), sorted along the slice normal.
        files: the file of each header, in the same order.
        shape: the grid's shape, ``(columns, rows, slices)``.
        affine: ``(column, row, slice)`` index -> RAS world (mm).
        generated: attributes the series lacked and that were generated (one value for the whole series).
        from_file_meta: attributes taken from the file meta because the data set lacked them.
    """

    folder: str
    datasets: list
    files: list[str]
    shape: tuple[int, int, int]
    affine: np.ndarray
    generated: list[str] = field(default_factory=list)
    from_file_meta: list[str] = field(default_factory=list)

    def completion_note(self) -> str | None:
        """One sentence on what was taken from the file meta or generated, ``None`` when nothing was."""
        parts = []
        if self.from_file_meta:
            parts.append(f"{', '.join(self.from_file_meta)} taken from the file meta (absent or empty in the data set)")
        if self.generated:
            parts.append(
                f"{', '.join(self.generated)} absent and generated (new UIDs: a PACS will not link the result to "
                "the source by them)"
            )
        return f"DICOM series {self.folder}: " + "; ".join(parts) + "." if parts else None


def _value(ds: Any, name: str) -> str:
    value = ds.get(name, None)
    return "" if value is None else str(value).strip()


def _read_headers(folder: Path) -> list[tuple[str, Any]]:
    pydicom = require_pydicom()
    headers = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.name.upper() == "DICOMDIR":
            continue
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError):
            continue  # not a DICOM file (a README), as ITK's series reader ignores it
        if "Rows" in ds:  # an image (not a structured report or a presentation state)
            headers.append((str(path), ds))
    return headers


def _complete_identity(folder: Path, headers: list[tuple[str, Any]]) -> list[str]:
    """Fill SOP Instance/Class UID from the file meta where the data set lacks them; refuse where both lack them."""
    taken: list[str] = []
    for path, ds in headers:
        for name, meta_name in _IDENTITY.items():
            if _value(ds, name):
                continue
            meta_value = _value(getattr(ds, "file_meta", {}), meta_name)
            if not meta_value:
                raise ValueError(
                    f"DICOM series {folder}: image {Path(path).name} has no {name}, neither in its data set nor as "
                    f"{meta_name} in its file meta: its images cannot be referenced, so no DICOM SEG can be made "
                    "for it. Write the NIfTI label only (--output_format nifti)."
                )
            setattr(ds, name, meta_value)
            if name not in taken:
                taken.append(name)
    return taken


def _complete_series_uids(folder: Path, headers: list[tuple[str, Any]]) -> list[str]:
    """One value per series for each of :data:`GENERATED_ATTRIBUTES`: the images' own, else a new one."""
    pydicom = require_pydicom()
    generated = []
    for name in GENERATED_ATTRIBUTES:
        values = sorted({_value(ds, name) for _, ds in headers} - {""})
        if len(values) > 1:
            raise ValueError(
                f"DICOM series {folder} holds images with {len(values)} different {name}s ({', '.join(values[:3])}"
                f"{', ...' if len(values) > 3 else ''}): put each series in its own folder."
            )
        value = values[0] if values else pydicom.uid.generate_uid()
        if not values:
            generated.append(name)
        for _, ds in headers:
            setattr(ds, name, value)
    for _, ds in headers:
        for name in _TYPE2:
            if name not in ds:
                setattr(ds, name, "")
    return generated


def _geometry(
    folder: Path, headers: list[tuple[str, Any]]
) -> tuple[list[tuple[str, Any]], tuple[int, int, int], np.ndarray]:
    """The headers sorted along the slice normal, the grid shape and its RAS affine; refuses what is no 3D grid."""
    for path, ds in headers:
        missing = [n for n in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing") if n not in ds]
        if missing:
            raise ValueError(
                f"DICOM series {folder}: image {Path(path).name} lacks {', '.join(missing)}: it has no place on a "
                "3D grid."
            )
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ValueError(
                f"DICOM series {folder}: image {Path(path).name} is a multi-frame image; only series of single-frame "
                "images are supported."
            )
    first = headers[0][1]
    iop = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]  # LPS directions of increasing column and row index
    normal = np.cross(row_dir, col_dir)
    rows, cols = int(first.Rows), int(first.Columns)
    spacing = np.asarray(first.PixelSpacing, dtype=np.float64)  # (between rows, between columns)
    for path, ds in headers:
        same = (
            (int(ds.Rows), int(ds.Columns)) == (rows, cols)
            and np.allclose(np.asarray(ds.ImageOrientationPatient, dtype=np.float64), iop, atol=1e-4)
            and np.allclose(np.asarray(ds.PixelSpacing, dtype=np.float64), spacing, atol=1e-4)
        )
        if not same:
            raise ValueError(
                f"DICOM series {folder}: image {Path(path).name} differs from {Path(headers[0][0]).name} in size, "
                "orientation or pixel spacing: the images do not form one 3D grid."
            )
    positions = np.asarray([np.asarray(ds.ImagePositionPatient, dtype=np.float64) for _, ds in headers])
    order = np.argsort(positions @ normal, kind="stable")
    headers = [headers[i] for i in order]
    positions = positions[order]
    n = len(headers)
    if n > 1:
        step = (positions[-1] - positions[0]) / (n - 1)
        gap = float(np.linalg.norm(step))
        if gap == 0.0:
            raise ValueError(f"DICOM series {folder}: all {n} images lie at one position: they do not form a 3D grid.")
        off = np.linalg.norm(positions - positions[0] - np.outer(np.arange(n), step), axis=1).max()
        if off > _SLICE_TOLERANCE * gap:
            raise ValueError(
                f"DICOM series {folder}: the images are not evenly spaced along the slice normal (a slice lies "
                f"{off:.3f} mm from an even stack of {gap:.3f} mm steps: missing slices, or several stacks): the "
                "label's grid cannot be mapped onto its frames."
            )
    else:
        step = normal * float(first.get("SliceThickness", 1.0) or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]
    lps[:3, 1] = col_dir * spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS
    return headers, (cols, rows, n), affine


def read_series(folder: str | os.PathLike) -> SourceSeries:
    """
    Read and complete the headers of the single DICOM image series in ``folder`` (see the module).

    Args:
        folder: a folder holding one series of single-frame images (other files are ignored).

    Raises:
        ValueError: for a folder without images, with several series, images that cannot be referenced (no
            SOP Instance/Class UID in the data set or the file meta), or images that do not form one evenly
            spaced 3D grid.
        ImportError: without pydicom.

    Example::

        series = read_series("/data/ct_dicom_series")
        [ds.SOPInstanceUID for ds in series.datasets]  # in slice order
    """
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"{folder} is not a DICOM series folder.")
    headers = _read_headers(path)
    if not headers:
        raise ValueError(f"{folder} holds no DICOM images.")
    from_file_meta = _complete_identity(path, headers)
    generated = _complete_series_uids(path, headers)
    headers, shape, affine = _geometry(path, headers)
    return SourceSeries(
        folder=str(folder),
        datasets=[ds for _, ds in headers],
        files=[p for p, _ in headers],
        shape=shape,
        affine=affine,
        generated=generated,
        from_file_meta=from_file_meta,
    )
