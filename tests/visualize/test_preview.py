from __future__ import annotations

import numpy as np
import pytest
from needs import needs_module

needs_module("matplotlib", "PLOT", "matplotlib is not installed (pip install -e '.[test]')")

from PIL import Image  # noqa: E402 (matplotlib needs pillow)

from monai_ag.data import generate_phantom_case  # noqa: E402
from monai_ag.visualize.preview import render_preview  # noqa: E402


@pytest.fixture(scope="module")
def case():
    image, label, affine = generate_phantom_case(1, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0))
    return image, label, affine


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_preview_shows_the_label(case, tmp_path):
    image, label, affine = case
    first = render_preview(image, label, tmp_path / "a_preview.png", affine=affine, case="a")
    again = render_preview(image, label, tmp_path / "b_preview.png", affine=affine, case="a")
    assert np.array_equal(_pixels(first), _pixels(again))  # the same inputs draw the same picture
    shifted = np.roll(label, 3, axis=0)
    changed = render_preview(image, shifted, tmp_path / "c_preview.png", affine=affine, case="a")
    assert not np.array_equal(_pixels(first), _pixels(changed))
    without_liver = np.where(label == 1, 0, label)
    third = render_preview(image, without_liver, tmp_path / "d_preview.png", affine=affine, case="a")
    assert not np.array_equal(_pixels(first), _pixels(third))
    assert _pixels(first).shape[:2] == _pixels(third).shape[:2]


def test_preview_refuses_overwrite_and_other_grids(case, tmp_path):
    image, label, affine = case
    render_preview(image, label, tmp_path / "p.png", affine=affine)
    with pytest.raises(FileExistsError):
        render_preview(image, label, tmp_path / "p.png", affine=affine)
    render_preview(image, label, tmp_path / "p.png", affine=affine, overwrite=True)
    with pytest.raises(ValueError, match="not on the image's grid"):
        render_preview(image, label[:-1], tmp_path / "q.png", affine=affine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
