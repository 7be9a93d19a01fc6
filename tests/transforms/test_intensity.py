from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monai_ag.transforms import RandOrganIntensityShiftd


def _case() -> dict:
    label = torch.zeros(1, 24, 24, 24)
    label[:, 2:10, 2:10, 2:10] = 1  # liver
    label[:, 14:22, 14:22, 14:22] = 3  # kidney
    image = MetaTensor(torch.full((1, 24, 24, 24), 0.5), affine=torch.eye(4) * 2)
    return {"image": image, "label": label}


def test_each_organ_gets_its_own_offset_and_background_none():
    t = RandOrganIntensityShiftd("image", "label", offsets=[0.2, 0.25, 0.4, 0.2], sigma=0.0, prob=1.0)
    t.set_random_state(3)
    d = _case()
    out = t(d)
    liver, spleen, kidney, pancreas = t._draw
    assert abs(liver) <= 0.2 and abs(spleen) <= 0.25 and abs(kidney) <= 0.4 and abs(pancreas) <= 0.2
    assert liver != kidney
    image = out["image"]
    assert torch.allclose(image[:, 2:10, 2:10, 2:10], torch.tensor(0.5 + liver))
    assert torch.allclose(image[:, 14:22, 14:22, 14:22], torch.tensor(0.5 + kidney))
    assert torch.equal(image[:, 11:13], torch.full_like(image[:, 11:13], 0.5))  # between the organs: untouched
    assert torch.equal(out["label"], d["label"])
    assert isinstance(image, MetaTensor) and torch.equal(image.affine, d["image"].affine)


def test_blurred_edges_keep_the_core_offset_and_the_far_background():
    t = RandOrganIntensityShiftd("image", "label", offsets=0.3, num_classes=5, sigma=1.0, prob=1.0)
    t.set_random_state(0)
    out = t(_case())["image"]
    liver, kidney = t._draw[0], t._draw[2]
    assert out[0, 6, 6, 6] == pytest.approx(0.5 + liver, abs=1e-3)  # 4 voxels from the edge
    assert out[0, 18, 18, 18] == pytest.approx(0.5 + kidney, abs=1e-3)
    assert out[0, 12, 0, 0] == pytest.approx(0.5, abs=1e-4)  # far from both (the Gaussian's tail only)
    edge = out[0, 10, 6, 6]  # just outside the liver: part of the offset
    assert 0 < (edge - 0.5) / liver < 1


def test_probability_and_a_content_independent_random_stream():
    d = _case()
    assert torch.equal(RandOrganIntensityShiftd("image", prob=0.0, num_classes=5)(d)["image"], d["image"])
    a = RandOrganIntensityShiftd("image", offsets=0.3, num_classes=5, prob=1.0).set_random_state(7)
    b = RandOrganIntensityShiftd("image", offsets=0.3, num_classes=5, prob=1.0).set_random_state(7)
    a(d)
    empty = dict(d, label=torch.zeros_like(d["label"]))
    b(empty)
    assert a._draw == b._draw  # same draws whatever the patch holds
    assert a.R.uniform() == b.R.uniform()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"offsets": 0.3}, "needs num_classes"),
        ({"offsets": [0.2, -0.1]}, "non-negative"),
        ({"offsets": []}, "non-negative"),
    ],
)
def test_bad_offsets(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandOrganIntensityShiftd("image", **kwargs)
