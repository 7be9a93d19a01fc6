from __future__ import annotations

import pytest

from monai_ag.utils import as_bool, require_file


@pytest.mark.parametrize(
    "value,expected", [(True, True), ("true", True), ("False", False), ("0", False), (1, True), ("yes", True)]
)
def test_as_bool(value, expected):
    assert as_bool(value) is expected


def test_as_bool_rejects_other_values():
    with pytest.raises(ValueError, match="resume must be true or false, got 'sure'"):
        as_bool("sure", "resume")


def test_require_file_names_the_file_and_what_it_should_hold(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^trained weights not found: .*model.pt\. Train first\.$"):
        require_file(tmp_path / "model.pt", "trained weights", "Train first.")
    (tmp_path / "model.pt").write_bytes(b"")
    assert require_file(tmp_path / "model.pt", "trained weights") == str(tmp_path / "model.pt")
