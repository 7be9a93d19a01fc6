"""Evaluation report: compare predicted label maps with reference label maps in the original geometry.

This is the evaluation step of the ``monai_ag`` bundle. Predictions (written by ``SaveImaged`` after the
inverse transforms, i.e. on the reference voxel grid) are compared with the reference label maps
(NIfTI files or DICOM series directories) class by class, and three files are written:

- ``metrics.csv``: one row per case and class with ``case, class_index, class_name, dice, hd95_mm,
  msd_mm, precision, recall, pred_volume_ml, ref_volume_ml``;
- ``summary.csv``: one row per class (and for the mean over organs) and metric with ``n, mean, std,
  median``;
- ``summary.json``: the same statistics as a nested dictionary, with the mean organ Dice at the top level
  as ``mean_dice``.

Distances are in millimetres (the voxel spacing is taken from the affine), volumes in millilitres.

NaN policy (how absent structures are scored):

- class **absent from the reference** of a case: every metric of that case/class is NaN (nothing to
  evaluate), so the case does not count in that class's statistics.
- class **present in the reference but absent from the prediction** (a missed organ): Dice 0, recall 0,
  precision NaN (0/0: nothing was predicted), HD95 and MSD NaN (a distance to an empty surface is
  undefined; MONAI returns ``inf`` there and it is normalised to NaN), predicted volume 0. The miss is
  counted in Dice/recall means and in ``n_missed``, but not in the distance means, whose ``n`` is then
  smaller than the Dice ``n``: always read distance means together with Dice and ``n_missed``.
- in ``metrics.csv`` and ``summary.csv`` NaN is written as an **empty field** (what pandas and
  spreadsheets read as missing); in ``summary.json`` and the returned dictionary it is ``null``/``None``.
  No file ever contains ``inf``.

Command line::

    python -m monai_ag.metrics.report --pred_dir ./eval/pred --dataset_dir ./data/phantom \\
        --data_list_key test --output_dir ./eval/report
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import torch
from monai.data import load_decathlon_datalist
from monai.data.folder_layout import FolderLayout
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance
from monai.transforms import LoadImage

from monai_ag.data.classes import ORGAN_NAMES
from monai_ag.data.geometry import same_grid, squeeze_trailing, strip_image_suffix
from monai_ag.utils.fileio import atomic_writes, refuse_overwrite

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "METRICS_CSV",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "case_id_from_path",
    "case_metrics",
    "format_summary",
    "main",
    "metric_names",
    "pair_predictions",
    "segmentation_report",
]

logger = logging.getLogger(__name__)

#: Scored classes of the bundle (label value -> name); background (0) is never scored.
DEFAULT_CLASS_NAMES: dict[int, str] = ORGAN_NAMES  # the bundle's organs (monai_ag.data.classes)
#: File names written by :func:`segmentation_report` in its ``output_dir``.
METRICS_CSV = "metrics.csv"
SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"

#: ``class_name`` of the pseudo-class "mean over organs" in ``summary.csv``.
_MEAN_ROW = "mean"


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


def _quality_metrics(hd_percentile: float) -> tuple[str, ...]:
    """Metrics averaged over organs (volumes are not: a mean organ volume means nothing)."""
    return metric_names(hd_percentile)[:5]


def case_id_from_path(path: str | PathLike) -> str:
    """Case identifier of an image or label path.

    The file name without ``.nii.gz``/``.nii`` (or ``.mha``, ``.mhd``, ``.nrrd``); for a DICOM series
    directory, the directory name (trailing separators are ignored, dots in it are kept).

    Args:
        path: a file path or a DICOM series directory.

    Returns:
        The case identifier.

    Raises:
        ValueError: when ``path`` has no final component (e.g. ``"/"``).

    Example::

        >>> case_id_from_path("/data/imagesTs/phantom_010.nii.gz")
        'phantom_010'
        >>> case_id_from_path("/data/ircad01/PATIENT_DICOM/")
        'PATIENT_DICOM'
    """
    norm = os.path.normpath(os.fspath(path))
    name = os.path.basename(norm)
    if not name or name in (".", ".."):
        raise ValueError(f"cannot derive a case id from path {os.fspath(path)!r}.")
    if os.path.isdir(norm):
        return name
    return strip_image_suffix(name)


def _first_path(value: Any) -> str:
    """The path ``SaveImage`` names its output after: LoadImage records the first of several files."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("empty list of image paths.")
        value = value[0]
    if not isinstance(value, (str, PathLike)):
        raise TypeError(f"expected a path, got {type(value).__name__}: {value!r}.")
    return os.fspath(value)


