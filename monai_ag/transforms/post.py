"""Post-processing: probability maps after inversion, and organ-aware clean-up of label maps."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import KeepLargestConnectedComponent, MapTransform
from scipy import ndimage

__all__ = ["ORGAN_COMPONENTS", "KeepOrganComponentsd", "keep_organ_components", "restore_background"]

logger = logging.getLogger(__name__)

#: how many connected components each organ has: ``1``, or ``"per_side"`` for paired organs (one left of the
#: body's midline, one right). Classes not listed (a tumour, lesions) are left as they are.
ORGAN_COMPONENTS: dict[str, int | str] = {
    "liver": 1,
    "spleen": 1,
    "pancreas": 1,
    "stomach": 1,
    "gallbladder": 1,
    "kidney": "per_side",
    "kidneys": "per_side",
    "adrenal_gland": "per_side",
    "lung": "per_side",
}


def restore_background(probs: torch.Tensor) -> torch.Tensor:
    """
    Set channel 0 of a channel-first softmax map to ``1 - sum(other channels)``. Inverting a
    foreground crop pads every channel with 0 outside the crop; this makes the background
    probability 1 there (and leaves it unchanged inside, up to rounding).

    Example::

        Lambdad("pred", func=restore_background)  # after Invertd
    """
    out = probs.clone()
    out[0] = (1 - probs[1:].sum(0)).clamp(0, 1)
    return out


def _left_right_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs most nearly along the world's left-right axis (x in RAS or LPS)."""
    return int(np.argmax(np.abs(np.asarray(affine, dtype=float)[0, :3])))


def _keep_one_per_side(mask: np.ndarray, axis: int, midline: float, min_fraction: float) -> np.ndarray:
    """The largest component of ``mask`` on each side of ``midline`` (a voxel coordinate along ``axis``),
    each component placed by its centroid; the smaller side's only when it has at least ``min_fraction`` of
    the larger's voxels (a stray island where an organ is missing is not the organ)."""
    labels, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, bool))
    if n <= 1:
        return mask
    index = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(mask, labels, index)
    centres = np.array([c[axis] for c in ndimage.center_of_mass(mask, labels, index)])
    best = [int(index[side][np.argmax(sizes[side])]) for side in (centres < midline, centres >= midline) if side.any()]
    largest = max(sizes[b - 1] for b in best)
    kept = [b for b in best if sizes[b - 1] >= min_fraction * largest]
    return np.isin(labels, kept)


def keep_organ_components(
    label: torch.Tensor,
    class_names: Mapping[int | str, str],
    affine: np.ndarray | torch.Tensor | None = None,
    body: torch.Tensor | np.ndarray | None = None,
    min_fraction: float = 0.1,
) -> torch.Tensor:
    """
    Keep each organ's anatomical number of connected components (:py:data:`ORGAN_COMPONENTS`) in a
    channel-first label map ``(1, *spatial)``; removed voxels become background. Single organs keep their
    largest component (MONAI's ``KeepLargestConnectedComponent``); a paired organ's class (kidneys: left and
    right in one label) keeps its largest component on each side of the body's midline, the smaller side's
    only when it has at least ``min_fraction`` of the larger side's voxels. MONAI's
    ``num_components=2`` would keep a stray island instead of a kidney that is missing.

    Args:
        label: the label map, values = class ids.
        class_names: id -> name; names not in :py:data:`ORGAN_COMPONENTS` are left alone.
        affine: the voxel-to-world matrix, to find the left-right axis (default: the first axis).
        body: a mask of the body (e.g. the windowed CT above its floor) whose centroid gives the midline
            (default: the middle of the grid).
        min_fraction: see above.

    Example::

        cleaned = keep_organ_components(label, {0: "background", 1: "liver", 3: "kidney"}, affine, ct > 0)
    """
    rules = {int(k): ORGAN_COMPONENTS.get(str(v).lower()) for k, v in class_names.items() if int(k) != 0}
    single = sorted(k for k, rule in rules.items() if rule == 1)
    paired = sorted(k for k, rule in rules.items() if rule == "per_side")
    out = label.clone()  # MONAI's transform writes into its input
    if single:
        out = KeepLargestConnectedComponent(applied_labels=single, independent=True)(out)
    if not paired:
        return out
    axis = _left_right_axis(np.asarray(affine)) if affine is not None else 0
    values = np.asarray(out[0].detach().cpu())
    if body is not None and np.asarray(body).any():
        midline = float(ndimage.center_of_mass(np.asarray(body).reshape(values.shape))[axis])
    else:
        midline = (values.shape[axis] - 1) / 2
    for k in paired:
        mask = values == k
        drop = mask & ~_keep_one_per_side(mask, axis, midline, min_fraction)
        out[0][torch.as_tensor(drop, device=out.device)] = 0
    return out


class KeepOrganComponentsd(MapTransform):
    """
    Dictionary transform of :py:func:`keep_organ_components`: the label under ``keys`` on the network's
    grid, the left-right axis from its affine, the midline from the centroid of ``image_key``'s body
    (the pre-processed CT above ``body_threshold``, i.e. above the HU window's floor).

    Args:
        keys: the label maps.
        class_names: id -> name (the model's classes).
        image_key: the pre-processed image on the same grid, for the midline; ``None``: the middle of the grid.
        body_threshold: image values above this are the body.
        min_fraction: see :py:func:`keep_organ_components`.
        allow_missing_keys: as in MONAI's ``MapTransform``.

    Example::

        KeepOrganComponentsd("pred", {"0": "background", "1": "liver", "3": "kidney"}, image_key="image")
    """

    def __init__(
        self,
        keys: KeysCollection,
        class_names: Mapping[int | str, str],
        image_key: str | None = "image",
        body_threshold: float = 0.0,
        min_fraction: float = 0.1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}.")
        self.class_names = dict(class_names)
        self.image_key = image_key
        self.body_threshold = body_threshold
        self.min_fraction = min_fraction
        untouched = [v for k, v in self.class_names.items() if int(k) != 0 and str(v).lower() not in ORGAN_COMPONENTS]
        if untouched:
            logger.info("largest-component clean-up leaves these classes as they are: %s", ", ".join(untouched))

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        image = d.get(self.image_key) if self.image_key is not None else None
        body = None if image is None else np.asarray(image[0].detach().cpu()) > self.body_threshold
        for key in self.key_iterator(d):
            label = d[key]
            affine = getattr(label, "affine", None)
            d[key] = keep_organ_components(label, self.class_names, affine, body, self.min_fraction)
        return d
