from __future__ import annotations

from .attention import AttentionImageHandler
from .checkpoint import AtomicDiskSaver, KeyMetricCheckpointSaver, TrainingCheckpoint
from .metrics import per_class_dice

__all__ = ["AtomicDiskSaver", "AttentionImageHandler", "KeyMetricCheckpointSaver", "TrainingCheckpoint", "per_class_dice"]
