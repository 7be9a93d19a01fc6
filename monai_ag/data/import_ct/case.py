"""One case of an import: its image and masks or label map on the image's grid, checked, mapped to the bundle's
classes, written as NIfTI with a summary (:py:func:`import_case`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, ResampleToMatch

from monai_ag.data.classes import CLASS_NAMES, ORGAN_NAMES
from monai_ag.data.geometry import same_grid
from monai_ag.data.presets import LabelPreset, get_preset
from monai_ag.utils.fileio import atomic_write

from .sources import CaseSource

__all__ = ["ALIGNMENT_MAX_FAT_FRACTION", "FAT_HU", "import_case"]

#: for CT in HU: the largest fraction of an organ's voxels that may be below ``FAT_HU`` (fat or air) before its
#: mask is rejected as misaligned. Aligned IRCAD masks have <= 2 %, the TotalSegmentator example <= 3 % (21 %
#: for its small pancreas at 3 mm, whence the pancreas' looser bound: fatty pancreas and partial volume).
#: Flipped masks measured 12-24 % (liver), 45-65 % (spleen, kidney).
ALIGNMENT_MAX_FAT_FRACTION: dict[int, float] = {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.5}
FAT_HU = -30.0
_AIR_HU = -500.0  # an image whose minimum is above this is not CT in HU: the fat check is skipped
_MIN_KEPT = 0.5  # a resampled mask must keep at least this fraction of its physical volume


def _load(path: str, loader: LoadImage) -> MetaTensor:
    try:
        return loader(path)
    except Exception as e:  # MONAI/ITK errors do not always say which file
        raise ValueError(f"cannot read {path}: {e}") from e


def _voxel_ml(img: MetaTensor) -> float:
    return float(abs(np.linalg.det(np.asarray(img.affine, dtype=np.float64)[:3, :3]))) / 1000.0


def _on_image_grid(data: MetaTensor, image: MetaTensor, path: str, what: str, notes: list[str]) -> np.ndarray:
    """``data`` (channel-first) on ``image``'s grid: as is when the grids agree, else resampled by physical
    position (nearest neighbour); refuses a mask that lies mostly outside the image."""
    if same_grid(data.shape[1:], data.affine, image.shape[1:], image.affine):
        return np.asarray(data[0])
    before = float(torch.count_nonzero(data)) * _voxel_ml(data)
    resampled = ResampleToMatch(mode="nearest", padding_mode="zeros")(data, image)
    out = np.asarray(resampled[0])
    after = float(np.count_nonzero(out)) * _voxel_ml(image)
    if before > 0 and after < _MIN_KEPT * before:
        raise ValueError(
            f"{what} {path} lies mostly outside the image {image.meta.get('filename_or_obj', '')}: after resampling "
            f"by physical position onto the image grid {after:.1f} of {before:.1f} mL remain; check that it belongs "
            "to this image (its geometry, ImagePositionPatient/affine)."
        )
    notes.append(f"{Path(path).name} resampled onto the image grid")
    return out


def _check_binary(mask: np.ndarray, path: str) -> np.ndarray:
    top = mask.max() if mask.size else 0
    if top <= 0:
        if mask.size and mask.min() < 0:
            raise ValueError(f"mask {path} is not binary: it has negative values (expected 0 and one value > 0).")
        return np.zeros(mask.shape, bool)
    fg = mask == top
    if not (fg | (mask == 0)).all():
        values = np.unique(mask[(mask != 0) & ~fg])[:5]
        raise ValueError(
            f"mask {path} is not binary: besides 0 and {top:g} it holds {[float(v) for v in values]}; give one "
            "binary mask per organ (or a label map with --pair and a --preset/--mapping)."
        )
    return fg


def _map_label(label: np.ndarray, preset: LabelPreset, path: str) -> np.ndarray:
    if label.size == 0:
        return label.astype(np.uint8)
    if not np.issubdtype(label.dtype, np.integer):
        if not np.array_equal(label, np.round(label)):
            raise ValueError(f"label map {path} holds non-integer values; a label map holds integer label values.")
    values = np.unique(label).astype(np.int64)
    if values.min() < 0:
        raise ValueError(f"label map {path} holds negative values {values[values < 0][:5].tolist()}.")
    if preset.max_label is not None and values.max() > preset.max_label:
        raise ValueError(
            f"label map {path} holds values {values[values > preset.max_label][:10].tolist()} above preset "
            f"{preset.name!r}'s largest label {preset.max_label}: is it another dataset's numbering? Choose the "
            "matching --preset or give --mapping JSON."
        )
    lut = np.zeros(int(values.max()) + 1, np.uint8)
    for source_value, target in preset.labels.items():
        if source_value < lut.size:
            lut[source_value] = target
    return lut[label.astype(np.int64)]


def _check_alignment(image: np.ndarray, label: np.ndarray, origins: Mapping[int, list[str]], case_id: str) -> None:
    """Refuse organs whose voxels are largely fat or air in a CT in HU: a flipped or shifted mask."""
    if image.size == 0 or float(image.min()) > _AIR_HU:
        return
    for value, limit in ALIGNMENT_MAX_FAT_FRACTION.items():
        inside = label == value
        n = int(inside.sum())
        if n == 0:
            continue
        fat = float((image[inside] < FAT_HU).sum()) / n
        if fat > limit:
            raise ValueError(
                f"case {case_id}: {fat:.0%} of the {CLASS_NAMES[value]} voxels ({', '.join(origins[value])}) are "
                f"below {FAT_HU:g} HU (fat or air; at most {limit:.0%} expected): the mask looks misaligned with "
                "the image (flipped or shifted axes, another patient's mask). Fix the mask's geometry, or pass "
                "--no_alignment_check if the image is not CT in HU."
            )


def _image_array(image: MetaTensor) -> np.ndarray:
    arr = np.asarray(image[0])
    info = np.iinfo(np.int16)
    if arr.size and np.array_equal(arr, np.round(arr)) and arr.min() >= info.min and arr.max() <= info.max:
        return arr.astype(np.int16)
    return arr.astype(np.float32)


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    with atomic_write(path) as tmp:
        nib.save(img, str(tmp))


def _resolve_preset(case: CaseSource, preset: LabelPreset | None) -> LabelPreset:
    """The label convention of ``case``: the given one for a label map (required), else the layout's own mask
    names with the given preset's (if any) taking precedence."""
    if case.layout == "pair":
        if preset is None or not preset.labels:
            raise ValueError(
                f"case {case.case_id}: label map {case.label} needs a label convention for label values: give --preset "
                "(one of monai_ag.data.presets.PRESETS with label values; 'monai_ag' when it already uses the bundle's "
                "classes) or --mapping."
            )
        return preset
    default = get_preset("ircad" if case.layout == "ircad" else "totalsegmentator_v2")
    if preset is None or preset.name == default.name:
        return default
    return LabelPreset(f"{default.name}+{preset.name}", default.description, masks={**default.masks, **preset.masks})


