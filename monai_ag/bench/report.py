"""
The benchmark's results as the Markdown the command prints: the run's settings and reference, one
row per network with its ratios against MONAI's ``AttentionUnet``, the correctness checks and the
targets. Figures that were not measured print as ``-``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_table"]


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "no")


def _header_lines(results: dict[str, Any]) -> list[str]:
    """The device, the settings, the reference convolution and the sliding-window setup."""
    ref, s, dev = results["reference"], results["settings"], results["device"]
    lines = [
        f"device: {dev['name']} ({dev['type']}, {dev['threads']} threads, "
        f"amp {dev['amp']}); patch {tuple(s['patch_size'])}, batch {s['batch_size']}, "
        f"{s['out_channels']} classes; medians of {s['repeats']} interleaved rounds",
        f"reference: {ref['definition']}: {ref['reference_gflops']:.0f} GFLOP/s ({ref['best_layout']}; "
        + ", ".join(f"{k} {v:.0f}" for k, v in ref["gflops"].items())
        + ")",
    ]
    sw = results["sliding_window"]
    if not sw["skipped"]:
        lines.append(
            f"sliding window: volume {tuple(sw['volume_size'])} ({sw['source']}), roi {tuple(sw['roi_size'])}, "
            f"overlap {sw['overlap']}, mode {sw['mode']}, sw_batch_size {sw['sw_batch_size']}"
        )
    return lines


def _network_rows(networks: dict[str, Any]) -> list[str]:
    """The table of networks: figures and ratios against the baseline."""
    lines = [
        "",
        "| network | params | fwd GFLOP | fwd s | GFLOP/s (% ref) | fwd+bwd s | fwd peak MiB | fwd+bwd peak MiB "
        "| sliding window s | × AttentionUnet: fwd / fwd+bwd / fwd+bwd memory / sliding window |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in networks.values():
        q = r["ratios_vs_baseline"]
        lines.append(
            f"| {r['label']} | {r['params'] / 1e6:.2f} M | {r['forward_gflop']:.1f} | {_fmt(r['forward_s'], '.3f')} "
            f"| {r['forward_gflops']:.0f} ({100 * r['forward_fraction_of_reference']:.0f} %) "
            f"| {_fmt(r.get('train_s'), '.3f')} "
            f"| {_fmt(r.get('forward_peak_mib'), '.0f')} | {_fmt(r.get('train_peak_mib'), '.0f')} "
            f"| {_fmt(r.get('sliding_window_s'), '.2f')} "
            f"| {_fmt(q['forward_s'], '.2f')} / {_fmt(q['train_s'], '.2f')} / {_fmt(q['train_peak_mib'], '.2f')} "
            f"/ {_fmt(q['sliding_window_s'], '.2f')} |"
        )
    return lines


def _check_lines(results: dict[str, Any]) -> list[str]:
    """The fast-path and bfloat16 correctness checks, one paragraph each."""
    lines = []
    for name, c in results.get("fast_path_check", {}).items():
        lines.append(
            f"\nfast path vs plain modules ({name}): max |diff| {c['max_abs_diff']:.1e}, "
            f"argmax mismatches {c['argmax_mismatches']} / {c['voxels']}"
        )
    c = results.get("bf16_check") or {}
    if c:
        lines.append(
            f"\nbf16 vs fp32 plain modules: max |diff| {c['max_abs_diff']:.2g} (max |logit| {c['max_abs_logit']:.2g}), "
            f"argmax agreement {100 * c['argmax_agreement']:.3f} % of {c['voxels']} voxels (untrained weights)"
        )
    return lines


def _target_rows(results: dict[str, Any]) -> list[str]:
    """The table of targets, the precision targets (CPU) last."""
    lines = ["", "| target | value | threshold | met |", "|---|---|---|---|"]
    for t in results["targets"].values():
        lines.append(
            f"| {t['description']} | {_fmt(t['value'], '.3f')} | {t['direction']} {t['threshold']} | {_met(t['met'])} |"
        )
    for t in (results.get("precision_targets") or {}).values():
        thr = "-" if t["threshold"] is None else f">= {t['threshold']}"
        lines.append(f"| {t['description']} ({t['cpu_kind']}) | {_fmt(t['value'], '.2f')} | {thr} | {_met(t['met'])} |")
    return lines


def format_table(results: dict[str, Any]) -> str:
    """The results of :py:func:`~monai_ag.bench.benchmark.run_benchmark` as a Markdown table (ratios against
    MONAI's ``AttentionUnet``) followed by the targets."""
    lines = _header_lines(results) + _network_rows(results["networks"]) + _check_lines(results) + _target_rows(results)
    return "\n".join(lines)