def pair_predictions(
    pred_dir: str | PathLike, datalist: Sequence[Mapping], postfix: str = "seg", output_ext: str = ".nii.gz"
) -> list[tuple[str, str]]:
    """Find the prediction of every datalist item, as named by MONAI's ``SaveImaged``.

    With ``output_postfix=postfix``, ``separate_folder=False`` and ``output_ext=".nii.gz"``, ``SaveImaged``
    writes ``<pred_dir>/<case_id>_<postfix>.nii.gz`` where ``case_id`` is the image file name without its
    extension (for a DICOM series directory, the directory name). The expected path is computed with
    MONAI's own :class:`monai.data.FolderLayout` so that it matches ``SaveImage`` exactly, including its
    extension stripping (``os.path.splitext``, so a series directory ``1.2.840`` becomes ``1.2``).

    Args:
        pred_dir: directory holding the predictions.
        datalist: items with ``"image"`` and ``"label"`` paths (e.g. from ``load_decathlon_datalist``).
        postfix: ``output_postfix`` given to ``SaveImaged``; empty for none.
        output_ext: ``output_ext`` given to ``SaveImaged``.

    Returns:
        ``(prediction_path, label_path)`` pairs, in datalist order.

    Raises:
        ValueError: when an item lacks ``image`` or ``label``, or two images map to the same prediction file
            (``SaveImaged`` would have overwritten one with the other).
        FileNotFoundError: when predictions are missing; names each case and its expected path.

    Example::

        pairs = pair_predictions("./eval/pred", [{"image": "imagesTs/c1.nii.gz", "label": "labelsTs/c1.nii.gz"}])
        # [("./eval/pred/c1_seg.nii.gz", "labelsTs/c1.nii.gz")]
    """
    pred_dir = os.fspath(pred_dir)
    layout = FolderLayout(output_dir=pred_dir, postfix=postfix, extension=output_ext, parent=False, makedirs=False)
    pairs: list[tuple[str, str]] = []
    missing: list[str] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(datalist):
        for key in ("image", "label"):
            if key not in item:
                raise ValueError(f"datalist item {i} has no {key!r} entry (keys: {sorted(item)}); cannot evaluate it.")
        image = _first_path(item["image"])
        # SaveImage names the output after the path string LoadImage recorded; normpath drops a trailing
        # separator of a series directory, which load_decathlon_datalist also does.
        pred = os.fspath(layout.filename(subject=os.path.normpath(image)))
        if pred in seen:
            raise ValueError(
                f"images {seen[pred]} and {image} both map to prediction {pred}: SaveImaged with "
                "separate_folder=False would overwrite one with the other. Use unique image names."
            )
        seen[pred] = image
        if not os.path.isfile(pred):
            missing.append(f"{case_id_from_path(image)}: expected {pred}")
        label = item["label"]
        if isinstance(label, (list, tuple)) and len(label) != 1:  # only one file would be read, silently
            raise ValueError(f"datalist item {i}: label must be one file or series directory, got {label!r}.")
        pairs.append((pred, _first_path(label)))
    if missing:
        shown = "\n  ".join(missing[:10]) + (f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise FileNotFoundError(
            f"{len(missing)} of {len(pairs)} predictions not found in {pred_dir} (postfix {postfix!r}, "
            f"extension {output_ext!r}):\n  {shown}"
        )
    return pairs


def _geometry(affine: Any, ndim: int) -> tuple[list[float], float]:
    """Voxel spacing (mm, per array axis) and voxel volume (mL) from an affine."""
    aff = np.asarray(affine, dtype=np.float64)
    if aff.ndim != 2 or aff.shape[0] < ndim + 1 or aff.shape[1] < ndim + 1:
        raise ValueError(f"affine of shape {aff.shape} does not describe a {ndim}D image.")
    lin = aff[:ndim, :ndim]
    # column norms give the spacing even for oblique or flipped orientations
    spacing = np.linalg.norm(lin, axis=0).tolist()
    voxel_ml = abs(float(np.linalg.det(lin))) / 1000.0
    return spacing, voxel_ml


def _as_label_array(data: Any, what: str = "label map") -> np.ndarray:
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
    cropping first keeps a 512x512x300 CT cheap and leaves every metric unchanged.
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
    surface voxels of both masks), both with the spacing of ``affine``, so in mm. Precision is TP/(TP+FP),
    recall TP/(TP+FN), volumes are voxel counts times the voxel volume in mL. Absent structures follow
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
    pred = _as_label_array(prediction, "prediction")
    ref = _as_label_array(reference, "reference")
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}.")
    spacing, voxel_ml = _geometry(affine, ref.ndim)
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
        tp = int(np.count_nonzero(p & r))
        values = {
            dice_k: 0.0,
            hd_k: math.nan,
            msd_k: math.nan,
            prec_k: tp / n_pred if n_pred else math.nan,
            rec_k: tp / n_ref,
            pvol_k: n_pred * voxel_ml,
            rvol_k: n_ref * voxel_ml,
        }
        if n_pred:  # a missed organ keeps Dice 0 and undefined distances (MONAI would return inf)
            p_t, r_t = _crop_to_union(p, r)
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


