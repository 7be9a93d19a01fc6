from __future__ import annotations

from .blocks import GridAttentionGate
from .nets import GridAttentionUNet

__all__ = ["GridAttentionGate", "GridAttentionUNet"]
