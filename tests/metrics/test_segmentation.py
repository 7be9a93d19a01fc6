"""Tests of ``monai_ag.metrics.segmentation``: per-case metrics on arrays with anisotropic (1, 2, 3) mm voxels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_ag.metrics.segmentation import (
    as_label_array,
    case_metrics,
    metric_names,
    quality_metric_names,
    voxel_geometry,
)

SPACING = (1.0, 2.0, 3.0)
AFFINE = np.diag([*SPACING, 1.0])
VOXEL_ML = 6.0 / 1000.0  # 1 x 2 x 3 mm^3
CUBE_ML = 64 * VOXEL_ML  # a 4x4x4 cube: 0.384 mL


def cube(arr: np.ndarray, start: tuple[int, int, int], value: int, size: int = 4) -> np.ndarray:
    x, y, z = start
    arr[x : x + size, y : y + size, z : z + size] = value
    return arr


def empty(shape: tuple[int, int, int] = (12, 12, 12)) -> np.ndarray:
    return np.zeros(shape, dtype=np.uint8)


def test_metric_names():
    assert metric_names() == ("dice", "hd95_mm", "msd_mm", "precision", "recall", "pred_volume_ml", "ref_volume_ml")
    assert metric_names(99)[1] == "hd99_mm"
    assert quality_metric_names(95) == metric_names(95)[:5]  # volumes are never averaged over organs


def test_precision_recall_volumes_and_missed_organ():
    ref = cube(cube(empty(), (1, 1, 1), 1), (6, 6, 6), 2)
    pred = empty()
    pred[1:5, 1:5, 1:3] = 1  # the lower half of the liver cube; spleen not predicted at all
    m = case_metrics(pred, ref, AFFINE, [1, 2, 3])
    liver, spleen, kidney = m[1], m[2], m[3]
    assert liver["precision"] == 1.0 and liver["recall"] == 0.5
    assert liver["dice"] == pytest.approx(2 * 32 / (32 + 64))
    assert liver["pred_volume_ml"] == pytest.approx(32 * VOXEL_ML) and liver["ref_volume_ml"] == pytest.approx(CUBE_ML)
    assert liver["hd95_mm"] == pytest.approx(6.0)  # top face of the reference is 2 slices (6 mm) away
    # present in the reference, absent from the prediction
    assert spleen["dice"] == 0.0 and spleen["recall"] == 0.0 and spleen["pred_volume_ml"] == 0.0
    assert all(math.isnan(spleen[k]) for k in ("precision", "hd95_mm", "msd_mm"))
    assert spleen["ref_volume_ml"] == pytest.approx(CUBE_ML)
    assert all(math.isnan(v) for v in kidney.values())
    assert not any(math.isinf(v) for c in m.values() for v in c.values())


def test_non_default_percentile_column():
    ref = cube(empty(), (3, 3, 3), 1)
    m = case_metrics(np.roll(ref, 1, axis=2), ref, AFFINE, [1], hd_percentile=100)
    assert m[1]["hd100_mm"] == pytest.approx(3.0)
    assert "hd95_mm" not in m[1]


def test_precision_recall_equal_the_voxel_counts():
    """MONAI's confusion-matrix precision/recall equal TP/(TP+FP) and TP/(TP+FN) counted by hand."""
    rng = np.random.default_rng(0)
    ref = (rng.random((10, 11, 12)) < 0.3).astype(np.uint8)
    pred = (rng.random((10, 11, 12)) < 0.4).astype(np.uint8)
    tp, fp, fn = np.sum(pred & ref), np.sum(pred & ~ref.astype(bool)), np.sum(~pred.astype(bool) & ref)
    m = case_metrics(pred, ref, AFFINE, [1])[1]
    assert m["precision"] == pytest.approx(tp / (tp + fp), rel=1e-6)
    assert m["recall"] == pytest.approx(tp / (tp + fn), rel=1e-6)
    assert m["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-6)


def test_as_label_array_squeezes_and_rounds(caplog):
    arr = as_label_array(np.ones((4, 5, 6, 1), np.float32))
    assert arr.shape == (4, 5, 6) and arr.dtype == np.int32
    with caplog.at_level("WARNING"):
        assert as_label_array(np.full((2, 2, 2), 0.6)).max() == 1
    assert "non-integer values" in caplog.text
    with pytest.raises(
        ValueError, match=r"prediction must be a 2D or 3D single-channel label map, got shape \(2, 3, 4, 2\)"
    ):
        as_label_array(np.zeros((2, 3, 4, 2)), "prediction")


def test_voxel_geometry_of_an_oblique_affine():
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(SPACING)
    spacing, voxel_ml = voxel_geometry(affine, 3)
    assert spacing == pytest.approx(list(SPACING)) and voxel_ml == pytest.approx(VOXEL_ML)
    with pytest.raises(ValueError, match=r"affine of shape \(3, 3\) does not describe a 3D image"):
        voxel_geometry(np.eye(3), 3)


def test_shape_mismatch():
    with pytest.raises(
        ValueError, match=r"prediction shape \(12, 12, 12\) differs from reference shape \(12, 12, 11\)"
    ):
        case_metrics(empty(), empty((12, 12, 11)), AFFINE, [1])
