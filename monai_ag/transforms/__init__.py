from __future__ import annotations

from .attention import AttentionMapsd
from .io import SafeSaveImage, SafeSaveImaged
from .post import restore_background

__all__ = ["AttentionMapsd", "SafeSaveImage", "SafeSaveImaged", "restore_background"]
