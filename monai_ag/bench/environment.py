"""
What the benchmark records about where it ran: the versions of Python, torch, MONAI and this package,
the device's name, and on CPU its vector extensions and bfloat16 capability (the figures, and which
precision targets apply, depend on them).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

from monai_ag.utils import precision as _precision

__all__ = ["cpu_flags", "cpu_record", "device_name", "device_record", "versions"]


def _cpuinfo_lines() -> list[str]:
    """The lines of ``/proc/cpuinfo``; none where it cannot be read (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_flags() -> list[str]:
    """The vector/matrix extensions in ``/proc/cpuinfo``'s flags (AVX*, AMX, FMA, F16C), sorted."""
    for line in _cpuinfo_lines():
        if line.startswith(("flags", "Features")):
            flags = line.split(":", 1)[1].split()
            return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sve", "bf16", "asimd")))
    return []


def cpu_record() -> dict[str, Any]:
    """The CPU's flags and bfloat16 capability, for the JSON."""
    return {
        "cpu_flags": cpu_flags(),
        "cpu_capabilities": _precision.cpu_capabilities(),
        "bf16_units": _precision.cpu_has_bf16(),
        "amx": _precision.cpu_has_amx(),
        "auto_precision": _precision.resolve_precision("auto", "cpu"),
    }


def device_name(dev: torch.device) -> str:
    """The GPU's name, or the CPU's model name and its number of logical CPUs."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    name = platform.processor() or platform.machine()
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    return f"{name}, {os.cpu_count()} logical CPUs"


def device_record(dev: torch.device, amp: bool) -> dict[str, Any]:
    """The device of the run for the JSON: type, name, threads, float16 autocast and on CPU :py:func:`cpu_record`."""
    return {
        "type": dev.type,
        "name": device_name(dev),
        "threads": torch.get_num_threads(),
        "amp": amp,
        **(cpu_record() if dev.type == "cpu" else {}),
    }


def versions() -> dict[str, str]:
    """The versions of Python, torch, MONAI and ``monai_ag``."""
    import monai

    import monai_ag

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "monai_ag": monai_ag.__version__,
    }
