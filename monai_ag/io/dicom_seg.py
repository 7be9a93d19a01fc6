"""A label map as a DICOM Segmentation (SEG) of the CT series it was computed from, written with highdicom.

One segment per organ present in the label, in label order, numbered 1, 2, ... (an organ absent from the label
is left out and logged), each with its class name as Segment Label and its SNOMED CT code
(:data:`SEGMENT_CODES`, category "Anatomical Structure" 123037004), segment algorithm type AUTOMATIC and the
algorithm identification: name, version (monai-ag's) and the checksum (sha256) of the weights file, and the
display colour given (the bundle gives its figures' :data:`monai_ag.visualize.figures.CLASS_COLOURS`). The SEG
references every source image (Referenced Series Sequence, and per frame the source SOP Instance UID of the
image it lies on) and copies the patient, study and frame-of-reference attributes of the series, so viewers
(3D Slicer, OHIF) overlay it on the series it came from. Series that lack UIDs are completed first
(:func:`monai_ag.io.dicom_series.read_series`), with one warning naming what was taken from the file meta or
generated. Segmentation type BINARY, frames with no segment pixel omitted (highdicom's default).

The label is mapped onto the series' frames by physical position (:func:`monai_ag.io.lattice.on_grid`:
exactly, axes permuted or flipped as needed, never resampled), so a label on the grid MONAI's ITK reader gives
the series (what the bundle writes) and a label stored with flipped axes give the same SEG.

Needs ``highdicom`` (``pip install monai-ag[dicom]``, which brings pydicom 3); MONAI Label 0.8.5's server needs
pydicom 2, so the bundle's MONAI Label path never imports it.

Example::

    from monai_ag.io.dicom_seg import write_dicom_seg

    write_dicom_seg("out/PATIENT_DICOM_seg.nii.gz", "ircad01/PATIENT_DICOM", "out/PATIENT_DICOM_seg.dcm",
                    model_sha256=sha256_file("models/model.pt"))  # monai_ag.bundle.recipe.sha256_file
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from monai.transforms import LoadImage
from monai.utils import optional_import

import monai_ag
from monai_ag.data.classes import CLASS_NAMES
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

from .dicom_series import SourceSeries, read_series
from .lattice import on_grid

__all__ = [
    "ALGORITHM_NAME",
    "ANATOMICAL_STRUCTURE",
    "SEGMENT_CODES",
    "check_segment_codes",
    "dicom_segmentation",
    "require_highdicom",
    "write_dicom_seg",
]

logger = logging.getLogger(__name__)

#: SNOMED CT code (value, meaning) of each class name the SEG can describe: a new class needs a code here
SEGMENT_CODES: dict[str, tuple[str, str]] = {
    "liver": ("10200004", "Liver"),
    "spleen": ("78961009", "Spleen"),
    "kidney": ("64033007", "Kidney"),
    "pancreas": ("15776009", "Pancreas"),
}
#: the segmented property category of every segment (SNOMED CT)
ANATOMICAL_STRUCTURE: tuple[str, str] = ("123037004", "Anatomical Structure")
#: the Algorithm Name of every segment
ALGORITHM_NAME = "monai-ag GridAttentionUNet"
_SERIES_NUMBER = 99
_SERIES_DESCRIPTION = "Organ segmentation (monai-ag)"


def require_highdicom() -> Any:
    """The ``highdicom`` module, or an ``ImportError`` naming the extra that installs it."""
    hd, has = optional_import("highdicom")
    if not has:
        raise ImportError("writing a DICOM SEG needs highdicom: pip install monai-ag[dicom]")
    return hd


def _organs(class_names: Mapping[int | str, str]) -> dict[int, str]:
    return {int(k): str(v) for k, v in class_names.items() if int(k) != 0}


def check_segment_codes(class_names: Mapping[int | str, str]) -> dict[int, str]:
    """
    The organs of ``class_names`` (label value -> name, background dropped), each with a code in
    :data:`SEGMENT_CODES`; a clear error naming those without one.

    Example::

        check_segment_codes({"0": "background", "1": "liver"})  # {1: "liver"}
    """
    organs = _organs(class_names)
    unknown = [name for name in organs.values() if name.lower() not in SEGMENT_CODES]
    if unknown:
        raise ValueError(
            f"no SNOMED CT code for class(es) {unknown}: a DICOM SEG names each segment by its code; known classes "
            f"are {sorted(SEGMENT_CODES)} (monai_ag.io.dicom_seg.SEGMENT_CODES)."
        )
    return organs


def _label_values(label: Any) -> np.ndarray:
    """``label`` as a non-negative integer array (unsigned integers as they are; float maps, which some writers
    store, rounded when they hold integers); a clear error otherwise."""
    arr = np.asarray(label)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        rounded = np.rint(arr)
        if not np.array_equal(rounded, arr):
            raise ValueError("the label map holds non-integer values: a DICOM SEG needs class indices.")
        arr = rounded
    if arr.size and arr.min() < 0:
        raise ValueError("the label map holds negative values: a DICOM SEG needs class indices.")
    return arr.astype(np.int64)


def _frames(label: np.ndarray, affine: Any, series: SourceSeries) -> np.ndarray:
    """The label on the series' frames: ``(slices, rows, columns)``, frame ``k`` on ``series.datasets[k]``."""
    grid = on_grid(label, affine, series.shape, series.affine, what=f"the label of {series.folder}")
    return np.ascontiguousarray(np.transpose(grid, (2, 1, 0)))  # (column, row, slice) -> (slice, row, column)


