"""A quality-control picture of one segmented case: axial, coronal and sagittal slices through its organs.

Each panel shows the CT in a HU window with every organ filled in its fixed colour
(:data:`monai_ag.visualize.figures.CLASS_COLOURS`, the colours of the other figures and of the DICOM SEG's
segments); the slices are those with the most organ voxels along each axis; the title names the case and each
organ's volume. Views are radiological (:func:`monai_ag.visualize.figures.screen_view`: the patient's right on
the left of the screen; anterior on the left in the sagittal view), pixels drawn with their true aspect.

Needs matplotlib (``pip install monai-ag[plot]``), imported when a picture is drawn.

Example::

    from monai_ag.visualize.preview import render_preview

    render_preview("ct.nii.gz", "out/ct_seg.nii.gz", "out/ct_preview.png")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from monai.transforms import LoadImage
from monai.utils import optional_import
from nibabel import orientations

from monai_ag.data.classes import CLASS_NAMES
from monai_ag.data.geometry import same_grid
from monai_ag.metrics.segmentation import voxel_geometry
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

from .figures import CLASS_COLOURS, screen_view

__all__ = ["UNKNOWN_CLASS_COLOUR", "render_preview"]

#: the overlay colour of a class without an entry in ``CLASS_COLOURS``
UNKNOWN_CLASS_COLOUR = (1.0, 0.0, 1.0, 0.55)


def _volume(data: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(data, (str, os.PathLike)):
        data = LoadImage(image_only=True)(os.fspath(data))
    affine = getattr(data, "affine", None)
    array = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"render_preview needs 3D volumes, got shape {array.shape}.")
    return array, None if affine is None else np.asarray(affine, dtype=np.float64)


def _to_ras(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """``array`` in RAS voxel order (axes permuted and flipped, never resampled) and its spacing per axis."""
    ornt = orientations.io_orientation(affine)
    spacing, _ = voxel_geometry(affine, 3)
    ras_spacing = [0.0, 0.0, 0.0]
    for axis, (target, _) in enumerate(ornt):
        ras_spacing[int(target)] = spacing[axis]
    return orientations.apply_orientation(array, ornt), ras_spacing


def render_preview(
    image: str | os.PathLike | Any,
    label: str | os.PathLike | Any,
    output: str | os.PathLike,
    affine: Any = None,
    class_names: Mapping[int | str, str] = CLASS_NAMES,
    case: str = "",
    volumes_ml: Mapping[str, float] | None = None,
    hu_window: Sequence[float] = (-175, 250),
    overwrite: bool = False,
) -> str:
    """
    Write the PNG ``output``: axial, coronal and sagittal slices of ``image`` with ``label``'s organs filled in
    their colours, titled with ``case`` and the organ volumes (see the module).

    Args:
        image: the CT: a file or DICOM series folder, a ``MetaTensor`` or an array (3D or one channel first).
        label: its label map on the same grid, the same kinds.
        output: the PNG file (written atomically).
        affine: the grid's voxel-to-world affine when both are plain arrays.
        class_names: label value -> name.
        case: the case name in the title.
        volumes_ml: organ name -> volume (mL) for the title; counted from ``label`` when not given.
        hu_window: the display window in HU.
        overwrite: replace an existing ``output``.

    Returns:
        the path written.

    Example::

        render_preview(ct, pred, "out/case_preview.png", class_names=recipe.class_names, case="case")
    """
    figure_cls, has_mpl = optional_import("matplotlib.figure", name="Figure")
    patch_cls, _ = optional_import("matplotlib.patches", name="Patch")
    if not has_mpl:
        raise ImportError("render_preview needs matplotlib: pip install monai-ag[plot]")
    refuse_overwrite(output, overwrite, option="overwrite=True (bundle: --overwrite true)")
    ct, ct_affine = _volume(image)
    lab, lab_affine = _volume(label)
    grid = ct_affine if ct_affine is not None else lab_affine if lab_affine is not None else affine
    if grid is None:
        raise ValueError("render_preview: the image has no affine; pass affine= (its voxel-to-world matrix).")
    grid = np.asarray(grid, dtype=np.float64)
    if ct.shape != lab.shape or (lab_affine is not None and not same_grid(lab.shape, lab_affine, ct.shape, grid)):
        raise ValueError(
            f"render_preview: the label (shape {lab.shape}) is not on the image's grid (shape {ct.shape})."
        )
    organs = {int(k): str(v) for k, v in class_names.items() if int(k) != 0}
    lab = np.rint(lab).astype(np.int64)
    _, voxel_ml = voxel_geometry(grid, 3)
    if volumes_ml is None:
        counts = np.bincount(lab.ravel().clip(0), minlength=max(organs, default=0) + 1)
        volumes_ml = {name: float(counts[value] * voxel_ml) for value, name in organs.items()}
    ct, spacing = _to_ras(ct.astype(np.float32), grid)
    lab, _ = _to_ras(lab, grid)

    colours = np.zeros((max(organs, default=0) + 1, 4))
    for value, name in organs.items():
        colours[value] = CLASS_COLOURS.get(name.lower(), UNKNOWN_CLASS_COLOUR)
    organ_mask = np.isin(lab, list(organs))
    # the slice with the most organ voxels along each axis (the middle one without organs)
    index = [
        int(np.argmax(organ_mask.sum(axis=tuple(a for a in range(3) if a != axis))))
        if organ_mask.any()
        else ct.shape[axis] // 2
        for axis in range(3)
    ]
    views = (  # (name, plane of the CT, plane of the label, row spacing / column spacing)
        ("axial", ct[:, :, index[2]], lab[:, :, index[2]], spacing[1] / spacing[0]),
        ("coronal", ct[:, index[1], :], lab[:, index[1], :], spacing[2] / spacing[0]),
        ("sagittal", ct[index[0], :, :], lab[index[0], :, :], spacing[2] / spacing[1]),
    )
    low, high = float(hu_window[0]), float(hu_window[1])
    fig = figure_cls(figsize=(13.5, 5.2))
    axes = fig.subplots(1, 3)
    for ax, (name, ct_plane, lab_plane, aspect) in zip(axes, views):
        shown = screen_view(np.clip((ct_plane - low) / (high - low), 0, 1))
        ax.imshow(shown, cmap="gray", vmin=0, vmax=1, aspect=aspect)
        overlay = colours[np.clip(screen_view(lab_plane), 0, len(colours) - 1)]
        overlay[~np.isin(screen_view(lab_plane), list(organs))] = 0.0
        ax.imshow(overlay, aspect=aspect, interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    parts = [
        f"{name} {volumes_ml.get(name, 0.0):.0f} mL" if volumes_ml.get(name) else f"{name} absent"
        for name in organs.values()
    ]
    fig.suptitle(f"{case}: " + ", ".join(parts) if case else ", ".join(parts))
    handles = [patch_cls(color=colours[value][:3], label=name) for value, name in organs.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    with atomic_write(output) as tmp:  # the temporary name keeps the .png extension, so the format is the same
        fig.savefig(tmp, dpi=100)
    return str(output)
