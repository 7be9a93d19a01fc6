"""Checks of the images given to inference, before any of them is segmented.

Training inputs are checked by :py:func:`monai_ag.data.datalist.check_datalist` (readable, 3D, image and
label geometry, label values). Inference inputs have no label, but a wrong image fails just as obscurely
deep inside the pipeline: a 4D NIfTI reaches the network as a multi-channel image ("expects 1 input
channel(s), got 2"), an all-NaN volume is segmented silently and written, and an image that is not CT
in Hounsfield units gives a meaningless segmentation. :py:func:`check_inference_inputs` reads each image
once before the run and reports every problem with the file named.

Policy:

- **errors** (the run stops): the image cannot be read; it is not 3D (a 4D NIfTI with more than one
  volume, a 2D image); it has no voxels; any voxel is NaN or infinite (a NaN inside a sliding window
  spreads to the whole window's logits, so even a few corrupt the segmentation around them: replace
  them, e.g. with -1024 HU, air).
- **warnings** (the run goes on): the intensities do not look like CT in Hounsfield units: no voxel
  at or below ``air_hu`` (-500: every abdominal CT holds air, about -1000 HU, in the bowel or around
  the body), no voxel at or above ``tissue_hu`` (0: soft tissue is 20-60 HU), or values outside the
  16-bit range CT is stored in. Raw stored values without the rescale slope/intercept, normalized
  images and MR typically trip this.

Each error is logged as one ``ERROR`` line naming the file and the problem (easy to find in a bundle
run's output, where MONAI's config parser wraps the exception in ``Failed to evaluate ...``
tracebacks), then raised as an :py:class:`InvalidImageError` whose message is the same text.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

import nibabel as nib
import numpy as np

from .geometry import NIFTI_SUFFIXES, squeeze_trailing
from .images import read_image

__all__ = ["InvalidImageError", "check_inference_image", "check_inference_inputs", "errors_logged"]

logger = logging.getLogger(__name__)

#: the range of the signed 16-bit integers CT volumes are stored in.
_CT_STORAGE_RANGE = (-32768.0, 32767.0)


class InvalidImageError(ValueError):
    """An input image that cannot be segmented; the message names the file and the problem."""


@contextmanager
def errors_logged(log: logging.Logger = logger) -> Iterator[None]:
    """
    Log a ``ValueError`` or ``OSError`` raised in the block as one ``ERROR`` line (its message) before
    it propagates, so a bundle run shows the problem as a log line as well as deep in a traceback.

    Example::

        with errors_logged():
            items = inference_datalist(input_path)
    """
    try:
        yield
    except (ValueError, OSError) as e:
        log.error("%s", e)
        raise


def _read(path: str) -> np.ndarray:
    """The voxels of a NIfTI file (nibabel, scaling applied) or a DICOM series/other image (MONAI's ``LoadImage``)."""
    if path.lower().endswith(NIFTI_SUFFIXES) and os.path.isfile(path):
        return np.asanyarray(nib.load(path).dataobj)
    return read_image(path, with_data=True)[2]  # type: ignore[return-value]


def _shape_problem(shape: tuple[int, ...]) -> str | None:
    """Why an image of ``shape`` is not one 3D volume (``None`` when it is)."""
    if len(squeeze_trailing(shape)) == 3:
        return None
    if len(shape) == 4:
        return (
            f"4D image with {shape[3]} volumes (shape {shape}); the bundle segments one 3D CT volume: "
            "save the volume to segment as its own file"
        )
    return f"{len(shape)}D image (shape {shape}); expected one 3D volume (X, Y, Z), optionally with a trailing 1"


def check_inference_image(
    path: str | os.PathLike, air_hu: float = -500.0, tissue_hu: float = 0.0
) -> tuple[list[str], list[str]]:
    """
    Check one image to segment: readable, 3D (or 3D with a trailing singleton), all values finite,
    intensities plausible for CT in Hounsfield units (see the module docstring for the policy).

    Args:
        path: a NIfTI file or a DICOM series directory.
        air_hu: a CT in HU has some voxel at or below this value (air); otherwise a warning.
        tissue_hu: a CT in HU has some voxel at or above this value (soft tissue); otherwise a warning.

    Returns:
        ``(errors, warnings)``: messages, each starting with ``path``.

    Example::

        errors, warnings = check_inference_image("ct.nii.gz")
    """
    path = os.fspath(path)
    try:
        data = _read(path)
    except Exception as e:  # any reader failure is reported with the file and the reader's own message
        return [f"{path}: cannot read the image: {type(e).__name__}: {e}"], []
    shape = tuple(int(s) for s in data.shape)
    if data.size == 0:  # before the shape: a reader may drop the axes of an empty array
        return [f"{path}: empty image (shape {shape}): it holds no voxels."], []
    problem = _shape_problem(shape)
    if problem is not None:
        return [f"{path}: {problem}."], []
    if not (np.issubdtype(data.dtype, np.integer) or data.dtype == bool):
        finite = np.isfinite(data)
        n_bad = int(data.size - np.count_nonzero(finite))
        if n_bad == data.size:
            return [f"{path}: no finite value: all {data.size} voxels are NaN or infinite."], []
        if n_bad:
            return [
                f"{path}: {n_bad} of {data.size} voxels ({100.0 * n_bad / data.size:.2g} %) are NaN or infinite; "
                "replace them (e.g. with -1024, air) before segmenting."
            ], []
    lo, hi = float(data.min()), float(data.max())
    found = f"intensities {lo:g} to {hi:g}"
    warnings = []
    if lo > air_hu:
        warnings.append(
            f"{path}: {found}, none at or below {air_hu:g}: a CT in Hounsfield units holds air (about -1000); "
            "is it CT in HU (not raw stored values without rescale slope/intercept, normalized, or MR)?"
        )
    elif hi < tissue_hu:
        warnings.append(
            f"{path}: {found}, none at or above {tissue_hu:g}: a CT in Hounsfield units holds soft tissue "
            "(20 to 60); is it CT in HU?"
        )
    elif lo < _CT_STORAGE_RANGE[0] or hi > _CT_STORAGE_RANGE[1]:
        warnings.append(
            f"{path}: {found}, outside the 16-bit range CT is stored in ({_CT_STORAGE_RANGE[0]:g} to "
            f"{_CT_STORAGE_RANGE[1]:g}); is it CT in HU?"
        )
    return [], warnings


def check_inference_inputs(
    items: Sequence[Mapping[str, Any]], image_key: str = "image", air_hu: float = -500.0, tissue_hu: float = 0.0
) -> list[Mapping[str, Any]]:
    """
    Check every image of an inference datalist with :py:func:`check_inference_image` before the run:
    each warning is logged as a ``WARNING`` line, each error as one ``ERROR`` line, and when any
    image has an error an :py:class:`InvalidImageError` listing them all is raised.

    Args:
        items: the datalist: dicts with an image path under ``image_key``.
        image_key: the key of the image path.
        air_hu: see :py:func:`check_inference_image`.
        tissue_hu: see :py:func:`check_inference_image`.

    Returns:
        ``items``, unchanged (so a config can check and pass the list on in one expression).

    Raises:
        InvalidImageError: when an image cannot be segmented; the message names each file and problem.

    Example::

        items = check_inference_inputs(inference_datalist("ct.nii.gz"))
    """
    errors: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or image_key not in item:
            found, warned = [f'item #{index} of the datalist has no "{image_key}": {item!r}.'], []
        else:
            found, warned = check_inference_image(item[image_key], air_hu=air_hu, tissue_hu=tissue_hu)
        for message in warned:
            logger.warning("%s", message)
        for message in found:
            logger.error("%s", message)
        errors += found
    if errors:
        if len(errors) == 1:
            raise InvalidImageError(errors[0])
        raise InvalidImageError(f"{len(errors)} input images cannot be segmented:\n" + "\n".join(errors))
    return list(items)