def _label_from_map(
    case: CaseSource,
    image: MetaTensor,
    loader: LoadImage,
    preset: LabelPreset,
    notes: list[str],
    origins: dict[int, list[str]],
) -> tuple[np.ndarray, set[int]]:
    """The label of an image + label-map pair on the image's grid, in the bundle's classes, and its annotated
    classes."""
    if case.label is None:
        raise ValueError(f"case {case.case_id}: no label map given for image {case.image}.")
    raw = _load(case.label, loader)
    label = _map_label(_on_image_grid(raw, image, case.label, "label map", notes), preset, case.label)
    annotated = set(preset.annotated)
    for value in annotated:
        origins[value].append(Path(case.label).name)
    return label, annotated


def _label_from_masks(
    case: CaseSource,
    image: MetaTensor,
    loader: LoadImage,
    preset: LabelPreset,
    notes: list[str],
    origins: dict[int, list[str]],
) -> tuple[np.ndarray, set[int]]:
    """One label from a case's binary organ masks (each on the image's grid; organs must not overlap), and the
    classes they annotate."""
    label = np.zeros(image.shape[1:], np.uint8)
    annotated: set[int] = set()
    owners: dict[int, list[str]] = {}
    for name, path in sorted(case.masks.items()):
        value = preset.mask_class(name)
        if not value:
            continue
        fg = _check_binary(_on_image_grid(_load(path, loader), image, path, "mask", notes), path)
        clash = fg & (label != 0) & (label != value)
        if clash.any():
            other = sorted({CLASS_NAMES[int(v)] for v in np.unique(label[clash])})
            raise ValueError(
                f"mask {path} ({CLASS_NAMES[value]}) overlaps the {', '.join(other)} mask(s) "
                f"{[p for v, ps in owners.items() if CLASS_NAMES[v] in other for p in ps]} in "
                f"{int(clash.sum())} voxels: masks of different organs must not overlap."
            )
        label[fg] = value
        annotated.add(value)
        owners.setdefault(value, []).append(path)
        origins[value].append(name)
    if not annotated:
        raise ValueError(
            f"case {case.case_id}: none of its masks {sorted(case.masks)} is one of preset {preset.name!r}'s "
            f"organs {sorted(preset.masks)}; choose the matching --preset or give --mapping JSON."
        )
    return label, annotated


