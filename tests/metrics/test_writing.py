"""Tests of ``monai_ag.metrics.writing``: the three report files, their NaN cells and their atomicity."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from monai_ag.metrics.segmentation import metric_names
from monai_ag.metrics.statistics import summarize
from monai_ag.metrics.writing import format_value, report_paths, write_report
from monai_ag.utils import fileio

NAN = math.nan


@pytest.fixture
def report():
    names = metric_names(95.0)
    rows = [
        {
            "case": "c1",
            "class_index": 1,
            "class_name": "liver",
            **dict(zip(names, (0.9, 1.5, 0.5, 1.0, 0.8, 2.0, 2.2))),
        },
        {"case": "c1", "class_index": 2, "class_name": "spleen", **dict.fromkeys(names, NAN)},
    ]
    return rows, summarize(rows, {1: "liver", 2: "spleen"}, ["c1"], 95.0)


def test_format_value():
    assert format_value(NAN) == "" and format_value(math.inf) == "" and format_value(None) == ""
    assert format_value(0.1) == "0.1" and format_value(3) == "3" and format_value("liver") == "liver"


def test_files_and_nan_cells(tmp_path, report):
    rows, summary = report
    paths = write_report(tmp_path / "out", rows, summary)
    assert [os.path.basename(p) for p in paths] == ["summary.csv", "summary.json", "metrics.csv"]
    assert sorted(os.listdir(tmp_path / "out")) == ["metrics.csv", "summary.csv", "summary.json"]
    with open(tmp_path / "out" / "metrics.csv", newline="") as fh:
        metrics = list(csv.DictReader(fh))
    assert list(metrics[0]) == ["case", "class_index", "class_name", "reference", *metric_names(95.0)]
    assert metrics[0]["dice"] == "0.9" and all(metrics[1][m] == "" for m in metric_names(95.0))
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert "nan" not in (tmp_path / "out" / "summary.csv").read_text().lower()


def test_metrics_csv_is_replaced_last(tmp_path, report, monkeypatch):
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", recording_replace)
    write_report(tmp_path, *report)
    assert replaced == ["summary.csv", "summary.json", "metrics.csv"]
    assert [os.path.basename(p) for p in report_paths(tmp_path)] == replaced


def test_failed_write_keeps_the_previous_report(tmp_path, report, monkeypatch):
    write_report(tmp_path, *report)
    before = {name: (tmp_path / name).read_text() for name in os.listdir(tmp_path)}

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    rows, summary = report
    monkeypatch.setattr(fileio.Path, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, rows[:1], summary)
    assert {name: (tmp_path / name).read_text() for name in os.listdir(tmp_path)} == before  # no temporary files
