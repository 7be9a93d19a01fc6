from __future__ import annotations

from .bundle import as_bool, check_bundle, evaluate_predictions, refuse_overwrite, require_file, save_run_config

__all__ = [
    "as_bool",
    "check_bundle",
    "evaluate_predictions",
    "refuse_overwrite",
    "require_file",
    "save_run_config",
]
