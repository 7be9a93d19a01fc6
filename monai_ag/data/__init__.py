"""Data utilities of monai-ag: the synthetic abdominal CT phantom dataset, datalists and their checks."""

from __future__ import annotations

from .datalist import (
    check_datalist,
    inference_datalist,
    is_dicom_series_dir,
    load_datalist,
    split_datalist,
    train_val_datalists,
)
from .phantom import (
    DEFAULT_PHANTOM_SHAPE,
    DEFAULT_PHANTOM_SPACING,
    MIN_PHANTOM_FIELD_OF_VIEW_MM,
    PHANTOM_LABELS,
    PHANTOM_MARKER_KEY,
    PHANTOM_VERSION,
    ensure_phantom_dataset,
    generate_phantom_case,
    generate_phantom_dataset,
)
from .sources import inference_inputs, training_datalists

__all__ = [
    "check_datalist",
    "inference_datalist",
    "inference_inputs",
    "is_dicom_series_dir",
    "load_datalist",
    "split_datalist",
    "train_val_datalists",
    "training_datalists",
    "DEFAULT_PHANTOM_SHAPE",
    "DEFAULT_PHANTOM_SPACING",
    "MIN_PHANTOM_FIELD_OF_VIEW_MM",
    "PHANTOM_LABELS",
    "PHANTOM_MARKER_KEY",
    "PHANTOM_VERSION",
    "ensure_phantom_dataset",
    "generate_phantom_case",
    "generate_phantom_dataset",
]
