from __future__ import annotations

from monai_ag.bench.report import format_table


def _results() -> dict:
    ratios = {
        "forward_s": 1.0,
        "train_s": None,
        "forward_peak_mib": 1.0,
        "train_peak_mib": None,
        "sliding_window_s": None,
    }
    return {
        "device": {"name": "a CPU", "type": "cpu", "threads": 2, "amp": False},
        "settings": {"patch_size": [32, 32, 32], "batch_size": 1, "out_channels": 5, "repeats": 1},
        "reference": {
            "definition": "ref",
            "reference_gflops": 100.0,
            "best_layout": "default",
            "gflops": {"default": 100.0},
        },
        "sliding_window": {"skipped": True},
        "networks": {
            "net": {
                "label": "Net",
                "params": 2e6,
                "forward_gflop": 1.0,
                "forward_s": 0.5,
                "forward_gflops": 2.0,
                "forward_fraction_of_reference": 0.02,
                "forward_peak_mib": 10.0,
                "ratios_vs_baseline": ratios,
            },
        },
        "targets": {"t": {"description": "a target", "value": None, "threshold": 1.0, "direction": "<=", "met": None}},
        "precision_targets": {
            "p": {"description": "a speed-up", "value": 2.0, "threshold": 1.5, "cpu_kind": "amx", "met": True},
        },
    }


def test_table_prints_unmeasured_figures_as_dashes():
    lines = format_table(_results()).splitlines()
    assert lines[0].startswith("device: a CPU (cpu, 2 threads, amp False); patch (32, 32, 32)")
    assert not any(line.startswith("sliding window:") for line in lines)  # skipped
    assert "| Net | 2.00 M | 1.0 | 0.500 | 2 (2 %) | - | 10 | - | - | 1.00 / - / - / - |" in lines
    assert "| a target | - | <= 1.0 | - |" in lines
    assert "| a speed-up (amx) | 2.00 | >= 1.5 | yes |" in lines
