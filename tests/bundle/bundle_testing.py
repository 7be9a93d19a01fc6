"""What the bundle tests share: the tiny CPU profile, the bundle workflow and the user-facing error check."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow

__all__ = ["BUNDLE", "RANKS", "TINY", "cli_overrides", "raises", "recorded_model", "torchrun", "workflow"]

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"
RANKS = 2  # the processes torchrun starts in the distributed tests

# a CPU-second profile: 8 mm phantom volumes, a narrow network, two epochs (training overrides: a model trained
# with them records them, and inference needs none)
TINY = {
    "spacing": [8.0, 8.0, 8.0],
    "patch_size": [32, 32, 24],
    "recipe_defaults#network#channels": [4, 8, 16, 32, 64],
    "max_epochs": 2,
    "val_interval": 1,
    "batch_size": 2,
    "num_samples": 1,
}


def raises(exc_type: type[BaseException], match: str, fn, *args, **kwargs) -> BaseException:
    """
    Call ``fn``; it must fail with the error a user reads: an ``exc_type`` (exactly) whose message
    matches ``match``. In a bundle run MONAI's config parser wraps it in ``RuntimeError("Failed to
    evaluate ...")`` or ``RuntimeError("Failed to instantiate component ...")`` (``from`` it, printed after it):
    only such wrappers may sit around it.
    """
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    err: BaseException = info.value
    wrappers = ("Failed to evaluate", "Failed to instantiate")
    while isinstance(err, RuntimeError) and str(err).startswith(wrappers) and err.__cause__ is not None:
        err = err.__cause__
    assert type(err) is exc_type, f"expected {exc_type.__name__}, got {type(err).__name__}: {err}"
    assert re.search(match, str(err)), f"{match!r} not found in the message: {err}"
    return err


def workflow(root: Path, files: list[str], workflow_type: str, **overrides) -> ConfigWorkflow:
    """An initialized ``ConfigWorkflow`` of the bundle at ``root`` merging ``files`` (in ``configs/``)."""
    wf = ConfigWorkflow(
        config_file=[str(root / "configs" / f) for f in files],
        meta_file=str(root / "configs" / "metadata.json"),
        logging_file=str(root / "configs" / "logging.conf"),
        workflow_type=workflow_type,
        bundle_root=str(root),
        **overrides,
    )
    wf.initialize()
    return wf


def recorded_model(root: Path, seed: int = 0, **overrides) -> Path:
    """
    An untrained ``models/model.pt`` of the bundle at ``root`` with its recipe record, as a training with
    ``TINY`` (and ``overrides``) writes them: for checks that need a model but not a trained one.
    """
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser(ConfigParser.load_config_file(str(root / "configs" / "train.json")))
    parser.update({"bundle_root": str(root), **TINY, **overrides})
    recipe = parser.get_parsed_content("recipe")
    torch.manual_seed(seed)
    model = root / "models" / "model.pt"
    model.parent.mkdir(parents=True, exist_ok=True)
    torch.save(recipe.network_def(training=True).state_dict(), model)
    recipe.write(model)
    return model


def cli_overrides(overrides: dict) -> list[str]:
    """Config overrides as ``monai.bundle run`` command-line arguments (strings as they are, the rest as JSON)."""
    out = []
    for k, v in overrides.items():
        out += [f"--{k}", v if isinstance(v, str) else json.dumps(v)]
    return out


def torchrun(
    root: Path, configs: list[str], *args: str, timeout: float = 600, **overrides
) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m monai.bundle run`` in ``root`` (merging ``configs`` of its
    ``configs/``), one torch thread per rank, this checkout and ``tests/bundle`` importable."""
    env = dict(os.environ)
    here = Path(__file__).resolve().parent
    env["PYTHONPATH"] = os.pathsep.join([str(BUNDLE.parent), str(here), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a rank that aborts prints where each of its threads was
    files = str([f"configs/{c}" for c in configs])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={RANKS}"]
    cmd += ["-m", "monai.bundle", "run", "--config_file", files, "--meta_file", "configs/metadata.json"]
    cmd += ["--logging_file", "configs/logging.conf", *args, *cli_overrides(overrides)]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
