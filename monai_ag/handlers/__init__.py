from __future__ import annotations

from .checkpoint import KeyMetricCheckpointSaver, TrainingCheckpoint
from .metrics import per_class_dice

__all__ = ["KeyMetricCheckpointSaver", "TrainingCheckpoint", "per_class_dice"]
