"""Deterministic synthetic abdominal CT phantoms for multi-organ segmentation: the dataset the ``monai_ag``
bundle trains on when no real data is available. Nothing is downloaded; every case is a pure function of an
integer seed.

- :mod:`~monai_ag.data.phantom.anatomy`: the anatomy simulator, one CT volume (HU) and its label map of the
  bundle's classes (:data:`monai_ag.data.classes.CLASS_NAMES`);
- :mod:`~monai_ag.data.phantom.dataset`: the dataset writer (Decathlon layout, atomic and idempotent).

Example::

    from monai_ag.data.phantom import generate_phantom_case, generate_phantom_dataset

    image, label, affine = generate_phantom_case(seed=0)
    dataset_json = generate_phantom_dataset("./data/phantom")  # generates once, then reuses

Command line (``__main__.py``)::

    python -m monai_ag.data.phantom --output_dir ./data/phantom --num_cases 12
"""

from __future__ import annotations

from .anatomy import (
    DEFAULT_PHANTOM_SHAPE,
    DEFAULT_PHANTOM_SPACING,
    MIN_PHANTOM_FIELD_OF_VIEW_MM,
    PHANTOM_VERSION,
    generate_phantom_case,
)
from .dataset import PHANTOM_MARKER_KEY, generate_phantom_dataset, main

__all__ = [
    "DEFAULT_PHANTOM_SHAPE",
    "DEFAULT_PHANTOM_SPACING",
    "MIN_PHANTOM_FIELD_OF_VIEW_MM",
    "PHANTOM_MARKER_KEY",
    "PHANTOM_VERSION",
    "generate_phantom_case",
    "generate_phantom_dataset",
    "main",
]
