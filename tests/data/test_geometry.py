from __future__ import annotations

import numpy as np
import pytest

from monai_ag.data.geometry import (
    AFFINE_ATOL,
    IMAGE_SUFFIXES,
    NIFTI_SUFFIXES,
    same_grid,
    squeeze_trailing,
    strip_image_suffix,
)


@pytest.mark.parametrize(
    "shape,ndim,expected",
    [
        ((64, 64, 32), 3, (64, 64, 32)),
        ((64, 64, 32, 1), 3, (64, 64, 32)),
        ((64, 64, 32, 1, 1), 3, (64, 64, 32)),
        ((64, 64, 32, 2), 3, (64, 64, 32, 2)),  # a real 4D image stays 4D, for the caller to reject
        ((64, 1, 1), 3, (64, 1, 1)),  # singletons within the first ndim are kept
        ((8, 8, 1), 2, (8, 8)),
    ],
)
def test_squeeze_trailing(shape, ndim, expected):
    assert squeeze_trailing(shape, ndim) == expected


def test_same_grid_tolerance_and_shapes():
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    assert same_grid((4, 5, 6), affine, (4, 5, 6), affine + AFFINE_ATOL / 2)
    assert not same_grid((4, 5, 6), affine, (4, 5, 6), affine + AFFINE_ATOL * 2)
    assert not same_grid((4, 5, 6), affine, (4, 6, 5), affine)
    assert not same_grid((4, 5, 6), affine, (4, 5, 6), affine[:3, :3])  # no broadcasting between affine sizes
    flipped = affine.copy()
    flipped[0, 0] = -2.0
    assert not same_grid((4, 5, 6), affine, (4, 5, 6), flipped)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("phantom_010.nii.gz", "phantom_010"),
        ("CASE.NII.GZ", "CASE"),
        ("case.nii", "case"),
        ("case.mha", "case"),
        ("case.nrrd", "case"),
        ("1.2.840", "1.2.840"),  # a DICOM series directory name keeps its dots
        (".nii.gz", ".nii.gz"),  # nothing but the suffix: unchanged
    ],
)
def test_strip_image_suffix(name, expected):
    assert strip_image_suffix(name) == expected


def test_suffix_tables():
    assert set(NIFTI_SUFFIXES) <= set(IMAGE_SUFFIXES)
    assert IMAGE_SUFFIXES.index(".nii.gz") < IMAGE_SUFFIXES.index(".nii")  # longest first
