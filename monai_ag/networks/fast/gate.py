"""The eval-mode function of :py:class:`~monai_ag.networks.blocks.GridAttentionGate` with its linear tail folded."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_ag.networks.blocks.grid_attention import GridAttentionGate, pad_to_factor, resize_needed
from monai_ag.networks.fast.primitives import BufferPool, FoldedConv, channels_last, fold_post, fuse_norm

__all__ = ["FoldedGridAttentionGate"]


def _first_norm(mods: list[nn.Module]) -> nn.Module | None:
    for m in mods:
        if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)):
            return m
    return None


class FoldedGridAttentionGate:
    """
    The eval-mode function of a :py:class:`GridAttentionGate` with its linear tail folded: per head,
    ``W`` (1x1 conv), its norm, the head's slice of ``combine`` and ``combine``'s norm are all linear,
    and the coefficient ``alpha_h`` is a scalar per voxel, so
    ``combine(cat_h(W_h(alpha_h x))) = sum_h M_h (alpha_h x) + c``: one 1x1 convolution from
    ``heads * C`` to ``C`` channels (half the multiply-adds of ``W`` then ``combine``) with the
    activation fused, instead of two convolutions, two norms and their intermediate tensors.

    Build it with :py:meth:`from_gate`; it snapshots the weights. Use it without autograd.

    Example::

        folded = FoldedGridAttentionGate.from_gate(gate.eval())
        with torch.no_grad():
            out, alpha = folded(x, g)  # == gate(x, g)
    """

    def __init__(self, gate: GridAttentionGate, combined: FoldedConv, dtype: torch.dtype | None = None) -> None:
        self.heads = gate.heads
        self.mode = gate.mode
        self.softplus = gate.softplus
        self.softmax = gate.softmax
        # theta accumulates into phi(g) with the nonlinearity fused when it is a ReLU (see __call__)
        self.theta = FoldedConv(gate.theta, [nn.ReLU()] if not gate.softplus else [], dtype=dtype)
        self.phi = FoldedConv(gate.phi, dtype=dtype)
        self.psi = FoldedConv(gate.psi, [nn.Sigmoid()] if not gate.softmax else [], dtype=dtype)
        self.sub_sample_factor = gate.sub_sample_factor
        self.combined = combined

    @classmethod
    def from_gate(cls, gate: GridAttentionGate, dtype: torch.dtype | None = None) -> FoldedGridAttentionGate | None:
        """
        The gate folded from its current weights, or ``None`` when its norms do not fold into the
        convolutions (a norm other than batch norm with running statistics, or the gate in training mode).
        ``dtype``: of the folded weights and the computation (e.g. ``torch.bfloat16``), default the gate's.
        """
        if gate.training:
            return None
        w_post = list(gate.W)[1:]
        c_post = list(gate.combine.adn.children()) if hasattr(gate.combine, "adn") else []
        w_norm, w_act, w_rest = fold_post(w_post)
        c_fold, _, _ = fold_post(c_post)
        # everything between W and combine's activation must be linear: norms that fold, or none
        if w_act != "none" or w_rest or (_first_norm(w_post) is not None and w_norm is None):
            return None
        c_norm = _first_norm(c_post)
        if c_norm is not None and c_fold is None:
            return None
        with torch.no_grad():
            heads, c = gate.heads, gate.in_channels
            w, b = gate.W[0].weight.detach().double(), gate.W[0].bias
            b = b.detach().double() if b is not None else w.new_zeros(w.shape[0])
            if w_norm is not None:
                w, b = fuse_norm(w, b, w_norm)
            w = w.flatten(1)  # (heads * C, C): head h maps x to rows h*C..
            wc = gate.combine.conv.weight.detach().double()  # (C, heads * C, 1, ...)
            bc = gate.combine.conv.bias.detach().double() if gate.combine.conv.bias is not None else wc.new_zeros(c)
            bc = bc + wc.flatten(1) @ b
            if c_fold is not None:
                wc, bc = fuse_norm(wc, bc, c_fold)
            wc = wc.flatten(1)
            # column block h of the folded weight acts on alpha_h * x
            m = torch.cat([wc[:, h * c : (h + 1) * c] @ w[h * c : (h + 1) * c] for h in range(heads)], dim=1)
            m = m.reshape(gate.combine.conv.weight.shape)
            rest = [mod for mod in c_post if mod is not c_norm]
            combined = FoldedConv(gate.combine.conv, rest, weight=m, bias=bc, dtype=dtype)
        return cls(gate, combined, dtype)

    def __call__(
        self, x: torch.Tensor, g: torch.Tensor, pool: BufferPool | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: skip features, ``(B, in_channels, *spatial)``.
            g: gating signal, ``(B, gating_channels, *coarse_spatial)``.
            pool: work buffers to draw from (see :py:class:`~monai_ag.networks.fast.BufferPool`); the
                returned features are then one of its buffers, to hand back when done.

        Returns:
            the gated features and the coefficients, as :py:meth:`GridAttentionGate.forward`.
        """
        phi_g = self.phi(g)
        x_theta = pad_to_factor(x, self.sub_sample_factor)
        if x_theta is not x:
            x_theta = channels_last(x_theta)
        size = tuple(self.theta.out_shape(x_theta)[2:])
        if resize_needed(phi_g, size):
            phi_g = F.interpolate(phi_g, size=size, mode=self.mode, align_corners=False)
        # f = relu(theta(x) + phi(g)): theta's convolution accumulates into phi(g) with the ReLU fused
        if self.softplus:
            f = F.softplus(self.theta.add_into(channels_last(phi_g), x_theta))
        else:
            f = self.theta.add_into(channels_last(phi_g), x_theta)
        q = self.psi(f)
        # a softmax over space sums many terms: in float32 whatever the graph's dtype
        alpha = torch.softmax(q.flatten(2).float(), dim=2).to(q.dtype).view_as(q) if self.softmax else q
        if resize_needed(alpha, x.shape[2:]):
            alpha = F.interpolate(alpha, size=x.shape[2:], mode=self.mode, align_corners=False)
        # cat_h(alpha_h * x) written in place, then the folded W/norm/combine/norm/act
        c = x.shape[1]
        shape = (x.shape[0], self.heads * c, *x.shape[2:])
        if pool is not None:
            gated = pool.take(shape, like=x)
        else:
            gated = channels_last(torch.empty(shape, dtype=x.dtype, device=x.device))
        torch.mul(x.unsqueeze(1), alpha.unsqueeze(2), out=gated.unflatten(1, (self.heads, c)))
        out = self.combined(gated, pool)
        if pool is not None:
            pool.give(gated)
        return out, alpha
