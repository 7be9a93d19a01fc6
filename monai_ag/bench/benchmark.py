"""
Speed and memory of the Attention U-Net against its gate-less backbone and MONAI's ``AttentionUnet``
and ``UNet``, on the user's own device: ``python -m monai_ag.bench --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_ag.networks.nets import GridAttentionUNet
from monai_ag.utils import precision as _precision
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

__all__ = [
    "BASELINE",
    "SW_SETTINGS",
    "PRECISION_TARGETS",
    "TARGETS",
    "build_networks",
    "count_flops",
    "format_table",
    "main",
    "peak_memory",
    "run_benchmark",
]

#: the bundle's sliding-window inference settings (CPU default)
SW_SETTINGS: dict[str, Any] = {"sw_batch_size": 1, "overlap": 0.25, "mode": "gaussian"}
#: the network every ratio is taken against
BASELINE = "monai_attention_unet"
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
_CHANNELS = (16, 32, 64, 128, 256)
_STRIDES = (2, 2, 2, 2)


def build_networks(out_channels: int = 5, in_channels: int = 1, precisions: bool = True) -> dict[str, dict[str, Any]]:
    """
    The compared networks at equal channels (16..256): name -> ``{"label", "net", "fast"}``, where
    ``fast`` says whether the entry is this package's optimised inference path.

    - ``attention_unet``: the paper configuration of :py:class:`GridAttentionUNet` (fast path);
    - ``attention_unet_plain``: the same weights through the plain modules (``fast_inference=False``);
    - ``no_gates`` / ``no_gates_plain``: the same code without gates (``gated_levels=()``);
    - ``monai_attention_unet``: MONAI's ``AttentionUnet`` as shipped (default layout);
    - ``monai_unet``: MONAI's ``UNet`` with 2 residual units per level;
    - with ``precisions`` (CPU), copies of the paper network with the same weights as the bundle runs
      them on CPU (:py:func:`monai_ag.utils.precision.with_precision`: channels-last weights and
      input): ``attention_unet_bf16``, forward on the bfloat16 fast path and the training step under
      bfloat16 autocast, and ``attention_unet_fp32_cl``, float32 plain modules (forward and training).
    """
    from monai.networks.nets import AttentionUnet, UNet

    torch.manual_seed(0)
    paper = GridAttentionUNet(3, in_channels, out_channels)
    plain = GridAttentionUNet(3, in_channels, out_channels, fast_inference=False)
    plain.load_state_dict(paper.state_dict())
    no_gates = GridAttentionUNet(3, in_channels, out_channels, gated_levels=())
    no_gates_plain = GridAttentionUNet(3, in_channels, out_channels, gated_levels=(), fast_inference=False)
    no_gates_plain.load_state_dict(no_gates.state_dict())
    extra: dict[str, dict[str, Any]] = {}
    if precisions:
        bf16 = GridAttentionUNet(3, in_channels, out_channels)
        bf16.load_state_dict(paper.state_dict())
        cl = GridAttentionUNet(3, in_channels, out_channels, fast_inference=False)
        cl.load_state_dict(paper.state_dict())
        extra = {
            "attention_unet_bf16": {
                "label": "GridAttentionUNet (bf16: fast path / autocast step, channels-last)",
                "net": _precision.PrecisionNetwork(bf16, "bf16"),
                "fast": True,
                "trainable": True,
                "precision": "bf16",
            },
            "attention_unet_fp32_cl": {
                "label": "GridAttentionUNet (fp32 plain modules, channels-last)",
                "net": _precision.PrecisionNetwork(cl, "fp32"),
                "fast": False,
                "precision": "fp32",
            },
        }
    return {
        "attention_unet": {"label": "GridAttentionUNet (paper, fast path)", "net": paper, "fast": True},
        "attention_unet_plain": {"label": "GridAttentionUNet (plain modules)", "net": plain, "fast": False},
        "no_gates": {"label": "same, no gates (fast path)", "net": no_gates, "fast": True},
        "no_gates_plain": {"label": "same, no gates (plain modules)", "net": no_gates_plain, "fast": False},
        BASELINE: {
            "label": "MONAI AttentionUnet",
            "net": AttentionUnet(3, in_channels, out_channels, channels=_CHANNELS, strides=_STRIDES),
            "fast": False,
        },
        "monai_unet": {
            "label": "MONAI UNet (2 res units)",
            "net": UNet(3, in_channels, out_channels, channels=_CHANNELS, strides=_STRIDES, num_res_units=2),
            "fast": False,
        },
        **extra,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


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


def _phantom(size: Sequence[int], device: torch.device) -> torch.Tensor:
    """A smooth random volume ``(1, 1, *size)``: the speed does not depend on the content."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.randn(1, 1, *[max(2, s // 8) for s in size], generator=g)
    return F.interpolate(coarse, size=tuple(size), mode="trilinear", align_corners=False).to(device)


