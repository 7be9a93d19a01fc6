"""
The fast inference path of :py:class:`~monai_ag.networks.nets.GridAttentionUNet`: the network's
eval-mode function with batch norms folded into channels-last oneDNN convolutions, fused
activations, folded gates and deep-supervision head, and work buffers reused between calls.

Nothing imports this package but ``GridAttentionUNet``'s dispatch (``fast_inference=True``, the
default: on CPU, in eval mode without autograd), at its first fast call. It gives the same outputs
as the plain modules within float rounding; ``GridAttentionUNet(..., fast_inference=False)`` runs
the plain modules only.

Modules: :py:mod:`~monai_ag.networks.fast.adapters` (every private torch API the path uses, and the
tested torch versions), :py:mod:`~monai_ag.networks.fast.primitives` (folded convolutions, work
buffers, separable linear resizing), :py:mod:`~monai_ag.networks.fast.gate`,
:py:mod:`~monai_ag.networks.fast.unet` (the folded gate and network) and
:py:mod:`~monai_ag.networks.fast.probe` (whether the path may be used here: an untested torch version
or a failed numerical check turns it off, with one logged warning).
"""

from __future__ import annotations

from .adapters import TESTED_TORCH_VERSIONS, state_key
from .gate import FoldedGridAttentionGate
from .primitives import BufferPool, FoldedConv, linear_resize_matrix, resize_linear
from .probe import PROBE_TOLERANCE, fast_path_available
from .unet import FoldedGridAttentionUNet

__all__ = [
    "BufferPool",
    "FoldedConv",
    "FoldedGridAttentionGate",
    "FoldedGridAttentionUNet",
    "PROBE_TOLERANCE",
    "TESTED_TORCH_VERSIONS",
    "fast_path_available",
    "linear_resize_matrix",
    "resize_linear",
    "state_key",
]
