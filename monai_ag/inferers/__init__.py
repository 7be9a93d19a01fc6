from __future__ import annotations

from .flip_tta import FlipTTAInferer

__all__ = ["FlipTTAInferer"]
