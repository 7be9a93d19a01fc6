"""Low-level helpers every layer may use: config values (:py:mod:`~monai_ag.utils.config`), the one way to write
a file (:py:mod:`~monai_ag.utils.fileio`), commands, precision, distributed runs and random states. The bundle's
own helpers are in :py:mod:`monai_ag.bundle` (``monai_ag.utils.bundle`` is a deprecated alias of them)."""

from __future__ import annotations

from .config import as_bool, one_of, require_file
from .fileio import atomic_write, atomic_writes, final_name, refuse_overwrite, temporary_path

__all__ = [
    "as_bool",
    "atomic_write",
    "atomic_writes",
    "final_name",
    "one_of",
    "refuse_overwrite",
    "require_file",
    "temporary_path",
]
