"""Organ-aware clean-up: each organ keeps its anatomical number of components; paired organs one per side."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_ag.transforms import KeepOrganComponentsd, keep_organ_components, restore_background

NAMES = {"0": "background", "1": "liver", "2": "spleen", "3": "kidney", "4": "pancreas"}


def _abdomen() -> np.ndarray:
    """A 40 x 30 x 20 label map (axis 0 left-right): liver and spleen on either side, a kidney on each side of
    the midline (x = 20), pancreas, and a stray liver island; each structure well apart from the others."""
    lab = np.zeros((40, 30, 20), np.uint8)
    lab[2:14, 2:16, 2:16] = 1  # liver
    lab[30:38, 2:10, 2:10] = 2  # spleen
    lab[6:12, 20:27, 5:12] = 3  # one kidney (x < 20)
    lab[27:34, 20:28, 5:13] = 3  # the other (x >= 20), a little larger
    lab[17:23, 12:16, 14:17] = 4  # pancreas
    lab[24:26, 14:16, 2:4] = 1  # a stray liver island
    return lab


def _run(lab: np.ndarray, **kw) -> np.ndarray:
    return np.asarray(keep_organ_components(torch.as_tensor(lab[None]), NAMES, np.eye(4), **kw))[0]


def test_both_kidneys_kept_and_a_stray_island_dropped():
    lab = _abdomen()
    out = _run(lab)
    expected = lab.copy()
    expected[24:26, 14:16, 2:4] = 0  # only the island goes
    np.testing.assert_array_equal(out, expected)
    # MONAI's one-component-per-class would delete the smaller kidney: the reason for this transform
    from monai.transforms import KeepLargestConnectedComponent

    monai_out = np.asarray(
        KeepLargestConnectedComponent(applied_labels=[1, 2, 3, 4], independent=True)(torch.tensor(lab[None]))
    )[0]
    assert (monai_out == 3).sum() < (out == 3).sum() == (lab == 3).sum()


def test_a_missing_kidney_does_not_let_an_island_survive():
    lab = _abdomen()
    lab[27:34, 20:28, 5:13] = 0  # no kidney on that side
    lab[28:30, 24:26, 6:8] = 3  # a stray kidney-labelled island there (8 voxels)
    lab[8:10, 28:30, 14:16] = 3  # and one beside the real kidney
    out = _run(lab)
    np.testing.assert_array_equal(out == 3, np.pad(np.ones((6, 7, 7), bool), [(6, 28), (20, 3), (5, 8)]))
    # with no size rule, the island on the empty side would be taken for the missing kidney
    assert (_run(lab, min_fraction=0.0) == 3).sum() == 6 * 7 * 7 + 8


def test_midline_from_the_body_and_axis_from_the_affine():
    lab = _abdomen()
    # both kidneys on the left of the grid's middle, but on either side of the body's midline (x = 10)
    lab[lab == 3] = 0
    lab[3:6, 20:25, 5:10] = 3
    lab[14:18, 20:25, 5:10] = 3
    body = np.zeros(lab.shape, bool)
    body[0:21] = True
    assert (_run(lab, body=body) == 3).sum() == (3 + 4) * 5 * 5
    assert (_run(lab) == 3).sum() == 4 * 5 * 5  # around the grid's middle (x = 19.5) only the larger survives
    # the same volume stored with the left-right axis second: found from the affine
    swapped = np.transpose(lab, (1, 0, 2))
    affine = np.array([[0, 2.0, 0, 0], [-2.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]])
    out = keep_organ_components(torch.as_tensor(swapped[None]), NAMES, affine, body=np.transpose(body, (1, 0, 2)))
    assert (np.asarray(out)[0] == 3).sum() == (3 + 4) * 5 * 5


def test_unknown_classes_are_left_alone_and_metadata_kept():
    lab = _abdomen()
    lab[30:33, 20:23, 15:18] = 5  # a lesion class, two pieces
    lab[34:37, 25:28, 15:18] = 5
    names = {**NAMES, "5": "tumour"}
    before = lab.copy()
    image = MetaTensor(torch.ones(1, *lab.shape), affine=torch.eye(4))
    pred = MetaTensor(torch.as_tensor(lab[None]), affine=torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])))
    out = KeepOrganComponentsd("pred", names)({"pred": pred, "image": image})["pred"]
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, pred.affine) and out.dtype == pred.dtype
    assert (np.asarray(out)[0] == 5).sum() == 2 * 27
    assert (np.asarray(out)[0] == 1).sum() == 12 * 14 * 14
    np.testing.assert_array_equal(np.asarray(pred)[0], before)  # the input is not modified


def test_bad_min_fraction():
    with pytest.raises(ValueError, match=r"min_fraction must be in \[0, 1\], got 2"):
        KeepOrganComponentsd("pred", NAMES, min_fraction=2)


def test_restore_background():
    probs = torch.zeros(3, 2, 2)
    probs[1, 0, 0] = 0.25
    out = restore_background(probs)
    assert out[0, 0, 0] == 0.75 and out[0, 1, 1] == 1.0 and torch.equal(out[1:], probs[1:])
