"""monai-ag: the grid Attention U-Net of Oktay et al. (MIDL 2018) as MONAI components.

Importing this package registers its modules with MONAI's bundle ``ComponentLocator``
(it indexes every loaded module whose name starts with ``"monai"``), so after
``"$import monai_ag"`` a bundle config can say ``"_target_": "GridAttentionUNet"``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .networks import GridAttentionGate, GridAttentionUNet

__all__ = ["GridAttentionGate", "GridAttentionUNet", "__version__"]
