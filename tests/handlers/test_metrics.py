"""per_class_dice: one MeanDice per organ, named after it, computed on its own channel."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from monai.handlers import MeanDice

from monai_ag.handlers import per_class_dice

CLASSES = {"0": "background", "1": "liver", "2": "spleen"}


def _onehot(labels: list[int]) -> torch.Tensor:
    """A (3, 1, 1, N) one-hot volume from voxel labels."""
    return torch.nn.functional.one_hot(torch.tensor(labels), 3).T.reshape(3, 1, 1, -1).float()


def _evaluate(metrics: dict, batches: list[list[dict]]) -> dict:
    engine = Engine(lambda e, batch: batch)
    for name, metric in metrics.items():
        metric.attach(engine, name)
    engine.run(batches, max_epochs=1)
    return engine.state.metrics


def test_names_skip_background():
    metrics = per_class_dice(CLASSES)
    assert list(metrics) == ["val_dice_liver", "val_dice_spleen"]
    assert all(isinstance(m, MeanDice) for m in metrics.values())
    assert list(per_class_dice({0: "bg", 1: "Background", 2: "kidney"}, prefix="dice/")) == ["dice/kidney"]


def test_values_per_class_on_known_cases():
    # case A: liver label at voxels 0-3, predicted at 2-5 (2 shared: Dice 2*2/(4+4) = 0.5); spleen exact (1.0)
    a_label = _onehot([1, 1, 1, 1, 0, 0, 0, 0, 2, 2])
    a_pred = _onehot([0, 0, 1, 1, 1, 1, 0, 0, 2, 2])
    # case B: liver exact (1.0); no spleen in the reference but some predicted: ignored, not scored 0
    b_label = _onehot([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    b_pred = _onehot([1, 1, 0, 0, 0, 0, 0, 0, 2, 0])
    batches = [[{"pred": a_pred, "label": a_label}], [{"pred": b_pred, "label": b_label}]]
    values = _evaluate(per_class_dice(CLASSES), batches)
    assert values["val_dice_liver"] == pytest.approx(0.75)  # mean of 0.5 and 1.0
    assert values["val_dice_spleen"] == pytest.approx(1.0)  # case B's NaN left out of the mean


def test_each_metric_reads_only_its_channel():
    # the liver channel is perfect, the spleen channel wrong everywhere: the two metrics must differ
    label = _onehot([1, 1, 2, 2, 0, 0])
    pred = _onehot([1, 1, 0, 0, 2, 2])
    values = _evaluate(per_class_dice(CLASSES), [[{"pred": pred, "label": label}]])
    assert values == {"val_dice_liver": pytest.approx(1.0), "val_dice_spleen": pytest.approx(0.0)}
