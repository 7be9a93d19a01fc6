"""Network stand-ins for bundle tests whose expected output must be known voxel by voxel."""

from __future__ import annotations

import torch

__all__ = ["ThresholdNet"]


class ThresholdNet(torch.nn.Module):
    """
    Logits that label class 1 where the (preprocessed, [0, 1]) intensity exceeds ``threshold`` and
    class 0 elsewhere; the other classes never win. Pointwise, so any sliding window gives the same
    answer: the predicted label map must equal the threshold applied to the input in its own grid.
    ``threshold`` is a buffer, so a checkpoint sets it (``torch.save(net.state_dict(), path)``).

    Example::

        net = ThresholdNet(threshold=0.5)
        logits = net(torch.rand(1, 1, 8, 8, 8))  # (1, 5, 8, 8, 8)
    """

    def __init__(self, threshold: float = 0.0, out_channels: int = 5, sharpness: float = 100.0) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.out_channels = out_channels
        self.sharpness = sharpness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fg = self.sharpness * (x[:, :1] - self.threshold)
        never = torch.full_like(fg, -1e4).expand(-1, self.out_channels - 2, *fg.shape[2:])
        return torch.cat([torch.zeros_like(fg), fg, never], dim=1)
