"""The Attention U-Net of Oktay et al. (MIDL 2018), as the authors' code defines it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Conv, Pool
from monai.networks.layers.utils import split_args
from monai.utils import ensure_tuple_rep, look_up_option

from monai_ag.networks.blocks.grid_attention import GridAttentionGate, interpolate_mode

if TYPE_CHECKING:  # the fast path is imported where it is used (see ``_forward_folded``)
    from monai_ag.networks.fast import FoldedGridAttentionUNet

__all__ = ["GridAttentionUNet"]

_UPSAMPLE_MODES = {"linear": "linear", "bilinear": "linear", "trilinear": "linear", "deconv": "deconv"}


class _Layout(NamedTuple):
    """The constructor's arguments checked and normalised: what the layers are built from."""

    channels: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    kernel: tuple[int, ...]
    gated_levels: tuple[int, ...]
    upsample: str


def _check_arguments(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Sequence[int],
    strides: Sequence[Sequence[int] | int],
    kernel_size: Sequence[int] | int,
    dropout: float,
    gate_heads: int,
    gated_levels: Sequence[int] | None,
    upsample: str,
    deep_supervision: bool,
    deep_supervision_outputs: bool,
) -> _Layout:
    """
    Check :py:class:`GridAttentionUNet`'s arguments, raising a ``ValueError`` that names the argument,
    the value given and what is allowed, and normalise them: one stride and kernel size per axis,
    the strides of the used levels only, the gated levels sorted without repeats, the upsampling mode
    resolved. Kept apart from the constructor so that it reads as building the layers.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}.")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("gate_heads", gate_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    channels = tuple(channels)
    if len(channels) < 2 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
        raise ValueError(f"channels must hold at least 2 positive ints (finest first), got {channels!r}.")
    levels = len(channels) - 1
    strides = tuple(strides)
    if len(strides) < levels:
        raise ValueError(
            f"strides needs one entry per downsampling, len(channels) - 1 = {levels}, "
            f"got {len(strides)}: strides={strides!r}, channels={channels!r}."
        )
    per_axis = tuple(ensure_tuple_rep(s, spatial_dims) for s in strides[:levels])
    if any(not isinstance(v, int) or v < 1 for s in per_axis for v in s):
        raise ValueError(f"strides must be ints >= 1 (one or one per axis per level), got {strides!r}.")
    kernel = ensure_tuple_rep(kernel_size, spatial_dims)
    if any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernel):
        raise ValueError(f"kernel_size must be odd positive ints (one or one per axis), got {kernel_size!r}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    gated = tuple(range(2, levels + 1)) if gated_levels is None else tuple(sorted(set(gated_levels)))
    if any(not isinstance(lv, int) or not 1 <= lv <= levels for lv in gated):
        raise ValueError(f"gated_levels must be levels in 1..{levels} (1 = full resolution), got {gated_levels!r}.")
    up_mode = look_up_option(upsample, _UPSAMPLE_MODES)
    if deep_supervision_outputs and not deep_supervision:
        raise ValueError("deep_supervision_outputs=True needs deep_supervision=True (it reuses its heads).")
    return _Layout(channels, per_axis, kernel, gated, up_mode)


class _ConvBlock(nn.Sequential):
    """Two (conv -> norm -> dropout -> act) units: the U-Net level of the paper's code."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        norm: tuple | str,
        act: tuple | str,
        dropout: float,
    ) -> None:
        drop = dropout if dropout > 0 else None
        super().__init__(
            *(
                Convolution(
                    spatial_dims,
                    c_in,
                    out_channels,
                    kernel_size=kernel_size,
                    act=act,
                    norm=norm,
                    dropout=drop,
                    adn_ordering="NDA",
                )
                for c_in in (in_channels, out_channels)
            )
        )


