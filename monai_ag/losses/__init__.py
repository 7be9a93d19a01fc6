from __future__ import annotations

from .partial import PartialLabelLoss, encode_annotated, split_target

__all__ = ["PartialLabelLoss", "encode_annotated", "split_target"]
