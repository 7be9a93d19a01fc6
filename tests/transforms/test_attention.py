"""AttentionMapsd: the network's attention maps, with the image's metadata, in any inferer."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.inferers import SlidingWindowInferer
from monai.transforms import Invertd, Orientationd

from monai_ag import GridAttentionUNet
from monai_ag.transforms import AttentionMapsd


def _net() -> GridAttentionUNet:
    torch.manual_seed(0)
    return GridAttentionUNet(
        spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8, 16, 32, 64), strides=(2, 2, 2, 2)
    )


def _image(shape=(32, 32, 16)) -> MetaTensor:
    affine = torch.diag(torch.tensor([-2.0, 2.0, 3.0, 1.0]))
    return MetaTensor(torch.rand(1, *shape), affine=affine)


def test_values_equal_attention_maps():
    net, image = _net(), _image()
    net.train()  # the transform evaluates in eval mode and restores the mode afterwards
    out = AttentionMapsd("image", network=net)({"image": image})
    assert net.training
    net.eval()
    with torch.no_grad():
        expected = torch.cat(net.attention_maps(image.as_tensor()[None]), dim=1)[0]
    maps = out["attention"]
    assert maps.shape == (6, 32, 32, 16)  # 3 gated levels x 2 heads
    torch.testing.assert_close(maps.as_tensor(), expected, rtol=0, atol=0)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    assert torch.equal(maps.affine, image.affine)
    assert out["image"] is image  # the image itself is untouched


def test_sliding_window_covering_the_image_gives_the_same_maps():
    net, image = _net(), _image()
    net.eval()
    direct = AttentionMapsd("image", network=net)({"image": image})["attention"]
    window = AttentionMapsd("image", network=net, inferer=SlidingWindowInferer(roi_size=(32, 32, 16)), output_key="att")
    torch.testing.assert_close(window({"image": image})["att"].as_tensor(), direct.as_tensor(), rtol=1e-5, atol=1e-6)


def test_maps_invert_with_the_image():
    """The maps carry the image's applied operations, so Invertd takes them back to the input grid."""
    net = _net().eval()
    orient = Orientationd("image", axcodes="RAS")
    data = orient({"image": _image()})  # flips the first axis (affine -2 -> +2)
    data = AttentionMapsd("image", network=net)(data)
    with torch.no_grad():
        expected = torch.cat(net.attention_maps(data["image"].as_tensor()[None]), dim=1)[0]
    back = Invertd("attention", transform=orient, orig_keys="image")(data)["attention"]
    torch.testing.assert_close(back.as_tensor(), torch.flip(expected, dims=(1,)))
    torch.testing.assert_close(back.affine, _image().affine)


def test_rejects_networks_without_maps_and_several_keys():
    with pytest.raises(TypeError, match="network Conv3d has no attention_maps"):
        AttentionMapsd("image", network=torch.nn.Conv3d(1, 1, 1))
    with pytest.raises(ValueError, match=r"AttentionMapsd takes one image key, got \('image', 'label'\)"):
        AttentionMapsd(["image", "label"], network=_net())