def dicom_segmentation(
    label: np.ndarray,
    affine: Any,
    series: SourceSeries,
    class_names: Mapping[int | str, str] = CLASS_NAMES,
    model_sha256: str | None = None,
    algorithm_version: str = monai_ag.__version__,
    colours: Mapping[str, Sequence[float]] | None = None,
) -> tuple[Any | None, list[str]]:
    """
    The DICOM SEG (a ``highdicom.seg.Segmentation``) of ``label`` on ``series``; see the module.

    Args:
        label: a 3D label map (values are the keys of ``class_names``).
        affine: its voxel-to-world affine, RAS (as MONAI and NIfTI files have it).
        series: the source series (:func:`monai_ag.io.dicom_series.read_series`).
        class_names: label value -> class name; every organ needs a code in :data:`SEGMENT_CODES`.
        model_sha256: the checksum of the weights, recorded as an algorithm parameter.
        algorithm_version: the Algorithm Version (monai-ag's version by default).
        colours: class name -> RGB(A) in [0, 1], each segment's recommended display colour (none by default).

    Returns:
        ``(segmentation, absent)``: the SEG (``None`` when no organ is present: a SEG needs a segment) and the
        names of the organs left out because the label has none of their voxels.

    Example::

        seg, absent = dicom_segmentation(pred[0].numpy(), pred.affine, read_series(folder))
    """
    hd = require_highdicom()
    from pydicom.sr.codedict import codes

    organs = check_segment_codes(class_names)
    frames = _frames(_label_values(label), affine, series)
    counts = np.bincount(frames.ravel(), minlength=max(organs) + 1)
    present = [v for v in sorted(organs) if counts[v] > 0]
    absent = [organs[v] for v in sorted(organs) if counts[v] == 0]
    if not present:
        return None, absent
    lut = np.zeros(max(len(counts), max(organs) + 1), np.uint8)
    for number, value in enumerate(present, start=1):
        lut[value] = number
    parameters = {"model_sha256": model_sha256} if model_sha256 else None
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME,
        family=codes.cid7162.ArtificialIntelligence,
        version=str(algorithm_version),
        source="monai-ag",
        parameters=parameters,
    )
    category = hd.sr.CodedConcept(ANATOMICAL_STRUCTURE[0], "SCT", ANATOMICAL_STRUCTURE[1])
    descriptions = []
    for number, value in enumerate(present, start=1):
        code, meaning = SEGMENT_CODES[organs[value].lower()]
        rgba = (colours or {}).get(organs[value].lower())
        colour = hd.color.CIELabColor.from_rgb(*(round(255 * c) for c in rgba[:3])) if rgba else None
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=organs[value],
                segmented_property_category=category,
                segmented_property_type=hd.sr.CodedConcept(code, "SCT", meaning),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                display_color=colour,
            )
        )
    with _quiet("highdicom"):
        seg = _segmentation(hd, series, lut[frames], descriptions)
    return seg, absent


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Logger ``name`` at WARNING for the block: highdicom logs nine INFO lines per SEG about the attributes
    it copies, which would drown a bundle run's log."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def _segmentation(hd: Any, series: SourceSeries, pixel_array: np.ndarray, descriptions: list) -> Any:
    return hd.seg.Segmentation(
        source_images=series.datasets,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="monai-ag",
        manufacturer_model_name=ALGORITHM_NAME,
        software_versions=monai_ag.__version__,
        device_serial_number="0",
        content_label="ORGANS",
        content_description=_SERIES_DESCRIPTION,
        series_description=_SERIES_DESCRIPTION,
    )


