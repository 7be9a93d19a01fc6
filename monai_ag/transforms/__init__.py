from __future__ import annotations

from .attention import AttentionMapsd
from .io import SafeSaveImage, SafeSaveImaged
from .post import restore_background
from .spatial import MetaSafeSpacingd

__all__ = ["AttentionMapsd", "MetaSafeSpacingd", "SafeSaveImage", "SafeSaveImaged", "restore_background"]
