"""Tests of the phantom's anatomy simulator (``monai_ag.data.phantom.anatomy``).

Small volumes (80 x 64 x 48 voxels at 4 mm: the same 320 x 256 x 192 mm field of view as the
default 160 x 128 x 96 at 2 mm) keep the whole module fast.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from monai_ag.data.classes import CLASS_NAMES
from monai_ag.data.phantom import generate_phantom_case

SHAPE = (80, 64, 48)
SPACING = (4.0, 4.0, 4.0)
VOXEL_ML = float(np.prod(SPACING)) / 1000.0
SEEDS = (0, 7)
SMALL = {"shape": SHAPE, "spacing": SPACING}


@pytest.fixture(scope="module")
def cases() -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {seed: generate_phantom_case(seed, SHAPE, SPACING) for seed in SEEDS}


def _world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    centre = np.array(ndimage.center_of_mass(mask))
    return affine[:3, :3] @ centre + affine[:3, 3]


# ----------------------------------------------------------------------------------------------
# single cases
# ----------------------------------------------------------------------------------------------
def test_outputs_types_and_affine(cases):
    image, label, affine = cases[SEEDS[0]]
    assert image.shape == SHAPE and label.shape == SHAPE
    assert image.dtype == np.float32 and label.dtype == np.uint8
    assert affine.shape == (4, 4)
    # RAS+, diag(spacing), field of view centred on the world origin
    np.testing.assert_allclose(np.diag(affine)[:3], SPACING)
    np.testing.assert_allclose(affine[:3, :3], np.diag(SPACING))
    far_corner = affine @ np.array([SHAPE[0] - 1, SHAPE[1] - 1, SHAPE[2] - 1, 1.0])
    np.testing.assert_allclose(far_corner[:3], -affine[:3, 3])
    assert nib.aff2axcodes(affine) == ("R", "A", "S")
    # integer HU in the CT range, so int16 storage is lossless
    assert np.array_equal(image, np.rint(image))
    assert image.min() >= -1024 and image.max() <= 3071


def test_deterministic_and_seed_dependent(cases):
    image, label, affine = cases[SEEDS[0]]
    image2, label2, affine2 = generate_phantom_case(SEEDS[0], SHAPE, SPACING)
    assert np.array_equal(image, image2)
    assert np.array_equal(label, label2)
    assert np.array_equal(affine, affine2)
    other_image, other_label, _ = cases[SEEDS[1]]
    assert not np.array_equal(image, other_image)
    assert (label != other_label).mean() > 0.005  # different shapes, not just different noise


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_present_and_not_fragmented(cases, seed):
    _, label, _ = cases[seed]
    assert set(np.unique(label).tolist()) == set(CLASS_NAMES) == {0, 1, 2, 3, 4}
    for value, expected_components in ((1, 1), (2, 1), (3, 2), (4, 1)):  # two kidneys share label 3
        _, n = ndimage.label(label == value)
        assert n == expected_components, (CLASS_NAMES[value], n)


@pytest.mark.parametrize("seed", SEEDS)
def test_organ_volumes_are_realistic(cases, seed):
    _, label, _ = cases[seed]
    volumes = {name: float((label == value).sum()) * VOXEL_ML for value, name in CLASS_NAMES.items()}
    assert 1000.0 <= volumes["liver"] <= 1900.0, volumes
    assert 80.0 <= volumes["spleen"] <= 300.0, volumes
    assert 30.0 <= volumes["pancreas"] <= 90.0, volumes
    kidneys, n = ndimage.label(label == 3)
    assert n == 2
    each = np.bincount(kidneys.ravel())[1:] * VOXEL_ML
    assert np.all((each >= 100.0) & (each <= 200.0)), each
    # the pancreas is thin: its volume spread over its length gives a ~15-25 mm thick organ
    z_slices = np.count_nonzero((label == 4).any(axis=(0, 1)))
    assert z_slices * SPACING[2] < 80.0


@pytest.mark.parametrize("seed", SEEDS)
def test_intensities(cases, seed):
    image, label, _ = cases[seed]
    means = {}
    for value, name in CLASS_NAMES.items():
        if value == 0:
            continue
        core = ndimage.binary_erosion(label == value)  # away from partial-volume boundaries
        means[name] = float(image[core].mean())
    assert 60.0 <= means["liver"] <= 110.0, means
    assert 100.0 <= means["spleen"] <= 120.0, means
    assert 150.0 <= means["kidney"] <= 200.0, means
    assert 40.0 <= means["pancreas"] <= 100.0, means
    assert means["liver"] < means["spleen"] < means["kidney"]
    # noise: a homogeneous organ interior is not flat
    liver_core = ndimage.binary_erosion(label == 1, iterations=2)
    assert 8.0 <= float(image[liver_core].std()) <= 35.0
    # air outside the body (corners of the field of view), bone and bowel gas inside
    corners = image[[0, 0, -1, -1]][:, [0, -1, 0, -1]]
    assert float(corners.mean()) < -950.0
    assert np.all(label[[0, 0, -1, -1]][:, [0, -1, 0, -1]] == 0)
    assert float(image.max()) > 400.0
    body = ndimage.binary_fill_holes(image > -500.0)
    assert np.count_nonzero(body & (image < -800.0)) > 20  # gas pockets in the bowel / stomach
    # not separable by thresholding: plenty of background voxels share the pancreas' intensities
    lo, hi = np.percentile(image[label == 4], [25, 75])
    background_like = np.count_nonzero((label == 0) & (image >= lo) & (image <= hi))
    assert background_like > 2 * np.count_nonzero(label == 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_anatomical_layout(cases, seed):
    _, label, affine = cases[seed]
    liver = _world_centroid(label == 1, affine)
    spleen = _world_centroid(label == 2, affine)
    pancreas = _world_centroid(label == 4, affine)
    kidneys, _ = ndimage.label(label == 3)
    k1, k2 = (_world_centroid(kidneys == i, affine) for i in (1, 2))
    right_kidney, left_kidney = (k1, k2) if k1[0] > k2[0] else (k2, k1)
    assert liver[0] > 0.0 > spleen[0]  # RAS: +x is the patient's right
    assert right_kidney[0] > 30.0 and left_kidney[0] < -30.0  # lateral to the spine
    assert spleen[1] < 0.0 and right_kidney[1] < liver[1]  # posterior organs
    assert liver[2] > right_kidney[2]  # liver above the right kidney
    assert pancreas[1] > left_kidney[1]  # pancreas anterior to the left kidney
    assert abs(pancreas[0]) < 50.0  # runs across the midline region towards the spleen


def test_same_anatomy_at_different_spacing():
    # geometry is defined in mm: a finer grid gives the same organs (up to discretisation)
    _, coarse, _ = generate_phantom_case(3, SHAPE, SPACING)
    _, fine, _ = generate_phantom_case(3, (107, 86, 64), (3.0, 3.0, 3.0))
    for value in (1, 2, 3, 4):
        v_coarse = (coarse == value).sum() * 64.0
        v_fine = (fine == value).sum() * 27.0
        assert abs(v_coarse - v_fine) / v_fine < 0.15, (value, v_coarse, v_fine)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shape": (64, 64)}, r"shape must be a sequence of 3"),
        ({"shape": (64, 64, 48, 2)}, r"shape must be a sequence of 3"),
        ({"shape": (40, 32, 24)}, r"too small to hold the phantom anatomy"),
        ({"shape": (80, 64, 8)}, r"shape must contain 3 integers >= 16"),
        ({"shape": (80.5, 64, 48)}, r"shape must contain 3 integers"),
        ({"spacing": (4.0, 0.0, 4.0)}, r"spacing must contain 3 positive"),
        ({"spacing": (4.0, -4.0, 4.0)}, r"spacing must contain 3 positive"),
        ({"spacing": (4.0, 4.0)}, r"spacing must be a sequence of 3"),
        ({"spacing": (10.0, 10.0, 10.0)}, r"spacing must be at most 8.0 mm"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, r"seed must be an integer"),
    ],
)
def test_generate_case_bad_input(kwargs, match):
    args = {"seed": 0, "shape": SHAPE, "spacing": SPACING, **kwargs}
    with pytest.raises(ValueError, match=match):
        generate_phantom_case(**args)
