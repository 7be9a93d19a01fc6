"""
The networks the benchmark compares, at equal channels (16..256) and strides 2: the paper configuration
of :py:class:`~monai_ag.networks.nets.GridAttentionUNet` (fast path and plain modules), the same code
without gates, MONAI's ``AttentionUnet`` (the baseline every ratio is taken against) and ``UNet``, the
CPU precision variants, and optionally the paper network run by ONNX Runtime.

Each entry of the catalogue is a dict ``{"label", "net", "fast", ...}``: ``fast`` says whether the
entry is this package's optimised inference path; ``trainable`` (default: not ``fast``) whether its
forward+backward step is measured; ``precision`` names the CPU precision the entry runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from monai_ag.networks.nets import GridAttentionUNet
from monai_ag.utils import precision as _precision

__all__ = [
    "BASELINE",
    "FAST_PLAIN_PAIRS",
    "OnnxRuntimeNetwork",
    "build_networks",
    "is_trainable",
    "onnx_entry",
    "select_networks",
]

#: the network every ratio is taken against
BASELINE = "monai_attention_unet"
#: fast-path entries and their plain-module twins (same weights): the same function, and training
#: always runs the plain modules, so the fast entries share their twin's training figures
FAST_PLAIN_PAIRS: tuple[tuple[str, str], ...] = (
    ("attention_unet", "attention_unet_plain"),
    ("no_gates", "no_gates_plain"),
)
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
    # before MONAI's networks: their initial weights depend on what the seeded generator drew first
    extra = _precision_entries(paper, in_channels, out_channels) if precisions else {}
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


def _precision_entries(paper: GridAttentionUNet, in_channels: int, out_channels: int) -> dict[str, dict[str, Any]]:
    """The CPU precision copies of ``paper`` (same weights): bfloat16 and float32 channels-last."""
    bf16 = GridAttentionUNet(3, in_channels, out_channels)
    bf16.load_state_dict(paper.state_dict())
    cl = GridAttentionUNet(3, in_channels, out_channels, fast_inference=False)
    cl.load_state_dict(paper.state_dict())
    return {
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


def select_networks(
    out_channels: int, device: torch.device, names: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """
    The catalogue of :py:func:`build_networks` for ``device`` (the precision variants on CPU only),
    restricted to ``names`` and the baseline when ``names`` is given, moved to ``device``.

    Raises:
        ValueError: when ``names`` holds an entry the catalogue does not have.
    """
    nets = build_networks(out_channels, precisions=device.type == "cpu")
    if names is not None:
        unknown = set(names) - set(nets)
        if unknown:
            raise ValueError(f"unknown networks {sorted(unknown)}; choose from {sorted(nets)}.")
        nets = {k: v for k, v in nets.items() if k in set(names) | {BASELINE}}
    for entry in nets.values():
        entry["net"].to(device)
    return nets


def is_trainable(entry: dict[str, Any]) -> bool:
    """Whether the entry's forward+backward step is measured: training runs the plain modules, so by
    default only the entries that are not a fast path (an entry's ``trainable`` overrides this)."""
    return bool(entry.get("trainable", not entry["fast"]))


class OnnxRuntimeNetwork(nn.Module):
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


def onnx_entry(plain: nn.Module, patch: Sequence[int]) -> dict[str, Any]:
    """The catalogue entry of ``plain`` (the paper network's plain modules) exported to ONNX Runtime."""
    return {
        "label": "GridAttentionUNet (ONNX Runtime)",
        "net": OnnxRuntimeNetwork(plain, patch),
        "fast": False,
        "trainable": False,
    }
