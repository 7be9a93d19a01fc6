"""Figures of segmented cases (``python -m monai_ag.visualize``) and attention maps
(``python -m monai_ag.visualize.attention``). matplotlib is optional: it is imported when a figure is drawn, not
when this package is imported."""

from __future__ import annotations

from .attention import attention_figure, render_attention
from .figures import render_case_figure
from .preview import render_preview

__all__ = ["attention_figure", "render_attention", "render_case_figure", "render_preview"]
