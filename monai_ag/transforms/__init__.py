from __future__ import annotations

from .attention import AttentionMapsd
from .intensity import RandOrganIntensityShiftd
from .io import SafeSaveImage, SafeSaveImaged
from .partial import AnnotatedClassesd
from .post import restore_background
from .spatial import MetaSafeSpacingd

__all__ = ["AnnotatedClassesd", "AttentionMapsd", "MetaSafeSpacingd", "RandOrganIntensityShiftd", "SafeSaveImage", "SafeSaveImaged", "restore_background"]
