from __future__ import annotations

import pytest

from monai_ag.bench.networks import BASELINE
from monai_ag.bench.targets import (
    PRECISION_TARGETS,
    RATIO_KEYS,
    TARGETS,
    precision_targets,
    ratios_vs_baseline,
    targets,
)


def _results() -> dict:
    return {
        "attention_unet": {"forward_s": 1.05, "forward_fraction_of_reference": 0.6, "sliding_window_s": 4.0},
        "no_gates": {"forward_s": 1.0},
        "attention_unet_plain": {"forward_s": 3.0, "train_s": 2.6, "train_peak_mib": 130.0},
        "no_gates_plain": {"train_s": 2.0, "train_peak_mib": 100.0},
        "attention_unet_bf16": {"forward_s": 0.5, "train_s": 1.3},
        "attention_unet_fp32_cl": {"train_s": 2.0},
        BASELINE: {"forward_s": 2.0, "train_s": 2.0, "sliding_window_s": 5.0, "forward_peak_mib": 0.0},
    }


def test_targets_values_and_verdicts():
    t = targets(_results())
    assert set(t) == set(TARGETS)
    assert t["gate_forward_overhead"]["value"] == pytest.approx(0.05) and t["gate_forward_overhead"]["met"] is True
    assert t["forward_fraction_of_reference"]["met"] is True and t["forward_fraction_of_reference"]["direction"] == ">="
    assert t["sliding_window_ratio_vs_monai"]["value"] == pytest.approx(0.8)
    assert (
        t["train_time_ratio_vs_no_gates"]["value"] == pytest.approx(1.3)
        and t["train_time_ratio_vs_no_gates"]["met"] is False
    )
    assert t["train_memory_ratio_vs_no_gates"]["met"] is False


def test_unmeasured_target_is_neither_met_nor_missed():
    results = _results()
    del results["no_gates"]
    t = targets(results)
    assert t["gate_forward_overhead"] == {**t["gate_forward_overhead"], "value": None, "met": None}


@pytest.mark.parametrize("kind, met", [("amx", False), ("avx512_bf16", True), ("none", None)])
def test_precision_targets_use_the_cpu_kind_thresholds(kind, met):
    t = precision_targets(_results(), kind)
    assert set(t) == set(PRECISION_TARGETS) and all(v["cpu_kind"] == kind for v in t.values())
    assert t["bf16_train_speedup"]["value"] == pytest.approx(2.0)
    assert t["bf16_forward_speedup"]["value"] == pytest.approx(2.1) and t["bf16_forward_speedup"]["met"] is met


def test_ratios_vs_baseline_skip_missing_and_zero_figures():
    ratios = ratios_vs_baseline(_results())
    assert set(ratios[BASELINE]) == set(RATIO_KEYS)
    assert ratios["attention_unet"]["forward_s"] == pytest.approx(0.525)
    assert ratios["attention_unet"]["train_s"] is None  # not measured
    assert ratios[BASELINE]["forward_peak_mib"] is None  # zero
    assert ratios[BASELINE]["forward_s"] == pytest.approx(1.0)
