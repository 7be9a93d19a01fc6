from __future__ import annotations

import os

import pytest

from monai_ag.utils import fileio
from monai_ag.utils.fileio import atomic_write, atomic_writes, final_name, refuse_overwrite, temporary_path


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "summary.json"
    with atomic_write(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.endswith("summary.json") and tmp.name.startswith(".")
        tmp.write_text("new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("previous")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("disk full")
    assert path.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_nothing_written_is_an_error(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(FileNotFoundError, match=r"atomic_write\(.*model.pt\): nothing was written"):
        with atomic_write(path):
            pass
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_replace_in_order_and_last_marks_completion(tmp_path, monkeypatch):
    paths = [tmp_path / "summary.csv", tmp_path / "summary.json", tmp_path / "metrics.csv"]
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        replaced.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", recording_replace)
    with atomic_writes(paths) as temps:
        for tmp, path in zip(temps, paths):
            assert tmp.name.endswith(path.name)
            tmp.write_text(path.name)
        assert replaced == []  # nothing is replaced before all files are written
    assert replaced == ["summary.csv", "summary.json", "metrics.csv"]
    assert [p.read_text() for p in paths] == [p.name for p in paths]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_atomic_writes_failure_replaces_nothing(tmp_path):
    paths = [tmp_path / "summary.csv", tmp_path / "metrics.csv"]
    for p in paths:
        p.write_text("old")
    with pytest.raises(ValueError, match="bad row"):
        with atomic_writes(paths) as temps:
            temps[0].write_text("new")
            raise ValueError("bad row")
    assert [p.read_text() for p in paths] == ["old", "old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "summary.csv"]


def test_final_name_recognises_only_temporary_names(tmp_path):
    tmp = temporary_path(tmp_path / "phantom_000.nii.gz")
    assert final_name(tmp.name) == "phantom_000.nii.gz"
    assert final_name("phantom_000.nii.gz") == "phantom_000.nii.gz"
    assert final_name(".partial-x-phantom_000.nii.gz") == ".partial-x-phantom_000.nii.gz"


def test_refuse_overwrite(tmp_path):
    path = tmp_path / "out.json"
    assert refuse_overwrite(path) == str(path)  # absent: fine
    path.write_text("{}")
    with pytest.raises(FileExistsError, match=r"out.json already exists from an earlier run; pass --overwrite to"):
        refuse_overwrite(path, False, option="--overwrite")
    assert refuse_overwrite(path, "true") == str(path)
    with pytest.raises(ValueError, match="overwrite must be true or false, got 'perhaps'"):
        refuse_overwrite(path, "perhaps")


def test_next_write_removes_what_a_killed_writer_left(tmp_path):
    """A write killed before its rename leaves its temporary file; the next successful write of the same
    file removes it, but keeps a live writer's file and other files' temporaries."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited, so no process has this pid (unless reused at once)
    target = tmp_path / "checkpoint.pt"
    stale = tmp_path / f".partial-{dead_pid}-0123456789ab-checkpoint.pt"
    live = tmp_path / f".partial-{os.getpid()}-0123456789ab-checkpoint.pt"
    other = tmp_path / f".partial-{dead_pid}-0123456789ab-model.pt"
    for f in (stale, live, other):
        f.write_text("half written")
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert not stale.exists() and live.exists() and other.exists()
    assert fileio.remove_stale_temporaries(tmp_path / "model.pt") == [other] and not other.exists()
