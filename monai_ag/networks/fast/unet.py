"""The eval-mode function of :py:class:`~monai_ag.networks.nets.GridAttentionUNet` with fewer passes over memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn as nn

from monai_ag.networks.fast import adapters
from monai_ag.networks.fast.gate import FoldedGridAttentionGate
from monai_ag.networks.fast.primitives import (
    BufferPool,
    FoldedConv,
    channels_last,
    fold_convolution,
    resize_linear,
    run_module,
)

if TYPE_CHECKING:  # the network imports this package, not the other way round
    from monai_ag.networks.nets.grid_attention_unet import GridAttentionUNet

__all__ = ["FoldedGridAttentionUNet"]


def _fold_block(block: nn.Module, dtype: torch.dtype | None = None) -> list:
    """A sequence of MONAI ``Convolution`` blocks (and pools) as folded convolutions (and modules)."""
    steps: list = []
    for m in block.children() if isinstance(block, nn.Sequential) else [block]:
        if isinstance(getattr(m, "conv", None), (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            steps.append(fold_convolution(m, dtype))
        else:
            steps.append(m)
    return steps


def _run_steps(steps: list, h: torch.Tensor, pool: BufferPool, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Apply folded convolutions (drawing their outputs from ``pool``) and modules, handing back
    each intermediate once consumed (but not ``keep``)."""
    for step in steps:
        new = step(h, pool) if isinstance(step, FoldedConv) else run_module(step, h)
        if h is not keep:
            pool.give(h)
        h = new
    return h


