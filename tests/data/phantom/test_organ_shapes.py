"""Tests of the organ table and the shapes drawn from it (``organ_table``, ``organ_shapes``); the painted
phantom is tested through :func:`generate_phantom_case` in ``test_anatomy.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from monai_ag.data.classes import CLASS_NAMES
from monai_ag.data.phantom.geometry import Grid
from monai_ag.data.phantom.organ_shapes import Body, draw_organs
from monai_ag.data.phantom.organ_table import (
    KIDNEY_L,
    KIDNEY_R,
    LIVER,
    ORGAN_CLASS_NAMES,
    ORGAN_TABLE,
    PANCREAS,
    SPLEEN,
)


def _draw(seed: int = 0):
    body = Body(np.random.default_rng(seed), Grid((64, 48, 46), (4.0, 4.0, 4.0)), 1.0, 1.0, -35.0)
    return draw_organs(body)


def test_organs_come_in_table_order_with_their_ranks():
    shapes, _ = _draw()
    assert [s.organ for s in shapes] == [LIVER, SPLEEN, KIDNEY_R, KIDNEY_L, PANCREAS]
    assert [s.rank for s in shapes] == [0.0, 1.0, 2.0, 2.0, 1.0]  # kidneys win over spleen/pancreas over liver
    for s in shapes:
        box_shape = tuple(sl.stop - sl.start for sl in s.box)
        assert np.broadcast_shapes(s.field.shape, box_shape) == box_shape and (s.field < 0).any(), s.organ
        assert (s.medulla is not None) == (s.organ in (KIDNEY_R, KIDNEY_L))
        if s.medulla is not None:
            assert s.medulla.shape == box_shape and 0 < s.medulla.mean() < 1


def test_landmarks_and_seed():
    shapes, landmarks = _draw()
    assert landmarks.gallbladder.centre.shape == (3,) and landmarks.stomach.waves is not None
    sl, vein = landmarks.splenic_vein
    assert sl == shapes[-1].box and vein.any()
    again, _ = _draw()
    other, _ = _draw(1)
    assert all(np.array_equal(a.field, b.field) for a, b in zip(shapes, again))
    assert not np.array_equal(shapes[0].field, other[0].field)


def test_every_organ_id_has_a_class():
    assert set(ORGAN_CLASS_NAMES.values()) == {name for value, name in CLASS_NAMES.items() if value}
    ids = sorted(ORGAN_CLASS_NAMES)
    assert ids == list(range(1, len(ids) + 1))  # anatomy indexes its label lookup by these ids


def test_organ_table_is_read_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ORGAN_TABLE[0].rank = 3.0  # type: ignore[misc]
