from __future__ import annotations

import pytest

from monai_ag.bench.benchmark import reference_record, share_training_figures


def test_reference_record_takes_the_fastest_layout():
    flop = 2 * 64 * 64 * 27 * 16**3
    rec = reference_record({"default": [2.0, 1.0, 3.0], "channels_last_3d": [1.0, 0.5, 0.5]}, 16)
    assert rec["seconds"] == {"default": 2.0, "channels_last_3d": 0.5}
    assert rec["best_layout"] == "channels_last_3d" and rec["gflop"] == pytest.approx(flop / 1e9)
    assert rec["reference_gflops"] == pytest.approx(flop / 0.5 / 1e9) == max(rec["gflops"].values())
    assert "bfloat16" not in rec["definition"]
    assert "bfloat16" in reference_record({"default": [1.0], "bf16_channels_last_3d": [0.5]}, 16)["definition"]


def test_fast_entries_share_their_plain_twin_training_figures():
    results = {
        "attention_unet": {"forward_s": 1.0},
        "attention_unet_plain": {"forward_s": 3.0, "train_s": 2.0, "train_runs_s": [2.0], "train_peak_mib": 9.0},
        "no_gates": {"forward_s": 1.0},
    }
    share_training_figures(results)
    assert results["attention_unet"] == {"forward_s": 1.0, "train_s": 2.0, "train_runs_s": [2.0], "train_peak_mib": 9.0}
    assert results["no_gates"] == {"forward_s": 1.0}  # its twin was not measured
