"""Per-class metrics for MONAI evaluators."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from monai.handlers import MeanDice, from_engine

__all__ = ["per_class_dice"]


def _channel(index: int) -> Callable:
    def select(output: Sequence[Mapping]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        preds, labels = from_engine(["pred", "label"])(output)
        return [p[index : index + 1] for p in preds], [lb[index : index + 1] for lb in labels]

    return select


def per_class_dice(class_names: Mapping[int | str, str], prefix: str = "val_dice_") -> dict[str, MeanDice]:
    """
    One :py:class:`monai.handlers.MeanDice` per foreground class, for an evaluator's
    ``additional_metrics``; ``pred`` and ``label`` must be one-hot. Cases whose reference lacks
    the class are ignored (NaN), not counted as 0 or 1.

    Args:
        class_names: channel index -> name, e.g. ``{1: "liver", 2: "spleen"}``; channel 0 and any
            class named "background" are skipped.
        prefix: metric name prefix; names are ``prefix + name``.

    Example::

        metrics = per_class_dice({0: "background", 1: "liver", 2: "spleen"})  # val_dice_liver, val_dice_spleen
    """
    return {
        f"{prefix}{name}": MeanDice(include_background=True, output_transform=_channel(int(index)))
        for index, name in class_names.items()
        if int(index) != 0 and name.lower() != "background"
    }
