"""The additive grid attention gate of the Attention U-Net."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv
from monai.networks.layers.utils import get_norm_layer
from monai.utils import ensure_tuple_rep, look_up_option

__all__ = ["GridAttentionGate", "interpolate_mode", "pad_to_factor", "resize_needed"]

_NONLINEARITIES = ("relu", "softplus")
_NORMALIZATIONS = ("sigmoid", "softmax")


def resize_needed(t: torch.Tensor, size: list[int]) -> bool:
    """Whether ``t``'s spatial size differs from ``size``; always true under ``torch.compile``/``torch.export``,
    where a shape test on symbolic sizes would become a guard and resampling to the same size is exact."""
    if not torch.jit.is_scripting():
        if torch.compiler.is_compiling():
            return True
    return t.shape[2:] != size


def pad_to_factor(x: torch.Tensor, factor: list[int]) -> torch.Tensor:
    """Replicate-pad ``x`` at the far end of each spatial axis shorter than ``factor`` (a skip smaller
    than the gate's stride still gets one coarse cell); returns ``x`` itself when none is."""
    pad: list[int] = []
    short = False
    for d in range(len(factor) - 1, -1, -1):
        missing = factor[d] - x.shape[2 + d]
        pad += [0, max(missing, 0)]
        short = short or missing > 0
    return F.pad(x, pad, mode="replicate") if short else x


def interpolate_mode(spatial_dims: int) -> str:
    """The linear interpolation mode of ``torch.nn.functional.interpolate`` for ``spatial_dims``."""
    return look_up_option(spatial_dims, {1: "linear", 2: "bilinear", 3: "trilinear"})


class GridAttentionGate(nn.Module):
    """
    Additive grid attention gate of Oktay et al., "Attention U-Net: Learning Where to Look for
    the Pancreas", MIDL 2018 <https://arxiv.org/abs/1804.03999>_, as the authors' code defines it.

    The skip features ``x`` (``in_channels``) are projected onto the coarse grid by ``theta``, a
    strided convolution without bias (kernel = stride = ``sub_sample_factor``); the gating signal
    ``g`` (``gating_channels``, from the coarser level) by ``phi``, a 1x1 convolution with bias,
    resampled to theta's grid when the sizes differ. The attention coefficients are
    ``alpha = sigmoid(psi(relu(theta(x) + phi(g))))`` with ``psi`` a 1x1 convolution to one channel
    (no norm before the sigmoid), computed on the coarse grid and upsampled to the size of ``x``.
    Each head outputs ``W(alpha * x)`` (``W``: 1x1 convolution + norm); the heads' outputs are
    concatenated and combined by a 1x1 convolution + norm + activation (the paper code's
    "multi-dimensional" gating with ``heads=2``). ``forward`` returns the gated features and the
    coefficients ``alpha`` of shape ``(B, heads, *x.shape[2:])`` with values in [0, 1].

    The heads are computed together: ``theta``, ``phi``, ``psi`` and ``W`` of all heads are one
    (grouped) convolution each, with exactly the parameters of ``heads`` separate gates.

    Args:
        spatial_dims: number of spatial dimensions, 2 or 3.
        in_channels: channels of the skip features ``x`` (also the output channels).
        gating_channels: channels of the gating signal ``g``.
        inter_channels: channels of the intermediate (theta/phi) space; defaults to
            ``in_channels // 2`` as in the authors' block (their networks pass ``in_channels``).
        sub_sample_factor: stride of ``theta``, per axis or one int; 1 keeps the skip's grid.
            Use the downsampling factor between ``x`` and ``g`` so the grids match.
        heads: number of parallel gates (the paper's CT network uses 2).
        nonlinearity: ``"relu"`` (default, the paper) or ``"softplus"``.
        normalization: ``"sigmoid"`` (default, the paper) or ``"softmax"`` over space.
        norm: norm after ``W`` and the combining convolution, a MONAI ``Norm`` name or
            ``(name, args)``; defaults to batch norm.
        act: activation after the combining convolution, a MONAI ``Act`` name or ``(name, args)``.

    Example::

        gate = GridAttentionGate(spatial_dims=3, in_channels=64, gating_channels=128, inter_channels=64, heads=2)
        x, g = torch.rand(1, 64, 32, 32, 24), torch.rand(1, 128, 16, 16, 12)
        gated, alpha = gate(x, g)  # (1, 64, 32, 32, 24), (1, 2, 32, 32, 24)
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        gating_channels: int,
        inter_channels: int | None = None,
        sub_sample_factor: Sequence[int] | int = 2,
        heads: int = 1,
        nonlinearity: str = "relu",
        normalization: str = "sigmoid",
        norm: tuple | str = "batch",
        act: tuple | str = "relu",
    ) -> None:
        super().__init__()
        if spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
        for name, value in (("in_channels", in_channels), ("gating_channels", gating_channels), ("heads", heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        inter_channels = max(in_channels // 2, 1) if inter_channels is None else inter_channels
        if not isinstance(inter_channels, int) or inter_channels < 1:
            raise ValueError(f"inter_channels must be a positive int or None, got {inter_channels!r}.")
        factor = ensure_tuple_rep(sub_sample_factor, spatial_dims)
        if any(not isinstance(f, int) or f < 1 for f in factor):
            raise ValueError(f"sub_sample_factor must be ints >= 1 (one or one per axis), got {sub_sample_factor!r}.")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.heads = heads
        self.sub_sample_factor: list[int] = list(factor)
        self.softplus = look_up_option(nonlinearity, _NONLINEARITIES) == "softplus"
        self.softmax = look_up_option(normalization, _NORMALIZATIONS) == "softmax"
        self.mode = interpolate_mode(spatial_dims)

        conv = Conv[Conv.CONV, spatial_dims]
        hi = heads * inter_channels
        self.theta = conv(in_channels, hi, kernel_size=factor, stride=factor, padding=0, bias=False)
        self.phi = conv(gating_channels, hi, kernel_size=1, bias=True)
        self.psi = conv(hi, heads, kernel_size=1, groups=heads, bias=True)
        self.W = nn.Sequential(
            conv(heads * in_channels, heads * in_channels, kernel_size=1, groups=heads, bias=True),
            get_norm_layer(norm, spatial_dims, heads * in_channels),
        )
        self.combine = Convolution(
            spatial_dims, heads * in_channels, in_channels, kernel_size=1, act=act, norm=norm, adn_ordering="NDA"
        )

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: skip features, ``(B, in_channels, *spatial)``.
            g: gating signal, ``(B, gating_channels, *coarse_spatial)``.

        Returns:
            the gated features ``(B, in_channels, *spatial)`` and the coefficients
            ``(B, heads, *spatial)``.
        """
        theta_x = self.theta(pad_to_factor(x, self.sub_sample_factor))
        phi_g = self.phi(g)
        if resize_needed(phi_g, theta_x.shape[2:]):
            phi_g = F.interpolate(phi_g, size=theta_x.shape[2:], mode=self.mode, align_corners=False)
        f = F.softplus(theta_x + phi_g) if self.softplus else F.relu(theta_x + phi_g)
        q = self.psi(f)
        if self.softmax:
            alpha = torch.softmax(q.flatten(2), dim=2).view_as(q)
        else:
            alpha = torch.sigmoid(q)
        if resize_needed(alpha, x.shape[2:]):
            alpha = F.interpolate(alpha, size=x.shape[2:], mode=self.mode, align_corners=False)
        # every head gates the same features: (B, heads, C, ...) -> (B, heads * C, ...)
        gated = (alpha.unsqueeze(2) * x.unsqueeze(1)).flatten(1, 2)
        return self.combine(self.W(gated)), alpha
