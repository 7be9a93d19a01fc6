"""Spatial transforms that keep MONAI's behaviour but also run inside MONAI Label."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, MutableMapping
from typing import Any

from monai.transforms import Spacingd

__all__ = ["MetaSafeSpacingd"]


class MetaSafeSpacingd(Spacingd):
    """
    :py:class:`monai.transforms.Spacingd` that leaves alone the entries named ``<key>_*`` which are
    not dictionaries.

    For NIfTI inputs MONAI >= 1.6's ``Spacingd`` calls ``d[k].update(meta)`` for *every* entry whose
    name starts with ``"<key>_"``, assuming they are all meta dictionaries. MONAI Label (0.8.5) runs
    the bundle's pre-transforms over its request dictionary, which holds a string ``image_path``
    (its writer takes the output extension from it), so plain ``Spacingd`` raises
    ``AttributeError: 'str' object has no attribute 'update'`` there. This subclass sets such
    entries aside while ``Spacingd`` runs and puts them back unchanged; meta dictionaries are
    updated as before, and the inverse is ``Spacingd``'s. Outside MONAI Label (no such entries) it
    is exactly ``Spacingd``.

    Args:
        args: the positional arguments of :py:class:`monai.transforms.Spacingd`.
        kwargs: the keyword arguments of :py:class:`monai.transforms.Spacingd`.

    Example::

        from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged
        from monai_ag.transforms import MetaSafeSpacingd

        pre = Compose([LoadImaged("image"), EnsureChannelFirstd("image"), MetaSafeSpacingd("image", pixdim=4.0)])
        pre({"image": "ct.nii.gz", "image_path": "ct.nii.gz"})  # Spacingd would raise here
    """

    def __call__(self, data: Mapping[Hashable, Any], lazy: bool | None = None) -> dict[Hashable, Any]:
        d = dict(data)
        prefixes = tuple(f"{key}_" for key in self.key_iterator(d))
        aside = {
            k: d.pop(k)
            for k in list(d)
            if isinstance(k, str) and k.startswith(prefixes) and not isinstance(d[k], MutableMapping)
        }
        out = super().__call__(d, lazy=lazy)
        out.update(aside)
        return out
