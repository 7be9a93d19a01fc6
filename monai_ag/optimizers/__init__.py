"""Learning-rate schedules (after MONAI's ``monai.optimizers``)."""

from __future__ import annotations

from .lr_scheduler import WarmupCosineFactor

__all__ = ["WarmupCosineFactor"]
