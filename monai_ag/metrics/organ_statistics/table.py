"""Per-organ statistics of a CT and its label map (see the package docstring), their files and the combined table."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.transforms import LoadImage
from scipy import ndimage

from monai_ag.data.classes import CLASS_NAMES
from monai_ag.data.geometry import same_grid
from monai_ag.io.lattice import on_grid
from monai_ag.io.outputs import output_path
from monai_ag.metrics.report import case_id_from_path
from monai_ag.metrics.segmentation import as_label_array, voxel_geometry
from monai_ag.metrics.writing import format_value
from monai_ag.utils.cli import command_parser, run_command
from monai_ag.utils.config import as_bool
from monai_ag.utils.fileio import atomic_write, atomic_writes, refuse_overwrite

__all__ = [
    "CSV_COLUMNS",
    "ORGAN_FIELDS",
    "STATISTICS_FORMAT",
    "STATISTICS_POSTFIX",
    "StatisticsTable",
    "main",
    "organ_rows",
    "organ_statistics",
    "organ_volumes",
    "statistics_files",
    "write_statistics",
]

logger = logging.getLogger(__name__)

STATISTICS_FORMAT = "monai-ag organ statistics"
#: the postfix of the per-case files: ``<case>_statistics.json`` and ``<case>_statistics.csv``
STATISTICS_POSTFIX = "statistics"
_AXES = ("x", "y", "z")
#: the per-organ fields, in CSV order
ORGAN_FIELDS = (
    "voxels",
    "volume_ml",
    "hu_mean",
    "hu_median",
    "hu_std",
    "hu_p05",
    "hu_p95",
    "components",
    *(f"centroid_{a}_mm" for a in _AXES),
    *(f"bbox_min_{a}_mm" for a in _AXES),
    *(f"bbox_max_{a}_mm" for a in _AXES),
)
#: the columns of a statistics CSV: one row per case and organ
CSV_COLUMNS = ("case", "class_index", "organ", *ORGAN_FIELDS)
_STRUCTURE = np.ones((3, 3, 3), bool)


def _as_volume(data: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A 3D array and its affine (``None`` when ``data`` has none) from a path, a ``MetaTensor`` or an array."""
    if isinstance(data, (str, os.PathLike)):
        data = LoadImage(image_only=True)(os.fspath(data))
    affine = getattr(data, "affine", None)
    array = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data)
    if array.ndim == 4 and array.shape[0] == 1:  # channel first
        array = array[0]
    while array.ndim > 3 and array.shape[-1] == 1:  # NIfTI's trailing singletons
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"{what} must be a 3D volume, got shape {array.shape}.")
    return array, None if affine is None else np.asarray(affine, dtype=np.float64)


def _world(affine: np.ndarray, index: np.ndarray) -> np.ndarray:
    return affine[:3, :3] @ index + affine[:3, 3]


def _organ_entry(value: int, mask: np.ndarray, hu: np.ndarray, affine: np.ndarray, voxel_ml: float) -> dict[str, Any]:
    n = int(mask.sum())
    entry: dict[str, Any] = dict.fromkeys(ORGAN_FIELDS)
    entry.update(class_index=value, voxels=n, volume_ml=n * voxel_ml, components=0)
    if n == 0:
        return entry
    inside = hu[mask].astype(np.float64)
    p05, median, p95 = np.percentile(inside, [5, 50, 95])
    entry.update(
        hu_mean=float(inside.mean()),
        hu_median=float(median),
        hu_std=float(inside.std()),
        hu_p05=float(p05),
        hu_p95=float(p95),
    )
    entry["components"] = int(ndimage.label(mask, structure=_STRUCTURE)[1])
    index = np.argwhere(mask)
    centroid = _world(affine, index.mean(axis=0))
    lo, hi = index.min(axis=0), index.max(axis=0)
    corners = [[(lo, hi)[bit][axis] for axis, bit in enumerate(bits)] for bits in np.ndindex(2, 2, 2)]
    world = np.array([_world(affine, np.asarray(c, dtype=np.float64)) for c in corners])  # the index box's corners
    for i, a in enumerate(_AXES):
        entry[f"centroid_{a}_mm"] = float(centroid[i])
        entry[f"bbox_min_{a}_mm"] = float(world[:, i].min())
        entry[f"bbox_max_{a}_mm"] = float(world[:, i].max())
    return entry


