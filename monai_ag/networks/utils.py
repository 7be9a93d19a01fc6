"""The former home of :py:func:`~monai_ag.networks.export.export_onnx`; kept so existing imports keep working."""

from __future__ import annotations

from monai_ag.networks.export import export_onnx

__all__ = ["export_onnx"]
