"""Attention maps of a GridAttentionUNet as a dictionary transform."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import MapTransform

__all__ = ["AttentionMapsd"]


class AttentionMapsd(MapTransform):
    """
    Computes the attention-gate coefficient maps of ``network`` (a
    :py:class:`~monai_ag.networks.nets.GridAttentionUNet`) for the (preprocessed, channel-first)
    image under ``keys`` and stores them under ``output_key``: channels are the gates' heads,
    level by level (finest gated level first), on the image's grid, as a ``MetaTensor`` carrying
    the image's metadata so :py:class:`monai.transforms.Invertd` can take them back to the
    original geometry. With a sliding-window ``inferer`` the maps are stitched like predictions.

    Args:
        keys: the image key (one).
        network: the network; must have ``attention_maps``.
        inferer: how to run it over the image; defaults to one pass over the whole image.
        output_key: where to store the maps.

    Example::

        AttentionMapsd("image", network=net, inferer=SlidingWindowInferer((96, 96, 96)))
    """

    def __init__(
        self,
        keys: KeysCollection,
        network: torch.nn.Module,
        inferer: Inferer | None = None,
        output_key: str = "attention",
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 1:
            raise ValueError(f"AttentionMapsd takes one image key, got {self.keys}.")
        if not hasattr(network, "attention_maps"):
            raise TypeError(f"network {type(network).__name__} has no attention_maps(); use a GridAttentionUNet.")
        self.network = network
        self.inferer = inferer if inferer is not None else SimpleInferer()
        self.output_key = output_key

    def _maps(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.network.attention_maps(x), dim=1)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d[self.keys[0]]
        device = next(self.network.parameters()).device
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.no_grad():
                maps = self.inferer(torch.as_tensor(image)[None].to(device), self._maps)[0]
        finally:
            self.network.train(was_training)
        maps = maps.detach().cpu().float()
        if isinstance(image, MetaTensor):
            maps = MetaTensor(maps.as_tensor() if isinstance(maps, MetaTensor) else maps, meta=image.meta)
            maps.applied_operations = list(image.applied_operations)
        d[self.output_key] = maps
        return d
