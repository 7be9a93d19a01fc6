"""One voxel lattice, two indexings: an array re-indexed (never interpolated) onto another description of the same grid.

The same CT grid can be stored with its axes in another order or direction: a label map saved with a flipped
y axis (the TotalSegmentator DICOM example's), a DICOM series read in slice order instead of ITK's. When the
two affines describe the same voxel centres, a label can be moved onto the other indexing exactly, by axis
permutation, flips and an integer offset; when they do not, :func:`on_grid` refuses instead of resampling,
so a written output always holds exactly the voxels it was given.

Example::

    from monai_ag.io.lattice import on_grid

    flipped = label[:, ::-1, :]
    affine_flipped = affine @ flip_y  # the same voxels, y indexed from the other end
    assert (on_grid(flipped, affine_flipped, label.shape, affine) == label).all()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from monai_ag.data.geometry import AFFINE_ATOL

__all__ = ["on_grid"]


def _as_affine(affine: Any, what: str) -> np.ndarray:
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"{what} must be a 4x4 affine, got shape {a.shape}.")
    return a


def on_grid(
    array: np.ndarray, affine: Any, shape: Sequence[int], target_affine: Any, what: str = "label map"
) -> np.ndarray:
    """
    ``array`` (3D, voxel-to-world ``affine``) re-indexed onto the grid ``shape`` / ``target_affine``, which must
    be the same voxel lattice (equal spacing, axes parallel, voxel centres coinciding) and lie inside it.

    Args:
        array: a 3D array.
        affine: its voxel-to-world affine (4x4; any world convention, the same as ``target_affine``'s).
        shape: the target grid's shape.
        target_affine: the target grid's affine.
        what: what ``array`` is, for error messages.

    Returns:
        an array of ``shape`` (a view of ``array`` when possible).

    Raises:
        ValueError: when the two grids are not one lattice within :data:`monai_ag.data.geometry.AFFINE_ATOL` mm
            (other spacing, rotation, half-voxel shift), or the target reaches outside ``array``.

    Example::

        on_grid(label, nib_label.affine, image.shape, nib_image.affine)
    """
    src = np.asarray(array)
    a, b = _as_affine(affine, "affine"), _as_affine(target_affine, "target_affine")
    shape = tuple(int(s) for s in shape)
    if src.ndim != 3 or len(shape) != 3:
        raise ValueError(f"{what}: on_grid needs 3D grids, got shapes {src.shape} and {shape}.")
    # target index -> source index; on one lattice a signed permutation plus an integer offset
    mapping = np.linalg.solve(a, b)
    snapped = np.zeros((4, 4))
    snapped[3, 3] = 1.0
    axes = np.argmax(np.abs(mapping[:3, :3]), axis=0)  # the source axis each target axis runs along
    for t, s in enumerate(axes):
        snapped[s, t] = np.sign(mapping[s, t]) or 1.0
    snapped[:3, 3] = np.round(mapping[:3, 3])
    if len(set(axes.tolist())) != 3 or not np.allclose(a @ snapped, b, atol=AFFINE_ATOL):
        raise ValueError(
            f"{what} is not on the same voxel grid as the image: its affine\n{np.round(a, 4)}\nand the image's\n"
            f"{np.round(b, 4)}\ndo not describe the same voxel centres (another spacing, rotation or a sub-voxel "
            "shift); resample it onto the image first."
        )
    out = np.transpose(src, axes.tolist())
    index = []
    for t, s in enumerate(axes):
        start = int(snapped[s, 3])
        if snapped[s, t] < 0:  # source index start - x: flip, then count from the other end
            out = np.flip(out, axis=t)
            start = src.shape[s] - 1 - start
        if start < 0 or start + shape[t] > src.shape[s]:
            raise ValueError(
                f"{what} (shape {src.shape}) does not cover the image grid (shape {shape}): along image axis {t} "
                f"the image needs {what} voxels {start}..{start + shape[t] - 1} of 0..{src.shape[s] - 1}."
            )
        index.append(slice(start, start + shape[t]))
    return out[tuple(index)]
