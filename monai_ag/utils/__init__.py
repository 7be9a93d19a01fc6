from __future__ import annotations

from .bundle import check_bundle, require_file, save_run_config

__all__ = ["check_bundle", "require_file", "save_run_config"]
