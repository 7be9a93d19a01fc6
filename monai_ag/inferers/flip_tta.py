"""Flip test-time augmentation around any MONAI inferer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

__all__ = ["FlipTTAInferer"]


class FlipTTAInferer(Inferer):
    """
    Test-time augmentation by flipping: runs ``inferer`` on the input and on its flips along each
    of ``axes`` (spatial axes, 0-based), flips each output back and averages the logits. Costs
    ``1 + len(axes)`` inferences.

    Args:
        inferer: the wrapped inferer, e.g. a :py:class:`monai.inferers.SlidingWindowInferer`.
        spatial_dims: number of spatial dimensions of the inputs.
        axes: spatial axes to flip; defaults to all of them.

    Example::

        tta = FlipTTAInferer(SlidingWindowInferer(roi_size=(96, 96, 96)), spatial_dims=3)
        logits = tta(image, network)
    """

    def __init__(self, inferer: Inferer, spatial_dims: int = 3, axes: Sequence[int] | None = None) -> None:
        super().__init__()
        axes = tuple(range(spatial_dims)) if axes is None else tuple(axes)
        if any(not 0 <= a < spatial_dims for a in axes):
            raise ValueError(f"axes must be spatial axes in [0, {spatial_dims}), got {axes}.")
        self.inferer = inferer
        self.axes = axes

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args: Any, **kwargs: Any):
        total = self.inferer(inputs, network, *args, **kwargs)
        for axis in self.axes:
            dim = axis + 2
            out = self.inferer(torch.flip(inputs, dims=(dim,)), network, *args, **kwargs)
            total = total + torch.flip(out, dims=(dim,))
        return total / (1 + len(self.axes))
