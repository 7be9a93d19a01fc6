"""Evaluation report: compare predicted label maps with reference label maps in the original geometry.

This is the evaluation step of the ``monai_ag`` bundle. Predictions (written by ``SaveImaged`` after the
inverse transforms, i.e. on the reference voxel grid) are compared with the reference label maps
(NIfTI files or DICOM series directories) class by class, and three files are written:

- ``metrics.csv``: one row per case and class with ``case, class_index, class_name, reference, dice, hd95_mm,
  msd_mm, precision, recall, pred_volume_ml, ref_volume_ml``;
- ``summary.csv``: one row per class (and for the mean over organs) and metric with ``n, mean, std,
  median``;
- ``summary.json``: the same statistics as a nested dictionary, with the mean organ Dice at the top level
  as ``mean_dice``.

The work is shared by three modules: :mod:`~monai_ag.metrics.segmentation` (per-case metrics, computed by
MONAI, and the NaN policy for absent structures), :mod:`~monai_ag.metrics.statistics` (the summary) and
:mod:`~monai_ag.metrics.writing` (the files, written atomically); this module pairs predictions with
references, checks their geometry and runs the three.

Command line (``monai_ag/metrics/__main__.py``)::

    python -m monai_ag.metrics --pred_dir ./eval/pred --dataset_dir ./data/phantom \\
        --data_list_key test --output_dir ./eval/report
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
from monai.data import load_decathlon_datalist
from monai.data.folder_layout import FolderLayout
from monai.transforms import LoadImage

from monai_ag.data.classes import ORGAN_NAMES
from monai_ag.data.geometry import same_grid, strip_image_suffix
from monai_ag.utils.cli import command_parser, run_command
from monai_ag.utils.fileio import refuse_overwrite

from .segmentation import as_label_array, case_metrics, metric_names
from .statistics import MEAN_ROW, NOT_ANNOTATED, format_summary, summarize
from .writing import format_value, report_paths, write_report

__all__ = ["case_id_from_path", "main", "pair_predictions", "segmentation_report"]

logger = logging.getLogger(__name__)

#: Scored classes of the bundle (label value -> name); background (0) is never scored.


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


def _load_pair(loader: LoadImage, pred_path: str, label_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load a prediction/reference pair and check that they share one voxel grid."""
    pred_img = loader(pred_path)
    ref_img = loader(label_path)
    pred = as_label_array(pred_img, f"prediction {pred_path}")
    ref = as_label_array(ref_img, f"reference {label_path}")
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


def _check_class_names(class_names: Mapping[int, str]) -> dict[int, str]:
    if not class_names:
        raise ValueError("class_names is empty: nothing to score.")
    checked: dict[int, str] = {}
    for idx, name in class_names.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)) or int(idx) <= 0:
            raise ValueError(f"class indices must be positive integers (background 0 is never scored), got {idx!r}.")
        checked[int(idx)] = str(name)
    names = list(checked.values())
    if len(set(names)) != len(names) or MEAN_ROW in names:
        raise ValueError(f"class names must be unique and not {MEAN_ROW!r}, got {names}.")
    return dict(sorted(checked.items()))


