"""
Speed and memory of the Attention U-Net against its gate-less backbone and MONAI's ``AttentionUnet``
and ``UNet``, on the user's own device: :py:func:`run_benchmark` and its steps, in the order it runs
them (the networks, the correctness checks, the interleaved timing rounds, sliding-window inference,
peak memory last since a profiler session slows the next calls down, then ratios and targets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from .checks import bf16_check, fast_path_checks
from .environment import device_name, device_record, versions
from .measure import autocast, count_flops, load_ct, median, peak_memory, synthetic_volume, timed, train_step
from .networks import BASELINE, FAST_PLAIN_PAIRS, OnnxRuntimeNetwork, is_trainable, onnx_entry, select_networks
from .targets import precision_targets, ratios_vs_baseline, targets

__all__ = ["SW_SETTINGS", "reference_record", "run_benchmark", "share_training_figures"]

#: the bundle's sliding-window inference settings (CPU default)
SW_SETTINGS: dict[str, Any] = {"sw_batch_size": 1, "overlap": 0.25, "mode": "gaussian"}
#: channels of the reference convolution (64 -> 64, 3x3x3)
_REF_CHANNELS = 64


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
    Measure every network of :py:func:`~monai_ag.bench.networks.build_networks` and the reference
    convolution, interleaved (one run of each per round, ``repeats`` rounds, medians reported), and
    return the results as a JSON-serialisable dict (see ``docs/performance.md``).

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
            patch_size,
            volume_size,
            repeats,
            sw_repeats,
            device,
            out_channels,
            batch_size,
            amp,
            image,
            reference_size,
            networks,
            onnx,
            log,
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
    """:py:func:`run_benchmark` with the thread count set: the steps, in order."""
    say = log or (lambda _msg: None)
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    amp = (dev.type == "cuda") if amp is None else bool(amp) and dev.type == "cuda"
    patch = tuple(int(s) for s in patch_size)
    patch = patch * 3 if len(patch) == 1 else patch
    sw_repeats = repeats if sw_repeats is None else sw_repeats
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")

    nets = select_networks(out_channels, dev, networks)
    x = torch.randn(batch_size, 1, *patch, device=dev)
    y = torch.randint(0, out_channels, (batch_size, *patch), device=dev)
    if onnx and dev.type == "cpu" and "attention_unet_plain" in nets:
        say("exporting the paper network to ONNX ...")
        nets["onnxruntime"] = onnx_entry(nets["attention_unet_plain"]["net"], patch)

    say(f"device {dev} ({device_name(dev)}), threads {torch.get_num_threads()}, amp {amp}, patch {patch}")
    results = _describe_networks(nets, x)
    fast_check, precision_check = fast_path_checks(nets, x), bf16_check(nets, x)

    say("forward (eval, no_grad) and forward+backward (train) ...")
    reference_calls = _reference_calls(reference_size, dev, bf16=_has_bf16_entry(nets, dev))
    timings = _time_rounds(nets, x, y, reference_calls, repeats, dev, amp, say)
    reference = reference_record(timings.reference, reference_size)
    _add_forward_figures(results, timings, reference, batch_size)

    sliding: dict[str, Any] = {"skipped": True}
    if sw_repeats > 0:
        volume = load_ct(image, dev) if image else synthetic_volume(volume_size, dev)
        sliding = _sliding_window(nets, results, volume, patch, image, sw_repeats, dev, amp, say)

    say("peak memory ...")  # after all timings: a profiler session slows the next few calls down
    _add_peak_memory(nets, results, x, y, dev, amp)
    share_training_figures(results)
    for name, ratios in ratios_vs_baseline(results).items():
        results[name]["ratios_vs_baseline"] = ratios

    return {
        "command": None,
        "versions": versions(),
        "device": device_record(dev, amp),
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
        "fast_path_check": fast_check,
        "bf16_check": precision_check,
        "targets": targets(results),
        "precision_targets": precision_targets(results) if dev.type == "cpu" else {},
    }


def _describe_networks(nets: dict[str, dict[str, Any]], x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Network -> its label, whether it is a fast path, its parameters and its forward GFLOP on ``x``
    (counted on the plain modules of the wrapped network, what the network computes)."""
    results: dict[str, Any] = {name: {"label": e["label"], "fast_path": e["fast"]} for name, e in nets.items()}
    for name, e in nets.items():
        net = e["net"]
        results[name]["params"] = sum(p.numel() for p in net.parameters())
        results[name]["forward_gflop"] = count_flops(getattr(net, "source", getattr(net, "network", net)), x) / 1e9
    return results


