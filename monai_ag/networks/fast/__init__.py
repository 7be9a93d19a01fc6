from __future__ import annotations

# what the network's dispatch uses; the building blocks are imported from their modules
from .adapters import state_key
from .probe import fast_path_available
from .unet import FoldedGridAttentionUNet

__all__ = ["FoldedGridAttentionUNet", "fast_path_available", "state_key"]
