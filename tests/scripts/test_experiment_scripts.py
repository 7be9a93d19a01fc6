"""The pure parts of the experiment scripts in ``scripts/`` (their full runs are documented commands)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agreement_counts_differing_and_organ_voxels():
    compare = _load("precision_agreement").compare
    a = np.zeros((4, 4, 4), np.uint8)
    a[:2] = 1  # 32 liver voxels
    b = a.copy()
    b[0, 0, :2] = 0  # 2 liver voxels lost
    b[3, 3, 3] = 4  # 1 pancreas voxel added
    r = compare(a, b)
    assert r["voxels"] == 64 and r["differing_voxels"] == 3
    assert r["agreement"] == pytest.approx(61 / 64)
    assert r["organ_voxels"] == 33 and r["organ_agreement"] == pytest.approx(30 / 33)
    assert r["dice_between_runs"]["liver"] == pytest.approx(2 * 30 / 62)
    assert r["dice_between_runs"]["pancreas"] == 0.0 and r["dice_between_runs"]["spleen"] is None


def test_fold_holds_out_one_case_for_validation_and_test(tmp_path):
    side = _load("realct_side_by_side")
    data = tmp_path / "dataset"
    data.mkdir()
    items = [
        {"image": f"imagesTr/{c}.nii.gz", "label": f"labelsTr/{c}.nii.gz", "case_id": c, "annotated": [1]}
        for c in "abc"
    ]
    (data / "dataset.json").write_text(
        json.dumps({"training": items[:2], "validation": items[2:], "labels": {"0": "background"}})
    )
    fold = json.loads((side.write_fold(data, "a", tmp_path) / "dataset.json").read_text())
    assert [i["case_id"] for i in fold["training"]] == ["b", "c"]
    assert fold["validation"] == fold["test"] and [i["case_id"] for i in fold["test"]] == ["a"]
    assert fold["test"][0]["image"] == str(data / "imagesTr/a.nii.gz") and fold["test"][0]["annotated"] == [1]
    with pytest.raises(SystemExit, match="no case 'z'"):
        side.write_fold(data, "z", tmp_path)


def test_side_by_side_table_lists_every_run_with_dice_and_hd95():
    side = _load("realct_side_by_side")

    def summary(dice):
        return {
            "classes": {
                o: {"metrics": {"dice": {"mean": d}, "hd95_mm": {"mean": None if d is None else 10 * d}}}
                for o, d in zip(["liver", "spleen", "kidney", "pancreas"], dice)
            }
        }

    record = {
        "runs": [
            {
                "fold": "ircad01",
                "network": "GridAttentionUNet",
                "comparison": "equal time",
                "epochs": 100,
                "steps": 200,
                "wall_minutes_training_run": 10.42,
                "summary": summary([0.9, 0.8, 0.7, None]),
            },
            {
                "fold": "ircad01",
                "network": "UNet",
                "comparison": "equal steps",
                "epochs": 100,
                "steps": 200,
                "wall_minutes_training_run": 4.0,
                "summary": summary([0.5, 0.0, 0.25, None]),
            },
        ]
    }
    lines = side.markdown_table(record).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| fold (validation case) | network |")
    assert (
        lines[2] == "| ircad01 | GridAttentionUNet | equal time | 100 / 200 | 10.4 | 0.900 | 0.800 | 0.700 | n/a "
        "| 9.0 | 8.0 | 7.0 | n/a |"
    )
    assert lines[3].split(" | ")[5:9] == ["0.500", "0.000", "0.250", "n/a"]


def test_seed_sweep_reports_mean_std_and_fold_spread():
    seeds = _load("realct_seeds")

    def run(recipe, fold, seed, liver, spleen):
        summary = {
            "classes": {
                "liver": {"metrics": {"dice": {"mean": liver}}},
                "spleen": {"metrics": {"dice": {"mean": spleen}}},
            }
        }
        return {
            "recipe": recipe,
            "network": "GridAttentionUNet",
            "fold": fold,
            "seed": seed,
            "steps": 120,
            "wall_minutes_training_run": 5.0,
            "summary": summary,
        }

    runs = [
        run("a", "f1", 0, 0.9, 0.5),
        run("a", "f1", 1, 0.5, None),
        run("a", "f2", 0, 0.7, 0.7),
        run("b", "f1", 0, 0.8, 0.6),
    ]
    summary = seeds.aggregate(runs)
    a = summary["a / GridAttentionUNet"]
    assert a["organs"]["liver"]["n"] == 3 and a["organs"]["liver"]["mean"] == pytest.approx(0.7)
    assert a["organs"]["liver"]["std"] == pytest.approx(0.2)
    assert a["organs"]["spleen"]["n"] == 2  # a missing value is left out, not counted as 0
    assert a["folds"]["f1"]["liver"]["spread"] == pytest.approx(0.4) and a["folds"]["f2"]["liver"]["spread"] == 0.0
    assert summary["b / GridAttentionUNet"]["organs"]["liver"]["std"] is None  # one run: no spread to report
    lines = seeds.markdown_table(summary).splitlines()
    assert lines[2].startswith("| a / GridAttentionUNet | 0.700 ± 0.200 | 0.600 ± 0.141 |")
    assert "| 0.40 / 0.00 / 0.00 | 120 | 5.0 |" in lines[2]
    by_fold = seeds.fold_table(summary).splitlines()
    assert by_fold[2].startswith("| f1 | a / GridAttentionUNet | 0.700 ± 0.283 | 0.500 |")  # spleen: one value
    assert by_fold[3].startswith("| f1 | b / GridAttentionUNet | 0.800 | 0.600 |")
    assert by_fold[4].startswith("| f2 | a / GridAttentionUNet | 0.700 | 0.700 |") and len(by_fold) == 5
