"""Export of the networks to other runtimes: ONNX with dynamic batch and spatial axes."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch

__all__ = ["export_onnx"]

logger = logging.getLogger(__name__)


def export_onnx(
    net: torch.nn.Module,
    filepath: str | os.PathLike,
    example_size: Sequence[int] = (64, 64, 48),
    in_channels: int | None = None,
    min_size: int = 16,
    opset_version: int | None = None,
) -> str:
    """
    Export ``net`` (eval mode) to ONNX with dynamic batch and spatial axes, so one file serves
    every input size. Uses torch's default (dynamo) exporter, which needs ``onnxscript``.
    Input name ``image``, output name ``pred``.

    Args:
        net: the network, e.g. a ``GridAttentionUNet``.
        filepath: the ``.onnx`` file to write.
        example_size: spatial size of the example input used for tracing.
        in_channels: input channels; defaults to ``net.in_channels``.
        min_size: the smallest spatial size the exported graph accepts on each axis.
        opset_version: ONNX opset; ``None`` uses the exporter's default.

    Returns:
        the path written.

    Example::

        export_onnx(GridAttentionUNet(3, 1, 5), "net.onnx")
    """
    channels = in_channels if in_channels is not None else getattr(net, "in_channels", None)
    if channels is None:
        raise ValueError("in_channels is needed: the network has no in_channels attribute.")
    if any(s < min_size for s in example_size):
        raise ValueError(f"example_size must be >= min_size={min_size} on each axis, got {tuple(example_size)}.")
    net = net.eval()
    x = torch.randn(1, channels, *example_size)
    dim = torch.export.Dim
    axes = {0: dim("batch", min=1, max=1024)}
    axes.update({2 + i: dim(f"spatial_{i}", min=min_size, max=4096) for i in range(len(example_size))})
    kwargs = {} if opset_version is None else {"opset_version": opset_version}
    torch.onnx.export(
        net, (x,), str(filepath), input_names=["image"], output_names=["pred"], dynamic_shapes={"x": axes}, **kwargs
    )
    logger.info("exported %s to %s", type(net).__name__, filepath)
    return str(filepath)
