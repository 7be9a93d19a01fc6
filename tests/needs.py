"""What some tests need that a user's clone may lack, and the one policy for it: skip with the reason, unless
the run requires it (``MONAI_AG_REQUIRE_<KIND>=1``, which ``.ci/run`` exports), then fail with the reason.
With ``CI=true`` any skip at all fails the session (``tests/conftest.py``)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

__all__ = ["SHARED_DATA", "needs_module", "needs_shared_data", "required"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def required(kind: str) -> bool:
    """Whether this run must have ``kind`` (``MONAI_AG_REQUIRE_<KIND>=1``)."""
    return os.environ.get(f"MONAI_AG_REQUIRE_{kind}", "") not in ("", "0")


def _missing(kind: str, reason: str, module_level: bool) -> None:
    if required(kind):
        pytest.fail(f"{reason} (MONAI_AG_REQUIRE_{kind}=1: this run requires it)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def needs_module(name: str, kind: str, reason: str) -> ModuleType:
    """Import ``name`` for a test module (call it at module level), or skip/fail the module with ``reason``."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        _missing(kind, f"{reason} ({type(e).__name__}: {e})", module_level=True)
        raise  # not reached


def needs_shared_data() -> Path:
    """``../shared/data`` beside the project (CI has it), or skip/fail the test."""
    if not SHARED_DATA.is_dir():
        _missing(
            "SHARED",
            f"real CT data not available: {SHARED_DATA} does not exist (it ships with the project's CI only)",
            module_level=False,
        )
    return SHARED_DATA
