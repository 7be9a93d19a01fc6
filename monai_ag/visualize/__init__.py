"""Figures of segmented cases (``python -m monai_ag.visualize``). matplotlib is optional: it is imported when
a figure is drawn, not when this package is imported."""

from __future__ import annotations

from .figures import render_case_figure

__all__ = ["render_case_figure"]
