"""Learning from partially labelled cases: classes a case does not annotate are left out of its loss.

A case that labels only the liver (IRCAD 17, MSD Task03) shows the spleen and kidneys as background. A plain loss
would teach "background" there. :py:class:`PartialLabelLoss` instead restricts each case's loss to the classes
it annotates (background always included): the unannotated classes' logits are left out of its softmax and its
Dice, so they get zero gradient from it, while the annotated ones get exactly the gradient of the wrapped loss on
that restricted problem ("exclusion" of unannotated classes, cf. Shi et al., "Marginal loss and exclusion loss for
partially supervised multi-organ segmentation", MedIA 2021, which merges them into background instead).

MONAI trainers call ``loss(pred, target)``, so which classes are annotated travels with the target as extra
channels: ``target = [label, flag_0, ..., flag_{C-1}]`` with ``flag_c`` = 1 where class ``c`` is annotated
(constant over space, so :py:class:`monai.losses.DeepSupervisionLoss`'s nearest-exact resizing keeps it).
:py:func:`encode_annotated` builds it (``monai_ag.transforms.AnnotatedClassesd`` in a pipeline); a plain one-channel
label is fully annotated, and then the loss *is* the wrapped loss.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.nn.modules.loss import _Loss

__all__ = ["PartialLabelLoss", "encode_annotated", "split_target"]


def _flags(annotated: Iterable[int] | None, num_classes: int) -> list[float]:
    if annotated is None:
        return [1.0] * num_classes
    flags = [0.0] * num_classes
    flags[0] = 1.0  # background is always annotated: it is "everything else" of the annotated classes
    for value in annotated:
        value = int(value)
        if not 0 <= value < num_classes:
            raise ValueError(f"annotated class {value} is outside [0, {num_classes}) (num_classes={num_classes}).")
        flags[value] = 1.0
    return flags


def encode_annotated(label: torch.Tensor, annotated: Iterable[int] | None, num_classes: int) -> torch.Tensor:
    """
    Append one constant channel per class to a channel-first label map: 1 where the class is annotated.

    Args:
        label: ``(1, *spatial)`` label map (class values).
        annotated: the annotated class values (background implied); ``None`` means all.
        num_classes: number of classes including background.

    Returns:
        ``(1 + num_classes, *spatial)``, the label's dtype (a float type when the label is an integer type).

    Example::

        target = encode_annotated(label, [1], num_classes=5)  # liver-only case
    """
    if label.shape[0] != 1:
        raise ValueError(f"encode_annotated expects a one-channel label map, got {label.shape[0]} channels.")
    dtype = label.dtype if torch.is_floating_point(label) else torch.float32
    flags = torch.tensor(_flags(annotated, num_classes), dtype=dtype, device=label.device)
    flags = flags.reshape(-1, *([1] * (label.ndim - 1))).expand(num_classes, *label.shape[1:])
    return torch.cat([label.to(dtype), flags], dim=0)


def split_target(target: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Split a batched target into the label map ``(B, 1, *spatial)`` and the annotated classes ``(B, num_classes)``
    (bool); a one-channel target is fully annotated.

    Example::

        label, annotated = split_target(target, num_classes=5)
    """
    if target.shape[1] == 1:
        return target, torch.ones(target.shape[0], num_classes, dtype=torch.bool, device=target.device)
    if target.shape[1] != 1 + num_classes:
        raise ValueError(
            f"target has {target.shape[1]} channels; expected 1 (a label map) or 1 + num_classes = {1 + num_classes} "
            "(a label map and one annotated flag per class, see encode_annotated)."
        )
    annotated = target[:, 1:].flatten(2).amax(-1) > 0.5
    annotated[:, 0] = True
    return target[:, :1], annotated


class PartialLabelLoss(_Loss):
    """
    Wraps a segmentation loss that takes logits and a one-channel label map (e.g. ``DiceCELoss(to_onehot_y=True,
    softmax=True)``) so that each case counts only the classes it annotates.

    The batch is grouped by annotated class set; for each group the wrapped loss sees the logits of the annotated
    classes only (background included) and the label renumbered to them; the groups' losses are averaged weighted
    by their size. A fully annotated batch (or a one-channel target) is passed to the wrapped loss unchanged, so
    then the result equals the wrapped loss exactly. A voxel labelled with a class its case marks as not annotated
    is an error.

    Args:
        loss: the wrapped loss (softmax over the channels it is given, target one channel of class values).
        num_classes: the number of classes including background (the logits' channels).

    Example::

        loss = DeepSupervisionLoss(PartialLabelLoss(DiceCELoss(to_onehot_y=True, softmax=True), num_classes=5))
        value = loss(net(x), encode_annotated(label, [1], 5)[None])
    """

    def __init__(self, loss: torch.nn.Module, num_classes: int) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2 (background and one class), got {num_classes}.")
        self.loss = loss
        self.num_classes = int(num_classes)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if input.shape[1] != self.num_classes:
            raise ValueError(f"input has {input.shape[1]} channels, expected num_classes={self.num_classes}.")
        label, annotated = split_target(target, self.num_classes)
        if bool(annotated.all()):
            return self.loss(input, label)
        sets, group_of = torch.unique(annotated, dim=0, return_inverse=True)
        total = input.new_zeros(())
        for g, classes in enumerate(sets):
            rows = (group_of == g).nonzero(as_tuple=True)[0]
            keep = classes.nonzero(as_tuple=True)[0]
            lut = torch.full((self.num_classes,), -1, dtype=torch.long, device=label.device)
            lut[keep] = torch.arange(len(keep), device=label.device)
            sub_label = label[rows]
            renumbered = lut[sub_label.long().clamp(0, self.num_classes - 1)]
            if bool((renumbered < 0).any()) or bool((sub_label < 0).any() or (sub_label >= self.num_classes).any()):
                bad = torch.unique(sub_label[renumbered < 0]).tolist()
                raise ValueError(
                    f"the target labels voxels with class(es) {bad} that its case marks as not annotated "
                    f'(annotated: {keep.tolist()}); fix the case\'s "annotated" list or its label.'
                )
            sub_input = input[rows][:, keep]
            part = self.loss(sub_input, renumbered.to(label.dtype) if torch.is_floating_point(label) else renumbered)
            total = total + part * (len(rows) / input.shape[0])
        return total
