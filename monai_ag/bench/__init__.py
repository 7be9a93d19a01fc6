"""
``python -m monai_ag.bench``: forward, forward+backward, peak memory, achieved GFLOP/s and full-volume
sliding-window time of :py:class:`~monai_ag.networks.nets.GridAttentionUNet` against its gate-less
backbone and MONAI's ``AttentionUnet``/``UNet``, with a dense 3D-convolution reference, on this device.
"""

from __future__ import annotations

from .benchmark import BASELINE, PRECISION_TARGETS, SW_SETTINGS, TARGETS, build_networks, count_flops, format_table, main, peak_memory, run_benchmark

__all__ = [
    "BASELINE",
    "PRECISION_TARGETS",
    "SW_SETTINGS",
    "TARGETS",
    "build_networks",
    "count_flops",
    "format_table",
    "main",
    "peak_memory",
    "run_benchmark",
]
