"""What an inference run will write, named and checked before the network runs.

- :func:`output_formats`: the ``output_format`` option (``nifti``, ``dicom_seg``, ``nifti+dicom_seg``) parsed;
- :func:`output_path`: a case's output file, named as MONAI's ``SaveImage`` names it (``FolderLayout``:
  ``<output_dir>/<case>_<postfix><extension>``, the case being the image file's name without extension or the
  DICOM series folder's name);
- :func:`check_output_request`: a DICOM SEG needs DICOM series inputs (NIfTI inputs stop the run) whose images
  can be referenced, and highdicom;
- :func:`check_outputs`: every file the run's writers will write, for every case: none may exist (unless
  overwrite) and every output folder must be writable. A run that would fail half-way stops before it starts.

A writer takes part in :func:`check_outputs` by having an ``output_files(image)`` method (the files it writes
for the case whose image is ``image``); MONAI's ``SaveImaged`` (and so ``SafeSaveImaged``) is asked through its
``FolderLayout``.

Example::

    formats = output_formats("nifti+dicom_seg")  # ("nifti", "dicom_seg")
    check_output_request(datalist, formats)
    check_outputs(datalist, postprocessing, overwrite=False)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.data.folder_layout import FolderLayout
from monai.transforms import Compose, SaveImaged

from monai_ag.utils.config import as_bool
from monai_ag.utils.fileio import refuse_overwrite

from .dicom_seg import require_highdicom
from .dicom_series import read_series

__all__ = ["OUTPUT_FORMATS", "check_output_request", "check_outputs", "output_formats", "output_path"]

#: the label formats an inference run can write
OUTPUT_FORMATS = ("nifti", "dicom_seg")


def output_formats(value: str | Sequence[str], required: Sequence[str] = (), why: str = "") -> tuple[str, ...]:
    """
    The label formats named by ``value``: one of :data:`OUTPUT_FORMATS` or several joined by ``+`` (or a list).

    Args:
        value: the ``output_format`` setting.
        required: formats the run needs (e.g. ``evaluate.json`` scores the NIfTI labels).
        why: what needs them, for the error.

    Raises:
        ValueError: naming the value and the accepted ones, or the required format it lacks.

    Example::

        output_formats("nifti+dicom_seg")  # ("nifti", "dicom_seg")
    """
    parts = value.split("+") if isinstance(value, str) else [str(v) for v in value]
    formats = tuple(dict.fromkeys(p.strip().lower() for p in parts))
    if not formats or any(f not in OUTPUT_FORMATS for f in formats):
        raise ValueError(
            f"output_format {value!r} is not one of {', '.join(OUTPUT_FORMATS)} or several joined by '+' "
            "(e.g. nifti+dicom_seg)."
        )
    missing = [f for f in required if f not in formats]
    if missing:
        raise ValueError(
            f"output_format {value!r} lacks {'+'.join(missing)}, which {why or 'this run'} needs: use "
            f"{'+'.join((*missing, *formats))}."
        )
    return formats


def _image_path(item: Mapping[str, Any] | str) -> str:
    image = item["image"] if isinstance(item, Mapping) else item
    if isinstance(image, (list, tuple)):
        image = image[0]
    return os.path.normpath(os.fspath(image))


def output_path(image: str | os.PathLike, output_dir: str | os.PathLike, postfix: str, extension: str) -> Path:
    """
    The file ``SaveImage(output_dir=..., output_postfix=postfix, output_ext=extension, separate_folder=False)``
    writes for ``image`` (a file or a DICOM series folder).

    Example::

        output_path("/data/ircad01/PATIENT_DICOM", "out", "seg", ".dcm")  # out/PATIENT_DICOM_seg.dcm
    """
    layout = FolderLayout(output_dir=output_dir, postfix=postfix, extension=extension, parent=False, makedirs=False)
    return Path(layout.filename(subject=os.path.normpath(os.fspath(image))))


def check_output_request(datalist: Sequence[Mapping[str, Any]], formats: Sequence[str]) -> tuple[str, ...]:
    """
    Stop before the network runs when a requested format cannot be written for every input: a DICOM SEG needs
    a DICOM series (not a NIfTI file) whose images can be referenced (:func:`monai_ag.io.dicom_series.read_series`
    reads and checks their headers) and highdicom.

    Args:
        datalist: the run's items (``"image"``: a NIfTI file or a DICOM series folder).
        formats: from :func:`output_formats`.

    Returns:
        ``formats``.

    Raises:
        ValueError: naming the inputs that are not DICOM series, or the series that cannot be referenced.
        ImportError: without highdicom.

    Example::

        "initialize": ["$monai_ag.io.check_output_request(@datalist, @output_formats)"]
    """
    formats = tuple(formats)
    if "dicom_seg" not in formats:
        return formats
    images = [_image_path(item) for item in datalist]
    not_dicom = [p for p in images if not os.path.isdir(p)]
    if not_dicom:
        shown = ", ".join(not_dicom[:5]) + (f" and {len(not_dicom) - 5} more" if len(not_dicom) > 5 else "")
        raise ValueError(
            f"output_format {'+'.join(formats)} asks for a DICOM SEG, which references the DICOM images it was "
            f"computed from; these inputs are not DICOM series: {shown}. Give DICOM series folders, or drop dicom_seg "
            "(--output_format nifti)."
        )
    require_highdicom()
    for image in images:
        read_series(image)
    return formats


def _files_of(writer: Any, image: str) -> list[Path]:
    if hasattr(writer, "output_files"):
        return [Path(p) for p in writer.output_files(image)]
    if isinstance(writer, SaveImaged):
        layout = writer.saver.folder_layout
        if isinstance(layout, FolderLayout):
            exact = FolderLayout(
                output_dir=layout.output_dir,
                postfix=layout.postfix,
                extension=layout.ext,
                parent=layout.parent,
                makedirs=False,
                data_root_dir=layout.data_root_dir,
            )
            return [Path(exact.filename(subject=image))]
    return []


def _check_writable(folder: Path) -> None:
    """``folder`` exists as a writable directory, or can be created (its nearest existing ancestor is one)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise PermissionError(f"output folder {folder} cannot be created: {existing} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {folder} cannot be written: {existing} is not writable for this user.")


