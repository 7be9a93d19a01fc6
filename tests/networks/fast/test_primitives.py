"""Unit tests of the fast path's own primitives: resizing, the buffer pool, folded convolutions and their fallback."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_ag.networks.fast import adapters, primitives
from monai_ag.networks.fast.primitives import BufferPool, FoldedConv, linear_resize_matrix, resize_linear


@pytest.mark.parametrize(
    "shape,size",
    [
        ((1, 5, 12, 12, 12), (96, 96, 96)),
        ((2, 3, 7, 5, 3), (20, 11, 9)),  # uneven factors
        ((1, 2, 9, 8, 7), (4, 8, 3)),  # shrinking and an unchanged axis
        ((1, 1, 1, 1, 1), (6, 5, 4)),
        ((3, 4, 9, 6), (31, 17)),  # 2D
    ],
)
def test_resize_linear_equals_interpolate(shape, size):
    x = torch.randn(*shape)
    mode = "trilinear" if len(size) == 3 else "bilinear"
    expected = F.interpolate(x, size=size, mode=mode, align_corners=False)
    y = resize_linear(x, size)
    assert y.shape == expected.shape and y.is_contiguous()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


def test_resize_linear_sums_several_inputs_into_out():
    xs = [torch.randn(2, 3, 6, 6, 5), torch.randn(2, 3, 12, 12, 10), torch.randn(2, 3, 24, 24, 20)]
    size = (48, 48, 40)
    expected = sum(F.interpolate(x, size=size, mode="trilinear", align_corners=False) for x in xs)
    torch.testing.assert_close(resize_linear(xs, size), expected, atol=1e-5, rtol=0)
    base = torch.randn(2, 3, *size)
    out = base.clone()
    assert resize_linear(xs, size, out=out) is out
    torch.testing.assert_close(out, base + expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="out must be a contiguous tensor of shape"):
        resize_linear(xs, size, out=torch.zeros(2, 3, 48, 48, 39))
    with pytest.raises(ValueError, match="equal batch and channels and 3 output sizes"):
        resize_linear([xs[0], torch.randn(2, 4, 6, 6, 5)], size)


def test_linear_resize_matrix_rows_are_interpolation_weights():
    m = linear_resize_matrix(5, 13, dtype=torch.float64)
    assert m.shape == (13, 5)
    torch.testing.assert_close(m.sum(1), torch.ones(13, dtype=torch.float64))
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(x @ m.t(), F.interpolate(x, size=13, mode="linear", align_corners=False))


def test_upsample_linear_into_writes_the_interpolation():
    for src, size, mode in (((1, 4, 6, 5, 3), (12, 9, 7), "trilinear"), ((2, 3, 7, 5), (14, 11), "bilinear")):
        x = torch.randn(*src)
        out = torch.full((*src[:2], *size), float("nan"))
        assert adapters.upsample_linear_into(x, out) is out
        torch.testing.assert_close(out, F.interpolate(x, size=size, mode=mode, align_corners=False), atol=1e-6, rtol=0)


def test_buffer_pool_reuses_buffers_by_shape():
    pool = BufferPool(min_numel=100)
    like = torch.zeros(1)
    a = pool.take((1, 4, 5, 5, 5), like=like)
    assert a.shape == (1, 4, 5, 5, 5) and a.dtype == like.dtype
    assert a.is_contiguous(memory_format=torch.channels_last_3d)
    assert pool.nbytes == a.numel() * 4
    b = pool.take((1, 4, 5, 5, 5), like=like)  # a held buffer is not handed out twice
    assert b.data_ptr() != a.data_ptr()
    pool.give(a)
    pool.give(a)  # giving twice does not duplicate it
    assert pool.take((1, 4, 5, 5, 5), like=like) is a
    assert pool.take((1, 4, 5, 5, 5), like=like) is not a
    pool.give(b)
    assert pool.take((1, 4, 5, 5, 4), like=like) is not b  # another shape: a new buffer
    assert pool.take((1, 4, 5, 5, 5), like=like.double()) is not b  # another dtype: a new buffer
    pool.give(torch.empty(1, 4, 5, 5, 5), None)  # foreign tensors and None are ignored
    pool.clear()
    assert pool.nbytes == 0
    pool.give(a)  # no longer owned after clear
    assert pool.take((1, 4, 5, 5, 5), like=like) is not a


def test_buffer_pool_does_not_keep_small_tensors():
    pool = BufferPool(min_numel=1000)
    assert pool.wants((1, 10, 10, 10)) and not pool.wants((1, 9, 10, 10))
    small = pool.take((1, 2, 3, 3), like=torch.zeros(1))
    assert small.is_contiguous(memory_format=torch.channels_last)
    pool.give(small)
    assert pool.nbytes == 0 and pool.take((1, 2, 3, 3), like=torch.zeros(1)) is not small


def test_channels_last_restrides_single_channel_tensors():
    x = torch.randn(1, 1, 4, 3, 2)
    y = primitives.channels_last(x)
    assert torch.equal(x, y) and y.stride() == (24, 1, 6, 2, 1)
    assert primitives.channels_last(y) is y


@pytest.mark.parametrize("act", ["none", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("onednn", [True, False])
def test_conv_act_equals_torch_conv_and_activation(act, onednn, monkeypatch):
    if not onednn:
        monkeypatch.setattr(primitives, "mkldnn_available", lambda: False)  # the fallback path
    elif not adapters.mkldnn_available():
        pytest.skip("oneDNN's fused convolutions are not available in this torch build")
    x = torch.randn(2, 3, 7, 6, 5)
    w, b = torch.randn(4, 3, 3, 3, 3), torch.randn(4)
    expected = F.conv3d(x, w, b, stride=(2, 1, 1), padding=1)
    expected = {"none": expected, "relu": expected.relu(), "sigmoid": expected.sigmoid(), "tanh": expected.tanh()}[act]
    y = primitives.conv_act(x, w, b, stride=(2, 1, 1), padding=(1, 1, 1), act=act)
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=1e-5)
    if act in ("none", "relu"):
        acc = torch.randn_like(expected).contiguous(memory_format=torch.channels_last_3d)
        ref = F.conv3d(x, w, b, stride=(2, 1, 1), padding=1) + acc
        ref = ref.relu() if act == "relu" else ref
        assert primitives.conv_add_act_(acc, x, w, b, (2, 1, 1), (1, 1, 1), act=act) is acc
        torch.testing.assert_close(acc, ref, atol=1e-4, rtol=1e-5)


def test_conv_add_act_rejects_unfusable_activations():
    x = torch.randn(1, 2, 4, 4, 4)
    with pytest.raises(ValueError, match="fuses act 'none' or 'relu', got 'sigmoid'"):
        primitives.conv_add_act_(
            torch.zeros(1, 2, 4, 4, 4), x, torch.randn(2, 2, 1, 1, 1), None, (1,) * 3, (0,) * 3, act="sigmoid"
        )


def _trained_bn(n: int) -> nn.BatchNorm3d:
    bn = nn.BatchNorm3d(n).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    return bn


@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv3d(3, 4, 3, padding=1),
        nn.Conv3d(3, 4, 3, padding=1, bias=False),
        nn.Conv3d(4, 4, 1, groups=2),
        nn.Conv3d(3, 4, 3, padding=2, dilation=2),  # the module's own convolution with the folded weights
        nn.Conv3d(3, 4, 3, padding=1, padding_mode="replicate"),
    ],
)
def test_folded_conv_equals_conv_norm_act(conv, onednn, monkeypatch):
    if not onednn:
        monkeypatch.setattr(primitives, "mkldnn_available", lambda: False)
    conv.eval()
    post = [_trained_bn(4), nn.Dropout(0.5).eval(), nn.ReLU()]
    x = torch.randn(2, conv.in_channels, 9, 8, 7)
    with torch.no_grad():
        expected = nn.Sequential(conv, *post)(x)
        folded = FoldedConv(conv, post)
        assert folded.act == "relu" and folded.post == []  # the norm folded, the ReLU fused, the dropout dropped
        torch.testing.assert_close(folded(x), expected, atol=1e-4, rtol=1e-5)
        pool = BufferPool(min_numel=1)
        torch.testing.assert_close(folded(x, pool), expected, atol=1e-4, rtol=1e-5)


def test_fuse_norm_matches_the_norm_in_float64():
    conv, bn = nn.Conv3d(3, 4, 3, padding=1).double().eval(), _trained_bn(4).double()
    w, b = primitives.fuse_norm(conv.weight, conv.bias, bn)
    assert w.dtype == b.dtype == torch.float64 and not w.requires_grad
    x = torch.randn(1, 3, 5, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(F.conv3d(x, w, b, padding=1), bn(conv(x)), atol=1e-12, rtol=0)


def test_norms_that_do_not_fold_are_applied_as_modules():
    conv = nn.Conv3d(2, 4, 3, padding=1).eval()
    for post in ([nn.InstanceNorm3d(4), nn.ReLU()], [_trained_bn(4).train(), nn.ReLU()], [nn.PReLU()]):
        norm, act, rest = primitives.fold_post(post)
        assert norm is None and rest  # the leading module stays a module
        x = torch.randn(2, 2, 6, 5, 4)
        with torch.no_grad():
            torch.testing.assert_close(FoldedConv(conv, post)(x), nn.Sequential(conv, *post)(x), atol=1e-4, rtol=1e-5)


def test_folded_conv_errors():
    with pytest.raises(TypeError, match="FoldedConv needs a torch.nn.ConvNd, got Linear"):
        FoldedConv(nn.Linear(2, 2))
    conv = nn.Conv3d(2, 2, 1)
    with pytest.raises(ValueError, match="with folded weights, post must not start with a norm to fold"):
        FoldedConv(conv, [_trained_bn(2)], weight=conv.weight)
    with pytest.raises(ValueError, match="cannot be fused"):
        FoldedConv(conv, [nn.PReLU()]).add_into(torch.zeros(1, 2, 2, 2, 2), torch.zeros(1, 2, 2, 2, 2))
    with pytest.raises(TypeError, match="cannot fold Linear: expected a convolution block"):
        primitives.fold_convolution(nn.Linear(2, 2))


def test_state_key_follows_in_place_changes():
    net = nn.Sequential(nn.Conv3d(1, 2, 1), _trained_bn(2))
    key = adapters.state_key(net)
    assert adapters.state_key(net) == key
    with torch.no_grad():
        net[0].weight.mul_(2)
    assert adapters.state_key(net) != key
    key = adapters.state_key(net)
    net[1].running_mean.add_(1)
    assert adapters.state_key(net) != key
