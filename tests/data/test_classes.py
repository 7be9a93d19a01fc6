"""The bundle's classes are defined once (monai_ag.data.classes); the configs spell them out and must agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_ag.data.classes import CLASS_NAMES, NUM_CLASSES, ORGAN_NAMES, class_index

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"


def _expected() -> dict[str, str]:
    return {str(k): v for k, v in CLASS_NAMES.items()}


@pytest.mark.parametrize("name", ["train.json", "inference.json"])
def test_configs_list_the_package_classes(name):
    defaults = json.loads((CONFIGS / name).read_text())["recipe_defaults"]  # a trained model records its own
    assert defaults["class_names"] == _expected(), f"{name}: class_names differ from monai_ag.data.classes.CLASS_NAMES"
    assert len(defaults["class_names"]) == NUM_CLASSES


def test_metadata_channel_def_lists_the_package_classes():
    pred = json.loads((CONFIGS / "metadata.json").read_text())["network_data_format"]["outputs"]["pred"]
    assert pred["channel_def"] == _expected()
    assert pred["num_channels"] == NUM_CLASSES


def test_organs_are_the_classes_but_background():
    assert ORGAN_NAMES == {k: v for k, v in CLASS_NAMES.items() if k != 0}


def test_class_index():
    assert class_index(" Pancreas ") == 4
    assert [class_index(n) for n in CLASS_NAMES.values()] == list(CLASS_NAMES)
    with pytest.raises(
        KeyError, match=r"unknown class 'gallbladder'; the bundle's classes are \['background', 'liver'"
    ):
        class_index("gallbladder")
