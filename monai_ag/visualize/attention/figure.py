"""The attention figure of a case: the CT with each gated level's attention overlaid, axial and coronal
(:py:func:`attention_figure`, :py:func:`render_attention`), and its command (:py:func:`main`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from monai.transforms import LoadImage
from monai.utils import optional_import

from monai_ag.data.classes import ORGAN_NAMES
from monai_ag.utils.cli import command_parser, run_command
from monai_ag.utils.fileio import atomic_write
from monai_ag.visualize.figures import CLASS_COLOURS, screen_view

__all__ = ["attention_figure", "figure_to_array", "render_attention", "split_levels", "main"]

# contour colour of each organ: the case figure's overlay colours, opaque
_CONTOUR = {value: CLASS_COLOURS[name][:3] for value, name in ORGAN_NAMES.items()}


def _pyplot():
    plt, has_plt = optional_import("matplotlib.pyplot")
    if not has_plt:
        raise ImportError("attention figures need matplotlib: pip install monai-ag[plot]")
    return plt


def split_levels(attention: np.ndarray, heads: int) -> list[np.ndarray]:
    """
    Split channel-last attention maps ``(X, Y, Z, levels * heads)`` into one map per gated level (heads averaged).

    Example::

        maps = split_levels(np.asarray(LoadImage(image_only=True)("ct_attention.nii.gz")), heads=2)
    """
    if attention.ndim == 3:
        return [attention]
    if attention.ndim != 4 or attention.shape[-1] % heads:
        raise ValueError(
            f"attention maps of shape {attention.shape} do not split into levels of {heads} head(s): expected "
            "(X, Y, Z, levels * heads) as the bundle saves them."
        )
    return [attention[..., i : i + heads].mean(-1) for i in range(0, attention.shape[-1], heads)]


def _centre(label: np.ndarray | None, shape: Sequence[int]) -> tuple[int, int, int]:
    if label is not None and (label > 0).any():
        return tuple(int(round(c)) for c in np.argwhere(label > 0).mean(0))  # type: ignore[return-value]
    return tuple(s // 2 for s in shape)  # type: ignore[return-value]


def attention_figure(
    image: np.ndarray,
    maps: Sequence[np.ndarray],
    label: np.ndarray | None = None,
    centre: Sequence[int] | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window: Sequence[float] = (-175.0, 250.0),
    level_names: Sequence[str] | None = None,
    title: str = "",
):
    """
    A matplotlib figure: one row per gated level, an axial and a coronal slice through ``centre`` of the CT
    (grey, ``window``) with the attention overlaid (0-1, one colour bar) and the reference organs' contours.

    Args:
        image: ``(X, Y, Z)`` volume in RAS voxel order.
        maps: one ``(X, Y, Z)`` attention map per gated level, values in [0, 1], on the image's grid.
        label: ``(X, Y, Z)`` reference label map for the contours, optional.
        centre: voxel ``(i, j, k)`` the slices pass through; default the organs' centroid (else the centre).
        spacing: voxel size in mm (for the aspect ratio).
        window: grey-level range of the image.
        level_names: row titles; default ``level 2``, ``level 3``, ... (the paper's numbering, finest first).
        title: figure title.

    Returns:
        the figure (close it with ``matplotlib.pyplot.close``).

    Example::

        fig = attention_figure(ct, [a2, a3, a4], label=ref, spacing=(2, 2, 2))
    """
    plt = _pyplot()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"image must be a 3D volume (X, Y, Z), got shape {image.shape}.")
    for i, m in enumerate(maps):
        if np.shape(m) != image.shape:
            raise ValueError(
                f"attention map {i} has shape {np.shape(m)}, the image {image.shape}: they must share a grid."
            )
    if label is not None and np.shape(label) != image.shape:
        raise ValueError(f"label has shape {np.shape(label)}, the image {image.shape}: they must share a grid.")
    if not maps:
        raise ValueError("no attention maps to show.")
    i, j, k = _centre(label, image.shape) if centre is None else (int(c) for c in centre)
    names = list(level_names) if level_names else [f"level {n + 2}" for n in range(len(maps))]
    sx, sy, sz = (float(s) for s in spacing)
    grey = np.clip((image - window[0]) / max(window[1] - window[0], 1e-6), 0, 1)
    views = (("axial", lambda v: v[:, :, k], sy / sx, f"z={k}"), ("coronal", lambda v: v[:, j, :], sz / sx, f"y={j}"))
    fig, axes = plt.subplots(len(maps), 2, figsize=(7.0, 2.9 * len(maps) + 0.5), squeeze=False, layout="constrained")
    shown = None
    for row, (m, name) in enumerate(zip(maps, names)):
        for col, (view, cut, aspect, where) in enumerate(views):
            ax = axes[row, col]
            ax.imshow(screen_view(cut(grey)), cmap="gray", vmin=0, vmax=1, aspect=aspect, interpolation="nearest")
            shown = ax.imshow(
                screen_view(cut(np.asarray(m, np.float32))),
                cmap="jet",
                vmin=0,
                vmax=1,
                alpha=0.45,
                aspect=aspect,
                interpolation="nearest",
            )
            if label is not None:
                plane = screen_view(cut(np.asarray(label)))
                for value, colour in _CONTOUR.items():
                    if (plane == value).any():
                        ax.contour(plane == value, levels=[0.5], colors=[colour], linewidths=0.9)
            ax.set_title(f"{name}, {view} ({where})", fontsize=9)
            ax.axis("off")
    fig.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.6, label="attention coefficient")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def figure_to_array(fig) -> np.ndarray:
    """The figure rendered to an ``(H, W, 3)`` uint8 RGB array (for TensorBoard)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def render_attention(
    image: str | os.PathLike,
    attention: str | os.PathLike,
    output: str | os.PathLike,
    label: str | os.PathLike | None = None,
    heads: int = 2,
    centre: Sequence[int] | None = None,
    window: Sequence[float] = (-175.0, 250.0),
    title: str = "",
    dpi: int = 110,
) -> str:
    """
    Write the attention figure of a case (see :py:func:`attention_figure`) as a PNG, from files on one grid:
    the CT, its attention maps (as the bundle's inference saves them) and optionally the reference labels.

    Args:
        image: the CT (NIfTI or DICOM series folder).
        attention: ``*_attention.nii.gz``, channels = gated levels x ``heads``.
        output: the PNG to write (atomically).
        label: reference label map for the contours.
        heads: attention heads per gated level (the bundle's network: 2).
        centre: voxel the slices pass through (default: the organs' centroid).
        window: display window in HU.
        title: figure title (default: the image's name).
        dpi: resolution.

    Returns:
        the path written.

    Example::

        render_attention("ct.nii.gz", "eval/ct_attention.nii.gz", "ct_attention.png", label="ct_label.nii.gz")
    """
    plt = _pyplot()
    load = LoadImage(image_only=True)
    ct = load(str(image))
    maps = split_levels(np.asarray(load(str(attention)), dtype=np.float32), heads)
    ref = np.asarray(load(str(label))) if label else None
    spacing = [float(s) for s in np.asarray(ct.pixdim)[:3]]
    fig = attention_figure(
        np.asarray(ct),
        maps,
        ref,
        centre=centre,
        spacing=spacing,
        window=window,
        title=title or os.path.basename(os.fspath(image)),
    )
    try:
        with atomic_write(output) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return str(output)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m monai_ag.visualize.attention --image CT --attention ATT --output PNG``."""
    parser = command_parser(
        "python -m monai_ag.visualize.attention",
        "Render a case's CT with each gated level's attention overlaid (axial and coronal, colour bar, reference "
        "contours) as a PNG. Attention maps: the bundle's inference with --save_attention_maps true.",
    )
    parser.add_argument("--image", required=True, help="the CT (NIfTI or DICOM series folder)")
    parser.add_argument("--attention", required=True, help="<case>_attention.nii.gz from the bundle's inference")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--label", help="reference label map (contours)")
    parser.add_argument("--heads", type=int, default=2, help="attention heads per gated level (default 2)")
    parser.add_argument("--centre", type=int, nargs=3, metavar=("I", "J", "K"), help="voxel the slices pass through")
    parser.add_argument("--window", type=float, nargs=2, default=(-175.0, 250.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--title", default="")

    def run(args) -> None:
        kwargs = vars(args).copy()
        kwargs.pop("quiet")
        print(render_attention(**kwargs))

    return run_command(parser, argv, run, errors=(ValueError, FileNotFoundError, ImportError))