def _load_pair(loader: LoadImage, pred_path: str, label_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load a prediction/reference pair and check that they share one voxel grid."""
    pred_img = loader(pred_path)
    ref_img = loader(label_path)
    pred = _as_label_array(pred_img, f"prediction {pred_path}")
    ref = _as_label_array(ref_img, f"reference {label_path}")
    pred_aff = np.asarray(pred_img.affine, dtype=np.float64)
    ref_aff = np.asarray(ref_img.affine, dtype=np.float64)
    del pred_img, ref_img  # the float copies of a CT-sized volume are no longer needed
    if not same_grid(pred.shape, pred_aff, ref.shape, ref_aff):
        with np.printoptions(precision=4, suppress=True):
            raise ValueError(
                "prediction and reference are not on the same voxel grid (predictions must be resampled back "
                "to the reference geometry, e.g. Invertd before SaveImaged):\n"
                f"  prediction {pred_path}: shape {pred.shape}, affine\n{pred_aff}\n"
                f"  reference  {label_path}: shape {ref.shape}, affine\n{ref_aff}"
            )
    return pred, ref, ref_aff


def _stats(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std (ddof=1), median and count of the non-NaN values (None when undefined)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    n = int(v.size)
    return {
        "n": n,
        "mean": float(v.mean()) if n else None,
        "std": float(v.std(ddof=1)) if n > 1 else None,
        "median": float(np.median(v)) if n else None,
    }


def _summarize(
    rows: list[dict[str, Any]], class_names: Mapping[int, str], case_ids: Sequence[str], hd_percentile: float
) -> dict[str, Any]:
    """The content of ``summary.json`` from the ``metrics.csv`` rows."""
    names = metric_names(hd_percentile)
    dice_k, pvol_k = names[0], names[5]
    classes: dict[str, Any] = {}
    for idx, name in class_names.items():
        crow = [r for r in rows if r["class_index"] == idx]
        present = [r for r in crow if not math.isnan(r["ref_volume_ml"])]
        classes[name] = {
            "class_index": idx,
            "n_cases": len(present),
            "n_missed": sum(1 for r in present if r[pvol_k] == 0),
            "metrics": {m: _stats([r[m] for r in crow]) for m in names},
        }
    # mean over organs: per case, the mean over the organs present in its reference; then statistics over
    # cases (MONAI's MetricReduction.MEAN convention), so every case weighs the same whatever it contains
    per_case: dict[str, dict[str, float]] = {}
    for case in case_ids:
        crow = [r for r in rows if r["case"] == case]
        per_case[case] = {}
        for m in _quality_metrics(hd_percentile):
            vals = [r[m] for r in crow if not math.isnan(r[m])]
            per_case[case][m] = float(np.mean(vals)) if vals else math.nan
    mean_metrics = {m: _stats([per_case[c][m] for c in case_ids]) for m in _quality_metrics(hd_percentile)}
    return {
        "mean_dice": mean_metrics[dice_k]["mean"],
        "n_cases": len(case_ids),
        "hd_percentile": float(hd_percentile),
        "classes": classes,
        "mean_over_organs": {"n_cases": mean_metrics[dice_k]["n"], "metrics": mean_metrics},
        "nan_policy": (
            "class absent from the reference: all metrics NaN, case excluded from that class; class present but "
            "not predicted: dice 0, recall 0, precision/HD/MSD NaN (excluded from their means); n counts the "
            "non-NaN values behind each mean; mean_over_organs averages the organs present in each case first; "
            "std is the sample std (ddof=1); NaN is null here and an empty field in the CSV files"
        ),
        "cases": list(case_ids),
    }


def _fmt(value: Any) -> str:
    """CSV cell: full-precision float, empty for NaN/None (never inf)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_fmt(v) for v in row] for row in rows])
    return buf.getvalue()