def _load_ct(path: str, device: torch.device) -> torch.Tensor:
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


def _train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, amp: bool) -> None:
    net.zero_grad(set_to_none=True)
    with _autocast(device, amp):
        logits = net(x)
    F.cross_entropy(logits.float(), y).backward()


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_benchmark(
    patch_size: Sequence[int] = (96, 96, 96),
    volume_size: Sequence[int] = (200, 200, 120),
    repeats: int = 5,
    sw_repeats: int | None = None,
    device: str | torch.device | None = None,
    threads: int | None = None,
    out_channels: int = 5,
    batch_size: int = 1,
    amp: bool | None = None,
    image: str | None = None,
    reference_size: int = 48,
    networks: Sequence[str] | None = None,
    onnx: bool = False,
    log: Callable[[str], Any] | None = print,
) -> dict[str, Any]:
    """
    Measure every network of :py:func:`build_networks` and the reference convolution, interleaved
    (one run of each per round, ``repeats`` rounds, medians reported), and return the results as a
    JSON-serialisable dict (see ``docs/performance.md``).

    Args:
        patch_size: input size of the forward and forward+backward measurements.
        volume_size: size of the synthetic volume for sliding-window inference (``image`` replaces it).
        repeats: rounds of forward and forward+backward runs (after one warm-up run).
        sw_repeats: rounds of full-volume sliding-window inference; defaults to ``repeats``; 0 skips it.
        device: ``"cpu"``, ``"cuda"``, ...; defaults to CUDA when available.
        threads: CPU threads (``torch.set_num_threads``); default: torch's.
        out_channels: output classes.
        batch_size: batch of the forward and forward+backward measurements.
        amp: float16 autocast; defaults to on for CUDA (never on CPU).
        image: a CT file to run sliding-window inference on, resampled to 2 mm.
        reference_size: spatial size of the reference convolution (the definition: 48).
        networks: the names to measure (default: all; the baseline is always measured).
        onnx: also time the paper network exported to ONNX (dynamic shapes) in ONNX Runtime (CPU
            only; needs ``onnxscript`` and ``onnxruntime``).
        log: progress printer, ``None`` for silence.

    Example::

        results = run_benchmark(patch_size=(32, 32, 32), volume_size=(40, 40, 40), repeats=1)
        print(format_table(results))
    """
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _run_benchmark(
            patch_size, volume_size, repeats, sw_repeats, device, out_channels, batch_size, amp, image,
            reference_size, networks, onnx, log,
        )
    finally:
        torch.set_num_threads(previous)


