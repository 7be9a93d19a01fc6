from __future__ import annotations

from .attention import AttentionMapsd
from .io import SafeSaveImage, SafeSaveImaged

__all__ = ["AttentionMapsd", "SafeSaveImage", "SafeSaveImaged"]
