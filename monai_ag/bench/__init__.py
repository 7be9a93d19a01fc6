"""
``python -m monai_ag.bench``: forward, forward+backward, peak memory, achieved GFLOP/s and full-volume
sliding-window time of :py:class:`~monai_ag.networks.nets.GridAttentionUNet` against its gate-less
backbone and MONAI's ``AttentionUnet``/``UNet``, with a dense 3D-convolution reference, on this device.

- :mod:`~monai_ag.bench.networks`: the compared networks (the catalogue) and the baseline;
- :mod:`~monai_ag.bench.measure`: the measurements of one call (time, peak memory, FLOPs);
- :mod:`~monai_ag.bench.checks`: fast path and bfloat16 against the plain float32 modules;
- :mod:`~monai_ag.bench.benchmark`: :py:func:`run_benchmark`, the run step by step;
- :mod:`~monai_ag.bench.targets`, :mod:`~monai_ag.bench.report`, :mod:`~monai_ag.bench.environment`:
  the targets, the printed table, the record of versions and device;
- :mod:`~monai_ag.bench.command`: the command line.
"""

from __future__ import annotations

from .benchmark import SW_SETTINGS, run_benchmark
from .command import main
from .measure import count_flops, peak_memory
from .networks import BASELINE, build_networks
from .report import format_table
from .targets import PRECISION_TARGETS, TARGETS

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
