from __future__ import annotations

import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer

from monai_ag.inferers import FlipTTAInferer


def test_equivariant_network_is_unchanged():
    net = torch.nn.Conv3d(1, 2, kernel_size=1)  # pointwise: flip-equivariant
    x = torch.randn(1, 1, 9, 8, 7)
    with torch.no_grad():
        plain = SlidingWindowInferer(roi_size=(8, 8, 8))(x, net)
        tta = FlipTTAInferer(SlidingWindowInferer(roi_size=(8, 8, 8)), spatial_dims=3)(x, net)
    torch.testing.assert_close(tta, plain, atol=1e-5, rtol=1e-5)


def test_averages_flipped_predictions():
    # a network that outputs the x coordinate ramp: flipped back, the average is the mean ramp
    def ramp(x):
        return torch.arange(x.shape[2], dtype=x.dtype).view(1, 1, -1, 1) * torch.ones_like(x)

    x = torch.zeros(1, 1, 5, 3)
    out = FlipTTAInferer(SimpleInferer(), spatial_dims=2, axes=(0,))(x, ramp)
    torch.testing.assert_close(out, torch.full_like(x, 2.0))


def test_bad_axes():
    with pytest.raises(ValueError, match=r"axes must be spatial axes in \[0, 3\), got \(3,\)"):
        FlipTTAInferer(SimpleInferer(), spatial_dims=3, axes=(3,))
