from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("matplotlib")
from monai_ag.visualize import render_case_figure  # noqa: E402


def _write(path, array, affine=np.diag([2.0, 2.0, 3.0, 1.0])):
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def test_render_case_figure(tmp_path):
    ct = np.full((24, 20, 10), -1000, np.int16)
    ct[4:20, 4:16] = 40
    label = np.zeros((24, 20, 10), np.uint8)
    label[6:10, 6:10, 3:7] = 1
    label[12:14, 8:12, 6:8] = 4  # the pancreas is on slices 6-7: the default slice
    att = np.random.default_rng(0).random((24, 20, 10, 6)).astype(np.float32)
    out = render_case_figure(
        _write(tmp_path / "ct.nii.gz", ct),
        tmp_path / "fig" / "case.png",
        label=_write(tmp_path / "label.nii.gz", label),
        prediction=_write(tmp_path / "seg.nii.gz", label),
        attention=_write(tmp_path / "att.nii.gz", att),
        title="test",
    )
    png = (tmp_path / "fig" / "case.png").read_bytes()
    assert out.endswith("case.png") and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_mismatched_grids_are_refused(tmp_path):
    ct = _write(tmp_path / "ct.nii.gz", np.zeros((8, 8, 4), np.int16))
    seg = _write(tmp_path / "seg.nii.gz", np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ValueError, match=r"prediction has shape \(8, 8, 5\)"):
        render_case_figure(ct, tmp_path / "x.png", prediction=seg)
