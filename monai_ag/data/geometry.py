"""Voxel-grid facts shared by the datalist checks and the evaluation report, defined once.

- :data:`AFFINE_ATOL`: how far two affines may differ (mm) and still describe the same voxel grid;
- :func:`squeeze_trailing`: NIfTI pads a 3D volume's shape to ``(X, Y, Z, 1)``; drop those singletons;
- :data:`NIFTI_SUFFIXES` / :data:`IMAGE_SUFFIXES` and :func:`strip_image_suffix`: the file name endings of
  the image formats the bundle reads, and a case name without them.

Example::

    from monai_ag.data.geometry import same_grid, squeeze_trailing, strip_image_suffix

    squeeze_trailing((64, 64, 32, 1))  # (64, 64, 32)
    same_grid((4, 4, 4), np.eye(4), (4, 4, 4), np.eye(4) + 1e-5)  # True
    strip_image_suffix("case_01.nii.gz")  # "case_01"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "AFFINE_ATOL",
    "IMAGE_SUFFIXES",
    "NIFTI_SUFFIXES",
    "same_grid",
    "squeeze_trailing",
    "strip_image_suffix",
]

#: Tolerance (mm) for "same voxel grid": float32 round trips through NIfTI/DICOM headers differ by ~1e-5.
AFFINE_ATOL: float = 1e-3
#: File name endings recognised as NIfTI.
NIFTI_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz")
#: Image file name endings (longest first, so ``.nii.gz`` wins over ``.gz``) stripped from case names.
IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd")


def squeeze_trailing(shape: Sequence[int], ndim: int = 3) -> tuple[int, ...]:
    """
    ``shape`` without the trailing singleton dimensions beyond the ``ndim``-th (NIfTI pads ``(X, Y, Z)`` to
    ``(X, Y, Z, 1)``); other dimensions are kept, so a real 4D shape stays 4D for the caller to reject.

    Args:
        shape: an array shape.
        ndim: the number of dimensions never dropped.

    Example::

        squeeze_trailing((64, 64, 32, 1, 1))  # (64, 64, 32)
        squeeze_trailing((64, 64, 32, 2))  # (64, 64, 32, 2)
    """
    out = tuple(int(s) for s in shape)
    while len(out) > ndim and out[-1] == 1:
        out = out[:-1]
    return out


def same_grid(
    shape_a: Sequence[int], affine_a: Any, shape_b: Sequence[int], affine_b: Any, atol: float = AFFINE_ATOL
) -> bool:
    """
    Whether two images share one voxel grid: equal shapes and affines equal within ``atol`` mm.

    Args:
        shape_a: spatial shape of the first image.
        affine_a: its voxel-to-world affine.
        shape_b: spatial shape of the second image.
        affine_b: its affine.
        atol: tolerance in mm (default :data:`AFFINE_ATOL`).

    Example::

        same_grid((4, 4, 4), np.diag([2.0, 2, 2, 1]), (4, 4, 4), np.diag([2.0, 2, 2.0001, 1]))  # True
    """
    a = np.asarray(affine_a, dtype=np.float64)
    b = np.asarray(affine_b, dtype=np.float64)
    same_shape = tuple(int(s) for s in shape_a) == tuple(int(s) for s in shape_b)
    return same_shape and a.shape == b.shape and bool(np.allclose(a, b, atol=atol))


def strip_image_suffix(name: str) -> str:
    """
    ``name`` without its image suffix (one of :data:`IMAGE_SUFFIXES`, any case); unchanged when it has none
    or is nothing but the suffix.

    Example::

        strip_image_suffix("phantom_010.NII.GZ")  # "phantom_010"
        strip_image_suffix("1.2.840")  # "1.2.840"
    """
    lower = name.lower()
    for ext in IMAGE_SUFFIXES:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name
