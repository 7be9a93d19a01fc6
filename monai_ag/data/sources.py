"""Where the bundle's data comes from: a user's dataset, or the built-in phantom by default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .checks import errors_logged
from .datalist import inference_datalist, train_val_datalists
from .phantom import generate_phantom_dataset

__all__ = ["inference_inputs", "training_datalists"]


def _prepare(dataset_dir: str | os.PathLike, phantom_dir: str | os.PathLike | None) -> None:
    # the phantom is the embedded default: generated (deterministically) the first time it is used
    if phantom_dir is not None and Path(dataset_dir).resolve() == Path(phantom_dir).resolve():
        generate_phantom_dataset(phantom_dir)  # reused when it is there; never replaced (overwrite=False)


def training_datalists(
    dataset_dir: str | os.PathLike,
    phantom_dir: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[list[dict], list[dict]]:
    """
    The training and validation lists of ``dataset_dir`` (see
    :py:func:`monai_ag.data.datalist.train_val_datalists`, which takes ``kwargs``); when
    ``dataset_dir`` is ``phantom_dir``, the synthetic phantom dataset is generated there first if
    it is not there yet.

    Example::

        train, val = training_datalists("bundle/data/phantom", phantom_dir="bundle/data/phantom", num_classes=5)
    """
    _prepare(dataset_dir, phantom_dir)
    return train_val_datalists(dataset_dir, **kwargs)


def inference_inputs(
    input_path: str | os.PathLike | None,
    dataset_dir: str | os.PathLike,
    phantom_dir: str | os.PathLike | None = None,
    data_list_key: str = "test",
) -> list[dict]:
    """
    The images to segment: ``input_path`` (a NIfTI file, a DICOM series folder or a folder of
    either) when given, else ``dataset_dir``'s ``data_list_key`` list (see
    :py:func:`monai_ag.data.datalist.inference_datalist`); the phantom is generated first when
    ``dataset_dir`` is ``phantom_dir``. A problem (a missing file, an empty list, ...) is logged as
    one ``ERROR`` line, then raised. The images themselves are checked by
    :py:func:`monai_ag.data.checks.check_inference_inputs` (the bundle calls it in ``initialize``).

    Example::

        items = inference_inputs("ct.nii.gz", "bundle/data/phantom")
    """
    with errors_logged():
        if not input_path:
            _prepare(dataset_dir, phantom_dir)
            items = inference_datalist(None, dataset_dir, data_list_key=data_list_key)
        else:
            items = inference_datalist(input_path, None, data_list_key=data_list_key)
    return items
