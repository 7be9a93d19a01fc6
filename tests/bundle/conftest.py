from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monai_ag.data import generate_phantom_dataset

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory) -> Path:
    """A 5-case phantom dataset at 8 mm (2 training, 1 validation, 2 test)."""
    root = tmp_path_factory.mktemp("phantom")
    generate_phantom_dataset(
        root, num_cases=5, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0), num_validation=1, num_test=2
    )
    return root


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    """The bundle's configs in a scratch bundle_root, so runs never write into the repository."""
    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", root / "configs", ignore=shutil.ignore_patterns("monailabel_train.json"))
    return root
