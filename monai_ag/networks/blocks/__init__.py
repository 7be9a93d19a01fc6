from __future__ import annotations

from .grid_attention import GridAttentionGate

__all__ = ["GridAttentionGate"]
