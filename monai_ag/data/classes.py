"""The bundle's classes, defined once: label value -> organ name (0 is background)."""

from __future__ import annotations

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "ORGAN_NAMES", "class_index"]

#: label value -> name, as in ``bundle/configs/*.json`` (``class_names``) and ``metadata.json`` (``channel_def``)
CLASS_NAMES: dict[int, str] = {0: "background", 1: "liver", 2: "spleen", 3: "kidney", 4: "pancreas"}
#: the organs only (background dropped), the classes that are scored
ORGAN_NAMES: dict[int, str] = {k: v for k, v in CLASS_NAMES.items() if k != 0}
NUM_CLASSES: int = len(CLASS_NAMES)


def class_index(name: str) -> int:
    """The label value of class ``name`` (case-insensitive); a clear error for an unknown name."""
    for value, known in CLASS_NAMES.items():
        if known == name.strip().lower():
            return value
    raise KeyError(f"unknown class {name!r}; the bundle's classes are {list(CLASS_NAMES.values())}.")
