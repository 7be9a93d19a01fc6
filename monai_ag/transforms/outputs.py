"""Post-processing steps that turn the label map into results people use directly: organ volumes for MONAI
Label's result, and the optional DICOM SEG, organ statistics and preview files of ``inference.json``.

Each writer works on the label as written (``pred`` after ``Invertd``: the input's original grid), names its
files as MONAI's ``SaveImage`` names outputs (``<case>_<postfix><ext>`` in ``output_dir``) and declares them
(``output_files(image)``), so :func:`monai_ag.io.outputs.check_outputs` can refuse a run whose outputs exist
before the network runs. None is a ``SaveImaged``: MONAI Label strips only those from a bundle's
post-processing and would run these inside itself, so in ``inference.json`` they are ``_disabled_`` unless
asked for; :class:`OrganVolumesd` (cheap, no file) is on everywhere and is what MONAI Label's result carries.

Example::

    Compose([..., Invertd("pred", ...), SafeSaveImaged("pred", ...),
             OrganVolumesd("pred", class_names),
             SourceImaged("pred", output_key="source_image"),
             SaveOrganStatisticsd("pred", "source_image", output_dir="out", class_names=class_names)])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from monai.config import KeysCollection
from monai.transforms import EnsureChannelFirst, LoadImage, MapTransform
from monai.utils import ImageMetaKey

from monai_ag.data.geometry import same_grid
from monai_ag.io.dicom_seg import check_segment_codes, write_dicom_seg
from monai_ag.io.outputs import output_path
from monai_ag.metrics.organ_statistics import organ_statistics, organ_volumes, statistics_files, write_statistics
from monai_ag.utils.config import as_bool
from monai_ag.utils.fileio import sha256_file
from monai_ag.visualize.figures import CLASS_COLOURS
from monai_ag.visualize.preview import render_preview

__all__ = ["OrganVolumesd", "SaveDicomSegd", "SaveOrganStatisticsd", "SavePreviewd", "SourceImaged"]

logger = logging.getLogger(__name__)


def _source(label: Any) -> str:
    meta = getattr(label, "meta", {}) or {}
    source = meta.get(ImageMetaKey.FILENAME_OR_OBJ)
    if isinstance(source, (list, tuple)):
        source = source[0] if source else None
    if not source:
        raise ValueError("the label carries no source file (meta 'filename_or_obj'): cannot name or place its outputs.")
    return os.path.normpath(os.fspath(source))


class OrganVolumesd(MapTransform):
    """
    Put each organ's volume (mL) of the label under ``keys`` into ``data[output_key][field]``, a dictionary
    ``{organ name: mL}``: ``output_key="result"`` is the dictionary MONAI Label returns with the label (its
    ``BasicInferTask`` writer sends ``data["result"]`` as the result's parameters), so a 3D Slicer or OHIF user
    gets the volumes with the segmentation. Volumes only: a count per label value, no image needed.

    Args:
        keys: the label map (one key).
        class_names: label value -> name (the model's classes).
        output_key: the dictionary to add to (created if absent).
        field: the entry of ``data[output_key]`` that holds the volumes.
        allow_missing_keys: as in MONAI's ``MapTransform``.

    Example::

        OrganVolumesd("pred", {"0": "background", "1": "liver"})(data)["result"]
        # {"organ_volumes_ml": {"liver": 1490.2}}
    """

    def __init__(
        self,
        keys: KeysCollection,
        class_names: Mapping[int | str, str],
        output_key: str = "result",
        field: str = "organ_volumes_ml",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.class_names = dict(class_names)
        self.output_key = output_key
        self.field = field

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            volumes = organ_volumes(label, label.affine, self.class_names)
            result = dict(d.get(self.output_key) or {})
            result[self.field] = {name: round(ml, 2) for name, ml in volumes.items()}
            d[self.output_key] = result
        return d


class SourceImaged(MapTransform):
    """
    Load the image the label under ``keys`` was computed from (its ``filename_or_obj``) again, on its original
    grid and as read (HU), into ``output_key``: the inference preprocessing has resampled, windowed and cropped
    the ``image`` it keeps. Read with MONAI's ``LoadImage`` as the preprocessing reads it (ITK for a DICOM
    series), channel first; a grid other than the label's stops with an error.

    Args:
        keys: the label map (one key).
        output_key: where the image goes.
        allow_missing_keys: as in MONAI's ``MapTransform``.

    Example::

        SourceImaged("pred", output_key="source_image")
    """

    def __init__(
        self, keys: KeysCollection, output_key: str = "source_image", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_key = output_key
        self.loader = LoadImage(image_only=True)
        self.channel_first = EnsureChannelFirst()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            image = self.channel_first(self.loader(_source(label)))
            if not same_grid(image.shape[1:], image.affine, label.shape[1:], label.affine):
                raise ValueError(
                    f"{_source(label)} read again has shape {tuple(image.shape[1:])} and affine\n{image.affine}\n"
                    f"but its label {tuple(label.shape[1:])} and\n{label.affine}: the label is not on the image's "
                    "original grid."
                )
            d[self.output_key] = image
        return d


class _CaseWriter(MapTransform):
    """What the per-case writers share: output naming, the overwrite option, the class names."""

    postfix = ""
    extensions: tuple[str, ...] = ()

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        class_names: Mapping[int | str, str],
        overwrite: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.output_dir = output_dir
        self.class_names = dict(class_names)
        self.overwrite = as_bool(overwrite, "overwrite")

    def output_files(self, image: str | os.PathLike) -> list[Path]:
        """The files written for the case whose image (file or DICOM series folder) is ``image``."""
        return [output_path(image, self.output_dir, self.postfix, ext) for ext in self.extensions]


class SaveDicomSegd(_CaseWriter):
    """
    Write the label under ``keys`` as a DICOM SEG of the DICOM series it was computed from
    (:func:`monai_ag.io.dicom_seg.write_dicom_seg`, segments in the colours of
    :data:`monai_ag.visualize.figures.CLASS_COLOURS`): ``<output_dir>/<case>_seg.dcm``. Needs highdicom
    (``pip install monai-ag[dicom]``); the classes must have SNOMED CT codes (checked at construction).

    Args:
        keys: the label map on the series' grid (``pred`` after ``Invertd``).
        output_dir: the output folder.
        class_names: label value -> name.
        model_path: the weights, whose sha256 the SEG's algorithm identification records (hashed once).
        overwrite: replace existing files.
        allow_missing_keys: as in MONAI's ``MapTransform``.

    Example::

        SaveDicomSegd("pred", output_dir="out", class_names=recipe.class_names, model_path="models/model.pt")
    """

    postfix = "seg"
    extensions = (".dcm",)

    def __init__(
        self,
        keys: KeysCollection,
        output_dir: str | os.PathLike,
        class_names: Mapping[int | str, str],
        model_path: str | os.PathLike | None = None,
        overwrite: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, output_dir, class_names, overwrite, allow_missing_keys)
        check_segment_codes(self.class_names)
        self.model_path = model_path
        self._sha256: str | None = None

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self._sha256 is None and self.model_path is not None:
            self._sha256 = sha256_file(self.model_path)
        for key in self.key_iterator(d):
            label = d[key]
            series = _source(label)
            (output,) = self.output_files(series)
            write_dicom_seg(
                label,
                series,
                output,
                self.class_names,
                model_sha256=self._sha256,
                colours=CLASS_COLOURS,
                overwrite=self.overwrite,
            )
        return d


class SaveOrganStatisticsd(_CaseWriter):
    """
    Write the organ statistics of the label under ``keys`` over the image under ``image_key`` (both on the
    input's original grid; :func:`monai_ag.metrics.organ_statistics.organ_statistics`):
    ``<output_dir>/<case>_statistics.json`` and ``<case>_statistics.csv``.

    Args:
        keys: the label map (``pred`` after ``Invertd``).
        image_key: the image in HU on the same grid (:class:`SourceImaged`).
        output_dir: the output folder.
        class_names: label value -> name.
        overwrite: replace existing files.
        allow_missing_keys: as in MONAI's ``MapTransform``.

    Example::

        SaveOrganStatisticsd("pred", "source_image", output_dir="out", class_names=recipe.class_names)
    """

    postfix = "statistics"
    extensions = (".json", ".csv")

    def __init__(
        self,
        keys: KeysCollection,
        image_key: str,
        output_dir: str | os.PathLike,
        class_names: Mapping[int | str, str],
        overwrite: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, output_dir, class_names, overwrite, allow_missing_keys)
        self.image_key = image_key

    def output_files(self, image: str | os.PathLike) -> list[Path]:
        return statistics_files(image, self.output_dir)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            stats = organ_statistics(d[self.image_key], label, self.class_names)
            json_file, csv_file = self.output_files(_source(label))
            write_statistics(stats, json_file, csv_file, overwrite=self.overwrite)
            logger.info("organ statistics written to %s", csv_file)
        return d


class SavePreviewd(_CaseWriter):
    """
    Write a PNG of the label under ``keys`` over the image under ``image_key``: axial, coronal and sagittal
    slices through the organs in their colours, the case and organ volumes in the title
    (:func:`monai_ag.visualize.preview.render_preview`): ``<output_dir>/<case>_preview.png``. Needs matplotlib.

    Args:
        keys: the label map (``pred`` after ``Invertd``).
        image_key: the image in HU on the same grid (:class:`SourceImaged`).
        output_dir: the output folder.
        class_names: label value -> name.
        hu_window: the display window in HU.
        overwrite: replace existing files.
        allow_missing_keys: as in MONAI's ``MapTransform``.

    Example::

        SavePreviewd("pred", "source_image", output_dir="out", class_names=recipe.class_names)
    """

    postfix = "preview"
    extensions = (".png",)

    def __init__(
        self,
        keys: KeysCollection,
        image_key: str,
        output_dir: str | os.PathLike,
        class_names: Mapping[int | str, str],
        hu_window: tuple[float, float] = (-175, 250),
        overwrite: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, output_dir, class_names, overwrite, allow_missing_keys)
        self.image_key = image_key
        self.hu_window = tuple(float(v) for v in hu_window)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            source = _source(label)
            (output,) = self.output_files(source)
            case = Path(output).name[: -len(f"_{self.postfix}.png")]
            render_preview(
                d[self.image_key],
                label,
                output,
                class_names=self.class_names,
                case=case,
                hu_window=self.hu_window,
                overwrite=self.overwrite,
            )
            logger.info("preview written to %s", output)
        return d
