from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Spacingd

from monai_ag.transforms import MetaSafeSpacingd


@pytest.fixture
def nifti(tmp_path):
    path = tmp_path / "ct.nii.gz"
    nib.save(
        nib.Nifti1Image(np.arange(20 * 16 * 12, dtype=np.int16).reshape(20, 16, 12), np.diag([2.0, 2.0, 3.0, 1.0])),
        path,
    )
    return str(path)


def _request(path):
    """What MONAI Label's BasicInferTask hands to the pre-transforms: the request plus a string image_path."""
    data = LoadImaged("image", image_only=False)({"image": path, "image_path": path, "device": "cpu"})
    return EnsureChannelFirstd("image")(data)


def test_plain_spacingd_fails_on_monailabel_request(nifti):
    """The MONAI >= 1.6 behaviour this transform exists for (if MONAI fixes it, this test says so)."""
    with pytest.raises(AttributeError, match="'str' object has no attribute 'update'"):
        Spacingd("image", pixdim=4.0)(_request(nifti))


def test_monailabel_request(nifti):
    out = MetaSafeSpacingd("image", pixdim=4.0)(_request(nifti))
    assert out["image_path"] == nifti and out["device"] == "cpu"  # set aside and put back unchanged
    assert out["image"].shape == (1, 10, 8, 9)
    np.testing.assert_allclose(out["image"].affine[:3, :3].numpy(), np.diag([4.0, 4.0, 4.0]))
    # meta dictionaries are still updated, as Spacingd does for NIfTI
    np.testing.assert_allclose(np.asarray(out["image_meta_dict"]["affine"])[:3, :3], np.diag([4.0, 4.0, 4.0]))


def test_same_as_spacingd_and_invertible(nifti):
    load = [LoadImaged("image", image_only=True), EnsureChannelFirstd("image")]
    ours = Compose(load + [MetaSafeSpacingd("image", pixdim=4.0, mode="bilinear")])
    ref = Compose(load + [Spacingd("image", pixdim=4.0, mode="bilinear")])
    a, b = ours({"image": nifti}), ref({"image": nifti})
    torch.testing.assert_close(a["image"].as_tensor(), b["image"].as_tensor())
    back = ours.inverse(a)
    assert back["image"].shape == (1, 20, 16, 12)
    np.testing.assert_allclose(back["image"].affine.numpy(), np.diag([2.0, 2.0, 3.0, 1.0]))
