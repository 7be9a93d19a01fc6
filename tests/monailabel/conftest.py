"""MONAI Label 0.8.5 itself, driven headless on CPU. These tests run only where ``monailabel`` is
importable: in the separate environment ``scripts/monailabel_env.sh`` creates (``.ci/run`` does
that); in the main environment every test here is skipped with that reason."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory) -> Path:
    """A 4-case phantom dataset at 8 mm (imagesTr/labelsTr: 3 training + 1 validation; 1 test case)."""
    from monai_ag.data import generate_phantom_dataset

    root = tmp_path_factory.mktemp("phantom")
    generate_phantom_dataset(
        root, num_cases=5, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0), num_validation=1, num_test=1
    )
    return root


@pytest.fixture
def helpers(monkeypatch):
    """The helper module, importable by name for the bundle configs' ``_target_``."""
    monkeypatch.syspath_prepend(str(HERE))
    import mlabel_helpers

    return mlabel_helpers
