"""Per-case segmentation metrics on the reference voxel grid: Dice, Hausdorff distance, mean surface distance,
precision, recall and volumes, each computed by MONAI.

Distances are in millimetres (the voxel spacing is taken from the affine), volumes in millilitres.

NaN policy (how absent structures are scored):

- class **absent from the reference** of a case: every metric of that case/class is NaN (nothing to
  evaluate), so the case does not count in that class's statistics.
- class **not annotated** in a case (partial labels: ``dataset.json``'s ``"annotated"`` leaves it out): scored
  like an absent class (all NaN), but ``metrics.csv``'s ``reference`` column says "not annotated" (else
  "present" or "absent") and the summary counts it in ``n_not_annotated``: not annotated is not absent.
- class **present in the reference but absent from the prediction** (a missed organ): Dice 0, recall 0,
  precision NaN (0/0: nothing was predicted), HD95 and MSD NaN (a distance to an empty surface is
  undefined; MONAI returns ``inf`` there and it is normalised to NaN), predicted volume 0. The miss is
  counted in Dice/recall means and in ``n_missed``, but not in the distance means, whose ``n`` is then
  smaller than the Dice ``n``: always read distance means together with Dice and ``n_missed``.
- in ``metrics.csv`` and ``summary.csv`` NaN is written as an **empty field** (what pandas and
  spreadsheets read as missing); in ``summary.json`` and the returned dictionary it is ``null``/``None``.
  No file ever contains ``inf``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_confusion_matrix_metric,
    compute_dice,
    compute_hausdorff_distance,
    get_confusion_matrix,
)

from monai_ag.data.geometry import squeeze_trailing

__all__ = ["as_label_array", "case_metrics", "metric_names", "quality_metric_names", "voxel_geometry"]

logger = logging.getLogger(__name__)


def metric_names(hd_percentile: float = 95.0) -> tuple[str, ...]:
    """Metric column names, in ``metrics.csv`` order.

    The Hausdorff column is named after the percentile (``hd95_mm`` for 95, ``hd100_mm`` for the maximum)
    so that a non-default percentile can never be mistaken for HD95.

    Args:
        hd_percentile: percentile of the Hausdorff distance.

    Returns:
        ``("dice", "hd95_mm", "msd_mm", "precision", "recall", "pred_volume_ml", "ref_volume_ml")`` for 95.

    Example::

        >>> metric_names(99)[1]
        'hd99_mm'
    """
    return ("dice", f"hd{hd_percentile:g}_mm", "msd_mm", "precision", "recall", "pred_volume_ml", "ref_volume_ml")


def quality_metric_names(hd_percentile: float) -> tuple[str, ...]:
    """Metrics averaged over organs (volumes are not: a mean organ volume means nothing)."""
    return metric_names(hd_percentile)[:5]


def voxel_geometry(affine: Any, ndim: int) -> tuple[list[float], float]:
    """Voxel spacing (mm, per array axis) and voxel volume (mL) from an affine."""
    aff = np.asarray(affine, dtype=np.float64)
    if aff.ndim != 2 or aff.shape[0] < ndim + 1 or aff.shape[1] < ndim + 1:
        raise ValueError(f"affine of shape {aff.shape} does not describe a {ndim}D image.")
    lin = aff[:ndim, :ndim]
    # column norms give the spacing even for oblique or flipped orientations
    spacing = np.linalg.norm(lin, axis=0).tolist()
    voxel_ml = abs(float(np.linalg.det(lin))) / 1000.0
    return spacing, voxel_ml


def as_label_array(data: Any, what: str = "label map") -> np.ndarray:
    """Integer label array from a tensor/array; float maps (SaveImage writes float32) are rounded."""
    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    arr = arr.reshape(squeeze_trailing(arr.shape))  # NIfTI files may carry singleton trailing dimensions
    if arr.ndim not in (2, 3):
        raise ValueError(f"{what} must be a 2D or 3D single-channel label map, got shape {tuple(arr.shape)}.")
    if np.issubdtype(arr.dtype, np.floating):
        rounded = np.rint(arr)
        if not np.array_equal(rounded, arr):
            logger.warning("%s has non-integer values (interpolated labels?); they are rounded.", what)
        arr = rounded
    return arr.astype(np.int32, copy=False)


def _crop_to_union(pred: np.ndarray, ref: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 1, ...) tensors cropped to the union bounding box plus a 1-voxel margin.

    MONAI crops the same way internally (margin 1), but only after converting the whole volume to float;
    cropping first keeps a 512x512x300 CT cheap and leaves every metric reported here unchanged (only the
    true negatives of the confusion matrix shrink; no reported metric uses them).
    """
    union = pred | ref
    slices = []
    for axis in range(union.ndim):
        hit = np.flatnonzero(np.any(union, axis=tuple(a for a in range(union.ndim) if a != axis)))
        slices.append(slice(max(int(hit[0]) - 1, 0), min(int(hit[-1]) + 2, union.shape[axis])))
    sl = tuple(slices)
    return (
        torch.from_numpy(np.ascontiguousarray(pred[sl], dtype=np.uint8))[None, None],
        torch.from_numpy(np.ascontiguousarray(ref[sl], dtype=np.uint8))[None, None],
    )