def _commit(files: list[tuple[str, str]]) -> None:
    """Write ``(path, text)`` files with :func:`~monai_ag.utils.fileio.atomic_writes`: all are written to
    temporary names first, then renamed in order, so the last entry (``metrics.csv``, the file the overwrite
    check looks at) is replaced last and an interrupted run never leaves a truncated file."""
    with atomic_writes([path for path, _ in files]) as temps:
        for tmp, (_, text) in zip(temps, files):
            tmp.write_text(text, encoding="utf-8", newline="")


def _check_class_names(class_names: Mapping[int, str]) -> dict[int, str]:
    if not class_names:
        raise ValueError("class_names is empty: nothing to score.")
    checked: dict[int, str] = {}
    for idx, name in class_names.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or int(idx) <= 0:
            raise ValueError(f"class indices must be positive integers (background 0 is never scored), got {idx!r}.")
        checked[int(idx)] = str(name)
    names = list(checked.values())
    if len(set(names)) != len(names) or _MEAN_ROW in names:
        raise ValueError(f"class names must be unique and not {_MEAN_ROW!r}, got {names}.")
    return dict(sorted(checked.items()))


def segmentation_report(
    predictions: Sequence[str | PathLike],
    labels: Sequence[str | PathLike],
    class_names: Mapping[int, str],
    output_dir: str | PathLike,
    overwrite: bool = False,
    case_ids: Sequence[str] | None = None,
    hd_percentile: float = 95.0,
) -> dict[str, Any]:
    """Evaluate predicted label maps against reference label maps and write the report files.

    Each pair is loaded with ``monai.transforms.LoadImage(image_only=True)`` (NIfTI files or DICOM series
    directories, reader chosen automatically) and must share shape and affine (atol 1e-3): metrics are
    computed in the original geometry, never after resampling. Per case and class (see
    :func:`case_metrics`): Dice, HD95 and mean symmetric surface distance in mm, precision, recall and
    predicted/reference volumes in mL. Absent structures follow the module's NaN policy: a class absent
    from the reference is NaN for every metric and excluded; a class present but not predicted has Dice 0,
    recall 0 and NaN precision/HD95/MSD. NaN is an empty field in the CSV files and ``null`` in JSON.

    Files written in ``output_dir`` (created if needed), atomically (temporary name + ``os.replace``):
    ``metrics.csv`` (one row per case and class), ``summary.csv`` (``class_index, class_name, metric, n,
    mean, std, median``; the mean over organs has ``class_name`` ``"mean"`` and no index) and
    ``summary.json``. ``n`` is the number of cases behind each mean (non-NaN values); ``std`` is the
    sample standard deviation (empty for ``n < 2``). The mean over organs first averages, per case, the
    organs present in its reference (volumes excluded), then summarises over cases.

    Args:
        predictions: predicted label map paths.
        labels: reference label map paths (NIfTI files or DICOM series directories), same order.
        class_names: scored label values and their names, e.g. ``{1: "liver", 2: "spleen"}``; 0 not allowed.
        output_dir: directory of the report files.
        overwrite: replace existing report files.
        case_ids: case identifiers (default: :func:`case_id_from_path` of each label path); must be unique.
        hd_percentile: Hausdorff distance percentile (the column is named ``hd{p}_mm``, e.g. ``hd95_mm``).

    Returns:
        The content of ``summary.json``: ``mean_dice`` (mean over cases of the per-case mean organ Dice),
        ``n_cases``, ``hd_percentile``, ``classes`` (per class name: ``class_index``, ``n_cases`` present in
        the reference, ``n_missed`` present but not predicted, ``metrics``: per metric ``n, mean, std,
        median``), ``mean_over_organs``, ``nan_policy`` and ``cases``; NaN values are ``None``.

    Raises:
        FileExistsError: when a report file already exists in ``output_dir`` and ``overwrite`` is False
            (checked before any computation).
        FileNotFoundError: when an input path does not exist (checked before any computation).
        ValueError: on mismatched argument lengths, invalid classes/percentile/case ids, or when a
            prediction and its reference differ in shape or affine (the message names both files).

    Example::

        summary = segmentation_report(
            ["pred/c1_seg.nii.gz"], ["labelsTs/c1.nii.gz"], {1: "liver", 2: "spleen"}, "report"
        )
        print(summary["mean_dice"], summary["classes"]["liver"]["metrics"]["hd95_mm"]["median"])
    """
    preds = [os.fspath(p) for p in predictions]
    refs = [os.fspath(p) for p in labels]
    if len(preds) != len(refs):
        raise ValueError(f"got {len(preds)} predictions but {len(refs)} labels.")
    if not preds:
        raise ValueError("no prediction/label pairs to evaluate.")
    classes = _check_class_names(class_names)
    if not 0.0 <= float(hd_percentile) <= 100.0:
        raise ValueError(f"hd_percentile must be in [0, 100], got {hd_percentile}.")
    ids = [str(c) for c in case_ids] if case_ids is not None else [case_id_from_path(p) for p in refs]
    if len(ids) != len(preds):
        raise ValueError(f"got {len(ids)} case_ids for {len(preds)} cases.")
    if len(set(ids)) != len(ids):
        dup = sorted({c for c in ids if ids.count(c) > 1})
        raise ValueError(f"case ids must be unique, duplicated: {dup}; pass explicit case_ids.")

    out_dir = os.fspath(output_dir)
    out_paths = [os.path.join(out_dir, n) for n in (METRICS_CSV, SUMMARY_CSV, SUMMARY_JSON)]
    for path in out_paths:
        refuse_overwrite(path, overwrite, option="overwrite=True (--overwrite)")
    # fail before hours of evaluation rather than in the middle of it
    absent = [p for p in preds + refs if not os.path.exists(p)]
    if absent:
        raise FileNotFoundError(f"{len(absent)} input path(s) do not exist: {absent[:10]}")
    os.makedirs(out_dir, exist_ok=True)

    names = metric_names(hd_percentile)
    loader = LoadImage(image_only=True)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i, (case, pred_path, ref_path) in enumerate(zip(ids, preds, refs), start=1):
        t0 = time.perf_counter()
        pred, ref, affine = _load_pair(loader, pred_path, ref_path)
        per_class = case_metrics(pred, ref, affine, list(classes), hd_percentile)
        parts = []
        for idx, name in classes.items():
            values = per_class[idx]
            rows.append({"case": case, "class_index": idx, "class_name": name, **values})
            if math.isnan(values["ref_volume_ml"]):
                n_fp = int(np.count_nonzero(pred == idx))
                parts.append(f"{name} absent from reference" + (f" ({n_fp} predicted voxels)" if n_fp else ""))
            elif values["pred_volume_ml"] == 0:
                parts.append(f"{name} MISSED (dice=0)")
            else:
                parts.append(f"{name} dice={values[names[0]]:.3f} {names[1]}={values[names[1]]:.1f}")
        now = time.perf_counter()
        logger.info("[%d/%d] %s: %s (%.1fs, total %.0fs)", i, len(ids), case, ", ".join(parts), now - t0, now - start)

    summary = _summarize(rows, classes, ids, hd_percentile)
    metrics_text = _csv_text(
        ("case", "class_index", "class_name", *names),
        [[r["case"], r["class_index"], r["class_name"], *(r[m] for m in names)] for r in rows],
    )
    summary_rows = []
    for name, info in summary["classes"].items():
        for m, s in info["metrics"].items():
            summary_rows.append([info["class_index"], name, m, s["n"], s["mean"], s["std"], s["median"]])
    for m, s in summary["mean_over_organs"]["metrics"].items():
        summary_rows.append(["", _MEAN_ROW, m, s["n"], s["mean"], s["std"], s["median"]])
    summary_text = _csv_text(("class_index", "class_name", "metric", "n", "mean", "std", "median"), summary_rows)
    json_text = json.dumps(summary, indent=2, allow_nan=False) + "\n"  # allow_nan=False: strictly valid JSON
    metrics_path, summary_csv_path, summary_json_path = out_paths
    _commit([(summary_csv_path, summary_text), (summary_json_path, json_text), (metrics_path, metrics_text)])
    logger.info(
        "evaluated %d cases in %.0fs; mean organ Dice %s; report in %s",
        len(ids),
        time.perf_counter() - start,
        _fmt(summary["mean_dice"]) or "n/a",
        out_dir,
    )
    return summary


