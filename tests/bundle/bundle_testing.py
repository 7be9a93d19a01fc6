"""What the bundle tests share: the tiny CPU profile, the bundle workflow and the user-facing error check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow

__all__ = ["BUNDLE", "TINY", "raises", "workflow"]

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"

# a CPU-second profile: 8 mm phantom volumes, a narrow network, two epochs
TINY = {
    "spacing": [8.0, 8.0, 8.0],
    "patch_size": [32, 32, 24],
    "network_def#channels": [4, 8, 16, 32, 64],
    "max_epochs": 2,
    "val_interval": 1,
    "batch_size": 2,
    "num_samples": 1,
}


def raises(exc_type: type[BaseException], match: str, fn, *args, **kwargs) -> BaseException:
    """
    Call ``fn``; it must fail with the error a user reads: an ``exc_type`` (exactly) whose message
    matches ``match``. In a bundle run MONAI's config parser wraps it in ``RuntimeError("Failed to
    evaluate ...")`` (``from`` it, printed after it): only such wrappers may sit around it.
    """
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    err: BaseException = info.value
    while isinstance(err, RuntimeError) and str(err).startswith("Failed to evaluate") and err.__cause__ is not None:
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