def check_outputs(
    datalist: Sequence[Mapping[str, Any]],
    writers: Compose | Iterable[Any],
    overwrite: bool = False,
    run_writers: Iterable[Any] = (),
) -> list[str]:
    """
    Every file the run will write: the per-case files of each writer in ``writers`` (a ``Compose``'s
    transforms; see the module for how a writer names its files) and those of ``run_writers`` (objects with
    an ``output_files()`` method, e.g. :class:`monai_ag.metrics.organ_statistics.StatisticsTable`; ``None``
    entries are skipped). Nothing is created.

    Raises:
        FileExistsError: for an existing file when ``overwrite`` is off (the first one, and how many there are).
        PermissionError: for an output folder that cannot be created or written.

    Returns:
        the files, in order.

    Example::

        "checked_outputs": "$monai_ag.io.check_outputs(@datalist, @postprocessing, @overwrite, [@statistics_table])",
        "run": ["$@checked_outputs", "$@evaluator.run()"]
    """
    transforms = writers.transforms if isinstance(writers, Compose) else list(writers)
    files: list[Path] = []
    for item in datalist:
        image = _image_path(item)
        for writer in transforms:
            files.extend(_files_of(writer, image))
    for writer in run_writers:
        if writer is not None:
            files.extend(Path(p) for p in writer.output_files())
    for folder in dict.fromkeys(f.parent for f in files):
        _check_writable(folder)
    existing = [f for f in files if f.exists()]
    if existing and not as_bool(overwrite, "overwrite"):
        more = f" ({len(existing) - 1} more of this run's outputs exist too)" if len(existing) > 1 else ""
        refuse_overwrite(existing[0], False, option=f"--overwrite true{more}")
    return [str(f) for f in files]
