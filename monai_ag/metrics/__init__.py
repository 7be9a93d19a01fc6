"""Evaluation metrics and reports of the ``monai_ag`` bundle.

- :mod:`~monai_ag.metrics.segmentation`: per-case metrics (Dice, HD95, surface distance, precision, recall,
  volumes; computed by MONAI) and the NaN policy for absent structures;
- :mod:`~monai_ag.metrics.statistics`: the summary over cases and its text table;
- :mod:`~monai_ag.metrics.writing`: ``metrics.csv``, ``summary.csv`` and ``summary.json``, written atomically;
- :mod:`~monai_ag.metrics.report`: pairing predictions with references and the whole evaluation
  (``python -m monai_ag.metrics``).

Example::

    from monai_ag.metrics import pair_predictions, segmentation_report

    pairs = pair_predictions("./eval/pred", datalist)
    summary = segmentation_report([p for p, _ in pairs], [l for _, l in pairs], {1: "liver"}, "./eval/report")
"""

from __future__ import annotations

from .report import case_id_from_path, pair_predictions, segmentation_report
from .segmentation import as_label_array, case_metrics, metric_names, quality_metric_names, voxel_geometry
from .statistics import MEAN_ROW, format_summary, summarize, summary_statistics
from .writing import METRICS_CSV, SUMMARY_CSV, SUMMARY_JSON, format_value, report_paths, write_report

__all__ = [
    "MEAN_ROW",
    "METRICS_CSV",
    "SUMMARY_CSV",
    "SUMMARY_JSON",
    "as_label_array",
    "case_id_from_path",
    "case_metrics",
    "format_summary",
    "format_value",
    "metric_names",
    "pair_predictions",
    "quality_metric_names",
    "report_paths",
    "segmentation_report",
    "summarize",
    "summary_statistics",
    "voxel_geometry",
    "write_report",
]
