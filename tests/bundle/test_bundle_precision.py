"""The bundle's ``precision`` setting: parsed from the command line, validated, and a bf16 run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bundle_testing import TINY, recorded_model  # noqa: E402 (tests/bundle is on the path)
from bundle_testing import workflow as _workflow

from monai_ag.networks.nets import GridAttentionUNet
from monai_ag.utils.precision import PrecisionNetwork


def _untrained_weights(root: Path) -> None:
    recorded_model(root)


@pytest.mark.parametrize(
    "files,engine",
    [
        (["train.json"], "train#trainer"),
        (["train.json"], "validate#evaluator"),
        (["inference.json"], "evaluator"),
        (["inference.json", "evaluate.json"], "evaluator"),
    ],
)
def test_precision_reaches_every_engine(bundle_copy, tiny_phantom, files, engine):
    _untrained_weights(bundle_copy)
    wf = _workflow(
        bundle_copy,
        files,
        "train" if "train.json" in files else "infer",
        dataset_dir=str(tiny_phantom),
        precision="bf16",
        device="cpu",
        **TINY,
    )
    model = wf.parser.get_parsed_content(f"{engine}#network")
    assert isinstance(model, PrecisionNetwork) and model.precision == "bf16"
    assert model.network is wf.parser.get_parsed_content("network")


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
    )


def _overrides(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        out += [f"--{k}", json.dumps(v) if not isinstance(v, str) else v]
    return out


@pytest.mark.parametrize("config", ["configs/train.json", "['configs/inference.json','configs/evaluate.json']"])
def test_unknown_precision_on_the_command_line_is_a_clear_error(bundle_copy, tiny_phantom, config):
    _untrained_weights(bundle_copy)
    res = _cli(
        ["--config_file", config, "--dataset_dir", str(tiny_phantom), "--precision", "fp16", *_overrides(TINY)],
        bundle_copy,
    )
    assert res.returncode != 0
    assert "precision must be one of 'auto', 'bf16', 'fp32', got 'fp16'" in res.stderr, res.stderr[-3000:]


@pytest.mark.slow
def test_bf16_training_run_loads_strictly_in_fp32(bundle_copy, tiny_phantom):
    res = _cli(
        [
            "--config_file",
            "configs/train.json",
            "--dataset_dir",
            str(tiny_phantom),
            "--precision",
            "bf16",
            *_overrides(TINY),
        ],
        bundle_copy,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    state = torch.load(bundle_copy / "models" / "model.pt", map_location="cpu")
    net = GridAttentionUNet(3, 1, 5, channels=TINY["recipe_defaults#network#channels"])
    net.load_state_dict(state, strict=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    infer = _cli(
        ["--config_file", "configs/inference.json", "--dataset_dir", str(tiny_phantom), "--precision", "fp32"],
        bundle_copy,
    )
    assert infer.returncode == 0, infer.stderr[-3000:]
    assert list((bundle_copy / "outputs").rglob("*seg*"))
