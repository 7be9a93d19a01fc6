from __future__ import annotations

from .attention import AttentionImageHandler
from .averaging import WeightAveraging
from .checkpoint import AtomicDiskSaver, KeyMetricCheckpointSaver, TrainingCheckpoint
from .config import listed
from .metrics import per_class_dice
from .time_limit import TrainingTimeLimit

__all__ = [
    "AtomicDiskSaver",
    "AttentionImageHandler",
    "KeyMetricCheckpointSaver",
    "TrainingCheckpoint",
    "TrainingTimeLimit",
    "WeightAveraging",
    "listed",
    "per_class_dice",
]
