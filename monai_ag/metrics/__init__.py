"""Evaluation metrics and reports of the ``monai_ag`` bundle.

The names are re-exported lazily (PEP 562): importing :mod:`monai_ag.metrics` does not import
:mod:`monai_ag.metrics.report`, so ``python -m monai_ag.metrics.report`` runs without runpy's
"found in sys.modules" RuntimeWarning, while ``from monai_ag.metrics import segmentation_report``
works as usual.

Example::

    from monai_ag.metrics import pair_predictions, segmentation_report

    pairs = pair_predictions("./eval/pred", datalist)
    summary = segmentation_report([p for p, _ in pairs], [l for _, l in pairs], {1: "liver"}, "./eval/report")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import (
        DEFAULT_CLASS_NAMES,
        METRICS_CSV,
        SUMMARY_CSV,
        SUMMARY_JSON,
        case_id_from_path,
        case_metrics,
        format_summary,
        metric_names,
        pair_predictions,
        segmentation_report,
    )

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "METRICS_CSV",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "case_id_from_path",
    "case_metrics",
    "format_summary",
    "metric_names",
    "pair_predictions",
    "segmentation_report",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".report", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
