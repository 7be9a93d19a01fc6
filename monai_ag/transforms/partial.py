"""The annotated classes of a case, carried with its label to :py:class:`monai_ag.losses.PartialLabelLoss`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_ag.losses.partial import encode_annotated

__all__ = ["AnnotatedClassesd"]


class AnnotatedClassesd(MapTransform):
    """
    Appends to the label under ``keys`` one constant channel per class, 1 where the case annotates that class
    (read from ``annotated_key``, e.g. ``dataset.json``'s ``"annotated": [1, 3]``; a case without it is fully
    annotated), and removes ``annotated_key`` (lists of different lengths do not collate). Put it last in the
    training transforms, after cropping and augmentation, which expect a one-channel label; the training loss must
    then be a :py:class:`~monai_ag.losses.PartialLabelLoss`.

    Args:
        keys: the label key.
        num_classes: number of classes including background.
        annotated_key: where the annotated class values are.
        allow_missing_keys: don't raise when the label is missing.

    Example::

        AnnotatedClassesd("label", num_classes=5)({"label": label, "annotated": [1]})["label"].shape  # (6, H, W, D)
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int,
        annotated_key: str = "annotated",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.num_classes = int(num_classes)
        self.annotated_key = annotated_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        annotated = d.pop(self.annotated_key, None)
        if isinstance(annotated, torch.Tensor):
            annotated = annotated.flatten().tolist()
        for key in self.key_iterator(d):
            label = d[key]
            encoded = encode_annotated(torch.as_tensor(label), annotated, self.num_classes)
            if isinstance(label, MetaTensor):
                encoded = MetaTensor(
                    encoded.as_tensor() if isinstance(encoded, MetaTensor) else encoded, meta=label.meta
                )
            d[key] = encoded
        return d
