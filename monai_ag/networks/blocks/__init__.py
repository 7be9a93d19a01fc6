from __future__ import annotations

from .grid_attention import FoldedGridAttentionGate, GridAttentionGate

__all__ = ["FoldedGridAttentionGate", "GridAttentionGate"]
