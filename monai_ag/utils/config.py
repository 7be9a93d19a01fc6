"""Reading config values: command-line flags as bools, files that must exist. A leaf module (no package imports),
so every layer can use it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["as_bool", "one_of", "require_file"]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0", "")


def as_bool(value: Any, name: str = "flag") -> bool:
    """
    A config flag as a bool. ``python -m monai.bundle run --flag false`` passes the *string*
    ``"false"``, which Python treats as true; this reads ``true/false/yes/no/on/off/1/0`` (any case)
    and real bools, and rejects anything else with a message naming the flag.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}.")


def one_of(value: Any, name: str, options: tuple[str, ...]) -> str:
    """``value`` when it is one of ``options``; otherwise a ``ValueError`` naming the setting and the options."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {value!r}.")
    return value


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """Raise ``FileNotFoundError`` naming ``path`` and what it should hold when it is not a file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} not found: {path}. {hint}".strip())
    return str(path)
