"""What the bundle (``bundle/configs/*.json``) needs from the package beyond networks, data and metrics: the
recipe a trained model carries (:py:mod:`monai_ag.bundle.recipe`), the export that keeps it
(:py:mod:`monai_ag.bundle.export`), and the checks, run records and scoring around a bundle run
(:py:mod:`monai_ag.bundle.workflow`; ``require_file`` and ``refuse_overwrite`` re-exported for the configs).
It sits above :py:mod:`monai_ag.data` and :py:mod:`monai_ag.metrics`, which never import it."""

from __future__ import annotations

from monai_ag.utils.config import require_file
from monai_ag.utils.fileio import refuse_overwrite

from .recipe import (
    FIXED_SETTINGS,
    RECIPE_FORMAT,
    RECIPE_VERSION,
    ModelRecipe,
    RecipeError,
    build_network,
    for_inference,
    for_training,
    network_config,
    read_recipe,
    recipe_path,
    sha256_file,
)
from .workflow import check_bundle, evaluate_predictions, save_run_config

__all__ = [
    "FIXED_SETTINGS",
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "ModelRecipe",
    "RecipeError",
    "build_network",
    "check_bundle",
    "evaluate_predictions",
    "for_inference",
    "for_training",
    "network_config",
    "read_recipe",
    "recipe_path",
    "refuse_overwrite",
    "require_file",
    "save_run_config",
    "sha256_file",
]
