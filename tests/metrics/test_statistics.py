"""Tests of ``monai_ag.metrics.statistics``: summary statistics on hand-made metric rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monai_ag.metrics.segmentation import metric_names
from monai_ag.metrics.statistics import MEAN_ROW, format_summary, summarize, summary_statistics

NAN = math.nan
NAMES = metric_names(95.0)


def row(case: str, idx: int, name: str, dice: float, hd: float, ref_ml: float, pred_ml: float = 1.0) -> dict:
    return {
        "case": case,
        "class_index": idx,
        "class_name": name,
        **dict(zip(NAMES, (dice, hd, NAN, NAN, NAN, pred_ml, ref_ml))),
    }


def test_summary_statistics_skip_nan_and_use_the_sample_std():
    assert summary_statistics([1.0, NAN, 0.5, 0.0]) == {"n": 3, "mean": 0.5, "std": pytest.approx(0.5), "median": 0.5}
    assert summary_statistics([0.25]) == {"n": 1, "mean": 0.25, "std": None, "median": 0.25}
    assert summary_statistics([NAN]) == {"n": 0, "mean": None, "std": None, "median": None}


def test_summarize_per_class_and_mean_over_organs():
    rows = [
        row("c1", 1, "liver", 1.0, 0.0, 10.0),
        row("c1", 2, "spleen", 0.0, NAN, 5.0, pred_ml=0.0),  # missed
        row("c2", 1, "liver", 0.5, 2.0, 10.0),
        row("c2", 2, "spleen", NAN, NAN, NAN, pred_ml=NAN),  # absent from the reference
    ]
    summary = summarize(rows, {1: "liver", 2: "spleen"}, ["c1", "c2"], 95.0)
    liver, spleen = summary["classes"]["liver"], summary["classes"]["spleen"]
    assert liver["n_cases"] == 2 and liver["n_missed"] == 0 and liver["metrics"]["dice"]["mean"] == 0.75
    assert spleen["n_cases"] == 1 and spleen["n_missed"] == 1
    assert spleen["metrics"]["hd95_mm"]["n"] == 0
    # per case first (c1: (1 + 0)/2, c2: 0.5 alone), then over cases
    assert summary["mean_dice"] == pytest.approx(0.5)
    assert summary["mean_over_organs"]["metrics"]["hd95_mm"]["mean"] == pytest.approx(np.mean([0.0, 2.0]))
    assert "ref_volume_ml" not in summary["mean_over_organs"]["metrics"]
    assert summary["cases"] == ["c1", "c2"] and summary["hd_percentile"] == 95.0


def test_format_summary_table():
    rows = [row("c1", 1, "liver", 1.0, 0.0, 10.0), row("c2", 1, "liver", 0.5, 2.0, 10.0)]
    text = format_summary(summarize(rows, {1: "liver"}, ["c1", "c2"], 95.0))
    lines = text.splitlines()
    assert lines[0].split() == [
        "class",
        "n",
        "missed",
        "not_annotated",
        "dice",
        "hd95_mm",
        "msd_mm",
        "precision",
        "recall",
    ]
    assert lines[2].startswith("liver") and "0.750 ± 0.354" in lines[2] and lines[2].rstrip().endswith("n/a")
    assert lines[3].startswith(MEAN_ROW)
