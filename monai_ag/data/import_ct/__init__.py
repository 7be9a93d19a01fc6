"""Import real abdominal CT into a dataset the bundle trains on: NIfTI image + label map in the bundle's classes.

Run ``python -m monai_ag.data.import_ct --help`` (``__main__.py`` calls :py:func:`main`). Each source case becomes ``DIR/imagesTr/<case>.nii.gz`` (the CT,
on its original grid) and ``DIR/labelsTr/<case>.nii.gz`` (uint8: 0 background, 1 liver, 2 spleen, 3 kidney,
4 pancreas), listed in an MSD-style ``DIR/dataset.json`` that ``--dataset_dir DIR`` reads directly. Every item
records the classes its source annotates (``"annotated": [1, 2, 3]``): training ignores the others
(:py:mod:`monai_ag.losses.partial`), evaluation reports them as not annotated.

Sources (a folder of such case folders works too, one level deep):

- an IRCAD-layout case folder: ``PATIENT_DICOM/`` + ``MASKS_DICOM/<organ>/`` (one DICOM mask series per organ,
  values {0, 255}; organs outside the preset's names are ignored);
- a TotalSegmentator-dataset-layout folder: ``ct.nii.gz`` + ``segmentations/<organ>.nii.gz`` binary masks;
- an image + label-map pair (``--pair IMAGE LABEL``; NIfTI files or DICOM series folders), an MSD-style folder with
  a ``dataset.json`` "training" list, or an nnU-Net-style folder with ``imagesTr/`` + ``labelsTr/``: label values
  are mapped with ``--preset`` (see :py:mod:`monai_ag.data.presets`) or ``--mapping JSON``.

Geometry: a mask or label map whose grid differs from the image's is resampled onto the image grid by physical
position (MONAI ``ResampleToMatch``, nearest neighbour), never overlaid by array index. Checks, each failing
with the file named: a mask that is not binary, masks of different organs that overlap, label values beyond the
preset's range, a mask that lies mostly outside the image, and (for CT in HU) an organ whose voxels are largely
fat or air, which is what a flipped or shifted mask looks like (``check_alignment=False`` to skip).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import LoadImage, ResampleToMatch

from monai_ag.data.classes import CLASS_NAMES, ORGAN_NAMES
from monai_ag.data.datalist import is_dicom_series_dir, is_nifti_file
from monai_ag.data.geometry import same_grid, strip_image_suffix
from monai_ag.data.presets import LabelPreset, get_preset, load_mapping
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

__all__ = ["ALIGNMENT_MAX_FAT_FRACTION", "CaseSource", "find_cases", "import_case", "import_ct", "main"]

#: for CT in HU: the largest fraction of an organ's voxels that may be below ``FAT_HU`` (fat or air) before its
#: mask is rejected as misaligned. Aligned IRCAD masks have <= 2 %, the TotalSegmentator example <= 3 % (21 %
#: for its small pancreas at 3 mm, whence the pancreas' looser bound: fatty pancreas and partial volume).
#: Flipped masks measured 12-24 % (liver), 45-65 % (spleen, kidney).
ALIGNMENT_MAX_FAT_FRACTION: dict[int, float] = {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.5}
FAT_HU = -30.0
_AIR_HU = -500.0  # an image whose minimum is above this is not CT in HU: the fat check is skipped
_MIN_KEPT = 0.5  # a resampled mask must keep at least this fraction of its physical volume
_IRCAD_IMAGE, _IRCAD_MASKS = "PATIENT_DICOM", "MASKS_DICOM"
_TOTALSEG_IMAGES, _TOTALSEG_MASKS = ("ct.nii.gz", "ct.nii"), "segmentations"


@dataclass
class CaseSource:
    """
    One case to import.

    Args:
        case_id: the output file stem (letters, digits, ``.``, ``_``, ``-``).
        image: the CT (NIfTI file or DICOM series folder).
        label: a label map in the source's numbering (``None`` for mask layouts).
        masks: mask name -> file or DICOM folder, for mask layouts.
        layout: ``"ircad"``, ``"totalsegmentator"`` or ``"pair"``: decides the default preset.
    """

    case_id: str
    image: str
    label: str | None = None
    masks: dict[str, str] = field(default_factory=dict)
    layout: str = "pair"


def _case_id(path: str | os.PathLike) -> str:
    name = strip_image_suffix(Path(path).name)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "case"


def _image_like(path: Path) -> bool:
    return is_nifti_file(path) or is_dicom_series_dir(path)


def _single_case(src: Path) -> CaseSource | None:
    """The case ``src`` holds when it is a case folder of a known layout, else ``None``."""
    if (src / _IRCAD_IMAGE).is_dir() and (src / _IRCAD_MASKS).is_dir():
        masks = {p.name: str(p) for p in sorted((src / _IRCAD_MASKS).iterdir()) if p.is_dir()}
        return CaseSource(_case_id(src), str(src / _IRCAD_IMAGE), masks=masks, layout="ircad")
    images = [src / n for n in _TOTALSEG_IMAGES if (src / n).is_file()]
    if images and (src / _TOTALSEG_MASKS).is_dir():
        masks = {_case_id(p): str(p) for p in sorted((src / _TOTALSEG_MASKS).iterdir()) if is_nifti_file(p)}
        return CaseSource(_case_id(src), str(images[0]), masks=masks, layout="totalsegmentator")
    return None


def _dataset_pairs(src: Path) -> list[CaseSource]:
    """Image/label pairs of an MSD-style ``dataset.json`` or of nnU-Net-style ``imagesTr``/``labelsTr`` folders."""
    if (src / "dataset.json").is_file():
        with open(src / "dataset.json", encoding="utf-8") as f:
            data = json.load(f)
        items = data.get("training") if isinstance(data, dict) else None
        if isinstance(items, list) and items and all(isinstance(i, dict) and "label" in i for i in items):
            return [
                CaseSource(_case_id(i["image"]), str((src / i["image"]).resolve()), str((src / i["label"]).resolve()))
                for i in items
            ]
    if (src / "imagesTr").is_dir() and (src / "labelsTr").is_dir():
        labels = {_case_id(p): p for p in sorted((src / "labelsTr").iterdir()) if _image_like(p)}
        cases = []
        for image in sorted((src / "imagesTr").iterdir()):
            if not _image_like(image) or image.name.startswith("."):
                continue
            stem = _case_id(image)
            base = re.sub(r"_0000$", "", stem)  # nnU-Net names the first channel <case>_0000
            label = labels.get(base, labels.get(stem))
            if label is None:
                raise FileNotFoundError(f"{image}: no label {base}.nii.gz in {src / 'labelsTr'}.")
            cases.append(CaseSource(base, str(image), str(label)))
        if cases:
            return cases
    return []


def find_cases(src: str | os.PathLike) -> list[CaseSource]:
    """
    The cases of one source path: a case folder (IRCAD or TotalSegmentator layout), a folder of such folders,
    an MSD-style folder (``dataset.json`` with a "training" list) or an nnU-Net-style one (``imagesTr``,
    ``labelsTr``).

    Raises:
        FileNotFoundError: when ``src`` does not exist.
        ValueError: when ``src`` is none of those layouts (the message lists them).

    Example::

        find_cases("3Dircadb1")  # one CaseSource per ircadNN/ folder
    """
    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(f"source {path} does not exist.")
    if path.is_dir():
        case = _single_case(path)
        if case is not None:
            return [case]
        pairs = _dataset_pairs(path)
        if pairs:
            return pairs
        cases = [c for c in (_single_case(p) for p in sorted(path.iterdir()) if p.is_dir()) if c is not None]
        if cases:
            return cases
    raise ValueError(
        f"source {path} is not a case folder the importer knows: expected an IRCAD-layout folder "
        f"({_IRCAD_IMAGE}/ + {_IRCAD_MASKS}/<organ>/), a TotalSegmentator-layout folder (ct.nii.gz + "
        "segmentations/<organ>.nii.gz), a folder of either, an MSD-style folder (dataset.json with a \"training\" "
        "list) or imagesTr/ + labelsTr/; give an image and its label map with --pair IMAGE LABEL."
    )


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
        case: the source case (see :py:func:`find_cases`).
        output: the dataset folder.
        preset: the label convention: required for label maps; for mask folders its mask names are added to
            the layout's own (``ircad`` for IRCAD folders, ``totalsegmentator_v2`` for TotalSegmentator ones).
        check_alignment: refuse organs that lie mostly in fat or air (CT in HU only).

    Example::

        (case,) = find_cases("ircad01")
        item = import_case(case, "dataset")
    """
    if case.layout == "pair" and (preset is None or not preset.labels):
        raise ValueError(
            f"case {case.case_id}: label map {case.label} needs a label convention for label values: give --preset "
            "(one of monai_ag.data.presets.PRESETS with label values; 'monai_ag' when it already uses the bundle's "
            "classes) or --mapping."
        )
    if case.layout != "pair":
        # the layout's own mask names, with the chosen preset's names (if any) taking precedence
        default = get_preset("ircad" if case.layout == "ircad" else "totalsegmentator_v2")
        if preset is None or preset.name == default.name:
            preset = default
        else:
            preset = LabelPreset(
                f"{default.name}+{preset.name}", default.description, masks={**default.masks, **preset.masks}
            )
    loader = LoadImage(image_only=True, ensure_channel_first=True)
    image = _load(case.image, loader)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image {case.image} must be a 3D volume, got shape {tuple(image.shape)}.")
    notes: list[str] = []
    origins: dict[int, list[str]] = {v: [] for v in ORGAN_NAMES}
    label = np.zeros(image.shape[1:], np.uint8)
    if case.layout == "pair":
        if case.label is None:
            raise ValueError(f"case {case.case_id}: no label map given for image {case.image}.")
        raw = _load(case.label, loader)
        label = _map_label(_on_image_grid(raw, image, case.label, "label map", notes), preset, case.label)
        annotated = set(preset.annotated)
        for value in annotated:
            origins[value].append(Path(case.label).name)
    else:
        annotated = set()
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
    ct = np.asarray(image[0])
    if check_alignment:
        _check_alignment(ct, label, origins, case.case_id)
    out = Path(output)
    image_rel, label_rel = f"imagesTr/{case.case_id}.nii.gz", f"labelsTr/{case.case_id}.nii.gz"
    affine = np.asarray(image.affine, dtype=np.float64)
    _save_nifti(_image_array(image), affine, out / image_rel)
    _save_nifti(label, affine, out / label_rel)
    voxel_ml = _voxel_ml(image)
    summary = {
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
    return {"image": image_rel, "label": label_rel, "annotated": sorted(annotated), "summary": summary}


def _describe(item: Mapping[str, Any]) -> str:
    parts = []
    for name, organ in item["summary"]["organs"].items():
        if not organ["annotated"]:
            parts.append(f"{name} not annotated")
        elif organ["volume_ml"]:
            parts.append(f"{name} {organ['volume_ml']:.1f} mL at {organ['mean_hu']:.0f} HU")
        else:
            parts.append(f"{name} absent")
    shape = "x".join(str(s) for s in item["summary"]["shape"])
    spacing = "x".join(f"{s:g}" for s in item["summary"]["spacing_mm"])
    return f"{shape} voxels of {spacing} mm; " + ", ".join(parts)


def import_ct(
    sources: Sequence[str | os.PathLike] = (),
    output: str | os.PathLike = "dataset",
    preset: str | None = None,
    mapping: str | os.PathLike | Mapping[str, Any] | None = None,
    pairs: Sequence[Sequence[str | os.PathLike]] = (),
    validation: Sequence[str] = (),
    overwrite: bool = False,
    check_alignment: bool = True,
    verbose: bool = True,
) -> Path:
    """
    Import real CT cases into ``output`` and write its ``dataset.json`` (see the module docstring).

    Args:
        sources: case folders or dataset folders (see :py:func:`find_cases`).
        output: the dataset folder to create; ``--dataset_dir`` for the bundle.
        preset: label convention of label-map sources and TotalSegmentator folders
            (:py:data:`monai_ag.data.presets.PRESETS`).
        mapping: a user mapping instead of ``preset`` (JSON file or dict, see
            :py:func:`monai_ag.data.presets.load_mapping`).
        pairs: ``(image, label_map)`` pairs.
        validation: case ids to list under ``"validation"`` instead of ``"training"``.
        overwrite: replace an existing ``dataset.json`` and case files (refused otherwise, before any work).
        check_alignment: refuse organs that lie mostly in fat or air (CT in HU only).
        verbose: print one line per case.

    Returns:
        the path of ``dataset.json``.

    Example::

        import_ct(["ircad01", "ircad17"], "data/real")  # then: --dataset_dir data/real
    """
    if preset is not None and mapping is not None:
        raise ValueError("give either a preset or a mapping, not both.")
    chosen = load_mapping(mapping) if mapping is not None else get_preset(preset) if preset else None
    cases = [c for src in sources for c in find_cases(src)]
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"a pair is (image, label map), got {list(pair)}.")
        for p in pair:
            if not os.path.exists(p):
                raise FileNotFoundError(f"pair file {p} does not exist.")
        cases.append(CaseSource(_case_id(pair[0]), os.fspath(pair[0]), os.fspath(pair[1])))
    if not cases:
        raise ValueError("nothing to import: give source folders and/or --pair IMAGE LABEL.")
    ids = [c.case_id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"several sources give the case id(s) {dupes}; rename the folders/files so ids are unique.")
    unknown = sorted(set(validation) - set(ids))
    if unknown:
        raise ValueError(f"validation case(s) {unknown} are not among the imported cases {ids}.")
    out = Path(output)
    json_path = out / "dataset.json"
    for path in [json_path] + [out / d / f"{i}.nii.gz" for i in ids for d in ("imagesTr", "labelsTr")]:
        refuse_overwrite(path, overwrite, option="--overwrite")
    items = []
    for n, case in enumerate(cases, 1):
        start = time.perf_counter()
        if verbose:
            print(f"[{n}/{len(cases)}] {case.case_id} ({case.layout}) ...", flush=True)
        item = import_case(case, out, chosen, check_alignment=check_alignment)
        item["case_id"] = case.case_id
        items.append(item)
        if verbose:
            print(f"[{n}/{len(cases)}] {case.case_id}: {_describe(item)} ({time.perf_counter() - start:.1f} s)", flush=True)
    dataset = {
        "name": out.name,
        "description": "real CT imported with monai_ag.data.import_ct",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {str(k): v for k, v in CLASS_NAMES.items()},
        "numTraining": len(items),
        "training": [
            {k: i[k] for k in ("image", "label", "annotated", "case_id")} for i in items if i["case_id"] not in validation
        ],
        "validation": [
            {k: i[k] for k in ("image", "label", "annotated", "case_id")} for i in items if i["case_id"] in validation
        ],
        "import_summary": {i["case_id"]: i["summary"] for i in items},
    }
    if not dataset["validation"]:
        del dataset["validation"]
    if not dataset["training"]:
        raise ValueError("every case is in the validation list: leave at least one for training.")
    with atomic_write(json_path) as tmp:
        tmp.write_text(json.dumps(dataset, indent=2) + "\n", encoding="utf-8")
    if verbose:
        print(f"wrote {json_path} ({len(items)} cases): train with --dataset_dir {out}", flush=True)
    return json_path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m monai_ag.data.import_ct SRC [SRC ...] --output DIR [--preset NAME]``."""
    from monai_ag.data.presets import PRESETS  # noqa: PLC0415
    from monai_ag.utils.cli import EXPECTED_ERRORS, command_parser, run_command  # noqa: PLC0415

    parser = command_parser(
        "python -m monai_ag.data.import_ct",
        "Import real abdominal CT (IRCAD or TotalSegmentator folders, image + label-map pairs) into an MSD-style "
        "dataset in the bundle's classes (1 liver, 2 spleen, 3 kidney, 4 pancreas).",
    )
    parser.epilog = "presets: " + "; ".join(f"{k}: {p.description}" for k, p in PRESETS.items())
    parser.add_argument("sources", nargs="*", metavar="SRC", help="case folders or dataset folders")
    parser.add_argument("--output", required=True, help="the dataset folder to write (dataset.json, imagesTr, labelsTr)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=sorted(PRESETS), help="label convention of the sources")
    group.add_argument("--mapping", help="JSON file mapping label values / mask names to bundle classes")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("IMAGE", "LABEL"), help="an image and its label map")
    parser.add_argument("--validation", nargs="+", default=[], metavar="CASE", help="case ids for the validation list")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset.json and case files")
    parser.add_argument("--no_alignment_check", action="store_true", help="skip the fat/air check (non-CT images)")

    def run(args) -> None:
        import_ct(
            args.sources, args.output, preset=args.preset, mapping=args.mapping, pairs=args.pair,
            validation=args.validation, overwrite=args.overwrite, check_alignment=not args.no_alignment_check,
            verbose=not args.quiet,
        )

    return run_command(parser, argv, run, errors=(*EXPECTED_ERRORS, KeyError))
