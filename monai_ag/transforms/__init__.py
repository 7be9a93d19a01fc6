from __future__ import annotations

from .attention import AttentionMapsd
from .intensity import RandOrganIntensityShiftd
from .io import SafeSaveImage, SafeSaveImaged
from .outputs import OrganVolumesd, SaveDicomSegd, SaveOrganStatisticsd, SavePreviewd, SourceImaged
from .partial import AnnotatedClassesd
from .post import ORGAN_COMPONENTS, KeepOrganComponentsd, keep_organ_components, restore_background
from .spatial import MetaSafeSpacingd

__all__ = [
    "ORGAN_COMPONENTS",
    "AnnotatedClassesd",
    "AttentionMapsd",
    "KeepOrganComponentsd",
    "MetaSafeSpacingd",
    "OrganVolumesd",
    "RandOrganIntensityShiftd",
    "SafeSaveImage",
    "SafeSaveImaged",
    "SaveDicomSegd",
    "SaveOrganStatisticsd",
    "SavePreviewd",
    "SourceImaged",
    "keep_organ_components",
    "restore_background",
]
