"""Summary statistics of per-case metrics: per class and for the mean over organs (``summary.json``), and a
plain-text table of them. NaN values (see :mod:`monai_ag.metrics.segmentation`) are left out of every
statistic and counted in ``n``; NaN is ``None`` in the summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .segmentation import metric_names, quality_metric_names

__all__ = ["MEAN_ROW", "NOT_ANNOTATED", "format_summary", "summarize", "summary_statistics"]

#: ``class_name`` of the pseudo-class "mean over organs" in ``summary.csv`` and the text table.
MEAN_ROW = "mean"
#: ``reference`` of a case/class the case's labels do not annotate (partial labels), distinct from "absent".
NOT_ANNOTATED = "not annotated"


def summary_statistics(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std (ddof=1), median and count of the non-NaN values (None when undefined)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    n = int(v.size)
    return {
        "n": n,
        "mean": float(v.mean()) if n else None,
        "std": float(v.std(ddof=1)) if n > 1 else None,
        "median": float(np.median(v)) if n else None,
    }


def summarize(
    rows: list[dict[str, Any]], class_names: Mapping[int, str], case_ids: Sequence[str], hd_percentile: float
) -> dict[str, Any]:
    """The content of ``summary.json`` from the ``metrics.csv`` rows."""
    names = metric_names(hd_percentile)
    dice_k, pvol_k = names[0], names[5]
    classes: dict[str, Any] = {}
    for idx, name in class_names.items():
        crow = [r for r in rows if r["class_index"] == idx]
        present = [r for r in crow if not math.isnan(r["ref_volume_ml"])]
        classes[name] = {
            "class_index": idx,
            "n_cases": len(present),
            "n_missed": sum(1 for r in present if r[pvol_k] == 0),
            "n_not_annotated": sum(1 for r in crow if r.get("reference") == NOT_ANNOTATED),
            "metrics": {m: summary_statistics([r[m] for r in crow]) for m in names},
        }
    # mean over organs: per case, the mean over the organs present in its reference; then statistics over
    # cases (MONAI's MetricReduction.MEAN convention), so every case weighs the same whatever it contains
    per_case: dict[str, dict[str, float]] = {}
    for case in case_ids:
        crow = [r for r in rows if r["case"] == case]
        per_case[case] = {}
        for m in quality_metric_names(hd_percentile):
            vals = [r[m] for r in crow if not math.isnan(r[m])]
            per_case[case][m] = float(np.mean(vals)) if vals else math.nan
    mean_metrics = {
        m: summary_statistics([per_case[c][m] for c in case_ids]) for m in quality_metric_names(hd_percentile)
    }
    return {
        "mean_dice": mean_metrics[dice_k]["mean"],
        "n_cases": len(case_ids),
        "hd_percentile": float(hd_percentile),
        "classes": classes,
        "mean_over_organs": {"n_cases": mean_metrics[dice_k]["n"], "metrics": mean_metrics},
        "nan_policy": (
            "class absent from the reference: all metrics NaN, case excluded from that class; class not annotated in "
            "the case (partial labels): the same, counted in n_not_annotated instead; class present but "
            "not predicted: dice 0, recall 0, precision/HD/MSD NaN (excluded from their means); n counts the "
            "non-NaN values behind each mean; mean_over_organs averages the organs present in each case first; "
            "std is the sample std (ddof=1); NaN is null here and an empty field in the CSV files"
        ),
        "cases": list(case_ids),
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A plain-text table of a summary (as returned by :func:`segmentation_report`).

    Args:
        summary: the summary dictionary.

    Returns:
        One line per class and one for the mean over organs: ``n``, missed cases and mean ± std of each
        quality metric.
    """
    hd_k = metric_names(summary["hd_percentile"])[1]
    cols = ("dice", hd_k, "msd_mm", "precision", "recall")

    def cell(s: Mapping[str, Any]) -> str:
        if s["mean"] is None:
            return "n/a"
        return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s["std"] is not None else "")

    header = ["class", "n", "missed", "not_annotated", *cols]
    lines = []
    for name, info in summary["classes"].items():
        lines.append(
            [
                name,
                str(info["n_cases"]),
                str(info["n_missed"]),
                str(info.get("n_not_annotated", 0)),
                *(cell(info["metrics"][m]) for m in cols),
            ]
        )
    mean = summary["mean_over_organs"]
    lines.append([MEAN_ROW, str(mean["n_cases"]), "", "", *(cell(mean["metrics"][m]) for m in cols)])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in lines)])