class _DecoderLevel(nn.Module):
    """One decoder level: gate the skip (optional), upsample the coarser output, concat, convolve."""

    def __init__(
        self,
        spatial_dims: int,
        skip_channels: int,
        coarse_channels: int,
        stride: tuple[int, ...],
        gate: GridAttentionGate | None,
        upsample: str,
        up_kernel_size: Sequence[int] | int,
        kernel_size: Sequence[int] | int,
        norm: tuple | str,
        act: tuple | str,
        dropout: float,
    ) -> None:
        super().__init__()
        self.mode = interpolate_mode(spatial_dims)
        self.gate = gate
        self.up: nn.Module | None = None
        if upsample == "deconv":
            self.up = Convolution(
                spatial_dims,
                coarse_channels,
                coarse_channels,
                strides=stride,
                kernel_size=up_kernel_size,
                is_transposed=True,
                conv_only=True,
            )
        self.conv = _ConvBlock(
            spatial_dims, skip_channels + coarse_channels, skip_channels, kernel_size, norm, act, dropout
        )

    def forward(
        self, skip: torch.Tensor, coarse: torch.Tensor, gating: torch.Tensor
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        alpha: Optional[torch.Tensor] = None
        if self.gate is not None:
            skip, alpha = self.gate(skip, gating)
        if self.up is not None:
            up = self.up(coarse)
            # a transposed conv overshoots odd skip sizes by one voxel: crop to the skip
            for d in range(2, skip.dim()):
                up = up.narrow(d, 0, skip.shape[d])
        else:
            up = F.interpolate(coarse, size=skip.shape[2:], mode=self.mode, align_corners=False)
        return self.conv(torch.cat([skip, up], dim=1)), alpha


class GridAttentionUNet(nn.Module):
    """
    The Attention U-Net of Oktay et al., "Attention U-Net: Learning Where to Look for the
    Pancreas", MIDL 2018 <https://arxiv.org/abs/1804.03999>_, as the authors' code defines it
    (their multi-organ CT model ``unet_CT_multi_att_dsv_3D``): a max-pool U-Net whose skips are
    filtered by :py:class:`~monai_ag.networks.blocks.GridAttentionGate` computed on the coarse
    grid, gated first by a 1x1 conv-norm-act of the bottleneck and then by the coarser decoder
    output, with a (bi/tri)linear decoder and a fused deep-supervision head.

    The constructor is a drop-in for :py:class:`monai.networks.nets.AttentionUnet`: its first eight
    arguments have the same names and meaning, so swapping the class name in code or a bundle
    config works. The defaults are the paper's CT configuration; with ``in_channels=1`` and
    ``out_channels=4`` it has the authors' 6,473,322 parameters.

    Any input size works: pooling rounds up, upsampling and the gates resample to the skip's
    size, and the output always has the input's spatial size.

    Args:
        spatial_dims: number of spatial dimensions, 2 or 3.
        in_channels: number of input channels.
        out_channels: number of output channels (classes, background included).
        channels: feature channels per level, finest first; at least 2 (one level + bottleneck).
            Defaults to the paper's (16, 32, 64, 128, 256).
        strides: downsampling factor between consecutive levels (max-pool kernel = stride), an int
            or one per axis for each level; 1 keeps the grid. Entries past ``len(channels) - 1``
            are ignored, as in ``AttentionUnet``. Defaults to 2 everywhere.
        kernel_size: kernel size of the encoder/decoder convolutions (odd), int or per axis.
        up_kernel_size: kernel size of the transposed convolutions when ``upsample="deconv"``.
        dropout: dropout probability after each encoder/decoder convolution (MONAI Label's
            epistemic scoring relies on it); 0 disables it.
        norm: feature normalization, a MONAI ``Norm`` name or ``(name, args)``; default batch norm.
        act: activation, a MONAI ``Act`` name or ``(name, args)``; default ReLU.
        gate_heads: parallel gates per gated level (the paper's CT network uses 2).
        gated_levels: the encoder levels whose skips are gated, 1-based (1 = full resolution).
            Default ``None``: every level but the first, as in the paper; ``()`` gives the same
            U-Net without gates.
        gate_nonlinearity: ``"relu"`` (the paper) or ``"softplus"``.
        gate_normalization: ``"sigmoid"`` (the paper) or ``"softmax"`` over space.
        upsample: ``"linear"`` (bi/trilinear interpolation, the paper) or ``"deconv"``
            (transposed convolution with ``up_kernel_size``).
        deep_supervision: use the paper's fused deep-supervision head (1x1 conv heads on each
            decoder level, upsampled, concatenated and fused by a 1x1 conv); ``False`` gives a
            single 1x1 conv head on the finest decoder level.
        deep_supervision_outputs: in training mode, return a list for
            :py:class:`monai.losses.DeepSupervisionLoss`: the normal output, then each decoder
            level's head output at its own resolution, finest first. Off by default so
            ``loss(net(x), y)`` keeps working; eval mode always returns one tensor. Needs
            ``deep_supervision``; the state dict is the same either way.
        fast_inference: on CPU, in eval mode without autograd (``torch.no_grad()`` or
            ``torch.inference_mode()``, as MONAI's inferers and evaluators run), compute ``forward``
            with :py:class:`~monai_ag.networks.fast.FoldedGridAttentionUNet`: norms folded into the
            convolutions, fused activations, folded gates and deep-supervision head, channels-last
            oneDNN convolutions, work buffers reused between calls. The same outputs within float
            rounding (about 1e-6 relative), about 3x faster (``docs/performance.md``). The folded
            weights and buffers are cached (until a parameter or buffer changes, or the input size
            changes; see :py:meth:`clear_fast_inference_cache`). Under CPU autocast to bfloat16 it
            computes in a bfloat16 folded graph (float32 logits within bfloat16 rounding; see
            :py:mod:`monai_ag.utils.precision`). Training, autograd, CUDA, other autocasts,
            dtypes other than float32/float64, forward hooks on submodules, TorchScript, tracing,
            ``torch.compile`` and export use the plain modules. The path relies on private torch
            APIs: with a torch version it was not tested with, or when its one-time numerical check
            against the plain modules fails, it stays off with one logged warning
            (:py:func:`monai_ag.networks.fast.fast_path_available`). ``False`` is the opt-out: the
            plain modules always, and the fast path is never imported.

    Example::

        net = GridAttentionUNet(spatial_dims=3, in_channels=1, out_channels=5)
        with torch.no_grad():  # eval mode without autograd: the fast inference path on CPU
            logits = net.eval()(torch.rand(1, 1, 96, 96, 64))  # (1, 5, 96, 96, 64)
        maps = net.attention_maps(torch.rand(1, 1, 96, 96, 64))  # 3 x (1, 2, 96, 96, 64)
    """

    # the fast path's cache (folded weights, work buffers) is plain Python state: not scripted
    __jit_ignored_attributes__ = ["_folded"]

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        strides: Sequence[Sequence[int] | int] = (2, 2, 2, 2),
        kernel_size: Sequence[int] | int = 3,
        up_kernel_size: Sequence[int] | int = 3,
        dropout: float = 0.0,
        norm: tuple | str = "batch",
        act: tuple | str = "relu",
        gate_heads: int = 2,
        gated_levels: Sequence[int] | None = None,
        gate_nonlinearity: str = "relu",
        gate_normalization: str = "sigmoid",
        upsample: str = "linear",
        deep_supervision: bool = True,
        deep_supervision_outputs: bool = False,
        fast_inference: bool = True,
    ) -> None:
        super().__init__()
        layout = _check_arguments(
            spatial_dims,
            in_channels,
            out_channels,
            channels,
            strides,
            kernel_size,
            dropout,
            gate_heads,
            gated_levels,
            upsample,
            deep_supervision,
            deep_supervision_outputs,
        )
        channels, kernel, gated = layout.channels, layout.kernel, layout.gated_levels
        levels = len(channels) - 1

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = channels
        self.strides = layout.strides
        self.gated_levels = gated
        self.deep_supervision = deep_supervision
        self.deep_supervision_outputs = deep_supervision_outputs
        self.fast_inference = bool(fast_inference)
        self._folded: tuple[tuple, FoldedGridAttentionUNet] | None = None
        self.mode = interpolate_mode(spatial_dims)
        self._batch_norm = split_args(norm)[0].lower() in ("batch", "syncbatch")

        pool = Pool[Pool.MAX, spatial_dims]
        self.encoder = nn.ModuleList()
        for i, c in enumerate(channels):
            block = _ConvBlock(spatial_dims, in_channels if i == 0 else channels[i - 1], c, kernel, norm, act, dropout)
            if i > 0 and any(s > 1 for s in self.strides[i - 1]):
                block = nn.Sequential(pool(kernel_size=self.strides[i - 1], ceil_mode=True), *block)
            self.encoder.append(block)

        # the deepest gate is gated by a 1x1 conv-norm-act of the bottleneck; the others by the decoder
        self.gating: nn.Module | None = None
        if levels in gated:
            self.gating = Convolution(spatial_dims, channels[-1], channels[-1], kernel_size=1, act=act, norm=norm)
        self.decoder = nn.ModuleList()
        for i in reversed(range(levels)):
            gate = None
            if i + 1 in gated:
                gate = GridAttentionGate(
                    spatial_dims,
                    channels[i],
                    channels[i + 1],
                    inter_channels=channels[i],
                    sub_sample_factor=self.strides[i],
                    heads=gate_heads,
                    nonlinearity=gate_nonlinearity,
                    normalization=gate_normalization,
                    norm=norm,
                    act=act,
                )
            self.decoder.append(
                _DecoderLevel(
                    spatial_dims,
                    channels[i],
                    channels[i + 1],
                    self.strides[i],
                    gate,
                    layout.upsample,
                    up_kernel_size,
                    kernel,
                    norm,
                    act,
                    dropout,
                )
            )

        conv = Conv[Conv.CONV, spatial_dims]
        # heads in decoder order (coarsest first); ``fuse`` sees them finest first, as in the paper code
        self.heads = nn.ModuleList(
            conv(channels[i], out_channels, kernel_size=1) for i in reversed(range(levels if deep_supervision else 1))
        )
        self.fuse: nn.Module | None = (
            conv(levels * out_channels, out_channels, kernel_size=1) if deep_supervision else None
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # the authors' init: kaiming normal (fan_in) convs, norm weights ~ N(1, 0.02), bias 0
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
                if getattr(m, "weight", None) is not None:
                    nn.init.normal_(m.weight, 1.0, 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def bottleneck_size(self, spatial_size: Sequence[int]) -> tuple[int, ...]:
        """The bottleneck's spatial size for an input of ``spatial_size`` (pooling rounds up)."""
        size = list(spatial_size)
        for stride in self.strides:
            size = [math.ceil(n / s) for n, s in zip(size, stride)]
        return tuple(size)

    @torch.jit.unused
    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a torch.Tensor, got {type(x).__name__}.")
        if x.dim() != self.spatial_dims + 2:
            axes = "(B, C, H, W, D)" if self.spatial_dims == 3 else "(B, C, H, W)"
            raise ValueError(
                f"{type(self).__name__} with spatial_dims={self.spatial_dims} expects a {self.spatial_dims + 2}D "
                f"input {axes}, got a {x.dim()}D tensor of shape {tuple(x.shape)}."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.in_channels} input channel(s) (in_channels), "
                f"got {x.shape[1]} in input of shape {tuple(x.shape)}."
            )
        size = list(self.bottleneck_size(x.shape[2:]))
        if self.training:
            values = math.prod(size) * (x.shape[0] if self._batch_norm else 1)
            if values < 2:
                raise ValueError(
                    f"input of shape {tuple(x.shape)} is too small to train: the bottleneck is {tuple(size)} "
                    f"and its normalization needs more than one value per channel; use a larger patch or batch."
                )

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Returns the output, each decoder level's head output (finest first) and the gates' coefficients."""
        if not torch.jit.is_scripting() and not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            self._check_input(x)
        skips: list[torch.Tensor] = []
        h = x
        for block in self.encoder:
            h = block(h)
            skips.append(h)
        h = skips.pop()
        gating = h if self.gating is None else self.gating(h)
        decoded: list[torch.Tensor] = []
        alphas: list[torch.Tensor] = []
        for level in self.decoder:
            h, alpha = level(skips.pop(), h, gating)
            gating = h
            decoded.append(h)
            if alpha is not None:
                alphas.append(alpha)
        side: list[torch.Tensor] = []
        for i, head in enumerate(self.heads):
            side.append(head(decoded[len(decoded) - len(self.heads) + i]))
        side.reverse()
        alphas.reverse()
        if self.fuse is None:
            return side[0], side, alphas
        full = [side[0]] + [F.interpolate(s, size=x.shape[2:], mode=self.mode, align_corners=False) for s in side[1:]]
        return self.fuse(torch.cat(full, dim=1)), side, alphas

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """
        Args:
            x: input of shape ``(B, in_channels, *spatial)``, any spatial size.

        Returns:
            logits ``(B, out_channels, *spatial)``; in training mode with
            ``deep_supervision_outputs``, the list ``[logits, head_1, ..., head_L]`` (finest first,
            each at its decoder level's resolution).
        """
        if not torch.jit.is_scripting():
            if self._fast_path_applies(x):
                return self._forward_folded(x)
        out, side, _ = self._run(x)
        if self.training and self.deep_supervision_outputs:
            return [out] + side
        return out

    @torch.jit.unused
    def _fast_path_applies(self, x: torch.Tensor) -> bool:
        if not self.fast_inference or self.training or torch.is_grad_enabled():
            return False
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting():
            return False
        # CPU only: on CUDA, cuDNN (with AMP) runs the plain modules well and this path is untested there
        if not isinstance(x, torch.Tensor) or x.device.type != "cpu" or not x.is_floating_point():
            return False
        weight = next(iter(self.parameters()))
        if x.dtype != weight.dtype or x.device != weight.device:
            return False
        # CPU autocast: the bfloat16 folded graph for float32 weights; any other autocast runs the modules
        if torch.is_autocast_enabled("cpu") and (
            torch.get_autocast_dtype("cpu") != torch.bfloat16 or weight.dtype != torch.float32
        ):
            return False
        # hooks on submodules expect them to run: honour them with the plain path
        hooks = nn.modules.module
        if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
            return False
        if any(m._forward_hooks or m._forward_pre_hooks for m in self.modules() if m is not self):
            return False
        # the only import of the fast path: a tested torch version and a numerical check, decided once
        from monai_ag.networks.fast import fast_path_available

        return fast_path_available(GridAttentionUNet, self.spatial_dims, x.dtype)

    @torch.jit.unused
    def fold(self) -> FoldedGridAttentionUNet:
        """
        The network's eval-mode function with norms folded into the convolutions (see
        :py:class:`~monai_ag.networks.fast.FoldedGridAttentionUNet`), built from the current weights,
        switching to eval mode.
        ``forward`` uses it by itself when ``fast_inference`` is on; this gives it to callers that
        want to hold it, e.g. ``folded = net.fold(); y = folded(x)`` under ``torch.no_grad()``.
        """
        from monai_ag.networks.fast import FoldedGridAttentionUNet

        self.eval()
        with torch.no_grad():
            return FoldedGridAttentionUNet(self)

    @torch.jit.unused
    def clear_fast_inference_cache(self) -> None:
        """Drop the folded weights and work buffers that ``fast_inference`` keeps between calls (they
        are rebuilt by the next fast call); e.g. to release memory after a batch of inferences."""
        self._folded = None

    def __getstate__(self) -> dict:
        # copies and pickles (deepcopy for EMA, torch.save of the module) leave the cache behind
        state = super().__getstate__()
        state["_folded"] = None
        return state

    @torch.jit.unused
    def _forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        from monai_ag.networks.fast import FoldedGridAttentionUNet, state_key

        self._check_input(x)
        # under CPU autocast to bfloat16 (see _fast_path_applies): the bfloat16 graph, float32 logits
        dtype = torch.bfloat16 if torch.is_autocast_enabled("cpu") else x.dtype
        key = (dtype, *state_key(self))
        if self._folded is None or self._folded[0] != key:
            self._folded = (key, FoldedGridAttentionUNet(self, dtype=dtype))
        return self._folded[1](x)

    @torch.jit.export
    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """
        The gates' attention coefficients for input ``x``, one tensor per gated level (finest
        first), each resampled to the input's spatial size: ``(B, gate_heads, *x.shape[2:])``,
        values in [0, 1]. Runs the network in its current mode; call ``eval()`` first for
        inference-time maps. ``forward`` is unaffected.
        """
        _, _, alphas = self._run(x)
        return [F.interpolate(a, size=x.shape[2:], mode=self.mode, align_corners=False) for a in alphas]