def _has_bf16_entry(nets: dict[str, dict[str, Any]], dev: torch.device) -> bool:
    """Whether the run reports bfloat16 (on CPU): then the reference is measured in bfloat16 too."""
    return dev.type == "cpu" and any(e.get("precision") == "bf16" for e in nets.values())


def _reference_calls(size: int, dev: torch.device, bf16: bool) -> dict[str, Callable[[], Any]]:
    """
    The reference, a 64->64 3x3x3 convolution at ``size``^3, by layout: ``default``,
    ``channels_last_3d`` and with ``bf16`` ``bf16_channels_last_3d`` (bfloat16 weights and input).
    """
    conv = nn.Conv3d(_REF_CHANNELS, _REF_CHANNELS, 3, padding=1).to(dev).eval()
    conv_cl = nn.Conv3d(_REF_CHANNELS, _REF_CHANNELS, 3, padding=1).to(dev).eval()
    conv_cl = conv_cl.to(memory_format=torch.channels_last_3d)
    xr = torch.randn(1, _REF_CHANNELS, *(size,) * 3, device=dev)
    xr_cl = xr.contiguous(memory_format=torch.channels_last_3d)
    calls: dict[str, Callable[[], Any]] = {"default": lambda: conv(xr), "channels_last_3d": lambda: conv_cl(xr_cl)}
    if bf16:
        conv_bf = nn.Conv3d(_REF_CHANNELS, _REF_CHANNELS, 3, padding=1).to(dev).eval().to(torch.bfloat16)
        conv_bf = conv_bf.to(memory_format=torch.channels_last_3d)
        xr_bf = xr_cl.to(torch.bfloat16)
        calls["bf16_channels_last_3d"] = lambda: conv_bf(xr_bf)
    return calls


@dataclass
class _Timings:
    """The runs (seconds) of the measured rounds, warm-up excluded: by network and by reference layout."""

    forward: dict[str, list[float]]
    train: dict[str, list[float]]
    reference: dict[str, list[float]]


def _time_rounds(
    nets: dict[str, dict[str, Any]],
    x: torch.Tensor,
    y: torch.Tensor,
    reference_calls: dict[str, Callable[[], Any]],
    repeats: int,
    dev: torch.device,
    amp: bool,
    say: Callable[[str], Any],
) -> _Timings:
    """
    One warm-up round (primitive caches, allocator), then ``repeats`` rounds, each timing the reference
    in every layout, then every network's forward (eval, no autograd) and, for the trainable entries, its
    forward+backward step: interleaved, so a burst of load from other processes hits all alike.
    """
    timings = _Timings(
        forward={k: [] for k in nets},
        train={k: [] for k, e in nets.items() if is_trainable(e)},
        reference={k: [] for k in reference_calls},
    )
    for round_ in range(repeats + 1):
        with torch.no_grad(), autocast(dev, amp):
            ref = {k: timed(call, dev) for k, call in reference_calls.items()}
        if round_:
            for k, t in ref.items():
                timings.reference[k].append(t)
        for name, e in nets.items():
            fwd, train = _time_network(e["net"], name in timings.train, x, y, dev, amp)
            if round_:
                timings.forward[name].append(fwd)
                if train is not None:
                    timings.train[name].append(train)
        say(f"  round {round_}/{repeats} done" if round_ else "  warm-up done")
    return timings


def _time_network(
    net: nn.Module, trainable: bool, x: torch.Tensor, y: torch.Tensor, dev: torch.device, amp: bool
) -> tuple[float, float | None]:
    """Seconds of one forward (eval, no autograd) and, when ``trainable``, one forward+backward step."""
    net.eval()
    with torch.no_grad(), autocast(dev, amp):
        fwd = timed(lambda: net(x), dev)
    if not trainable:
        return fwd, None
    net.train()
    train = timed(lambda: train_step(net, x, y, dev, amp), dev)
    net.zero_grad(set_to_none=True)
    return fwd, train