def segmentation_report(
    predictions: Sequence[str | PathLike],
    labels: Sequence[str | PathLike],
    class_names: Mapping[int, str],
    output_dir: str | PathLike,
    overwrite: bool = False,
    case_ids: Sequence[str] | None = None,
    hd_percentile: float = 95.0,
    annotated: Sequence[Sequence[int] | None] | None = None,
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
        annotated: per case, the class values its reference annotates (``dataset.json``'s ``"annotated"``,
            see :py:mod:`monai_ag.data.import_ct`); ``None`` (for all cases or one) means every class. A class
            a case does not annotate is scored like one absent from it (all metrics NaN) but reported as
            ``reference`` "not annotated" and counted in ``n_not_annotated``, not as absent.

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

    annotated_sets = _annotated_sets(annotated, len(ids))

    out_dir = os.fspath(output_dir)
    for path in reversed(report_paths(out_dir)):  # metrics.csv, the marker of a complete report, first
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
            status = "present"
            if annotated_sets[i - 1] is not None and idx not in annotated_sets[i - 1]:
                values, status = dict.fromkeys(values, math.nan), NOT_ANNOTATED
            elif math.isnan(values["ref_volume_ml"]):
                status = "absent"
            rows.append({"case": case, "class_index": idx, "class_name": name, "reference": status, **values})
            if status == NOT_ANNOTATED:
                parts.append(f"{name} not annotated")
            elif status == "absent":
                n_fp = int(np.count_nonzero(pred == idx))
                parts.append(f"{name} absent from reference" + (f" ({n_fp} predicted voxels)" if n_fp else ""))
            elif values["pred_volume_ml"] == 0:
                parts.append(f"{name} MISSED (dice=0)")
            else:
                parts.append(f"{name} dice={values[names[0]]:.3f} {names[1]}={values[names[1]]:.1f}")
        now = time.perf_counter()
        logger.info("[%d/%d] %s: %s (%.1fs, total %.0fs)", i, len(ids), case, ", ".join(parts), now - t0, now - start)

    summary = summarize(rows, classes, ids, hd_percentile)
    write_report(out_dir, rows, summary)
    logger.info(
        "evaluated %d cases in %.0fs; mean organ Dice %s; report in %s",
        len(ids),
        time.perf_counter() - start,
        format_value(summary["mean_dice"]) or "n/a",
        out_dir,
    )
    return summary


def _annotated_sets(annotated: Sequence[Sequence[int] | None] | None, n: int) -> list[set[int] | None]:
    """Per case, the set of annotated class values (``None``: all), checked."""
    if annotated is None:
        return [None] * n
    if len(annotated) != n:
        raise ValueError(f"got {len(annotated)} annotated lists for {n} cases.")
    sets: list[set[int] | None] = []
    for i, classes in enumerate(annotated):
        if classes is None:
            sets.append(None)
            continue
        if isinstance(classes, (str, bytes)) or not all(
            isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes
        ):
            raise ValueError(f"case {i}: annotated must be a list of class values, got {classes!r}.")
        sets.append({int(c) for c in classes})
    return sets


def _class_names_from_dataset(dataset_json: str) -> dict[int, str]:
    """Scored classes from a Decathlon ``labels`` section ({"1": "liver"} or {"liver": 1}); else defaults."""
    with open(dataset_json, encoding="utf-8") as fh:
        labels = json.load(fh).get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return dict(ORGAN_NAMES)
    pairs = []
    for k, v in labels.items():
        try:
            pairs.append((int(k), str(v)))
        except ValueError:  # nnU-Net v2 style: name -> value
            pairs.append((int(v), str(k)))
    return {idx: name for idx, name in sorted(pairs) if idx != 0}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: ``python -m monai_ag.metrics --pred_dir D --dataset_dir DS ...``.

    Pairs every item of ``DS/dataset.json[data_list_key]`` with its ``SaveImaged`` prediction in ``D``
    (see :func:`pair_predictions`), runs :func:`segmentation_report` and prints the summary table. The
    classes come from the ``labels`` section of ``dataset.json`` (without background), else
    :data:`monai_ag.data.classes.ORGAN_NAMES`.

    ``argv`` (default ``sys.argv[1:]``) and the exit status are as in :func:`monai_ag.utils.cli.run_command`.
    """
    parser = command_parser(
        "python -m monai_ag.metrics",
        "Evaluate predicted label maps against the reference labels of a Decathlon-style dataset.",
    )
    parser.add_argument("--pred_dir", "--pred-dir", required=True, help="directory of SaveImaged predictions")
    parser.add_argument("--dataset_dir", "--dataset-dir", required=True, help="dataset directory (holds dataset.json)")
    parser.add_argument("--data_list_key", "--data-list-key", default="test", help="datalist section (default: test)")
    parser.add_argument("--output_dir", "--output-dir", required=True, help="directory of the report files")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    parser.add_argument("--postfix", default="seg", help="SaveImaged output_postfix (default: seg)")
    parser.add_argument("--hd_percentile", "--hd-percentile", type=float, default=95.0, help="default: 95")

    def run(args: argparse.Namespace) -> None:
        dataset_json = os.path.join(args.dataset_dir, "dataset.json")
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
            annotated=[item.get("annotated") for item in datalist],
        )
        print(format_summary(summary))
        mean_dice = format_value(summary["mean_dice"]) or "n/a"
        print(f"\nmean organ Dice: {mean_dice}  (report: {os.path.abspath(args.output_dir)})")

    return run_command(parser, argv, run)
