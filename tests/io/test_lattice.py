from __future__ import annotations

import numpy as np
import pytest

from monai_ag.io.lattice import on_grid

AFFINE = np.array([[-0.8, 0, 0, 40.0], [0, 0.7, 0, -20.0], [0, 0, 2.5, 5.0], [0, 0, 0, 1]])


def _volume(shape=(6, 5, 4)) -> np.ndarray:
    return np.arange(np.prod(shape)).reshape(shape)


def _reindexed(volume: np.ndarray, affine: np.ndarray, axes: tuple[int, int, int], flips: tuple[bool, bool, bool]):
    """The same voxels stored with axes permuted and flipped, and the affine that says so."""
    out, aff = volume, affine.copy()
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis)
            aff = aff @ np.array(_flip_matrix(axis, volume.shape[axis]))
    perm = np.eye(4)[[*axes, 3]].T
    return np.transpose(out, axes), aff @ perm


def _flip_matrix(axis: int, n: int) -> list[list[float]]:
    m = np.eye(4)
    m[axis, axis] = -1
    m[axis, 3] = n - 1
    return m.tolist()


@pytest.mark.parametrize("axes", [(0, 1, 2), (1, 0, 2), (2, 0, 1)])
@pytest.mark.parametrize("flips", [(False, False, False), (False, True, False), (True, False, True)])
def test_same_lattice_indexed_otherwise_is_reindexed_exactly(axes, flips):
    volume = _volume()
    stored, stored_affine = _reindexed(volume, AFFINE, axes, flips)
    assert np.array_equal(on_grid(stored, stored_affine, volume.shape, AFFINE), volume)


def test_a_sub_grid_is_cut_out_by_its_integer_offset():
    volume = _volume()
    sub_affine = AFFINE.copy()
    sub_affine[:3, 3] = AFFINE[:3, :3] @ [1, 2, 1] + AFFINE[:3, 3]
    assert np.array_equal(on_grid(volume, AFFINE, (3, 2, 2), sub_affine), volume[1:4, 2:4, 1:3])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a @ np.diag([1.0, 1.0, 1.01, 1.0]), "not on the same voxel grid"),  # another spacing
        (
            lambda a: a @ np.array([[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]),
            "not on the same voxel grid",
        ),  # half a voxel off
        (lambda a: a @ np.array([[1, 0, 0, 2.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]), "does not cover"),
    ],
)
def test_other_grids_are_refused(change, message):
    volume = _volume()
    with pytest.raises(ValueError, match=message):
        on_grid(volume, AFFINE, volume.shape, change(AFFINE))