def _run_benchmark(
    patch_size: Sequence[int],
    volume_size: Sequence[int],
    repeats: int,
    sw_repeats: int | None,
    device: str | torch.device | None,
    out_channels: int,
    batch_size: int,
    amp: bool | None,
    image: str | None,
    reference_size: int,
    networks: Sequence[str] | None,
    onnx: bool,
    log: Callable[[str], Any] | None,
) -> dict[str, Any]:
    from monai.inferers import SlidingWindowInferer

    say = log or (lambda _msg: None)
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = (dev.type == "cuda") if amp is None else bool(amp) and dev.type == "cuda"
    patch = tuple(int(s) for s in patch_size)
    patch = patch * 3 if len(patch) == 1 else patch
    sw_repeats = repeats if sw_repeats is None else sw_repeats
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")

    nets = build_networks(out_channels, precisions=dev.type == "cpu")
    if networks is not None:
        unknown = set(networks) - set(nets)
        if unknown:
            raise ValueError(f"unknown networks {sorted(unknown)}; choose from {sorted(nets)}.")
        nets = {k: v for k, v in nets.items() if k in set(networks) | {BASELINE}}
    for entry in nets.values():
        entry["net"].to(dev)
    x = torch.randn(batch_size, 1, *patch, device=dev)
    y = torch.randint(0, out_channels, (batch_size, *patch), device=dev)
    if onnx and dev.type == "cpu" and "attention_unet_plain" in nets:
        say("exporting the paper network to ONNX ...")
        nets["onnxruntime"] = {
            "label": "GridAttentionUNet (ONNX Runtime)",
            "net": _OrtNet(nets["attention_unet_plain"]["net"], patch),
            "fast": False,
            "trainable": False,
        }

    say(f"device {dev} ({_device_name(dev)}), threads {torch.get_num_threads()}, amp {amp}, patch {patch}")
    results: dict[str, Any] = {name: {"label": e["label"], "fast_path": e["fast"]} for name, e in nets.items()}
    for name, e in nets.items():
        net = e["net"]
        results[name]["params"] = sum(p.numel() for p in net.parameters())
        results[name]["forward_gflop"] = count_flops(getattr(net, "source", getattr(net, "network", net)), x) / 1e9

    # fast vs plain: the optimised path must compute the same function
    check: dict[str, Any] = {}
    pairs = (
        ("attention_unet", "attention_unet_plain"),
        ("no_gates", "no_gates_plain"),
        ("onnxruntime", "attention_unet_plain"),
    )
    for fast, plain in pairs:
        if fast in nets and plain in nets:
            with torch.no_grad():
                a, b = nets[fast]["net"].eval()(x).float(), nets[plain]["net"].eval()(x).float()
            mismatch = a.argmax(1) != b.argmax(1)
            top2 = b.topk(2, dim=1).values
            gap = (top2[:, 0] - top2[:, 1])[mismatch]
            check[fast] = {
                "max_abs_diff": float((a - b).abs().max()),
                "argmax_mismatches": int(mismatch.sum()),
                # a mismatch can only be a near-tie of the plain logits, within float rounding
                "largest_top2_gap_at_mismatches": float(gap.max()) if gap.numel() else None,
                "voxels": int(a[:, 0].numel()),
            }

    # bfloat16 against float32: within bfloat16 rounding, the same argmax away from near-ties
    bf16_check: dict[str, Any] = {}
    if "attention_unet_bf16" in nets and "attention_unet_plain" in nets:
        with torch.no_grad():
            a = nets["attention_unet_bf16"]["net"].eval()(x).float()
            b = nets["attention_unet_plain"]["net"].eval()(x).float()
        mismatch = a.argmax(1) != b.argmax(1)
        top2 = b.topk(2, dim=1).values
        gap = (top2[:, 0] - top2[:, 1])[mismatch]
        bf16_check = {
            "max_abs_diff": float((a - b).abs().max()),
            "max_abs_logit": float(b.abs().max()),
            "argmax_agreement": 1.0 - float(mismatch.float().mean()),
            "argmax_mismatches": int(mismatch.sum()),
            "largest_top2_gap_at_mismatches": float(gap.max()) if gap.numel() else None,
            "voxels": int(a[:, 0].numel()),
            "note": "untrained weights (random init): margins are small; see docs/precision_parity.json for trained models",
        }

    say("forward (eval, no_grad) and forward+backward (train) ...")
    fwd: dict[str, list[float]] = {k: [] for k in nets}
    # training runs the plain modules: measured once, on the plain entries
    train: dict[str, list[float]] = {k: [] for k, e in nets.items() if e.get("trainable", not e["fast"])}
    ref_times: dict[str, list[float]] = {"default": [], "channels_last_3d": []}
    conv = nn.Conv3d(64, 64, 3, padding=1).to(dev).eval()
    conv_cl = nn.Conv3d(64, 64, 3, padding=1).to(dev).eval().to(memory_format=torch.channels_last_3d)
    xr = torch.randn(1, 64, *(reference_size,) * 3, device=dev)
    xr_cl = xr.contiguous(memory_format=torch.channels_last_3d)
    # the reference in every precision the run reports: bfloat16 weights and input (CPU only)
    bf16_ref = dev.type == "cpu" and any(e.get("precision") == "bf16" for e in nets.values())
    if bf16_ref:
        ref_times["bf16_channels_last_3d"] = []
        conv_bf = nn.Conv3d(64, 64, 3, padding=1).to(dev).eval().to(torch.bfloat16)
        conv_bf = conv_bf.to(memory_format=torch.channels_last_3d)
        xr_bf = xr_cl.to(torch.bfloat16)
    for round_ in range(repeats + 1):  # round 0 warms up (primitive caches, allocator)
        with torch.no_grad(), _autocast(dev, amp):
            t_def, t_cl = _timed(lambda: conv(xr), dev), _timed(lambda: conv_cl(xr_cl), dev)
            t_bf = _timed(lambda: conv_bf(xr_bf), dev) if bf16_ref else None
        if round_:
            ref_times["default"].append(t_def)
            ref_times["channels_last_3d"].append(t_cl)
            if bf16_ref:
                ref_times["bf16_channels_last_3d"].append(t_bf)
        for name, e in nets.items():
            net = e["net"].eval()
            with torch.no_grad(), _autocast(dev, amp):
                t = _timed(lambda: net(x), dev)
            if round_:
                fwd[name].append(t)
            if name in train:
                net.train()
                t = _timed(lambda: _train_step(net, x, y, dev, amp), dev)
                if round_:
                    train[name].append(t)
                net.zero_grad(set_to_none=True)
        say(f"  round {round_}/{repeats} done" if round_ else "  warm-up done")

    ref_flop = 2 * 64 * 64 * 27 * reference_size**3
    ref_med = {k: statistics.median(v) for k, v in ref_times.items()}
    ref_best = min(ref_med, key=ref_med.get)
    reference = {
        "definition": f"64->64 3x3x3 conv at {reference_size}^3, batch 1, best of default and channels_last_3d"
        + (" in float32 and bfloat16 (weights and input)" if bf16_ref else ""),
        "gflop": ref_flop / 1e9,
        "seconds": ref_med,
        "gflops": {k: ref_flop / v / 1e9 for k, v in ref_med.items()},
        "best_layout": ref_best,
        "reference_gflops": ref_flop / ref_med[ref_best] / 1e9,
    }

    for name in nets:
        r = results[name]
        r["forward_s"] = _median(fwd[name])
        r["forward_runs_s"] = fwd[name]
        r["forward_gflops"] = r["forward_gflop"] * batch_size / r["forward_s"]
        r["forward_fraction_of_reference"] = r["forward_gflops"] / reference["reference_gflops"]
        if name in train:
            r["train_s"] = _median(train[name])
            r["train_runs_s"] = train[name]

    sliding: dict[str, Any] = {"skipped": True}
    if sw_repeats > 0:
        volume = _load_ct(image, dev) if image else _phantom(volume_size, dev)
        inferer = SlidingWindowInferer(roi_size=patch, **SW_SETTINGS)
        say(f"sliding-window inference on a {tuple(volume.shape[2:])} volume, roi {patch} ...")
        sw: dict[str, list[float]] = {k: [] for k in nets}
        for round_ in range(sw_repeats + 1):
            for name, e in nets.items():
                if round_ == 0 and name != "attention_unet":
                    continue  # the forward rounds warmed the others up; one warm-up for the blending code
                net = e["net"].eval()
                with torch.no_grad(), _autocast(dev, amp):
                    t = _timed(lambda: inferer(volume, net), dev)
                if round_:
                    sw[name].append(t)
            if round_:
                say(f"  round {round_}/{sw_repeats} done")
        for name in nets:
            results[name]["sliding_window_s"] = _median(sw[name])
            results[name]["sliding_window_runs_s"] = sw[name]
        sliding = {
            "skipped": False,
            "volume_size": list(volume.shape[2:]),
            "source": image or "synthetic smooth volume",
            "roi_size": list(patch),
            **SW_SETTINGS,
        }

    # after all timings: a profiler session slows the next few calls down
    say("peak memory ...")
    for name, e in nets.items():
        net = e["net"]
        r = results[name]
        if isinstance(net, _OrtNet):
            r["forward_peak_mib"] = None  # ONNX Runtime allocates outside torch
            continue
        inner = getattr(net, "network", net)
        if hasattr(inner, "clear_fast_inference_cache"):
            inner.clear_fast_inference_cache()  # count the fast path's folded weights and work buffers too
        with torch.no_grad(), _autocast(dev, amp):
            r["forward_peak_mib"] = peak_memory(lambda: net.eval()(x), dev)
        if name in train:
            net.train()
            r["train_peak_mib"] = peak_memory(lambda: _train_step(net, x, y, dev, amp), dev)
            net.zero_grad(set_to_none=True)
            net.eval()
    # training always runs the plain modules: the fast entries share their plain twin's numbers
    for fast, plain in (("attention_unet", "attention_unet_plain"), ("no_gates", "no_gates_plain")):
        if fast in results and plain in results:
            for key in ("train_s", "train_runs_s", "train_peak_mib"):
                results[fast][key] = results[plain].get(key)

    base = results[BASELINE]
    for r in results.values():
        r["ratios_vs_baseline"] = {
            key: (r[key] / base[key]) if r.get(key) and base.get(key) else None
            for key in ("forward_s", "train_s", "forward_peak_mib", "train_peak_mib", "sliding_window_s")
        }

    return {
        "command": None,
        "versions": _versions(),
        "device": {
            "type": dev.type,
            "name": _device_name(dev),
            "threads": torch.get_num_threads(),
            "amp": amp,
            **(_cpu_record() if dev.type == "cpu" else {}),
        },
        "settings": {
            "patch_size": list(patch),
            "batch_size": batch_size,
            "out_channels": out_channels,
            "repeats": repeats,
            "sw_repeats": sw_repeats,
            "statistic": "median of interleaved rounds after one warm-up",
        },
        "reference": reference,
        "networks": results,
        "baseline": BASELINE,
        "sliding_window": sliding,
        "fast_path_check": check,
        "bf16_check": bf16_check,
        "targets": _targets(results),
        "precision_targets": _precision_targets(results) if dev.type == "cpu" else {},
    }


