from __future__ import annotations

from .bundle import as_bool, check_bundle, evaluate_predictions, refuse_overwrite, require_file, save_run_config
from .fileio import atomic_write, atomic_writes, final_name, temporary_path

__all__ = [
    "as_bool",
    "atomic_write",
    "atomic_writes",
    "check_bundle",
    "evaluate_predictions",
    "final_name",
    "refuse_overwrite",
    "require_file",
    "save_run_config",
    "temporary_path",
]