def _summary(
    case: CaseSource, image: MetaTensor, label: np.ndarray, annotated: set[int], preset: LabelPreset, notes: list[str]
) -> dict[str, Any]:
    """What the import found: source, grid, and each organ's volume, mean HU and fat fraction."""
    ct = np.asarray(image[0])
    voxel_ml = _voxel_ml(image)
    summary: dict[str, Any] = {
        "source": str(case.image),
        "preset": preset.name,
        "shape": [int(s) for s in image.shape[1:]],
        "spacing_mm": [round(float(s), 4) for s in np.asarray(image.pixdim[:3])],
        "organs": {},
        "notes": notes,
    }
    for value, name in ORGAN_NAMES.items():
        inside = label == value
        n = int(inside.sum())
        summary["organs"][name] = {
            "annotated": value in annotated,
            "volume_ml": round(n * voxel_ml, 2),
            "mean_hu": round(float(ct[inside].mean()), 1) if n else None,
            "fat_fraction": round(float((ct[inside] < FAT_HU).mean()), 4) if n else None,
        }
    return summary


def import_case(
    case: CaseSource,
    output: str | os.PathLike,
    preset: LabelPreset | None = None,
    check_alignment: bool = True,
) -> dict[str, Any]:
    """
    Convert one case: write ``output/imagesTr/<id>.nii.gz`` and ``output/labelsTr/<id>.nii.gz`` and return its
    ``dataset.json`` item (relative paths, ``"annotated"`` classes) with a ``"summary"`` of volumes and HU.

    Args:
        case: the source case (see :py:func:`monai_ag.data.import_ct.find_cases`).
        output: the dataset folder.
        preset: the label convention: required for label maps; for mask folders its mask names are added to
            the layout's own (``ircad`` for IRCAD folders, ``totalsegmentator_v2`` for TotalSegmentator ones).
        check_alignment: refuse organs that lie mostly in fat or air (CT in HU only).

    Example::

        (case,) = find_cases("ircad01")
        item = import_case(case, "dataset")
    """
    preset = _resolve_preset(case, preset)
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    image = _load(case.image, loader)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image {case.image} must be a 3D volume, got shape {tuple(image.shape)}.")
    notes: list[str] = []
    origins: dict[int, list[str]] = {v: [] for v in ORGAN_NAMES}
    from_labels = _label_from_map if case.layout == "pair" else _label_from_masks
    label, annotated = from_labels(case, image, loader, preset, notes, origins)
    if check_alignment:
        _check_alignment(np.asarray(image[0]), label, origins, case.case_id)
    out = Path(output)
    image_rel, label_rel = f"imagesTr/{case.case_id}.nii.gz", f"labelsTr/{case.case_id}.nii.gz"
    affine = np.asarray(image.affine, dtype=np.float64)
    _save_nifti(_image_array(image), affine, out / image_rel)
    _save_nifti(label, affine, out / label_rel)
    summary = _summary(case, image, label, annotated, preset, notes)
    return {"image": image_rel, "label": label_rel, "annotated": sorted(annotated), "summary": summary}