class _OrtNet(nn.Module):
    """A network exported to ONNX (dynamic batch and spatial axes) and run by ONNX Runtime on CPU."""

    def __init__(self, net: nn.Module, example_size: Sequence[int]) -> None:
        super().__init__()
        import tempfile

        import onnxruntime as ort

        from monai_ag.networks.export import export_onnx

        self.source = net
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(net.eval(), Path(tmp) / "net.onnx", example_size=example_size)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (y,) = self.session.run(None, {"image": x.detach().float().cpu().numpy()})
        return torch.from_numpy(y).to(x.device)


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: str, b: str, key: str) -> float | None:
        if a in results and b in results and results[a].get(key) and results[b].get(key):
            return results[a][key] / results[b][key]
        return None

    gate = ratio("attention_unet", "no_gates", "forward_s")
    values = {
        "gate_forward_overhead": None if gate is None else gate - 1.0,
        "forward_fraction_of_reference": results.get("attention_unet", {}).get("forward_fraction_of_reference"),
        "sliding_window_ratio_vs_monai": ratio("attention_unet", BASELINE, "sliding_window_s"),
        "train_time_ratio_vs_no_gates": ratio("attention_unet_plain", "no_gates_plain", "train_s"),
        "train_memory_ratio_vs_no_gates": ratio("attention_unet_plain", "no_gates_plain", "train_peak_mib"),
    }
    out = {}
    for key, (text, threshold, op) in TARGETS.items():
        v = values[key]
        met = None if v is None else (v <= threshold if op == "<=" else v >= threshold)
        out[key] = {"description": text, "value": v, "threshold": threshold, "direction": op, "met": met}
    return out


