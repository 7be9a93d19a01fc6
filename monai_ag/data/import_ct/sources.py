"""Where the cases of an import come from: IRCAD and TotalSegmentator case folders, image + label-map pairs, MSD- and
nnU-Net-style folders (:py:func:`find_cases`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from monai_ag.data.geometry import strip_image_suffix
from monai_ag.data.images import is_dicom_series_dir, is_nifti_file

__all__ = ["CaseSource", "find_cases"]

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

    @classmethod
    def from_pair(cls, image: str | os.PathLike, label: str | os.PathLike) -> CaseSource:
        """An image + label-map pair, named after the image file."""
        return cls(_case_id(image), os.fspath(image), os.fspath(label))


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
        'segmentations/<organ>.nii.gz), a folder of either, an MSD-style folder (dataset.json with a "training" '
        "list) or imagesTr/ + labelsTr/; give an image and its label map with --pair IMAGE LABEL."
    )