def write_dicom_seg(
    label: str | os.PathLike | Any,
    series_dir: str | os.PathLike,
    output: str | os.PathLike,
    class_names: Mapping[int | str, str] = CLASS_NAMES,
    affine: Any = None,
    model_sha256: str | None = None,
    colours: Mapping[str, Sequence[float]] | None = None,
    overwrite: bool = False,
) -> str | None:
    """
    Write the DICOM SEG of ``label`` on the DICOM series in ``series_dir`` to ``output`` (atomically; an
    existing file is kept unless ``overwrite``). Logs the organs left out, and one warning when the series
    lacked UIDs (see :mod:`monai_ag.io.dicom_series`).

    Args:
        label: a label map file (NIfTI, or anything MONAI's ``LoadImage`` reads) or a (channel-first or not)
            array/``MetaTensor`` of one; its affine is ``affine``, else the ``MetaTensor``'s or the file's.
        series_dir: the source DICOM series folder.
        output: the ``.dcm`` file to write.
        class_names: label value -> class name.
        affine: the label's affine (RAS), for an array without one.
        model_sha256: the sha256 of the weights that made the label, recorded in the algorithm identification
            (``monai_ag.bundle.recipe.sha256_file("models/model.pt")``).
        colours: class name -> RGB(A) in [0, 1], the segments' display colours (e.g.
            :data:`monai_ag.visualize.figures.CLASS_COLOURS`, as the bundle gives).
        overwrite: replace an existing ``output``.

    Returns:
        the path written, or ``None`` when the label holds no organ (nothing is written; a warning says so).

    Example::

        write_dicom_seg("out/case_seg.nii.gz", "/data/case_dicom", "out/case_seg.dcm",
                        model_sha256=sha256_file("models/model.pt"))
    """
    refuse_overwrite(output, overwrite, option="overwrite=True (bundle: --overwrite true)")
    if isinstance(label, (str, os.PathLike)):
        label = LoadImage(image_only=True)(str(label))
    if affine is None:
        affine = getattr(label, "affine", None)
    if affine is None:
        raise ValueError("write_dicom_seg: the label has no affine; pass affine= (its voxel-to-world matrix, RAS).")
    array = np.asarray(label.detach().cpu() if hasattr(label, "detach") else label)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    series = read_series(series_dir)
    note = series.completion_note()
    if note:
        logger.warning("%s", note)
    seg, absent = dicom_segmentation(array, affine, series, class_names, model_sha256=model_sha256, colours=colours)
    if absent:
        logger.info("DICOM SEG %s: no %s in the label, left out of the segments", output, ", ".join(absent))
    if seg is None:
        logger.warning("DICOM SEG %s not written: the label holds no organ (a SEG needs at least one segment).", output)
        return None
    with atomic_write(output) as tmp:
        seg.save_as(str(tmp))
    logger.info(
        "DICOM SEG written to %s (%d segments, %d frames)", output, len(seg.SegmentSequence), int(seg.NumberOfFrames)
    )
    return str(output)
