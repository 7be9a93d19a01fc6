"""Post-processing helpers for probability maps."""

from __future__ import annotations

import torch

__all__ = ["restore_background"]


def restore_background(probs: torch.Tensor) -> torch.Tensor:
    """
    Set channel 0 of a channel-first softmax map to ``1 - sum(other channels)``. Inverting a
    foreground crop pads every channel with 0 outside the crop; this makes the background
    probability 1 there (and leaves it unchanged inside, up to rounding).

    Example::

        Lambdad("pred", func=restore_background)  # after Invertd
    """
    out = probs.clone()
    out[0] = (1 - probs[1:].sum(0)).clamp(0, 1)
    return out
