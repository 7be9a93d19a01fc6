"""The checks and run records around a bundle run (monai_ag.bundle.workflow), and the deprecated old names."""

from __future__ import annotations

import warnings

import pytest

from monai_ag.bundle import check_bundle, refuse_overwrite, require_file


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


def test_save_run_config_rebuilds_the_command_line_config(tmp_path, monkeypatch):
    import json
    import sys

    from monai_ag.bundle import save_run_config

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "train.json").write_text(json.dumps({"max_epochs": 40, "net": {"channels": [8, 16]}, "lr": 0.1}))
    (configs / "extra.json").write_text(json.dumps({"lr": 0.01}))
    (configs / "metadata.json").write_text(json.dumps({"version": "0.1.0"}))
    files = f"['{configs / 'train.json'}','{configs / 'extra.json'}']"
    argv = ["monai/bundle/__main__.py", "run", "--config_file", files, "--max_epochs", "2", "--net#channels", "[4,8]"]
    monkeypatch.setattr(sys, "argv", argv)
    record = json.loads(open(save_run_config(tmp_path / "run")).read())
    assert record["argv"] == argv and record["versions"]["monai"]
    assert record["config_files"] == [str(configs / "train.json"), str(configs / "extra.json")]
    assert record["overrides"] == {"max_epochs": 2, "net#channels": [4, 8]}
    config = record["config"]
    assert config["max_epochs"] == 2 and config["net"]["channels"] == [4, 8] and config["lr"] == 0.01
    assert config["_meta_"] == {"version": "0.1.0"}
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["run.json"]

    monkeypatch.setattr(sys, "argv", ["pytest"])  # not a bundle run: provenance only
    record = json.loads(open(save_run_config(tmp_path / "run2")).read())
    assert "config" not in record and record["argv"] == ["pytest"]


def test_old_names_still_work_with_a_deprecation_warning(tmp_path):
    """A bundle config written before the helpers moved calls monai_ag.utils.bundle.*: it must still run."""
    import monai_ag.utils.bundle as old

    (tmp_path / "configs").mkdir()
    with pytest.warns(
        DeprecationWarning, match=r"monai_ag.utils.bundle.check_bundle moved to monai_ag.bundle.check_bundle"
    ):
        assert old.check_bundle(tmp_path) == check_bundle(tmp_path)
    with pytest.warns(DeprecationWarning, match=r"as_bool moved to monai_ag.utils.as_bool"):
        assert old.as_bool("yes") is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import monai_ag.utils  # noqa: F401  (importing the package warns about nothing)
