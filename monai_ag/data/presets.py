"""Label presets: how common abdominal CT datasets number their labels, mapped onto the bundle's classes.

The bundle's classes are :py:data:`monai_ag.data.classes.CLASS_NAMES` (0 background, 1 liver, 2 spleen,
3 kidney (left and right), 4 pancreas). A :py:class:`LabelPreset` maps a dataset's label values (for label-map
sources) and/or its per-organ mask names (for mask-folder sources such as IRCAD's ``MASKS_DICOM/<organ>/`` or
TotalSegmentator's ``segmentations/<organ>.nii.gz``) onto them, and says which of the bundle's classes the dataset
annotates: a class the dataset does not label (e.g. the spleen in MSD Task03) is *not annotated* in its cases,
which :py:mod:`monai_ag.losses.partial` and the evaluation treat differently from *absent*.

Label values not listed in a preset map to background; values above a preset's ``max_label`` are refused (they
mean the wrong preset was chosen). Sources of every numbering are cited next to each preset.

Example::

    from monai_ag.data.presets import get_preset
    preset = get_preset("btcv")
    preset.labels[6], preset.annotated  # (1, (1, 2, 3, 4)): BTCV's liver is our 1
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monai_ag.data.classes import CLASS_NAMES, ORGAN_NAMES, class_index

__all__ = ["PRESETS", "LabelPreset", "get_preset", "load_mapping"]


@dataclass(frozen=True)
class LabelPreset:
    """
    A dataset's label convention mapped onto the bundle's classes.

    Args:
        name: the preset's name (``--preset NAME``).
        description: one line: the dataset and what is merged.
        labels: source label value -> bundle class (label-map sources); unlisted values are background.
        masks: mask name (file or folder name, lower case, without ``.nii.gz``) -> bundle class (mask-folder
            sources); unlisted masks are ignored.
        max_label: the largest label value the dataset uses (``None``: not checked); larger values are refused.
        annotated: the bundle classes the dataset annotates; by default every class its mappings reach.
        source: where the numbering comes from.

    Example::

        LabelPreset("mine", "my labels", labels={1: 1, 7: 4}, max_label=7)
    """

    name: str
    description: str
    labels: Mapping[int, int] = field(default_factory=dict)
    masks: Mapping[str, int] = field(default_factory=dict)
    max_label: int | None = None
    annotated: tuple[int, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        for where, mapping in (("labels", self.labels), ("masks", self.masks)):
            bad = {k: v for k, v in mapping.items() if v not in CLASS_NAMES}
            if bad:
                raise ValueError(f"preset {self.name!r}: {where} map to {bad}, not bundle classes {CLASS_NAMES}.")
        if not self.annotated:
            reached = {v for v in (*self.labels.values(), *self.masks.values()) if v != 0}
            object.__setattr__(self, "annotated", tuple(sorted(reached)))

    def mask_class(self, name: str) -> int | None:
        """The bundle class of mask ``name`` (case-insensitive, ``.nii``/``.nii.gz`` dropped), ``None`` if unused."""
        key = name.strip().lower()
        for suffix in (".nii.gz", ".nii"):
            if key.endswith(suffix):
                key = key[: -len(suffix)]
        return self.masks.get(key)


_LIVER, _SPLEEN, _KIDNEY, _PANCREAS = (class_index(n) for n in ("liver", "spleen", "kidney", "pancreas"))

# TotalSegmentator's per-structure mask names (same in v1 and v2), as in its dataset's segmentations/ folder
_TOTALSEG_MASKS = {
    "liver": _LIVER,
    "spleen": _SPLEEN,
    "kidney_left": _KIDNEY,
    "kidney_right": _KIDNEY,
    "pancreas": _PANCREAS,
}

PRESETS: dict[str, LabelPreset] = {
    p.name: p
    for p in (
        LabelPreset(
            "monai_ag",
            "labels already in the bundle's classes (1 liver, 2 spleen, 3 kidney, 4 pancreas)",
            labels={k: k for k in ORGAN_NAMES},
            max_label=max(ORGAN_NAMES),
            source="monai_ag.data.classes.CLASS_NAMES",
        ),
        LabelPreset(
            "ircad",
            "3D-IRCADb-01 MASKS_DICOM/<organ>/ folders (no pancreas mask; some cases label the liver only)",
            masks={"liver": _LIVER, "spleen": _SPLEEN, "leftkidney": _KIDNEY, "rightkidney": _KIDNEY},
            # the organs a case annotates are the masks it has: see import_ct
            source="https://www.ircad.fr/research/data-sets/liver-segmentation-3d-ircadb-01/",
        ),
        LabelPreset(
            "totalsegmentator_v2",
            "TotalSegmentator v2 'total' task (117 classes): 1 spleen, 2/3 kidney right/left, 5 liver, 7 pancreas",
            labels={1: _SPLEEN, 2: _KIDNEY, 3: _KIDNEY, 5: _LIVER, 7: _PANCREAS},
            masks=_TOTALSEG_MASKS,
            max_label=117,
            source="TotalSegmentator totalsegmentator/map_to_binary.py class_map['total'] (v2); Wasserthal et al. 2023",
        ),
        LabelPreset(
            "totalsegmentator_v1",
            "TotalSegmentator v1 (104 classes): 1 spleen, 2/3 kidney right/left, 5 liver, 10 pancreas",
            labels={1: _SPLEEN, 2: _KIDNEY, 3: _KIDNEY, 5: _LIVER, 10: _PANCREAS},
            masks=_TOTALSEG_MASKS,
            max_label=104,
            source="TotalSegmentator v1.5 totalsegmentator/map_to_binary.py class_map['total']",
        ),
        LabelPreset(
            "btcv",
            "BTCV / Synapse multi-atlas abdomen (13 organs): 1 spleen, 2/3 kidney right/left, 6 liver, 11 pancreas",
            labels={1: _SPLEEN, 2: _KIDNEY, 3: _KIDNEY, 6: _LIVER, 11: _PANCREAS},
            max_label=13,
            source="https://www.synapse.org/#!Synapse:syn3193805/wiki/217789 (MICCAI 2015 Multi-Atlas Labeling Beyond "
            "the Cranial Vault)",
        ),
        LabelPreset(
            "amos",
            "AMOS22 (15 organs): 1 spleen, 2/3 kidney right/left, 6 liver, 10 pancreas",
            labels={1: _SPLEEN, 2: _KIDNEY, 3: _KIDNEY, 6: _LIVER, 10: _PANCREAS},
            max_label=15,
            source="AMOS22 dataset.json 'labels' (https://zenodo.org/records/7262581; Ji et al., NeurIPS 2022)",
        ),
        LabelPreset(
            "flare22",
            "FLARE22 (13 organs): 1 liver, 2 kidney right, 3 spleen, 4 pancreas, 13 kidney left",
            labels={1: _LIVER, 2: _KIDNEY, 3: _SPLEEN, 4: _PANCREAS, 13: _KIDNEY},
            max_label=13,
            source="https://flare22.grand-challenge.org/ (dataset.json of the FLARE22 labelled training set)",
        ),
        LabelPreset(
            "word",
            "WORD (16 organs): 1 liver, 2 spleen, 3/4 kidney left/right, 8 pancreas",
            labels={1: _LIVER, 2: _SPLEEN, 3: _KIDNEY, 4: _KIDNEY, 8: _PANCREAS},
            max_label=16,
            source="https://github.com/HiLab-git/WORD (Luo et al., Medical Image Analysis 2022), dataset.json 'labels'",
        ),
        LabelPreset(
            "kits",
            "KiTS19/21/23: 1 kidney, 2 tumour, 3 cyst (KiTS21+) -> kidney",
            labels={1: _KIDNEY, 2: _KIDNEY, 3: _KIDNEY},
            max_label=3,
            source="https://kits-challenge.org/kits23/ (labels: 1 kidney, 2 tumor, 3 cyst)",
        ),
        LabelPreset(
            "msd_task03_liver",
            "Medical Segmentation Decathlon Task03_Liver: 1 liver, 2 tumour -> liver",
            labels={1: _LIVER, 2: _LIVER},
            max_label=2,
            source="http://medicaldecathlon.com/ Task03_Liver dataset.json (0 background, 1 liver, 2 cancer)",
        ),
        LabelPreset(
            "msd_task07_pancreas",
            "Medical Segmentation Decathlon Task07_Pancreas: 1 pancreas, 2 tumour -> pancreas",
            labels={1: _PANCREAS, 2: _PANCREAS},
            max_label=2,
            source="http://medicaldecathlon.com/ Task07_Pancreas dataset.json (0 background, 1 pancreas, 2 cancer)",
        ),
        LabelPreset(
            "msd_task09_spleen",
            "Medical Segmentation Decathlon Task09_Spleen: 1 spleen",
            labels={1: _SPLEEN},
            max_label=1,
            source="http://medicaldecathlon.com/ Task09_Spleen dataset.json (0 background, 1 spleen)",
        ),
    )
}


def get_preset(name: str) -> LabelPreset:
    """The preset called ``name`` (case-insensitive; ``-`` and ``_`` alike); a clear error listing the presets."""
    key = name.strip().lower().replace("-", "_")
    if key not in PRESETS:
        raise KeyError(f"unknown label preset {name!r}; choose one of {sorted(PRESETS)} or give --mapping JSON.")
    return PRESETS[key]


def _bundle_class(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} is not a bundle class (a name in {list(CLASS_NAMES.values())} or 0-4).")
    if isinstance(value, int):
        if value not in CLASS_NAMES:
            raise ValueError(f"{where}: class {value} is not one of the bundle's classes {CLASS_NAMES}.")
        return value
    if isinstance(value, str):
        try:
            return class_index(value)
        except KeyError as e:
            raise ValueError(f"{where}: {e.args[0]}") from None
    raise ValueError(f"{where}: {value!r} is not a bundle class (a name in {list(CLASS_NAMES.values())} or 0-4).")


def load_mapping(mapping: str | os.PathLike | Mapping[str, Any], name: str = "user") -> LabelPreset:
    """
    A user's label mapping as a :py:class:`LabelPreset`, from a JSON file (or an already parsed dict).

    Two forms are accepted: a flat object whose integer-like keys are label values and other keys mask names,
    ``{"1": "liver", "2": "liver", "6": "spleen", "leber": "liver"}``; or an object with optional ``"labels"``,
    ``"masks"``, ``"max_label"`` and ``"annotated"`` entries. Targets are bundle class names or values (0
    background). ``"annotated"`` defaults to every class the mapping reaches.

    Args:
        mapping: a JSON file path or a dict.
        name: the preset name reported in messages.

    Raises:
        ValueError: naming the file and key for anything that is not a valid mapping.

    Example::

        preset = load_mapping({"labels": {"1": "liver", "2": "liver"}, "annotated": ["liver"]})
    """
    where = "mapping"
    if not isinstance(mapping, Mapping):
        where = os.fspath(mapping)
        try:
            with open(where, encoding="utf-8") as f:
                mapping = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"mapping {where} is not valid JSON: {e.msg} at line {e.lineno}.") from e
        except OSError as e:
            raise ValueError(f"cannot read mapping {where}: {e}") from e
        if not isinstance(mapping, Mapping):
            raise ValueError(f"mapping {where} must hold a JSON object, got {type(mapping).__name__}.")
    structured = set(mapping) & {"labels", "masks", "max_label", "annotated"}
    if structured:
        unknown = set(mapping) - {"labels", "masks", "max_label", "annotated", "description"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected labels, masks, max_label, annotated.")
        raw_labels, raw_masks = mapping.get("labels", {}), mapping.get("masks", {})
    else:
        raw_labels = {k: v for k, v in mapping.items() if str(k).strip().lstrip("-").isdigit()}
        raw_masks = {k: v for k, v in mapping.items() if k not in raw_labels}
    labels: dict[int, int] = {}
    for key, value in dict(raw_labels).items():
        if not str(key).strip().isdigit():
            raise ValueError(f'{where}: label key {key!r} must be a non-negative integer label value (e.g. "6").')
        labels[int(key)] = _bundle_class(value, f"{where}, label {key}")
    masks = {str(k).strip().lower(): _bundle_class(v, f"{where}, mask {k!r}") for k, v in dict(raw_masks).items()}
    if not labels and not masks:
        raise ValueError(f"{where}: the mapping is empty; map label values or mask names to bundle classes.")
    annotated = (
        tuple(sorted({_bundle_class(v, f"{where}, annotated") for v in mapping.get("annotated", [])} - {0}))
        if structured
        else ()
    )
    max_label = mapping.get("max_label") if structured else None
    if max_label is not None and (not isinstance(max_label, int) or isinstance(max_label, bool) or max_label < 0):
        raise ValueError(f"{where}: max_label must be a non-negative integer, got {max_label!r}.")
    return LabelPreset(
        name, str(mapping.get("description", f"user mapping {where}")), labels, masks, max_label, annotated, where
    )