def _finite(value: Any) -> float:
    """A float, with inf (MONAI's distance to an empty surface) normalised to NaN."""
    v = float(value)
    return v if math.isfinite(v) else math.nan


def case_metrics(
    prediction: Any, reference: Any, affine: Any, class_indices: Sequence[int], hd_percentile: float = 95.0
) -> dict[int, dict[str, float]]:
    """Per-class metrics of one case, on one voxel grid.

    Dice via :func:`monai.metrics.compute_dice`; the ``hd_percentile`` Hausdorff distance via
    :func:`monai.metrics.compute_hausdorff_distance` (the percentile is taken in each direction and the
    larger of the two is reported) and the mean symmetric surface distance via
    :func:`monai.metrics.compute_average_surface_distance` with ``symmetric=True`` (mean over the
    surface voxels of both masks), both with the spacing of ``affine``, so in mm. Precision TP/(TP+FP) and
    recall TP/(TP+FN) via :func:`monai.metrics.get_confusion_matrix` and
    :func:`monai.metrics.compute_confusion_matrix_metric`; volumes are voxel counts times the voxel volume in mL.
    Absent structures follow
    the module's NaN policy: absent from the reference -> all NaN; missed -> Dice 0, recall 0, precision,
    HD and MSD NaN.

    Args:
        prediction: predicted label map (H, W[, D]), integer or integral float values.
        reference: reference label map, same shape.
        affine: the common (N+1)x(N+1) voxel-to-world affine (mm).
        class_indices: label values to score.
        hd_percentile: percentile of the Hausdorff distance (0-100).

    Returns:
        ``{class_index: {metric_name: value}}`` with the names of :func:`metric_names`; never inf.

    Raises:
        ValueError: when the shapes differ or the affine does not fit the image dimension.

    Example::

        ref = np.zeros((8, 8, 8), int); ref[2:6, 2:6, 2:6] = 1
        case_metrics(ref, ref, np.diag([1.0, 2.0, 3.0, 1.0]), [1])[1]["dice"]  # 1.0
    """
    pred = as_label_array(prediction, "prediction")
    ref = as_label_array(reference, "reference")
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}.")
    spacing, voxel_ml = voxel_geometry(affine, ref.ndim)
    dice_k, hd_k, msd_k, prec_k, rec_k, pvol_k, rvol_k = metric_names(hd_percentile)
    out: dict[int, dict[str, float]] = {}
    for c in class_indices:
        r = ref == c
        n_ref = int(np.count_nonzero(r))
        if n_ref == 0:  # nothing to evaluate against: the case does not count for this class
            out[int(c)] = dict.fromkeys(metric_names(hd_percentile), math.nan)
            continue
        p = pred == c
        n_pred = int(np.count_nonzero(p))
        p_t, r_t = _crop_to_union(p, r)
        # TP, FP and FN from MONAI's confusion matrix (the crop changes only the true negatives, unused here);
        # MONAI's 0/0 is NaN: the precision of a missed organ
        confusion = get_confusion_matrix(p_t, r_t, include_background=True)
        values = {
            dice_k: 0.0,
            hd_k: math.nan,
            msd_k: math.nan,
            prec_k: _finite(compute_confusion_matrix_metric("precision", confusion)[0, 0]),
            rec_k: _finite(compute_confusion_matrix_metric("recall", confusion)[0, 0]),
            pvol_k: n_pred * voxel_ml,
            rvol_k: n_ref * voxel_ml,
        }
        if n_pred:  # a missed organ keeps Dice 0 and undefined distances (MONAI would return inf)
            # single-channel binary masks: include_background=True keeps the only channel
            values[dice_k] = _finite(compute_dice(p_t, r_t, include_background=True)[0, 0])
            with warnings.catch_warnings():
                # MONAI's own surface-distance code calls get_mask_edges with an argument it deprecated
                warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
                hd = compute_hausdorff_distance(
                    p_t, r_t, include_background=True, percentile=hd_percentile, spacing=spacing
                )
                msd = compute_average_surface_distance(
                    p_t, r_t, include_background=True, symmetric=True, spacing=spacing
                )
            values[hd_k] = _finite(hd[0, 0])
            values[msd_k] = _finite(msd[0, 0])
        out[int(c)] = values
    return out
