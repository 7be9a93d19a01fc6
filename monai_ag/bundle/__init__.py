"""What the bundle (``bundle/configs/*.json``) needs from the package beyond networks, data and metrics: the
recipe a trained model carries (:py:mod:`monai_ag.bundle.recipe`) and the export that keeps it."""

from __future__ import annotations

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

__all__ = [
    "FIXED_SETTINGS",
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "ModelRecipe",
    "RecipeError",
    "build_network",
    "for_inference",
    "for_training",
    "network_config",
    "read_recipe",
    "recipe_path",
    "sha256_file",
]
