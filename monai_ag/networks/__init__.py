from __future__ import annotations

from .blocks import GridAttentionGate
from .export import export_onnx
from .nets import GridAttentionUNet

__all__ = ["GridAttentionGate", "GridAttentionUNet", "export_onnx"]
