"""
The benchmark's measurements of one call: wall time (synchronised on CUDA), peak tensor memory,
forward FLOPs, and the training step they time; plus the inputs of sliding-window inference (a
smooth synthetic volume or a CT file).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "autocast",
    "count_flops",
    "load_ct",
    "median",
    "peak_memory",
    "synthetic_volume",
    "timed",
    "train_step",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds that ``fn()`` takes, with the device synchronised before and after (CUDA runs asynchronously)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """Float16 autocast on CUDA when ``amp``; a disabled context elsewhere (CPU precisions are entries of
    the catalogue, not a setting of the run)."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


def train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, amp: bool) -> None:
    """One forward+backward step of ``net`` on ``(x, y)`` with cross-entropy (no optimiser step)."""
    net.zero_grad(set_to_none=True)
    with autocast(device, amp):
        logits = net(x)
    F.cross_entropy(logits.float(), y).backward()


def median(values: list[float]) -> float | None:
    """The median of ``values``, ``None`` when there are none."""
    return statistics.median(values) if values else None


def count_flops(net: nn.Module, x: torch.Tensor) -> int:
    """Forward FLOPs of ``net`` (eval mode, plain modules) on ``x``, by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    fast = getattr(net, "fast_inference", None)
    if fast is not None:
        net.fast_inference = False  # count what the network computes, not the folded path's work
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            net.eval()(x)
        return int(counter.get_total_flops())
    finally:
        if fast is not None:
            net.fast_inference = fast


def peak_memory(fn: Callable[[], Any], device: torch.device) -> float:
    """
    Peak tensor memory (MiB) that ``fn`` allocates above what was allocated before it: CUDA's
    allocator statistics on GPU; on CPU, the running sum of the profiler's per-operator allocations.
    """
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events() if e.self_cpu_memory_usage)
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak / 2**20


def synthetic_volume(size: Sequence[int], device: torch.device) -> torch.Tensor:
    """A smooth random volume ``(1, 1, *size)``: the speed does not depend on the content."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(1, 1, *[max(2, s // 8) for s in size], generator=g)
    return F.interpolate(coarse, size=tuple(size), mode="trilinear", align_corners=False).to(device)


def load_ct(path: str, device: torch.device) -> torch.Tensor:
    """A CT volume resampled to 2 mm, intensities scaled from [-175, 250] HU to [0, 1], ``(1, 1, ...)``."""
    from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Orientation, ScaleIntensityRange, Spacing

    load = Compose(
        [
            LoadImage(image_only=True),
            EnsureChannelFirst(),
            Orientation(axcodes="RAS"),
            Spacing(pixdim=(2.0, 2.0, 2.0), mode="bilinear"),
            ScaleIntensityRange(-175, 250, 0.0, 1.0, clip=True),
        ]
    )
    return torch.as_tensor(load(path)).float()[None].to(device)