def _precision_targets(results: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: str, b: str, key: str) -> float | None:
        if a in results and b in results and results[a].get(key) and results[b].get(key):
            return results[a][key] / results[b][key]
        return None

    kind = "amx" if _precision.cpu_has_amx() else "avx512_bf16" if _precision.cpu_has_bf16() else "none"
    values = {
        "bf16_forward_speedup": ratio("attention_unet", "attention_unet_bf16", "forward_s"),
        "bf16_train_speedup": ratio("attention_unet_plain", "attention_unet_bf16", "train_s"),
        "fp32_layout_train_speedup": ratio("attention_unet_plain", "attention_unet_fp32_cl", "train_s"),
    }
    out = {}
    for key, (text, thresholds) in PRECISION_TARGETS.items():
        v, threshold = values[key], thresholds[kind]
        met = None if v is None or threshold is None else v >= threshold
        out[key] = {"description": text, "value": v, "threshold": threshold, "cpu_kind": kind, "met": met}
    return out


def _cpu_flags() -> list[str]:
    """The vector/matrix extensions in ``/proc/cpuinfo``'s flags (AVX*, AMX, FMA, F16C), sorted."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sve", "bf16", "asimd")))
    except OSError:
        pass
    return []


def _cpu_record() -> dict[str, Any]:
    """The CPU's model, flags and bfloat16 capability, for the JSON."""
    return {
        "cpu_flags": _cpu_flags(),
        "cpu_capabilities": _precision.cpu_capabilities(),
        "bf16_units": _precision.cpu_has_bf16(),
        "amx": _precision.cpu_has_amx(),
        "auto_precision": _precision.resolve_precision("auto", "cpu"),
    }


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def _versions() -> dict[str, str]:
    import monai

    import monai_ag

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "monai_ag": monai_ag.__version__,
    }


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(results: dict[str, Any]) -> str:
    """The results of :py:func:`run_benchmark` as a Markdown table (ratios against MONAI's ``AttentionUnet``)
    followed by the targets."""
    ref = results["reference"]
    s = results["settings"]
    lines = [
        f"device: {results['device']['name']} ({results['device']['type']}, {results['device']['threads']} threads, "
        f"amp {results['device']['amp']}); patch {tuple(s['patch_size'])}, batch {s['batch_size']}, "
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
    lines += [
        "",
        "| network | params | fwd GFLOP | fwd s | GFLOP/s (% ref) | fwd+bwd s | fwd peak MiB | fwd+bwd peak MiB "
        "| sliding window s | × AttentionUnet: fwd / fwd+bwd / fwd+bwd memory / sliding window |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["networks"].values():
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
    lines += ["", "| target | value | threshold | met |", "|---|---|---|---|"]
    for t in results["targets"].values():
        lines.append(
            f"| {t['description']} | {_fmt(t['value'], '.3f')} | {t['direction']} {t['threshold']} "
            f"| {'-' if t['met'] is None else ('yes' if t['met'] else 'no')} |"
        )
    for key, t in (results.get("precision_targets") or {}).items():
        met = "-" if t["met"] is None else ("yes" if t["met"] else "no")
        thr = "-" if t["threshold"] is None else f">= {t['threshold']}"
        lines.append(f"| {t['description']} ({t['cpu_kind']}) | {_fmt(t['value'], '.2f')} | {thr} | {met} |")
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m monai_ag.bench",
        description="Speed and memory of GridAttentionUNet vs its gate-less backbone and MONAI's AttentionUnet/UNet.",
    )
    p.add_argument("--patch_size", type=int, nargs="+", default=[96], help="patch size, 1 or 3 ints (default 96)")
    p.add_argument("--volume_size", type=int, nargs=3, default=[200, 200, 120], help="sliding-window volume size")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds of forward/forward+backward (default 5)")
    p.add_argument("--sw_repeats", type=int, default=None, help="rounds of sliding-window inference (default: repeats)")
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--out_channels", type=int, default=5, help="output classes (default 5)")
    p.add_argument("--batch_size", type=int, default=1, help="batch of the forward/training runs (default 1)")
    p.add_argument("--no_amp", action="store_true", help="no float16 autocast on CUDA")
    p.add_argument("--networks", nargs="+", default=None,
                   help="measure only these entries (and the baseline), e.g. attention_unet attention_unet_bf16")
    p.add_argument("--onnx", action="store_true", help="also time the ONNX Runtime export of the paper network (CPU)")
    p.add_argument("--image", default=None, help="a CT file for sliding-window inference (resampled to 2 mm)")
    p.add_argument("--output", default=None, help="JSON file to write (default monai_ag_bench_<device>.json)")
    p.add_argument("--overwrite", action="store_true", help="overwrite --output if it exists")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one round: a smoke run of a few seconds")
    args = p.parse_args(argv)
    if len(args.patch_size) not in (1, 3):
        p.error(f"--patch_size takes 1 or 3 ints, got {args.patch_size}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: ``python -m monai_ag.bench [--quick] [--output results.json] ...``."""
    args = _parse(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    output = Path(args.output or f"monai_ag_bench_{torch.device(device).type}.json")
    try:
        refuse_overwrite(output, args.overwrite, option="--overwrite")
    except FileExistsError as e:
        raise SystemExit(str(e)) from None
    kwargs: dict[str, Any] = dict(
        patch_size=args.patch_size,
        volume_size=args.volume_size,
        repeats=args.repeats,
        sw_repeats=args.sw_repeats,
        device=device,
        threads=args.threads,
        out_channels=args.out_channels,
        batch_size=args.batch_size,
        amp=not args.no_amp,
        image=args.image,
        onnx=args.onnx,
        networks=args.networks,
    )
    if args.quick:
        kwargs.update(patch_size=[32], volume_size=[40, 40, 40], repeats=1, sw_repeats=1, reference_size=16, image=None)
        if args.threads is None:
            kwargs["threads"] = 1  # one thread: no synchronisation stalls on a busy machine, seconds in CI
    results = run_benchmark(**kwargs, log=lambda m: print(m, file=sys.stderr, flush=True))
    results["command"] = "python -m monai_ag.bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(format_table(results))
    with atomic_write(output) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {output}")
    return results
