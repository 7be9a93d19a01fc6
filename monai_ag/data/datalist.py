"""Datalists for the ``monai_ag`` bundle, built from user input and checked early.

The bundle's JSON configs call these functions (e.g. ``"$monai_ag.data.datalist.load_datalist(@dataset_dir)"``)
to turn a Medical Segmentation Decathlon (MSD) style ``dataset.json``, a NIfTI file, a DICOM series directory
or a folder of those into MONAI datalists (lists of dicts with absolute ``image`` and ``label`` paths).

Every problem that can be seen before training or inference starts is reported here, with a message that names
the file, the ``dataset.json`` key and the problem, rather than as an obscure error deep inside a transform or
a collate function: a missing ``dataset.json`` or file, invalid JSON, an empty list, an unreadable image,
a 4D image, image/label geometry mismatches and label values outside ``[0, num_classes)``.

The expected ``dataset.json`` (paths relative to the folder that holds it)::

    {
        "training": [{"image": "imagesTr/case_0.nii.gz", "label": "labelsTr/case_0.nii.gz"}, ...],
        "validation": [{"image": "...", "label": "..."}, ...],   # optional
        "test": ["imagesTs/case_9.nii.gz", {"image": "dicom/case_10"}, ...]   # optional
    }

An ``image`` may be a NIfTI file or a DICOM series directory (read with ITK); labels are label maps with
``0`` background, ``1`` liver, ``2`` spleen, ``3`` kidney and ``4`` pancreas.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from monai.config import PathLike
from monai.data import load_decathlon_datalist

from .geometry import AFFINE_ATOL, NIFTI_SUFFIXES, same_grid, squeeze_trailing
from .images import is_dicom_series_dir, is_nifti_file, read_image

__all__ = [
    "check_datalist",
    "inference_datalist",
    "load_datalist",
    "split_datalist",
    "train_val_datalists",
]

logger = logging.getLogger(__name__)

_MAX_LISTED = 10  # how many offending values / file names an error message lists at most


def _read_dataset_json(dataset_dir: PathLike, dataset_json: str) -> tuple[Path, dict[str, Any]]:
    """Locate and parse ``dataset_dir/dataset_json``, raising clear errors for every way this can fail.

    Returns:
        The absolute path of the JSON file and its parsed top-level object.
    """
    dataset_dir = Path(os.path.abspath(os.fspath(dataset_dir)))
    if not dataset_dir.exists():
        raise FileNotFoundError(f"dataset_dir {dataset_dir} does not exist.")
    if not dataset_dir.is_dir():
        raise ValueError(f"dataset_dir {dataset_dir} is not a directory (expected the folder holding {dataset_json}).")
    json_path = dataset_dir / dataset_json
    if not json_path.is_file():
        raise FileNotFoundError(
            f"{json_path} not found: dataset_dir must contain an MSD-style (Medical Segmentation Decathlon) "
            f'{dataset_json} with a "training" list of {{"image": ..., "label": ...}} entries (paths relative to '
            f'{dataset_dir}; optional "validation" and "test" lists). '
            "Run without --dataset_dir to use the built-in synthetic phantom dataset."
        )
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{json_path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {json_path}: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(
            f'{json_path} must hold a JSON object with a "training" list, got a JSON {type(data).__name__}.'
        )
    return json_path, data


def _check_entries(json_path: Path, dataset_dir: Path, data_list_key: str, entries: Any, require_label: bool) -> None:
    """Validate the raw ``dataset.json`` list ``entries`` (types, keys, existence of the files) before use."""
    where = f'"{data_list_key}" in {json_path}'
    if not isinstance(entries, list):
        raise ValueError(f"{where} must be a list, got a JSON {type(entries).__name__}.")
    if not entries:
        raise ValueError(f"{where} is empty: it must list at least one case.")
    strings = [isinstance(e, str) for e in entries]
    if any(strings):
        # MSD lists test images as plain strings; monai's loader converts a list of strings, not a mixture
        if data_list_key != "test":
            raise ValueError(
                f'entry #{strings.index(True)} of {where} is a string; expected a dict like {{"image": ..., '
                f'"label": ...}} (plain path strings are only accepted in the "test" list).'
            )
        if not all(strings):
            raise ValueError(f"{where} mixes path strings and dicts; use one form for every entry.")
    keys = ("image", "label") if require_label else ("image",)
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"image": entry}
        if not isinstance(entry, Mapping):
            raise ValueError(f"entry #{i} of {where} must be a dict or a path string, got {type(entry).__name__}.")
        for key in keys:
            if key not in entry:
                raise ValueError(f'entry #{i} of {where} has no "{key}": {dict(entry)}.')
        for key in ("image", "label"):
            if key not in entry:
                continue
            value = entry[key]
            if not isinstance(value, str) or not value:
                # a list would be a multi-channel input, which this single-channel CT bundle does not take
                raise ValueError(
                    f'entry #{i} of {where}: "{key}" must be a single non-empty path string, got {value!r}.'
                )
            path = os.path.normpath(os.path.join(dataset_dir, value))
            if not os.path.exists(path):
                raise FileNotFoundError(f'entry #{i} of {where}: {key} file {path} does not exist ("{value}").')
            if os.path.isdir(path) and not is_dicom_series_dir(path):
                raise ValueError(
                    f"entry #{i} of {where}: {key} {path} is a directory without DICOM files; expected a NIfTI "
                    "file or a DICOM series directory."
                )


def load_datalist(
    dataset_dir: PathLike,
    data_list_key: str = "training",
    dataset_json: str = "dataset.json",
    check: bool = True,
    num_classes: int | None = None,
    require_label: bool = True,
    allow_reoriented: bool = False,
) -> list[dict]:
    """Read the list ``data_list_key`` of an MSD-style ``dataset.json`` into a MONAI datalist with absolute paths.

    The JSON is validated first (so that every problem is reported with the file, the key and the entry), then
    :py:func:`monai.data.load_decathlon_datalist` builds the datalist, and finally (when ``check``)
    :py:func:`check_datalist` reads the headers of the images and the labels.

    Args:
        dataset_dir: the folder holding ``dataset_json``; relative paths in the JSON are relative to it.
        data_list_key: the list to read: ``"training"``, ``"validation"``, ``"test"``, ...
        dataset_json: the file name of the datalist inside ``dataset_dir``.
        check: whether to run :py:func:`check_datalist` on the result (reads headers and labels).
        num_classes: when given (and ``check``), labels must hold integers in ``[0, num_classes)``.
        require_label: whether every entry must have a ``"label"`` (``False`` for inference lists).
        allow_reoriented: passed to :py:func:`check_datalist`.

    Returns:
        A list of dicts with absolute ``"image"`` (and ``"label"`` when present) paths, in the JSON's order;
        other keys of the entries are kept.

    Raises:
        FileNotFoundError: when ``dataset_dir``, ``dataset_json`` or a listed file does not exist.
        ValueError: when the JSON is invalid, ``data_list_key`` is missing or empty, an entry has no ``"image"``
            (or no ``"label"`` when ``require_label``), or :py:func:`check_datalist` fails.
    """
    json_path, data = _read_dataset_json(dataset_dir, dataset_json)
    base_dir = json_path.parent
    if data_list_key not in data:
        present = ", ".join(f'"{k}"' for k in data if isinstance(data[k], list)) or "none"
        raise ValueError(f'{json_path} has no "{data_list_key}" list (lists present: {present}).')
    _check_entries(json_path, base_dir, data_list_key, data[data_list_key], require_label)
    items = load_decathlon_datalist(json_path, is_segmentation=True, data_list_key=data_list_key, base_dir=base_dir)
    if check:
        check_datalist(items, num_classes=num_classes, allow_reoriented=allow_reoriented)
    return items


def _read_geometry(
    path: str, role: str, index: int, with_data: bool = False
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray | None]:
    """Read the 3D shape and affine of ``path`` (and its voxel data when ``with_data``).

    NIfTI files are read with nibabel, whose ``load`` parses only the header: the voxel data is read only when
    asked for (labels), never for images.

    Raises:
        ValueError: when the file cannot be read or is not 3D, naming the file and the underlying error.
    """
    try:
        if path.lower().endswith(NIFTI_SUFFIXES) and os.path.isfile(path):
            nii = nib.load(path)
            shape, affine = tuple(int(s) for s in nii.shape), np.asarray(nii.affine, dtype=np.float64)
            data = np.asanyarray(nii.dataobj) if with_data else None
        else:
            shape, affine, data = read_image(path, with_data)
    except Exception as e:  # any reader failure is reported with the file and the reader's own message
        raise ValueError(f"item #{index}: cannot read {role} {path}: {type(e).__name__}: {e}") from e
    shape3d = squeeze_trailing(shape)
    if len(shape3d) != 3:
        raise ValueError(f"item #{index}: {role} {path} has shape {shape}; expected a 3D {role} (a single volume).")
    if data is not None:
        data = data.reshape(shape3d)
    return shape3d, affine, data


def _reoriented_geometry(shape: tuple[int, ...], affine: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """The shape and affine of a volume after reorienting it to the closest RAS axis order (as ``Orientation``)."""
    ornt = nib.orientations.io_orientation(affine)
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, shape)
    new_shape = tuple(int(shape[int(ax)]) for ax in np.argsort(ornt[:, 0]))
    return new_shape, new_affine


def _format_affine(affine: np.ndarray) -> str:
    """An affine as nested lists rounded to 4 decimals (``+ 0.0`` turns ``-0.0`` into ``0.0``)."""
    return str((np.round(affine, 4) + 0.0).tolist())


def _format_values(values: np.ndarray) -> str:
    """List at most ``_MAX_LISTED`` values compactly (integers without a trailing ``.0``)."""
    shown = [int(v) if float(v).is_integer() else float(v) for v in values[:_MAX_LISTED]]
    more = f" and {len(values) - _MAX_LISTED} more" if len(values) > _MAX_LISTED else ""
    return f"{shown}{more}"


def _check_label_values(label: np.ndarray, path: str, index: int, num_classes: int) -> None:
    """Verify that ``label`` holds only integers in ``[0, num_classes)``."""
    integer = np.issubdtype(label.dtype, np.integer) or label.dtype == bool
    if integer:
        # min/max first: a full np.unique is only needed to describe a failure
        if label.size == 0 or (label.min() >= 0 and label.max() < num_classes):
            return
        bad = np.unique(label[(label < 0) | (label >= num_classes)])
    else:
        # float labels are fine if they hold whole numbers in range (NaN fails every comparison, so it is bad)
        ok = (label >= 0) & (label < num_classes) & (label == np.round(label))
        if ok.all():
            return
        bad = np.unique(label[~ok])
    raise ValueError(
        f"item #{index}: label {path} has values {_format_values(bad)} outside the allowed classes "
        f"{list(range(num_classes))} (integers in [0, {num_classes})); remap the label or set num_classes."
    )


def check_datalist(
    items: Sequence[Mapping[str, Any]],
    num_classes: int | None = None,
    check_contents: bool = True,
    allow_reoriented: bool = False,
) -> None:
    """Check that every image (and label) of a datalist is readable, 3D and consistent, before using it.

    For each item:

    - the image is readable and 3D (a 4D NIfTI with a singleton 4th dimension counts as 3D); NIfTI images are
      checked from their header only, DICOM series directories and other formats are read with MONAI's
      ``LoadImage`` (ITK for DICOM), so their geometry is the one the pipeline will see;
    - the label, when present, is readable and 3D, has the image's shape and an affine equal to the image's
      within an absolute tolerance of 1e-3;
    - when ``num_classes`` is given and ``check_contents``, the label holds only integers in ``[0, num_classes)``.

    Args:
        items: the datalist: dicts with an ``"image"`` path and an optional ``"label"`` path.
        num_classes: the number of classes including background; ``None`` skips the label value check.
        check_contents: whether to read the labels' voxels to check their values (needs ``num_classes``).
        allow_reoriented: accept a label whose voxel grid is the image's with its axes flipped or permuted (for
            pipelines that reorient both with ``Orientationd``); by default such a label is rejected with a
            message saying so, as a pipeline without reorientation would pair the wrong voxels.

    Raises:
        ValueError: when ``num_classes`` is not a positive integer, an item has no ``"image"``, a file cannot be
            read or is not 3D, image and label geometries differ, or a label has values outside the classes.
    """
    valid_num_classes = isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes >= 1
    if num_classes is not None and not valid_num_classes:
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}.")
    read_values = num_classes is not None and check_contents
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "image" not in item:
            raise ValueError(f'item #{index} of the datalist has no "image": {item!r}.')
        image = os.fspath(item["image"])
        image_shape, image_affine, _ = _read_geometry(image, "image", index)
        if item.get("label") is None:
            continue
        label = os.fspath(item["label"])
        label_shape, label_affine, label_data = _read_geometry(label, "label", index, with_data=read_values)
        same = same_grid(label_shape, label_affine, image_shape, image_affine)
        if not same:
            reoriented = _reoriented_geometry(label_shape, label_affine)
            target = _reoriented_geometry(image_shape, image_affine)
            reoriented_same = same_grid(*reoriented, *target)
            if not (reoriented_same and allow_reoriented):
                hint = ""
                if reoriented_same:
                    codes = "".join(nib.aff2axcodes(image_affine)), "".join(nib.aff2axcodes(label_affine))
                    hint = (
                        " The label covers the same voxel grid with its axes in another order/direction "
                        f"(image {codes[0]}, label {codes[1]}): resample/reorient it to the image, or reorient both "
                        "(Orientationd) and pass allow_reoriented=True."
                    )
                raise ValueError(
                    f"item #{index}: image {image} and label {label} differ in geometry: image shape {image_shape}, "
                    f"label shape {label_shape}; image affine {_format_affine(image_affine)}, label affine "
                    f"{_format_affine(label_affine)} (affines must match within {AFFINE_ATOL}).{hint}"
                )
        if label_data is not None:
            _check_label_values(label_data, label, index, num_classes)  # type: ignore[arg-type]


def split_datalist(
    items: Sequence[Mapping[str, Any]], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """Split a datalist into training and validation lists, deterministically for a given ``seed``.

    The number of validation cases is ``round(len(items) * val_fraction)`` clamped to ``[1, len(items) - 1]``,
    so that any datalist of two or more cases gives a non-empty training and validation list. The cases are
    chosen by a shuffle seeded with ``seed``; both lists keep the input order. ``val_fraction`` 0 trains on
    every case: all items, and an empty validation list (nnU-Net's "all" fold).

    Args:
        items: the datalist to split (at least 2 items unless ``val_fraction`` is 0); the items are copied
            (shallowly), not shared.
        val_fraction: the fraction of the items to use for validation, in ``[0, 1)``.
        seed: the seed of the shuffle.

    Returns:
        The training list and the validation list.

    Raises:
        ValueError: when ``val_fraction`` is not in ``[0, 1)``, or is not 0 and ``items`` has fewer than 2 items.
    """
    _check_val_fraction(val_fraction)
    if float(val_fraction) == 0.0:
        return [dict(item) for item in items], []
    n = len(items)
    if n < 2:
        raise ValueError(
            f"cannot split a datalist of {n} case(s) into training and validation: at least 2 are needed "
            '(or give a "validation" list in dataset.json).'
        )
    n_val = min(max(int(round(n * float(val_fraction))), 1), n - 1)
    # Not monai.data.partition_dataset(ratios=...): it rounds each part without keeping both non-empty, returns
    # the items in shuffled order and shuffles with numpy's RandomState, so every existing split (pinned by
    # the tests: splits must stay reproducible across releases) would change. Only the shuffle is shared.
    order = list(range(n))
    random.Random(seed).shuffle(order)  # random.Random(int) is stable across Python versions and platforms
    val_idx = set(order[:n_val])
    train = [dict(item) for i, item in enumerate(items) if i not in val_idx]
    val = [dict(item) for i, item in enumerate(items) if i in val_idx]
    return train, val


def train_val_datalists(
    dataset_dir: PathLike,
    val_fraction: float = 0.2,
    seed: int = 0,
    num_classes: int | None = None,
    check: bool = True,
    dataset_json: str = "dataset.json",
    allow_reoriented: bool = False,
) -> tuple[list[dict], list[dict]]:
    """The training and validation datalists of an MSD-style dataset.

    The training list is ``dataset.json``'s ``"training"``; the validation list is its ``"validation"`` when that
    is present and non-empty, otherwise a seeded split of ``"training"`` (:py:func:`split_datalist`).

    Args:
        dataset_dir: the folder holding ``dataset_json``.
        val_fraction: the validation fraction used when ``dataset.json`` has no validation list; 0: no
            validation, every training case is trained on (a ``"validation"`` list is still honoured).
        seed: the seed of that split.
        num_classes: when given (and ``check``), labels must hold integers in ``[0, num_classes)``.
        check: whether to check the images and labels with :py:func:`check_datalist`.
        dataset_json: the file name of the datalist inside ``dataset_dir``.
        allow_reoriented: passed to :py:func:`check_datalist`.

    Returns:
        The training list and the validation list (dicts with absolute ``"image"`` and ``"label"`` paths).

    Raises:
        FileNotFoundError: see :py:func:`load_datalist`.
        ValueError: see :py:func:`load_datalist` and :py:func:`split_datalist`.
    """
    _check_val_fraction(val_fraction)  # fail on a bad argument before reading any file
    train = load_datalist(
        dataset_dir, "training", dataset_json, check=check, num_classes=num_classes, allow_reoriented=allow_reoriented
    )
    _, data = _read_dataset_json(dataset_dir, dataset_json)
    if data.get("validation"):  # present and non-empty; a non-list is reported by load_datalist
        val = load_datalist(
            dataset_dir,
            "validation",
            dataset_json,
            check=check,
            num_classes=num_classes,
            allow_reoriented=allow_reoriented,
        )
        return train, val
    train, val = split_datalist(train, val_fraction=val_fraction, seed=seed)
    if val and len(train) + len(val) < FEW_CASES:
        logger.warning(
            "the automatic split (val_fraction %g, seed %d) sets aside %d of %d cases for validation: %s. They are "
            "never trained on. With this few cases, choose the recipe by cross-validation, then train the final "
            "model on all of them with --val_fraction 0 (or list the validation cases in dataset.json).",
            float(val_fraction),
            seed,
            len(val),
            len(train) + len(val),
            ", ".join(os.path.basename(str(item["image"])) for item in val),
        )
    return train, val


#: below this many training cases, the automatic split's cost (cases never trained on) is logged
FEW_CASES = 5


def _check_val_fraction(val_fraction: float) -> None:
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1) (0: train on every case, no validation), got {val_fraction}.")


def inference_datalist(
    input_path: PathLike | None = None,
    dataset_dir: PathLike | None = None,
    data_list_key: str = "test",
    dataset_json: str = "dataset.json",
) -> list[dict]:
    """The datalist of the images to segment.

    ``input_path`` may be

    - a NIfTI file (``.nii`` / ``.nii.gz``): one item;
    - a DICOM series directory (its files carry the ``DICM`` magic; a ``.dcm`` suffix is not needed): one item;
    - a folder of NIfTI files and/or DICOM series subdirectories: one item per file/series, sorted by name
      (other files, e.g. a README, and hidden entries are ignored).

    When ``input_path`` is ``None``, the list ``data_list_key`` of ``dataset_dir``'s ``dataset.json`` is used
    (entries may be path strings or dicts; a ``"label"`` is kept when present).

    Args:
        input_path: a NIfTI file, a DICOM series directory or a folder of those; takes precedence over
            ``dataset_dir``.
        dataset_dir: the folder holding ``dataset_json``, used when ``input_path`` is ``None``.
        data_list_key: the list of ``dataset.json`` to use.
        dataset_json: the file name of the datalist inside ``dataset_dir``.

    Returns:
        A list of dicts with an absolute ``"image"`` path (and ``"label"`` from ``dataset.json`` when present).

    Raises:
        FileNotFoundError: when ``input_path`` (or ``dataset_dir``, its ``dataset.json`` or a listed file) does
            not exist.
        ValueError: when neither argument is given, ``input_path`` is a file that is not NIfTI, a folder without
            NIfTI files or DICOM series, a folder mixing DICOM and NIfTI files, or the ``dataset.json`` list is
            missing, empty or malformed.
    """
    if input_path is None:
        if dataset_dir is None:
            raise ValueError(
                "no input: give input_path (a NIfTI file, a DICOM series directory or a folder of those) "
                f'or dataset_dir (a folder with a {dataset_json} holding a "{data_list_key}" list).'
            )
        return load_datalist(
            dataset_dir, data_list_key=data_list_key, dataset_json=dataset_json, check=False, require_label=False
        )

    path = os.path.abspath(os.fspath(input_path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"input_path {path} does not exist.")
    if os.path.isfile(path):
        if not path.lower().endswith(NIFTI_SUFFIXES):
            raise ValueError(
                f"input_path {path} is not a NIfTI file (.nii, .nii.gz); give a NIfTI file, a DICOM series "
                "directory or a folder of those."
            )
        return [{"image": path}]

    names = sorted(n for n in os.listdir(path) if not n.startswith("."))
    niftis = [os.path.join(path, n) for n in names if is_nifti_file(os.path.join(path, n))]
    if is_dicom_series_dir(path):
        if niftis:
            raise ValueError(
                f"input_path {path} holds both DICOM files and NIfTI files ({_format_names(niftis)}); "
                "put the DICOM series in its own subdirectory."
            )
        return [{"image": path}]
    found = [p for p in (os.path.join(path, n) for n in names) if is_nifti_file(p) or is_dicom_series_dir(p)]
    if not found:
        contents = f" (it holds: {_format_names(names)})" if names else " (it is empty)"
        raise ValueError(
            f"input_path {path} has no NIfTI files (.nii, .nii.gz) or DICOM series subdirectories{contents}."
        )
    return [{"image": p} for p in found]


def _format_names(names: Sequence[str]) -> str:
    """List at most ``_MAX_LISTED`` file names (base names only)."""
    shown = ", ".join(os.path.basename(n) for n in names[:_MAX_LISTED])
    return shown + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")
