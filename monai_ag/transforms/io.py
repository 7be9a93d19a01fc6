"""Writers that never leave a half-written file that looks complete, nor replace one silently."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SaveImage, SaveImaged
from monai.utils import MetaKeys

from monai_ag.utils.config import as_bool
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

__all__ = ["SafeSaveImage", "SafeSaveImaged"]

#: the arguments of ``SaveImaged`` that configure its ``SaveImage`` (all but keys and meta-key options)
_SAVER_ARGS = tuple(p for p in inspect.signature(SaveImage).parameters if p != "self")


class SafeSaveImage(SaveImage):
    """
    :py:class:`monai.transforms.SaveImage` that writes through :func:`monai_ag.utils.fileio.atomic_write`
    (a hidden temporary file in the output folder, renamed into place once complete: an interrupted run
    leaves no file that looks finished), and refuses to replace an existing output unless ``overwrite``.

    Args:
        overwrite: replace existing outputs; by default an existing file raises ``FileExistsError``.
        args: the arguments of :py:class:`monai.transforms.SaveImage`.
        kwargs: the arguments of :py:class:`monai.transforms.SaveImage`.

    Example::

        saver = SafeSaveImage(output_dir="eval", output_postfix="seg", separate_folder=False)
        saver(prediction)  # eval/<image name>_seg.nii.gz, FileExistsError if it is already there
    """

    def __init__(self, *args, overwrite: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.overwrite = as_bool(overwrite, "overwrite")

    def __call__(
        self, img: torch.Tensor | np.ndarray, meta_data: dict | None = None, filename: str | os.PathLike | None = None
    ):
        meta_data = img.meta if isinstance(img, MetaTensor) else meta_data
        if filename is not None:
            final = Path(f"{filename}{self.output_ext}")
        else:
            final = Path(self.folder_layout.filename(**self.fname_formatter(meta_data, self)))
        refuse_overwrite(final, self.overwrite, option="overwrite=True (bundle: --overwrite true)")
        ext = self.output_ext
        with atomic_write(final) as tmp:
            # SaveImage appends output_ext to an explicit filename; the temporary name ends with it already
            stem = str(tmp)[: -len(ext)] if ext and str(tmp).endswith(ext) else str(tmp)
            out = super().__call__(img, meta_data, filename=stem)
        if self.savepath_in_metadict and meta_data is not None:
            meta_data[MetaKeys.SAVED_TO] = str(final)
        return out


class SafeSaveImaged(SaveImaged):
    """
    :py:class:`monai.transforms.SaveImaged` with :py:class:`SafeSaveImage`'s guarantees: atomic
    writes and no silent overwrite. Being a ``SaveImaged``, MONAI Label strips it from the bundle's
    postprocessing as it does the stock writer.

    Args:
        keys: keys of the items to save.
        args: the other arguments of :py:class:`monai.transforms.SaveImaged`, in its order.
        overwrite: replace existing outputs; by default an existing file raises ``FileExistsError``.
        kwargs: the other arguments of :py:class:`monai.transforms.SaveImaged`.

    Example::

        SafeSaveImaged(keys="pred", output_dir="eval", output_postfix="seg", separate_folder=False)
    """

    def __init__(self, keys, *args, overwrite: bool = False, **kwargs) -> None:
        super().__init__(keys, *args, **kwargs)
        # SaveImaged passes its saver options straight to SaveImage: bind them to SaveImaged's own signature
        # (positional or keyword, defaults filled in) and build the safe saver from the same values
        bound = inspect.signature(SaveImaged.__init__).bind(self, keys, *args, **kwargs)
        bound.apply_defaults()
        options = {k: v for k, v in bound.arguments.items() if k in _SAVER_ARGS}
        self.saver = SafeSaveImage(**options, overwrite=overwrite)