def organ_statistics(
    image: str | os.PathLike | Any,
    label: str | os.PathLike | Any,
    class_names: Mapping[int | str, str] = CLASS_NAMES,
    affine: Any = None,
    case: str | None = None,
) -> dict[str, Any]:
    """
    The statistics of every organ of ``class_names`` in ``label`` over ``image`` (see the module for the fields).

    Args:
        image: the CT: a file or DICOM series folder (read with MONAI's ``LoadImage``), a ``MetaTensor`` or an
            array (channel-first with one channel, or 3D).
        label: its label map, the same kinds; on the image's voxel grid, or on the same grid indexed otherwise
            (axes flipped or permuted: re-indexed exactly, :func:`monai_ag.io.lattice.on_grid`); another grid is
            refused.
        class_names: label value -> name; background (0) is skipped.
        affine: the voxel-to-world affine (RAS) when ``image`` and ``label`` are plain arrays on one grid.
        case: the case name; defaults to the image's (:func:`monai_ag.metrics.report.case_id_from_path`).

    Returns:
        ``{"format", "version", "case", "image", "label", "coordinates", "shape", "spacing_mm", "voxel_volume_ml",
        "organs": {name: {"class_index", <fields>}}}``.

    Example::

        organ_statistics("ircad01/PATIENT_DICOM", "ircad01_label.nii.gz")["organs"]["liver"]["volume_ml"]
    """
    hu, image_affine = _as_volume(image, "image")
    lab, label_affine = _as_volume(label, "label map")
    if image_affine is None and affine is not None:
        image_affine = np.asarray(affine, dtype=np.float64)
    if image_affine is None:
        raise ValueError("organ_statistics: the image has no affine; pass affine= (its voxel-to-world matrix, RAS).")
    if label_affine is None and lab.shape != hu.shape:
        raise ValueError(
            f"label map of shape {lab.shape} without an affine cannot be placed on the image (shape {hu.shape})."
        )
    if label_affine is not None and not same_grid(lab.shape, label_affine, hu.shape, image_affine):
        lab = on_grid(lab, label_affine, hu.shape, image_affine)
    lab = as_label_array(lab)
    spacing, voxel_ml = voxel_geometry(image_affine, 3)
    source = image if isinstance(image, (str, os.PathLike)) else getattr(image, "meta", {}).get("filename_or_obj")
    if case is None:
        case = case_id_from_path(source) if source else "case"
    organs = {}
    for value, name in sorted((int(k), str(v)) for k, v in class_names.items()):
        if value != 0:
            organs[name] = _organ_entry(value, lab == value, hu, image_affine, voxel_ml)
    # a label given as data records no path: a prediction's meta names the image it was computed from
    label_source = label if isinstance(label, (str, os.PathLike)) else None
    return {
        "format": STATISTICS_FORMAT,
        "version": 1,
        "case": case,
        "image": None if source is None else os.fspath(source),
        "label": None if label_source is None else os.fspath(label_source),
        "coordinates": "RAS+ world coordinates in mm (+x right, +y anterior, +z superior; DICOM's LPS negates x and y)",
        "shape": [int(s) for s in hu.shape],
        "spacing_mm": [float(s) for s in spacing],
        "voxel_volume_ml": voxel_ml,
        "organs": organs,
    }


def organ_volumes(label: Any, affine: Any, class_names: Mapping[int | str, str] = CLASS_NAMES) -> dict[str, float]:
    """
    The volume (mL) of every organ of ``class_names`` in ``label`` (voxel count times the voxel volume): the
    cheap part of :func:`organ_statistics`, needing no image.

    Example::

        organ_volumes(pred[0], pred.affine, {"0": "background", "1": "liver"})  # {"liver": 1490.2}
    """
    lab, _ = _as_volume(label, "label map")
    lab = as_label_array(lab)
    _, voxel_ml = voxel_geometry(np.asarray(affine, dtype=np.float64), 3)
    organs = {int(k): str(v) for k, v in class_names.items() if int(k) != 0}
    counts = np.bincount(lab.ravel().clip(0), minlength=max(organs, default=0) + 1)
    return {name: float(counts[value] * voxel_ml) for value, name in sorted(organs.items())}


def organ_rows(statistics: Mapping[str, Any]) -> list[list[Any]]:
    """The CSV rows (:data:`CSV_COLUMNS`) of one :func:`organ_statistics` result, one per organ."""
    return [
        [statistics["case"], entry["class_index"], name, *(entry[f] for f in ORGAN_FIELDS)]
        for name, entry in statistics["organs"].items()
    ]


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([[format_value(v) for v in row] for row in rows])
    return buf.getvalue()


def statistics_files(image: str | os.PathLike, output_dir: str | os.PathLike) -> list[Path]:
    """The per-case files for ``image``, named as MONAI's ``SaveImage`` names outputs: ``<case>_statistics.json``
    and ``<case>_statistics.csv`` in ``output_dir``."""
    return [output_path(image, output_dir, STATISTICS_POSTFIX, ext) for ext in (".json", ".csv")]


