"""
The fast inference path of :py:class:`~monai_ag.networks.nets.GridAttentionUNet`: the network's
eval-mode function with batch norms folded into channels-last oneDNN convolutions, fused
activations, folded gates and deep-supervision head, and work buffers reused between calls.

Nothing imports this package but ``GridAttentionUNet``'s dispatch (``fast_inference=True``, the
default: on CPU, in eval mode without autograd), at its first fast call. It gives the same outputs
as the plain modules within float rounding; ``GridAttentionUNet(..., fast_inference=False)`` runs
the plain modules only.
"""

from __future__ import annotations

from .gate import FoldedGridAttentionGate
from .primitives import BufferPool, FoldedConv, linear_resize_matrix, resize_linear
from .unet import FoldedGridAttentionUNet

__all__ = [
    "BufferPool",
    "FoldedConv",
    "FoldedGridAttentionGate",
    "FoldedGridAttentionUNet",
    "linear_resize_matrix",
    "resize_linear",
]
