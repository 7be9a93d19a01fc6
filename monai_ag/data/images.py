"""What an image path is and how the checks read it: NIfTI files, DICOM series folders (recognised by their
``DICM`` magic, not their suffix) and MONAI's reader for everything that is not NIfTI."""

from __future__ import annotations

import os

import numpy as np
from monai.config import PathLike

from .geometry import NIFTI_SUFFIXES

__all__ = ["is_dicom_series_dir", "is_nifti_file", "read_image"]

_DICOM_MAGIC = b"DICM"
_DICOM_MAGIC_OFFSET = 128  # a DICOM Part 10 file has a 128-byte preamble, then "DICM"


def is_nifti_file(path: PathLike) -> bool:
    """Whether ``path`` is an existing file whose name ends with ``.nii`` or ``.nii.gz`` (case-insensitive).

    Args:
        path: the path to test.

    Returns:
        ``True`` for an existing NIfTI file.
    """
    return os.path.isfile(path) and os.fspath(path).lower().endswith(NIFTI_SUFFIXES)


def _has_dicom_magic(path: PathLike) -> bool:
    """Whether the file at ``path`` carries the ``DICM`` magic of a DICOM Part 10 file at byte 128."""
    try:
        with open(path, "rb") as f:
            f.seek(_DICOM_MAGIC_OFFSET)
            return f.read(len(_DICOM_MAGIC)) == _DICOM_MAGIC
    except OSError:  # unreadable (permissions, a broken link): not something ITK could read either
        return False


def is_dicom_series_dir(path: PathLike) -> bool:
    """Whether ``path`` is a directory that directly contains DICOM files (a DICOM series directory).

    DICOM files are recognised by the ``DICM`` magic at byte offset 128, not by their suffix: files exported by
    scanners and PACS often have no ``.dcm`` suffix. Hidden files, NIfTI files and ``DICOMDIR`` index files are
    ignored (a ``DICOMDIR`` is an index of a media folder, not an image). Subdirectories are not searched.

    Args:
        path: the directory to test.

    Returns:
        ``True`` when at least one file directly inside ``path`` is a DICOM file.
    """
    if not os.path.isdir(path):
        return False
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return False
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name.upper() == "DICOMDIR" or name.lower().endswith(NIFTI_SUFFIXES):
            continue
        if entry.is_file() and _has_dicom_magic(entry.path):
            return True
    return False


def read_image(path: str, with_data: bool = True) -> tuple[tuple[int, ...], np.ndarray, np.ndarray | None]:
    """
    Read a DICOM series directory (ITK) or another image file with MONAI's ``LoadImage``: its shape as stored
    (a channel dimension, e.g. RGB, kept), its RAS affine and, with ``with_data``, its voxels. ``LoadImage`` is
    used, rather than ITK directly, so that the geometry checked is exactly the one the bundle's ``LoadImaged``
    produces.

    Example::

        shape, affine, voxels = read_image("ct_dicom_series/")
    """
    from monai.transforms import LoadImage  # deferred: importing monai.transforms is slow

    reader = "ITKReader" if os.path.isdir(path) else None
    img, meta = LoadImage(reader=reader, image_only=False)(path)
    # the raw file's shape, with a channel dimension (e.g. RGB) kept so that it fails the 3D check
    shape = tuple(int(s) for s in img.shape)
    affine = np.asarray(meta["affine"], dtype=np.float64)
    data = np.asarray(img) if with_data else None
    return shape, affine, data
