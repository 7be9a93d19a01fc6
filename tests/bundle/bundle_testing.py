"""What the bundle tests share: the tiny CPU profile, the bundle workflow and the user-facing error check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from monai.bundle import ConfigWorkflow

__all__ = ["BUNDLE", "TINY", "raises", "recorded_model", "workflow"]

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"

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
