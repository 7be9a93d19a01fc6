"""Figures of a segmented case: CT slice, reference, prediction and attention maps side by side.

Run ``python -m monai_ag.visualize --help`` (``monai_ag/visualize/__main__.py``). Needs matplotlib
(``pip install monai-ag[plot]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from monai.transforms import LoadImage
from monai.utils import optional_import

from monai_ag.data.classes import CLASS_NAMES
from monai_ag.utils.cli import command_parser, run_command
from monai_ag.utils.fileio import atomic_write

__all__ = ["CLASS_COLOURS", "render_case_figure", "screen_view"]

#: overlay colour (RGBA) of each of the bundle's classes, looked up by name: a new class needs a colour here
CLASS_COLOURS = {
    "background": (0.0, 0.0, 0.0, 0.0),
    "liver": (0.85, 0.33, 0.1, 0.55),
    "spleen": (0.2, 0.6, 0.9, 0.55),
    "kidney": (0.95, 0.85, 0.1, 0.55),
    "pancreas": (0.4, 0.85, 0.3, 0.7),
}
#: label value -> colour, in label order
_COLOURS = np.array([CLASS_COLOURS[CLASS_NAMES[value]] for value in range(len(CLASS_NAMES))])


def screen_view(plane: np.ndarray) -> np.ndarray:
    """An (x, y) or (x, z) plane of a volume in RAS voxel order as displayed: radiological view (the
    patient's right on the left of the screen), anterior (axial) or superior (coronal) up."""
    return np.fliplr(np.rot90(plane))


def _axial(volume: np.ndarray, index: int) -> np.ndarray:
    return screen_view(volume[..., index])


def _overlay(labels: np.ndarray) -> np.ndarray:
    return _COLOURS[np.clip(labels.astype(int), 0, len(_COLOURS) - 1)]


def render_case_figure(
    image: str | os.PathLike,
    output: str | os.PathLike,
    label: str | os.PathLike | None = None,
    prediction: str | os.PathLike | None = None,
    attention: str | os.PathLike | None = None,
    slice_index: int | None = None,
    hu_window: Sequence[float] = (-175, 250),
    title: str = "",
) -> str:
    """
    Render one axial slice of a case as a PNG: the CT, the reference labels, the prediction and
    the attention maps (mean over heads, one panel per gated level), all read from files in the
    same geometry (as the bundle writes them).

    Args:
        image: CT file (NIfTI or DICOM series folder).
        output: the PNG to write.
        label: reference label map, optional.
        prediction: predicted label map (``*_seg.nii.gz``), optional.
        attention: attention maps (``*_attention.nii.gz``: gated levels x heads channels), optional.
        slice_index: axial slice; defaults to the one with the most pancreas (or foreground) voxels.
        hu_window: display window in HU.
        title: figure title.

    Returns:
        the path written.

    Example::

        render_case_figure("ct.nii.gz", "case.png", prediction="out/ct_seg.nii.gz", attention="out/ct_attention.nii.gz")
    """
    plt, has_plt = optional_import("matplotlib.pyplot")
    if not has_plt:
        raise ImportError("render_case_figure needs matplotlib: pip install monai-ag[plot]")
    load = LoadImage(image_only=True)
    ct = np.asarray(load(str(image)), dtype=np.float32)
    vols = {name: np.asarray(load(str(p))) for name, p in (("label", label), ("prediction", prediction)) if p}
    for name, vol in vols.items():
        if vol.shape[:3] != ct.shape[:3]:
            raise ValueError(f"{name} has shape {vol.shape}, the image {ct.shape}: they must share a grid.")
    if slice_index is None:
        ref = vols.get("label", vols.get("prediction"))
        if ref is not None:
            counts = (ref == 4).sum(axis=(0, 1))
            slice_index = int(np.argmax(counts if counts.any() else (ref > 0).sum(axis=(0, 1))))
        else:
            slice_index = ct.shape[2] // 2
    maps = []
    if attention:
        att = np.asarray(load(str(attention)), dtype=np.float32)
        if att.ndim == 4:  # (x, y, z, levels * heads): average the heads of each level
            heads = 2 if att.shape[-1] % 2 == 0 else 1
            maps = [att[..., i : i + heads].mean(-1) for i in range(0, att.shape[-1], heads)]
        else:
            maps = [att]
    panels = 1 + len(vols) + len(maps)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.4), squeeze=False)
    axes = axes[0]
    shown = np.clip((_axial(ct, slice_index) - hu_window[0]) / (hu_window[1] - hu_window[0]), 0, 1)
    axes[0].imshow(shown, cmap="gray")
    axes[0].set_title(f"CT, slice {slice_index}")
    for ax, (name, vol) in zip(axes[1:], vols.items()):
        ax.imshow(shown, cmap="gray")
        ax.imshow(_overlay(_axial(vol, slice_index)))
        ax.set_title(name)
    for i, (ax, m) in enumerate(zip(axes[1 + len(vols) :], maps)):
        ax.imshow(shown, cmap="gray")
        im = ax.imshow(_axial(m, slice_index), cmap="inferno", vmin=0, vmax=1, alpha=0.6)
        ax.set_title(f"attention, level {i + 2}")
    if maps:
        fig.colorbar(im, ax=axes[-1], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(output) as tmp:  # the temporary name keeps the extension, so the format is the same
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return str(output)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: ``python -m monai_ag.visualize --image CT --output PNG [--label ...]``.

    ``argv`` (default ``sys.argv[1:]``) and the exit status are as in :func:`monai_ag.utils.cli.run_command`.
    """
    parser = command_parser("python -m monai_ag.visualize", render_case_figure.__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--label")
    parser.add_argument("--prediction")
    parser.add_argument("--attention")
    parser.add_argument("--slice_index", type=int)
    parser.add_argument("--title", default="")

    def run(args) -> None:
        options = {k: v for k, v in vars(args).items() if k != "quiet"}
        print(render_case_figure(**options))

    return run_command(parser, argv, run)
