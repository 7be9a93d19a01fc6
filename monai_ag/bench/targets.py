"""
The project's speed and memory targets, and their evaluation on the benchmark's per-network results
(name -> figures such as ``forward_s``, ``train_s``, ``train_peak_mib``, ``sliding_window_s``).

A target whose figures were not measured (a network left out, sliding window skipped) has the value
``None`` and ``met`` ``None``: not measured is neither met nor missed.
"""

from __future__ import annotations

from typing import Any

from monai_ag.utils import precision as _precision

from .networks import BASELINE

__all__ = [
    "PRECISION_TARGETS",
    "RATIO_KEYS",
    "TARGETS",
    "cpu_kind",
    "precision_targets",
    "ratios_vs_baseline",
    "targets",
]

#: the project's speed and memory targets: name -> (description, threshold, direction)
TARGETS: dict[str, tuple[str, float, str]] = {
    "gate_forward_overhead": ("gates' share of forward time over the gate-less network (fast paths)", 0.10, "<="),
    "forward_fraction_of_reference": ("inference forward throughput / dense 3D-conv reference", 0.55, ">="),
    "sliding_window_ratio_vs_monai": ("full-volume sliding-window time / MONAI AttentionUnet", 1.0, "<="),
    "train_time_ratio_vs_no_gates": ("forward+backward time / the gate-less network", 1.2, "<="),
    "train_memory_ratio_vs_no_gates": ("forward+backward peak memory / the gate-less network", 1.2, "<="),
}
#: the CPU precision targets (speed-ups, side by side in one run), by the CPU's bfloat16 units:
#: name -> (description, {"amx": threshold, "avx512_bf16": threshold, "none": threshold or None})
PRECISION_TARGETS: dict[str, tuple[str, dict[str, float | None]]] = {
    "bf16_forward_speedup": (
        "inference forward: fp32 fast path time / bf16 fast path time",
        {"amx": 2.5, "avx512_bf16": 1.5, "none": None},
    ),
    "bf16_train_speedup": (
        "training step (fwd+bwd): plain fp32 time / bf16 channels-last time",
        {"amx": 2.0, "avx512_bf16": 1.5, "none": None},
    ),
    "fp32_layout_train_speedup": (
        "training step (fwd+bwd): plain fp32 time / fp32 channels-last time",
        {"amx": None, "avx512_bf16": None, "none": 1.3},
    ),
}
#: the figures every network is compared on against :data:`~monai_ag.bench.networks.BASELINE`
RATIO_KEYS = ("forward_s", "train_s", "forward_peak_mib", "train_peak_mib", "sliding_window_s")


def _ratio(results: dict[str, Any], a: str, b: str, key: str) -> float | None:
    """``results[a][key] / results[b][key]``; ``None`` when either network or figure is missing or zero."""
    if a in results and b in results and results[a].get(key) and results[b].get(key):
        return results[a][key] / results[b][key]
    return None


def ratios_vs_baseline(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Network -> each of :data:`RATIO_KEYS` divided by the baseline's (``None`` where either is missing)."""
    return {name: {key: _ratio(results, name, BASELINE, key) for key in RATIO_KEYS} for name in results}


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each of :data:`TARGETS` with its description, value, threshold, direction and whether it is met."""
    gate = _ratio(results, "attention_unet", "no_gates", "forward_s")
    values = {
        "gate_forward_overhead": None if gate is None else gate - 1.0,
        "forward_fraction_of_reference": results.get("attention_unet", {}).get("forward_fraction_of_reference"),
        "sliding_window_ratio_vs_monai": _ratio(results, "attention_unet", BASELINE, "sliding_window_s"),
        "train_time_ratio_vs_no_gates": _ratio(results, "attention_unet_plain", "no_gates_plain", "train_s"),
        "train_memory_ratio_vs_no_gates": _ratio(results, "attention_unet_plain", "no_gates_plain", "train_peak_mib"),
    }
    out = {}
    for key, (text, threshold, op) in TARGETS.items():
        v = values[key]
        met = None if v is None else (v <= threshold if op == "<=" else v >= threshold)
        out[key] = {"description": text, "value": v, "threshold": threshold, "direction": op, "met": met}
    return out


def cpu_kind() -> str:
    """This CPU's bfloat16 units, the key of :data:`PRECISION_TARGETS`' thresholds: ``"amx"``,
    ``"avx512_bf16"`` or ``"none"``."""
    return "amx" if _precision.cpu_has_amx() else "avx512_bf16" if _precision.cpu_has_bf16() else "none"


def precision_targets(results: dict[str, Any], kind: str | None = None) -> dict[str, dict[str, Any]]:
    """Each of :data:`PRECISION_TARGETS` with its description, value, the threshold for the CPU's ``kind``
    (default: this CPU's, :py:func:`cpu_kind`) and whether it is met (``None`` without a threshold)."""
    kind = cpu_kind() if kind is None else kind
    values = {
        "bf16_forward_speedup": _ratio(results, "attention_unet", "attention_unet_bf16", "forward_s"),
        "bf16_train_speedup": _ratio(results, "attention_unet_plain", "attention_unet_bf16", "train_s"),
        "fp32_layout_train_speedup": _ratio(results, "attention_unet_plain", "attention_unet_fp32_cl", "train_s"),
    }
    out = {}
    for key, (text, thresholds) in PRECISION_TARGETS.items():
        v, threshold = values[key], thresholds[kind]
        met = None if v is None or threshold is None else v >= threshold
        out[key] = {"description": text, "value": v, "threshold": threshold, "cpu_kind": kind, "met": met}
    return out
