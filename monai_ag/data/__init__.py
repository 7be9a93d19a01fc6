"""Data utilities of monai-ag: the synthetic abdominal CT phantom dataset, datalists and their checks.

Names are loaded on first use, so ``python -m monai_ag.data.phantom`` runs its module only once.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "checks": ("InvalidImageError", "check_inference_image", "check_inference_inputs"),
    "classes": ("CLASS_NAMES", "NUM_CLASSES", "ORGAN_NAMES", "class_index"),
    "datalist": (
        "check_datalist",
        "inference_datalist",
        "is_dicom_series_dir",
        "load_datalist",
        "split_datalist",
        "train_val_datalists",
    ),
    "phantom": (
        "DEFAULT_PHANTOM_SHAPE",
        "DEFAULT_PHANTOM_SPACING",
        "MIN_PHANTOM_FIELD_OF_VIEW_MM",
        "PHANTOM_LABELS",
        "PHANTOM_MARKER_KEY",
        "PHANTOM_VERSION",
        "ensure_phantom_dataset",
        "generate_phantom_case",
        "generate_phantom_dataset",
    ),
    "sources": ("inference_inputs", "training_datalists"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