def write_statistics(
    statistics: Mapping[str, Any], json_file: str | os.PathLike, csv_file: str | os.PathLike, overwrite: bool = False
) -> list[str]:
    """
    Write one :func:`organ_statistics` result as JSON and CSV, together and atomically (the CSV last); an existing
    file stops the write unless ``overwrite``.

    Example::

        write_statistics(organ_statistics(ct, label), "out/ct_statistics.json", "out/ct_statistics.csv")
    """
    files = [Path(json_file), Path(csv_file)]
    for f in files:
        refuse_overwrite(f, overwrite, option="overwrite=True (bundle: --overwrite true)")
    with atomic_writes(files) as (json_tmp, csv_tmp):
        json_tmp.write_text(json.dumps(statistics, indent=2, allow_nan=False) + "\n")
        csv_tmp.write_text(_csv_text(organ_rows(statistics)))
    return [str(f) for f in files]


class StatisticsTable:
    """
    The combined statistics CSV of a run over several cases: the per-case ``<case>_statistics.json`` files that
    the run wrote to ``pred_dir`` (one for each ``datalist`` item, found by name), one CSV with the rows of all
    (:data:`CSV_COLUMNS`). A run over one case writes none (its own CSV is the table). Under
    ``torchrun`` call :meth:`write` on one rank, after the others have written their cases.

    Args:
        datalist: the run's items (``"image"`` paths).
        pred_dir: the folder of the per-case files.
        output_file: the combined CSV.
        overwrite: replace an existing ``output_file``.

    Example::

        table = StatisticsTable(datalist, "eval/predictions", "eval/statistics.csv")
        table.write()  # after inference
    """

    def __init__(
        self,
        datalist: Sequence[Mapping[str, Any]],
        pred_dir: str | os.PathLike,
        output_file: str | os.PathLike,
        overwrite: bool = False,
    ) -> None:
        self.datalist = list(datalist)
        self.pred_dir = pred_dir
        self.output_file = Path(output_file)
        self.overwrite = as_bool(overwrite, "overwrite")

    def output_files(self) -> list[str]:
        """The file :meth:`write` writes (none for a run over one case), for the checks before a run."""
        return [str(self.output_file)] if len(self.datalist) > 1 else []

    def write(self) -> str | None:
        """Write the table; returns its path (``None`` for a run over one case)."""
        if len(self.datalist) <= 1:
            return None
        refuse_overwrite(self.output_file, self.overwrite, option="--overwrite true")
        rows, missing = [], []
        for item in self.datalist:
            json_file = statistics_files(item["image"], self.pred_dir)[0]
            if not json_file.is_file():
                missing.append(str(json_file))
                continue
            rows.extend(organ_rows(json.loads(json_file.read_text())))
        if missing:
            raise FileNotFoundError(
                f"statistics table {self.output_file}: the per-case statistics {missing[:5]} are missing."
            )
        with atomic_write(self.output_file) as tmp:
            tmp.write_text(_csv_text(rows))
        logger.info("organ statistics of %d cases written to %s", len(self.datalist), self.output_file)
        return str(self.output_file)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: ``python -m monai_ag.metrics.organ_statistics --image CT --label L --output_dir D``.

    Writes ``D/<case>_statistics.json`` and ``D/<case>_statistics.csv`` and prints one line per organ.
    ``argv`` (default ``sys.argv[1:]``) and the exit status are as in :func:`monai_ag.utils.cli.run_command`.
    """
    parser = command_parser(
        "python -m monai_ag.metrics.organ_statistics",
        "Per-organ volume, HU statistics, components, centroid and bounding box (RAS, mm) of an image and its "
        "label map.",
    )
    parser.add_argument("--image", required=True, help="the CT: NIfTI file or DICOM series folder")
    parser.add_argument("--label", required=True, help="its label map (the bundle's classes unless --class_names)")
    parser.add_argument("--output_dir", required=True, help="folder of <case>_statistics.json and .csv")
    parser.add_argument(
        "--class_names", help='JSON label value -> name, e.g. \'{"1": "liver"}\' (default: the bundle\'s)'
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")

    def run(args: argparse.Namespace) -> None:
        class_names = json.loads(args.class_names) if args.class_names else CLASS_NAMES
        stats = organ_statistics(args.image, args.label, class_names)
        json_file, csv_file = statistics_files(args.image, args.output_dir)
        write_statistics(stats, json_file, csv_file, overwrite=args.overwrite)
        for name, entry in stats["organs"].items():
            hu = f" at {entry['hu_mean']:.1f} HU" if entry["voxels"] else ""
            print(f"{stats['case']} {name}: {entry['volume_ml']:.2f} mL{hu}, {entry['components']} component(s)")
        print(f"written: {json_file} {csv_file}")

    return run_command(parser, argv, run)
