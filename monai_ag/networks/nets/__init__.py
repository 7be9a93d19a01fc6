from __future__ import annotations

from .grid_attention_unet import FoldedGridAttentionUNet, GridAttentionUNet

__all__ = ["FoldedGridAttentionUNet", "GridAttentionUNet"]
