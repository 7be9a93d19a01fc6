from __future__ import annotations

import json

import pytest
import torch

from monai_ag.bench import BASELINE, TARGETS, main
from monai_ag.networks.nets import GridAttentionUNet

NETWORKS = (
    "attention_unet",
    "attention_unet_plain",
    "no_gates",
    "no_gates_plain",
    BASELINE,
    "monai_unet",
    "attention_unet_bf16",
    "attention_unet_fp32_cl",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One ``--quick`` run of the command (tiny sizes, one round, one thread): its JSON and table."""
    path = tmp_path_factory.mktemp("bench") / "results.json"
    threads = torch.get_num_threads()
    try:
        results = main(["--quick", "--output", str(path)])
    finally:
        torch.set_num_threads(threads)
    return path, results


def test_quick_run_writes_every_measurement(quick_run):
    path, results = quick_run
    data = json.loads(path.read_text())
    assert set(data["networks"]) == set(NETWORKS)
    assert data["reference"]["reference_gflops"] > 0
    assert data["reference"]["best_layout"] in ("default", "channels_last_3d", "bf16_channels_last_3d")
    assert not data["sliding_window"]["skipped"]
    for name, r in data["networks"].items():
        for key in (
            "params",
            "forward_gflop",
            "forward_s",
            "forward_gflops",
            "forward_peak_mib",
            "train_s",
            "train_peak_mib",
            "sliding_window_s",
        ):
            assert r[key] is not None and r[key] > 0, (name, key)
        assert all(v is not None and v > 0 for v in r["ratios_vs_baseline"].values()), name
    assert all(v == pytest.approx(1.0) for v in data["networks"][BASELINE]["ratios_vs_baseline"].values())
    # the paper network and its gate-less backbone, as the issue defines them (5 classes)
    assert data["networks"]["attention_unet"]["params"] == _n_params(GridAttentionUNet(3, 1, 5))
    assert data["networks"]["no_gates"]["params"] == _n_params(GridAttentionUNet(3, 1, 5, gated_levels=()))
    assert set(data["targets"]) == set(TARGETS)
    assert all(t["value"] is not None and isinstance(t["met"], bool) for t in data["targets"].values())
    for check in data["fast_path_check"].values():
        assert check["max_abs_diff"] < 1e-4 and check["argmax_mismatches"] == 0
    # both precisions side by side, the CPU's capability recorded, the reference the best of both
    from monai_ag.bench import PRECISION_TARGETS
    from monai_ag.utils.precision import cpu_has_bf16

    device = data["device"]
    assert device["bf16_units"] == cpu_has_bf16() and isinstance(device["cpu_flags"], list)
    assert device["auto_precision"] in ("bf16", "fp32") and "cpu_capabilities" in device
    ref = data["reference"]
    assert set(ref["gflops"]) == {"default", "channels_last_3d", "bf16_channels_last_3d"}
    assert ref["reference_gflops"] == pytest.approx(max(ref["gflops"].values()))
    assert set(data["precision_targets"]) == set(PRECISION_TARGETS)
    assert all(t["value"] > 0 for t in data["precision_targets"].values())
    bf16 = data["bf16_check"]
    assert bf16["max_abs_diff"] < 0.05 * bf16["max_abs_logit"] and bf16["argmax_agreement"] > 0.98


def test_quick_run_prints_the_table(quick_run, capsys):
    from monai_ag.bench import format_table

    _, results = quick_run
    table = format_table(results)
    for r in results["networks"].values():
        assert r["label"] in table
    assert "| target |" in table and "GFLOP/s" in table


def test_output_is_not_overwritten(quick_run):
    path, _ = quick_run
    before = path.read_text()
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["--quick", "--output", str(path)])
    assert path.read_text() == before


def _n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
