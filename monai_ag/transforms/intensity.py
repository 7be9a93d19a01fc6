"""Organ-wise intensity augmentation: the brightness changes between CT contrast phases."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import GaussianSmooth, MapTransform, RandomizableTransform

__all__ = ["RandOrganIntensityShiftd"]


class RandOrganIntensityShiftd(RandomizableTransform, MapTransform):
    """
    Adds to the image, inside each labelled organ, an offset drawn for that organ: how organs differ in
    brightness between contrast phases and scanners, which a global intensity shift cannot mimic. Contrast
    agent raises the kidneys' HU by about 150–180 (IRCAD's portal-venous kidneys ≈ 190 HU against ≈ 30 HU
    without contrast), the spleen's and liver's by 60–90, so a network trained on one phase misses the
    organs of the other. The masks' edges are blurred (``sigma``) so the offset does not add a step that
    coincides exactly with the label's border. Only labelled voxels change: an organ the case does not
    annotate (a partial label) keeps its brightness.

    Use it on training patches after the spatial augmentation and before
    :py:class:`~monai_ag.transforms.AnnotatedClassesd` (it needs the one-channel label).

    Args:
        keys: the image key(s).
        label_key: the label (one channel of class values, same grid as the image).
        offsets: the largest absolute offset per class ``1 … len(offsets)`` (the offset is uniform in
            ``[-o, o]``), in the image's units: with the bundle's [-175, 250] HU window scaled to [0, 1],
            0.4 ≈ 170 HU. A single float applies to ``num_classes - 1`` classes.
        num_classes: classes including background; needed when ``offsets`` is a single float.
        sigma: standard deviation, in voxels, of the Gaussian that blurs each mask's edge; 0 for none.
        prob: probability of shifting a sample (each class then gets its own offset).
        allow_missing_keys: don't raise when a key is missing.

    Example::

        shift = RandOrganIntensityShiftd("image", "label", offsets=[0.2, 0.25, 0.4, 0.2], prob=0.5)
        out = shift({"image": image, "label": label})  # image (1, H, W, D) in [0, 1], label (1, H, W, D)
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str = "label",
        offsets: float | Sequence[float] = 0.3,
        num_classes: int | None = None,
        sigma: float = 1.0,
        prob: float = 0.5,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if isinstance(offsets, (int, float)):
            if num_classes is None or num_classes < 2:
                raise ValueError(
                    "RandOrganIntensityShiftd: a single offset needs num_classes >= 2 (background included)."
                )
            offsets = [float(offsets)] * (int(num_classes) - 1)
        self.offsets = [float(o) for o in offsets]
        if not self.offsets or any(o < 0 for o in self.offsets):
            raise ValueError(
                f"RandOrganIntensityShiftd: offsets must be one or more non-negative numbers, got {offsets!r}."
            )
        self.label_key = label_key
        self.sigma = float(sigma)
        self._draw: list[float] = [0.0] * len(self.offsets)

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        # one draw per class on every call, whether or not the class is present: the random stream does not
        # depend on the patch's content
        self._draw = [float(self.R.uniform(-o, o)) for o in self.offsets]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        label = torch.as_tensor(d[self.label_key])
        field = torch.zeros(label.shape, dtype=torch.float32, device=label.device)
        for value, offset in enumerate(self._draw, start=1):
            if offset:
                field += (label == value).to(torch.float32) * offset
        if self.sigma > 0 and bool(field.any()):
            field = torch.as_tensor(GaussianSmooth(sigma=self.sigma)(field))
        for key in self.key_iterator(d):
            image = d[key]
            d[key] = image + field.to(device=image.device, dtype=image.dtype)
        return d
