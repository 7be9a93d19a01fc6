from __future__ import annotations

from .grid_attention_unet import GridAttentionUNet

__all__ = ["GridAttentionUNet"]