class FoldedGridAttentionUNet:
    """
    The eval-mode function of a :py:class:`GridAttentionUNet`, computed with fewer passes over memory
    (the same outputs within float rounding):

    - every batch norm folded into the convolution before it and the ReLU fused into it: one oneDNN
      call per conv-norm-act on CPU, in the channels-last layout, with prepacked weights;
    - each gate folded (see :py:class:`~monai_ag.networks.fast.FoldedGridAttentionGate`);
    - the deep-supervision head folded: the fusing 1x1 conv is linear and commutes with the
      (tri)linear upsampling, so ``fuse(cat_k(up(head_k(d_k)))) = sum_k up(F_k head_k(d_k)) + b``:
      each term is computed at its level's own resolution, as soon as that level is decoded, and
      the upsampled sum is accumulated into the output in one pass;
    - large intermediates written into work buffers kept between calls
      (:py:class:`~monai_ag.networks.fast.BufferPool`), so repeated calls of one input size (the
      windows of a sliding-window inference) fault in no fresh memory; a call with another input
      size replaces them.

    It snapshots the weights; ``GridAttentionUNet`` with ``fast_inference`` builds and caches one by
    itself. Use it under ``torch.no_grad()`` or ``torch.inference_mode()``.

    With ``dtype=torch.bfloat16`` the folded weights, the convolutions and the intermediates are
    bfloat16 (oneDNN accumulates in float32; modules it does not fold run under CPU autocast), while
    the input is taken in float32 and the deep-supervision head, the gates' softmax (if any) and the
    output are computed in float32: logits within bfloat16 rounding of the float32 graph's.

    Args:
        net: the network, in eval mode.
        dtype: the computation's dtype, ``torch.bfloat16`` or the network's (the default).

    Example::

        folded = FoldedGridAttentionUNet(net.eval())
        with torch.no_grad():
            logits = folded(x)  # == net(x)
        folded.pool.clear()  # release the work buffers
    """

    def __init__(self, net: GridAttentionUNet, dtype: torch.dtype | None = None) -> None:
        if net.training:
            raise ValueError("FoldedGridAttentionUNet needs the network in eval mode (call net.eval()).")
        self.dtype = dtype if dtype is not None else next(iter(net.parameters())).dtype
        self.mode = net.mode
        self.pool = BufferPool()
        self._input: tuple | None = None
        with torch.no_grad():
            self.encoder = [_fold_block(block, self.dtype) for block in net.encoder]
            self.gating = None if net.gating is None else fold_convolution(net.gating, self.dtype)
            self.decoder = []
            for level in net.decoder:
                gate = None
                if level.gate is not None:
                    # a gate whose norms do not fold runs as it is
                    gate = FoldedGridAttentionGate.from_gate(level.gate, self.dtype) or level.gate
                self.decoder.append((gate, level.up, _fold_block(level.conv, self.dtype)))
            self._fold_heads(net)

    def _fold_heads(self, net: GridAttentionUNet) -> None:
        # per decoder level (coarsest first): the folded head's (out_channels, C) matrix, or None
        levels = len(net.decoder)
        self.heads: list[torch.Tensor | None] = [None] * levels
        if net.fuse is None:
            head = net.heads[0]
            self.final_weight = head.weight.detach().flatten(1)
            self.final_bias = head.bias.detach() if head.bias is not None else None
            return
        # fuse(cat_k side_k) = sum_k F_k side_k + b, side_k = heads[L-1-k](decoded[L-1-k]) (finest first)
        n = net.out_channels
        fw = net.fuse.weight.detach().double().flatten(1)
        bias = net.fuse.bias.detach().double() if net.fuse.bias is not None else fw.new_zeros(n)
        for k in range(levels):
            head = net.heads[levels - 1 - k]
            f_k = fw[:, k * n : (k + 1) * n]
            w = (f_k @ head.weight.detach().double().flatten(1)).to(head.weight.dtype)
            if head.bias is not None:
                bias = bias + f_k @ head.bias.detach().double()
            if k == 0:
                self.final_weight = w
            else:
                self.heads[levels - 1 - k] = w
        self.final_bias = bias.to(net.fuse.weight.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # autocast (the caller's, for a bfloat16 graph) must not touch the float32 head's products
        with torch.autocast(x.device.type, enabled=False):
            return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = self.pool
        # buffers serve one input size (a new size replaces them rather than adding up); buffers made
        # under torch.inference_mode cannot be written outside it
        key = (tuple(x.shape), x.dtype, x.device, torch.is_inference_mode_enabled())
        if key != self._input:
            pool.clear()
            self._input = key
        h = channels_last(x.to(self.dtype))
        skips: list[torch.Tensor] = []
        for steps in self.encoder:
            h = _run_steps(steps, h, pool, keep=skips[-1] if skips else x)
            skips.append(h)
        h = skips.pop()
        gating = h if self.gating is None else self.gating(h, pool)
        coarse_terms: list[torch.Tensor] = []
        for i, (gate, up, steps) in enumerate(self.decoder):
            skip = skips.pop()
            if gate is not None:
                if isinstance(gate, FoldedGridAttentionGate):
                    gated, _ = gate(skip, gating, pool)
                else:
                    gated, _ = run_module(gate, skip, gating)
                pool.give(skip)
                skip = gated
            if gating is not h:
                pool.give(gating)
            if up is not None:
                u = run_module(up, h)
                for d in range(2, skip.dim()):
                    u = u.narrow(d, 0, skip.shape[d])
                u = channels_last(u)
            else:
                u = pool.take((h.shape[0], h.shape[1], *skip.shape[2:]), like=h)
                adapters.upsample_linear_into(h, u)
            pool.give(h)
            cat = pool.take((skip.shape[0], skip.shape[1] + u.shape[1], *skip.shape[2:]), like=skip)
            torch.cat([skip, u], dim=1, out=cat)
            pool.give(skip, u)
            h = _run_steps(steps, cat, pool)
            gating = h
            if self.heads[i] is not None:
                coarse_terms.append(_head(h, self.heads[i], None))
        # the finest head (with the fused head's bias) straight into a new, default-layout output
        out = _head(h, self.final_weight, self.final_bias)
        pool.give(h)
        if coarse_terms:
            resize_linear(coarse_terms, x.shape[2:], out=out)
        return out


def _head(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A 1x1 convolution of channels-last ``h`` as one matrix product, into a new default-layout tensor."""
    if h.dtype != weight.dtype:  # a bfloat16 graph's head: in float32 (weight's dtype)
        h = h.to(weight.dtype)
    b, c = h.shape[0], h.shape[1]
    feats = h.permute(0, *range(2, h.dim()), 1).reshape(b, -1, c).transpose(1, 2)  # (B, C, N), a view
    n = weight.shape[0]
    w = weight.to(h.dtype).expand(b, n, c)
    if bias is None:
        out = torch.bmm(w, feats)
    else:
        out = torch.baddbmm(bias.to(h.dtype).view(1, n, 1).expand(b, n, feats.shape[2]), w, feats)
    return out.view(b, n, *h.shape[2:])
