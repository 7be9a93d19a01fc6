"""Export a trained model with its recipe inside (:py:mod:`monai_ag.bundle.export.exporter`);
``python -m monai_ag.bundle.export`` is its command."""

from __future__ import annotations

from .exporter import RECIPE_KEY, export_model, main

__all__ = ["RECIPE_KEY", "export_model", "main"]
