"""Writers that never leave a half-written file that looks complete, nor replace one silently."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SaveImage, SaveImaged
from monai.utils import MetaKeys

from monai_ag.utils.bundle import as_bool

__all__ = ["SafeSaveImage", "SafeSaveImaged"]


class SafeSaveImage(SaveImage):
    """
    :py:class:`monai.transforms.SaveImage` that writes to a hidden ``.<name>.partial<ext>`` file in
    the output folder and renames it into place only once complete (an interrupted run leaves no
    file that looks finished), and refuses to replace an existing output unless ``overwrite``.

    Args:
        overwrite: replace existing outputs; by default an existing file raises ``FileExistsError``.
        kwargs: the arguments of :py:class:`monai.transforms.SaveImage`.
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
        if final.exists() and not self.overwrite:
            raise FileExistsError(
                f"{final} already exists and would be replaced; pass overwrite=True (bundle: --overwrite true) "
                "or choose another output_dir."
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        ext = self.output_ext
        stem = final.name[: -len(ext)] if ext and final.name.endswith(ext) else final.name
        partial = final.parent / f".{stem}.partial"
        try:
            out = super().__call__(img, meta_data, filename=str(partial))
            os.replace(f"{partial}{ext}", final)
        except BaseException:
            Path(f"{partial}{ext}").unlink(missing_ok=True)
            raise
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
        overwrite: replace existing outputs; by default an existing file raises ``FileExistsError``.
        kwargs: the other arguments of :py:class:`monai.transforms.SaveImaged`.

    Example::

        SafeSaveImaged(keys="pred", output_dir="eval", output_postfix="seg", separate_folder=False)
    """

    def __init__(self, keys, *args, overwrite: bool = False, **kwargs) -> None:
        super().__init__(keys, *args, **kwargs)
        # SaveImaged builds its SaveImage from many arguments: upgrade that instance in place rather
        # than re-listing them, so every SaveImaged option keeps working
        self.saver.__class__ = SafeSaveImage
        self.saver.overwrite = as_bool(overwrite, "overwrite")
