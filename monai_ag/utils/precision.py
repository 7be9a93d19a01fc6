"""
The numeric precision of training and inference on CPU: ``"auto"`` (bfloat16 where the CPU has
bfloat16 units, else float32), ``"bf16"`` or ``"fp32"``.

bfloat16 runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``: the weights, optimiser state,
checkpoints, losses and the network's outputs stay float32; convolutions (and whatever else torch's
CPU autocast lists) compute in bfloat16 with float32 accumulation inside oneDNN. On CUDA the
precision setting does nothing: the bundle's ``amp`` (float16 autocast) decides there, as before.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

__all__ = [
    "PRECISIONS",
    "PrecisionNetwork",
    "autocast",
    "cpu_capabilities",
    "cpu_has_amx",
    "cpu_has_bf16",
    "resolve_precision",
    "to_channels_last",
    "with_precision",
]

#: the accepted values of a ``precision`` setting
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")
_ALIASES = {"bfloat16": "bf16", "float32": "fp32", "fp32": "fp32", "bf16": "bf16", "auto": "auto"}


def cpu_capabilities() -> dict[str, Any]:
    """
    The CPU features that matter for bfloat16, from ``torch.cpu.get_capabilities()`` (cpuinfo):
    ``cpu_name``, ``avx512_bf16``, ``amx_bf16``, ``avx512_fp16`` and, on ARM, ``bf16``/``sve_bf16``;
    empty when torch cannot tell. This is the capability probe behind ``"auto"``
    (see :py:func:`cpu_has_bf16`).
    """
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is None:
        return {}
    try:
        caps = dict(get())
    except Exception:  # cpuinfo failed to initialise: say nothing rather than guess
        return {}
    keys = ("cpu_name", "architecture", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "bf16", "sve_bf16")
    return {k: caps[k] for k in keys if k in caps}


def cpu_has_bf16() -> bool:
    """
    Whether the CPU has bfloat16 arithmetic units that oneDNN uses: ``avx512_bf16`` or ``amx_bf16``
    on x86, ``bf16`` on ARM. Tests replace this function to simulate a CPU without them.
    """
    caps = cpu_capabilities()
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16") or caps.get("bf16") or caps.get("sve_bf16"))


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX bfloat16 tiles (``amx_bf16``), where oneDNN's bfloat16 convolutions are fastest."""
    return bool(cpu_capabilities().get("amx_bf16"))


def _device_type(device: str | torch.device | None) -> str:
    if device is None:
        return "cpu"
    return torch.device(device).type


def resolve_precision(precision: str = "auto", device: str | torch.device | None = None) -> str:
    """
    The precision a run uses, ``"bf16"`` or ``"fp32"``.

    Args:
        precision: ``"auto"`` (bf16 where the CPU has bf16 units, see :py:func:`cpu_has_bf16`; else
            fp32), ``"bf16"`` (also where emulated: correct, but slower than fp32) or ``"fp32"``;
            ``"bfloat16"``/``"float32"`` are accepted too. Case-insensitive.
        device: where the network runs (default CPU). On a device other than the CPU the result is
            ``"fp32"``: the precision setting applies to CPUs only (on CUDA, ``amp`` decides).

    Raises:
        ValueError: for any other ``precision``, naming the value and the accepted ones.

    Example::

        resolve_precision("auto")           # "bf16" on a CPU with avx512_bf16 or AMX, else "fp32"
        resolve_precision("auto", "cuda")   # "fp32": AMP decides on CUDA
    """
    key = _ALIASES.get(str(precision).strip().lower()) if isinstance(precision, str) else None
    if key is None:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}.")
    if _device_type(device) != "cpu":
        if key == "bf16":
            warnings.warn(
                f"precision 'bf16' applies to CPU runs; on {_device_type(device)} it is ignored (use amp).",
                stacklevel=2,
            )
        return "fp32"
    if key == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return key


@contextmanager
def autocast(precision: str = "auto", device: str | torch.device | None = None) -> Iterator[str]:
    """
    Context manager running its body in ``precision`` (resolved by :py:func:`resolve_precision`): CPU
    autocast to bfloat16 for ``"bf16"``, nothing for ``"fp32"``. Yields the resolved precision.

    Example::

        with torch.no_grad(), autocast("auto") as used:
            logits = net(x).float()
    """
    used = resolve_precision(precision, device)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=used == "bf16"):
        yield used


