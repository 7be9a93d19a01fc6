from __future__ import annotations

import pytest

from monai_ag.utils import as_bool, check_bundle, refuse_overwrite, require_file


@pytest.mark.parametrize("value,expected", [(True, True), ("true", True), ("False", False), ("0", False), (1, True), ("yes", True)])
def test_as_bool(value, expected):
    assert as_bool(value) is expected


def test_as_bool_rejects_other_values():
    with pytest.raises(ValueError, match="resume must be true or false, got 'sure'"):
        as_bool("sure", "resume")


def test_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no configs/ folder"):
        check_bundle(tmp_path)
    (tmp_path / "configs").mkdir()
    assert check_bundle(tmp_path) == str(tmp_path.resolve())
    with pytest.raises(FileNotFoundError, match=r"trained weights not found: .*model.pt\. Train first"):
        require_file(tmp_path / "model.pt", "trained weights", "Train first.")
    (tmp_path / "metrics.csv").write_text("x")
    with pytest.raises(FileExistsError, match="metrics.csv already exists"):
        refuse_overwrite(tmp_path / "metrics.csv", "false")
    assert refuse_overwrite(tmp_path / "metrics.csv", "true").endswith("metrics.csv")