def reference_record(times: dict[str, list[float]], size: int) -> dict[str, Any]:
    """
    The reference convolution's record from its runs by layout: the definition, GFLOP, median seconds
    and GFLOP/s by layout, the fastest layout and its GFLOP/s (the reference every network's
    ``forward_fraction_of_reference`` is taken against).
    """
    flop = 2 * _REF_CHANNELS * _REF_CHANNELS * 27 * size**3
    med = {k: median(v) for k, v in times.items()}
    best = min(med, key=med.get)
    return {
        "definition": f"64->64 3x3x3 conv at {size}^3, batch 1, best of default and channels_last_3d"
        + (" in float32 and bfloat16 (weights and input)" if "bf16_channels_last_3d" in times else ""),
        "gflop": flop / 1e9,
        "seconds": med,
        "gflops": {k: flop / v / 1e9 for k, v in med.items()},
        "best_layout": best,
        "reference_gflops": flop / med[best] / 1e9,
    }


def _add_forward_figures(
    results: dict[str, dict[str, Any]], timings: _Timings, reference: dict[str, Any], batch_size: int
) -> None:
    """Each network's forward median and runs, achieved GFLOP/s and its fraction of the reference's, and
    its forward+backward median and runs when trained."""
    for name, r in results.items():
        r["forward_s"] = median(timings.forward[name])
        r["forward_runs_s"] = timings.forward[name]
        r["forward_gflops"] = r["forward_gflop"] * batch_size / r["forward_s"]
        r["forward_fraction_of_reference"] = r["forward_gflops"] / reference["reference_gflops"]
        if name in timings.train:
            r["train_s"] = median(timings.train[name])
            r["train_runs_s"] = timings.train[name]


def _sliding_window(
    nets: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    volume: torch.Tensor,
    patch: tuple[int, ...],
    image: str | None,
    repeats: int,
    dev: torch.device,
    amp: bool,
    say: Callable[[str], Any],
) -> dict[str, Any]:
    """
    Time full-volume sliding-window inference with :data:`SW_SETTINGS` (ROI ``patch``) in ``repeats``
    interleaved rounds after one warm-up of the paper network (the forward rounds warmed the others up;
    this warms the blending code up), add each network's median and runs to ``results`` and return the
    setup's record.
    """
    from monai.inferers import SlidingWindowInferer

    inferer = SlidingWindowInferer(roi_size=patch, **SW_SETTINGS)
    say(f"sliding-window inference on a {tuple(volume.shape[2:])} volume, roi {patch} ...")
    runs: dict[str, list[float]] = {k: [] for k in nets}
    for round_ in range(repeats + 1):
        for name, e in nets.items():
            if round_ == 0 and name != "attention_unet":
                continue
            net = e["net"].eval()
            with torch.no_grad(), autocast(dev, amp):
                t = timed(lambda: inferer(volume, net), dev)
            if round_:
                runs[name].append(t)
        if round_:
            say(f"  round {round_}/{repeats} done")
    for name in nets:
        results[name]["sliding_window_s"] = median(runs[name])
        results[name]["sliding_window_runs_s"] = runs[name]
    return {
        "skipped": False,
        "volume_size": list(volume.shape[2:]),
        "source": image or "synthetic smooth volume",
        "roi_size": list(patch),
        **SW_SETTINGS,
    }


def _add_peak_memory(
    nets: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    x: torch.Tensor,
    y: torch.Tensor,
    dev: torch.device,
    amp: bool,
) -> None:
    """Each network's forward peak memory and, when trained, its forward+backward peak (``None`` for
    ONNX Runtime, which allocates outside torch). A fast path's cache is dropped first, so its folded
    weights and work buffers count too."""
    for name, e in nets.items():
        net = e["net"]
        r = results[name]
        if isinstance(net, OnnxRuntimeNetwork):
            r["forward_peak_mib"] = None
            continue
        inner = getattr(net, "network", net)
        if hasattr(inner, "clear_fast_inference_cache"):
            inner.clear_fast_inference_cache()
        with torch.no_grad(), autocast(dev, amp):
            r["forward_peak_mib"] = peak_memory(lambda: net.eval()(x), dev)
        if is_trainable(e):
            net.train()
            r["train_peak_mib"] = peak_memory(lambda: train_step(net, x, y, dev, amp), dev)
            net.zero_grad(set_to_none=True)
            net.eval()


def share_training_figures(results: dict[str, dict[str, Any]]) -> None:
    """Training always runs the plain modules: give each fast entry its plain twin's forward+backward
    time, runs and peak memory (``None`` where the twin has none)."""
    for fast, plain in FAST_PLAIN_PAIRS:
        if fast in results and plain in results:
            for key in ("train_s", "train_runs_s", "train_peak_mib"):
                results[fast][key] = results[plain].get(key)
