"""Data utilities of monai-ag: the bundle's classes, voxel-grid and inference-input checks, datalists, the
synthetic abdominal CT phantom and where the bundle's data comes from.

Runnable modules are packages with a ``__main__.py`` (``python -m monai_ag.data.phantom``), so this package
imports its modules directly.
"""

from __future__ import annotations

from .checks import InvalidImageError, check_inference_image, check_inference_inputs
from .classes import CLASS_NAMES, NUM_CLASSES, ORGAN_NAMES, class_index
from .datalist import check_datalist, inference_datalist, load_datalist, split_datalist, train_val_datalists
from .geometry import AFFINE_ATOL, IMAGE_SUFFIXES, NIFTI_SUFFIXES, same_grid, squeeze_trailing, strip_image_suffix
from .images import is_dicom_series_dir, is_nifti_file, read_image
from .import_ct import find_cases  # import_ct() itself: monai_ag.data.import_ct.import_ct (the name is the module's)
from .phantom import (
    DEFAULT_PHANTOM_SHAPE,
    DEFAULT_PHANTOM_SPACING,
    MIN_PHANTOM_FIELD_OF_VIEW_MM,
    PHANTOM_MARKER_KEY,
    PHANTOM_VERSION,
    generate_phantom_case,
    generate_phantom_dataset,
)
from .presets import PRESETS, LabelPreset, get_preset, load_mapping
from .sources import inference_inputs, training_datalists

__all__ = [
    "AFFINE_ATOL",
    "InvalidImageError",
    "LabelPreset",
    "PRESETS",
    "CLASS_NAMES",
    "DEFAULT_PHANTOM_SHAPE",
    "DEFAULT_PHANTOM_SPACING",
    "IMAGE_SUFFIXES",
    "MIN_PHANTOM_FIELD_OF_VIEW_MM",
    "NIFTI_SUFFIXES",
    "NUM_CLASSES",
    "ORGAN_NAMES",
    "PHANTOM_MARKER_KEY",
    "PHANTOM_VERSION",
    "check_datalist",
    "check_inference_image",
    "check_inference_inputs",
    "class_index",
    "generate_phantom_case",
    "find_cases",
    "generate_phantom_dataset",
    "get_preset",
    "inference_datalist",
    "inference_inputs",
    "is_dicom_series_dir",
    "is_nifti_file",
    "load_datalist",
    "load_mapping",
    "read_image",
    "same_grid",
    "split_datalist",
    "squeeze_trailing",
    "strip_image_suffix",
    "train_val_datalists",
    "training_datalists",
]