def format_summary(summary: Mapping[str, Any]) -> str:
    """A plain-text table of a summary (as returned by :func:`segmentation_report`).

    Args:
        summary: the summary dictionary.

    Returns:
        One line per class and one for the mean over organs: ``n``, missed cases and mean ± std of each
        quality metric.
    """
    hd_k = metric_names(summary["hd_percentile"])[1]
    cols = ("dice", hd_k, "msd_mm", "precision", "recall")

    def cell(s: Mapping[str, Any]) -> str:
        if s["mean"] is None:
            return "n/a"
        return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s["std"] is not None else "")

    header = ["class", "n", "missed", *cols]
    lines = []
    for name, info in summary["classes"].items():
        lines.append([name, str(info["n_cases"]), str(info["n_missed"]), *(cell(info["metrics"][m]) for m in cols)])
    mean = summary["mean_over_organs"]
    lines.append([_MEAN_ROW, str(mean["n_cases"]), "", *(cell(mean["metrics"][m]) for m in cols)])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in lines)])


def _class_names_from_dataset(dataset_json: str) -> dict[int, str]:
    """Scored classes from a Decathlon ``labels`` section ({"1": "liver"} or {"liver": 1}); else defaults."""
    with open(dataset_json, encoding="utf-8") as fh:
        labels = json.load(fh).get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return dict(DEFAULT_CLASS_NAMES)
    pairs = []
    for k, v in labels.items():
        try:
            pairs.append((int(k), str(v)))
        except ValueError:  # nnU-Net v2 style: name -> value
            pairs.append((int(v), str(k)))
    return {idx: name for idx, name in sorted(pairs) if idx != 0}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: ``python -m monai_ag.metrics.report --pred_dir D --dataset_dir DS ...``.

    Pairs every item of ``DS/dataset.json[data_list_key]`` with its ``SaveImaged`` prediction in ``D``
    (see :func:`pair_predictions`), runs :func:`segmentation_report` and prints the summary table. The
    classes come from the ``labels`` section of ``dataset.json`` (without background), else
    :data:`DEFAULT_CLASS_NAMES`.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status (0 on success, 1 on a refused or invalid request).
    """
    parser = argparse.ArgumentParser(
        prog="python -m monai_ag.metrics.report",
        description="Evaluate predicted label maps against the reference labels of a Decathlon-style dataset.",
    )
    parser.add_argument("--pred_dir", "--pred-dir", required=True, help="directory of SaveImaged predictions")
    parser.add_argument("--dataset_dir", "--dataset-dir", required=True, help="dataset directory (holds dataset.json)")
    parser.add_argument("--data_list_key", "--data-list-key", default="test", help="datalist section (default: test)")
    parser.add_argument("--output_dir", "--output-dir", required=True, help="directory of the report files")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--postfix", default="seg", help="SaveImaged output_postfix (default: seg)")
    parser.add_argument("--hd_percentile", "--hd-percentile", type=float, default=95.0, help="default: 95")
    parser.add_argument("--quiet", action="store_true", help="only log warnings")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    dataset_json = os.path.join(args.dataset_dir, "dataset.json")
    try:
        if not os.path.isfile(dataset_json):
            raise FileNotFoundError(f"{dataset_json} not found.")
        datalist = load_decathlon_datalist(dataset_json, True, args.data_list_key, base_dir=args.dataset_dir)
        pairs = pair_predictions(args.pred_dir, datalist, postfix=args.postfix)
        summary = segmentation_report(
            [p for p, _ in pairs],
            [label for _, label in pairs],
            _class_names_from_dataset(dataset_json),
            args.output_dir,
            overwrite=args.overwrite,
            case_ids=[case_id_from_path(_first_path(item["image"])) for item in datalist],
            hd_percentile=args.hd_percentile,
        )
    except (ValueError, FileExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(f"\nmean organ Dice: {_fmt(summary['mean_dice']) or 'n/a'}  (report: {os.path.abspath(args.output_dir)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
