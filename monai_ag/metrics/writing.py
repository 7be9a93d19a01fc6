"""The report files of :func:`monai_ag.metrics.segmentation_report`, written together and atomically.

- ``metrics.csv``: one row per case and class with ``case, class_index, class_name, reference`` and the metrics of
  :func:`~monai_ag.metrics.segmentation.metric_names`;
- ``summary.csv``: one row per class (and for the mean over organs) and metric with ``n, mean, std, median``;
- ``summary.json``: the summary of :func:`~monai_ag.metrics.statistics.summarize`.

NaN is an empty CSV field and ``null`` in JSON; no file ever contains ``inf``.

Why not MONAI's ``monai.handlers.utils.write_metrics_reports``: it writes other files (one
``<metric>_raw.csv`` and ``<metric>_summary.csv`` per metric, classes as columns, no JSON), rounds to four
decimals, writes NaN as ``nan``, uses the population std (``np.nanstd``) where this report gives the sample
std, and writes in place (an interrupted run leaves truncated files). The report's files and guarantees are
what the bundle's users and tests rely on, so they are kept and written here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from monai_ag.utils.fileio import atomic_writes

from .segmentation import metric_names
from .statistics import MEAN_ROW

__all__ = ["METRICS_CSV", "SUMMARY_CSV", "SUMMARY_JSON", "format_value", "report_paths", "write_report"]

#: File names written by :func:`write_report` in its ``output_dir``.
METRICS_CSV = "metrics.csv"
SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"


def report_paths(output_dir: str | os.PathLike) -> list[str]:
    """The report files in ``output_dir``, in the order they are replaced (``metrics.csv``, the marker of a
    complete report that the overwrite check looks at, last).

    Example::

        report_paths("eval")  # ["eval/summary.csv", "eval/summary.json", "eval/metrics.csv"]
    """
    return [os.path.join(os.fspath(output_dir), n) for n in (SUMMARY_CSV, SUMMARY_JSON, METRICS_CSV)]


def format_value(value: Any) -> str:
    """A CSV cell: full-precision float, empty for NaN/None (never inf).

    Example::

        format_value(float("nan"))  # ""
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return str(value)


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[format_value(v) for v in row] for row in rows])
    return buf.getvalue()


def write_report(
    output_dir: str | os.PathLike, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> list[str]:
    """Write ``metrics.csv``, ``summary.csv`` and ``summary.json`` with
    :func:`~monai_ag.utils.fileio.atomic_writes`: all three are written to temporary names first, then renamed
    in the order of :func:`report_paths`, so an interrupted run leaves the previous report (or none), never a
    truncated file, and ``metrics.csv`` appears last.

    Args:
        output_dir: the report directory (created if needed).
        rows: one mapping per case and class with ``case``, ``class_index``, ``class_name`` and every metric.
        summary: the summary of :func:`~monai_ag.metrics.statistics.summarize` (with ``hd_percentile``).

    Returns:
        The paths written, in :func:`report_paths` order.

    Example::

        write_report("eval/report", rows, summarize(rows, {1: "liver"}, ["c1"], 95.0))
    """
    names = metric_names(summary["hd_percentile"])
    metrics_text = _csv_text(
        ("case", "class_index", "class_name", "reference", *names),
        [[r["case"], r["class_index"], r["class_name"], r.get("reference", ""), *(r[m] for m in names)] for r in rows],
    )
    summary_rows = []
    for name, info in summary["classes"].items():
        for m, s in info["metrics"].items():
            summary_rows.append([info["class_index"], name, m, s["n"], s["mean"], s["std"], s["median"]])
    for m, s in summary["mean_over_organs"]["metrics"].items():
        summary_rows.append(["", MEAN_ROW, m, s["n"], s["mean"], s["std"], s["median"]])
    summary_text = _csv_text(("class_index", "class_name", "metric", "n", "mean", "std", "median"), summary_rows)
    json_text = json.dumps(summary, indent=2, allow_nan=False) + "\n"  # allow_nan=False: strictly valid JSON
    paths = report_paths(output_dir)
    with atomic_writes(paths) as temps:
        for tmp, text in zip(temps, (summary_text, json_text, metrics_text)):
            tmp.write_text(text, encoding="utf-8", newline="")
    return paths