def _to_float32(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float32 else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float32(v) for k, v in out.items()}
    return out


def to_channels_last(network: nn.Module) -> nn.Module:
    """
    ``network``'s 3D (2D) convolution weights in the ``channels_last_3d`` (``channels_last``) layout,
    in place: the same values and state dict, read faster by oneDNN's convolutions and their backward
    pass, whose outputs then stay channels-last through the network (an input with one channel cannot
    carry the layout by itself). A ``DistributedDataParallel`` network is left as it is (its gradient
    buckets follow the layout it was built with). Returns ``network``.

    Example::

        net = to_channels_last(GridAttentionUNet(3, 1, 5))
    """
    if isinstance(network, nn.parallel.DistributedDataParallel):
        return network
    with torch.no_grad():
        for t in (*network.parameters(), *network.buffers()):
            fmt = {5: torch.channels_last_3d, 4: torch.channels_last}.get(t.dim())
            if fmt is not None and t.device.type == "cpu" and not t.is_contiguous(memory_format=fmt):
                t.data = t.data.contiguous(memory_format=fmt)
    return network


class PrecisionNetwork(nn.Module):
    """
    Runs ``network`` on CPU in the fast layout and precision for training and inference: its
    convolution weights (see :py:func:`to_channels_last`, done once here) and the input in
    ``channels_last_3d`` (``channels_last`` in 2D), which oneDNN's convolutions and especially their
    backward pass run much faster (a training step of the bundle's default profile about 2x), and,
    for ``"bf16"``, the forward pass under CPU autocast to bfloat16. Outputs (a tensor or a list, e.g. deep-supervision
    outputs) come back as float32, so the loss, softmax and metrics stay float32.

    It holds ``network`` as its only child and adds no parameters: optimisers, checkpoints and
    ``load_state_dict`` keep using ``network`` itself (the state dict is unchanged). Use
    :py:func:`with_precision`, which returns ``network`` unchanged where nothing is to be done.

    Args:
        network: the network to run.
        precision: ``"bf16"`` or ``"fp32"`` (already resolved, see :py:func:`resolve_precision`).
        channels_last: feed the input in the channels-last layout.

    Example::

        net = GridAttentionUNet(3, 1, 5)
        model = PrecisionNetwork(net, "bf16")
        logits = model(torch.rand(2, 1, 64, 64, 48))  # float32, computed in bf16 convolutions
    """

    def __init__(self, network: nn.Module, precision: str = "bf16", channels_last: bool = True) -> None:
        super().__init__()
        if precision not in ("bf16", "fp32"):
            raise ValueError(f"PrecisionNetwork takes a resolved precision, 'bf16' or 'fp32', got {precision!r}.")
        self.network = network
        self.precision = precision
        self.channels_last = bool(channels_last)
        if self.channels_last:
            to_channels_last(network)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.channels_last and isinstance(x, torch.Tensor) and x.device.type == "cpu":
            if x.dim() == 5:
                x = x.contiguous(memory_format=torch.channels_last_3d)
            elif x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.network(x, *args, **kwargs)
        return _to_float32(out)


def with_precision(
    network: nn.Module, precision: str = "auto", device: str | torch.device | None = None, channels_last: bool = True
) -> nn.Module:
    """
    ``network`` wrapped to run in ``precision`` on CPU (a :py:class:`PrecisionNetwork`), or
    ``network`` itself on other devices. What the bundle's trainer and evaluators run; the
    optimiser, checkpoints and state dict keep referring to ``network``.

    Args:
        network: the network.
        precision: ``"auto"``, ``"bf16"`` or ``"fp32"`` (see :py:func:`resolve_precision`).
        device: where the network runs; default: the device of its first parameter.
        channels_last: on CPU, feed inputs in the channels-last layout (also in fp32).

    Example::

        model = with_precision(net, "auto")  # trainer/evaluator network; save ``net``
    """
    if device is None:
        param = next(iter(network.parameters()), None)
        device = param.device if param is not None else "cpu"
    used = resolve_precision(precision, device)
    if _device_type(device) != "cpu":
        return network
    return PrecisionNetwork(network, used, channels_last=channels_last)
