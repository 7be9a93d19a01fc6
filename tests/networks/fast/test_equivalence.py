"""The fast inference path (``monai_ag.networks.fast``) computes the plain modules' function."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from monai_ag.networks.fast import FoldedGridAttentionUNet
from monai_ag.networks.nets import GridAttentionUNet


def _randomize_norms(net: torch.nn.Module) -> None:
    """Trained-like norm statistics and affine parameters, so the folding is really exercised."""
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


def _fast_and_plain(net: GridAttentionUNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        net.fast_inference = False
        plain = net(x)
        net.fast_inference = True
        fast = net(x)
    return fast, plain


def _assert_same_outputs(fast: torch.Tensor, plain: torch.Tensor) -> None:
    assert fast.shape == plain.shape and fast.dtype == plain.dtype
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)
    assert torch.equal(fast.argmax(1), plain.argmax(1))


@pytest.mark.parametrize(
    "kwargs,size",
    [
        ({}, (48, 48, 32)),  # the paper configuration
        ({}, (67, 45, 33)),  # odd sizes: ceil pooling, resampled gating and upsampling
        ({"gated_levels": ()}, (35, 33, 17)),  # the gate-less backbone
        ({"gate_heads": 1}, (33, 32, 31)),
        ({"deep_supervision": False}, (35, 33, 17)),
        ({"gate_nonlinearity": "softplus", "gate_normalization": "softmax"}, (32, 31, 30)),
        ({"channels": (4, 8, 16), "strides": (2, (2, 2, 1))}, (20, 18, 9)),  # per-axis stride
        ({"channels": (4, 8, 16, 32), "strides": (1, 2, 2)}, (19, 17, 15)),  # a stride-1 level
        ({"channels": (4, 8, 16), "strides": (2, 2), "upsample": "deconv"}, (19, 17, 15)),
        ({"act": "prelu"}, (32, 32, 32)),  # an activation oneDNN does not fuse: applied as a module
        ({"norm": "instance"}, (32, 32, 32)),  # norms that do not fold: gates run as modules
        ({"norm": ("group", {"num_groups": 4})}, (33, 32, 16)),
        ({"dropout": 0.2}, (33, 32, 16)),
    ],
)
def test_fast_path_gives_the_same_outputs(kwargs, size):
    net = GridAttentionUNet(3, 1, 5, **kwargs).eval()
    _randomize_norms(net)
    _assert_same_outputs(*_fast_and_plain(net, torch.randn(1, 1, *size)))


@pytest.mark.parametrize("size", [(64, 48), (67, 45)])
def test_fast_path_2d_and_batches(size):
    net = GridAttentionUNet(2, 2, 4).eval()
    _randomize_norms(net)
    _assert_same_outputs(*_fast_and_plain(net, torch.randn(3, 2, *size)))


def test_fast_path_float64_uses_the_torch_convolutions():
    # no oneDNN for float64: the same folded graph through torch.nn.functional
    net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16), strides=(2, 2)).double().eval()
    _randomize_norms(net)
    fast, plain = _fast_and_plain(net, torch.randn(1, 1, 21, 19, 17, dtype=torch.float64))
    torch.testing.assert_close(fast, plain, atol=1e-10, rtol=0)


def test_repeated_calls_reuse_buffers_without_stale_data():
    net = GridAttentionUNet(3, 1, 4, channels=(8, 16, 32), strides=(2, 2)).eval()
    _randomize_norms(net)
    x1, x2 = torch.randn(1, 1, 32, 32, 24), torch.randn(1, 1, 32, 32, 24)
    with torch.no_grad():
        a1, a2, a1_again = net(x1), net(x2), net(x1)
        net.fast_inference = False
        p1, p2 = net(x1), net(x2)
    _assert_same_outputs(a1, p1)
    _assert_same_outputs(a2, p2)
    assert torch.equal(a1, a1_again)  # the returned output is never a reused buffer
    assert a1.data_ptr() != a1_again.data_ptr()


def test_fast_path_is_used_only_when_it_applies(monkeypatch):
    calls = []
    original = FoldedGridAttentionUNet.__call__

    def counting(self, x):
        calls.append(tuple(x.shape))
        return original(self, x)

    monkeypatch.setattr(FoldedGridAttentionUNet, "__call__", counting)
    net = GridAttentionUNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2))
    x = torch.randn(2, 1, 16, 16, 16)
    net.train()(x)  # training: plain modules
    with torch.no_grad():
        net(x)
    net.eval()
    assert net(x).requires_grad  # autograd on: plain modules, gradients flow
    assert calls == []
    with torch.no_grad():
        net(x)
    with torch.inference_mode():
        net(x)
    assert len(calls) == 2
    handle = net.decoder[0].conv.register_forward_hook(lambda *args: calls.append("hook"))
    with torch.no_grad():
        net(x)  # hooks expect the submodules to run: plain modules
    handle.remove()
    assert calls[-1] == "hook" and len(calls) == 3
    net.fast_inference = False
    with torch.no_grad():
        net(x)
    assert len(calls) == 3


def test_cached_folding_follows_weight_changes():
    kw = dict(spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8, 16), strides=(2, 2))
    net, other = GridAttentionUNet(**kw).eval(), GridAttentionUNet(**kw).eval()
    _randomize_norms(other)
    x = torch.randn(1, 1, 24, 24, 16)
    with torch.no_grad():
        before = net(x)
        net.load_state_dict(other.state_dict())  # in-place copies: the cache must notice
        _assert_same_outputs(net(x), _plain(other, x))
        assert not torch.allclose(before, net(x))
    # a training step changes weights and running statistics in place
    net.train()
    torch.optim.SGD(net.parameters(), lr=0.1).zero_grad()
    loss = net(torch.randn(2, 1, 24, 24, 16)).square().mean()
    loss.backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    net.eval()
    with torch.no_grad():
        _assert_same_outputs(net(x), _plain(net, x))


def _plain(net: GridAttentionUNet, x: torch.Tensor) -> torch.Tensor:
    fast = net.fast_inference
    net.fast_inference = False
    try:
        with torch.no_grad():
            return net(x)
    finally:
        net.fast_inference = fast


def test_fold_and_cache_survive_copies_and_scripting(tmp_path):
    net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16), strides=(2, 2)).eval()
    _randomize_norms(net)
    x = torch.randn(1, 1, 24, 20, 16)
    with torch.no_grad():
        expected = net(x)  # fills the cache
        folded = net.fold()
        _assert_same_outputs(folded(x), _plain(net, x))
        twin = copy.deepcopy(net)  # e.g. an EMA copy: the cache is not copied
        _assert_same_outputs(twin(x), expected)
        buffer = io.BytesIO()
        torch.save(net, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        _assert_same_outputs(loaded(x), expected)
        scripted = torch.jit.script(net)
        torch.testing.assert_close(scripted(x), expected, atol=1e-4, rtol=0)
    net.clear_fast_inference_cache()
    with torch.no_grad():
        _assert_same_outputs(net(x), expected)
    assert set(net.state_dict()) == set(GridAttentionUNet(3, 1, 3, channels=(4, 8, 16), strides=(2, 2)).state_dict())


def test_fast_path_alternates_between_inference_mode_and_no_grad():
    # large enough for the work buffers: buffers made under inference_mode cannot be written outside it
    net = GridAttentionUNet(3, 1, 3, channels=(8, 16, 32), strides=(2, 2)).eval()
    x = torch.randn(1, 1, 64, 64, 32)
    with torch.inference_mode():
        a = net(x)
    with torch.no_grad():
        b = net(x)
    with torch.inference_mode():
        c = net(x)
    assert torch.equal(a, b) and torch.equal(b, c)
    _assert_same_outputs(b, _plain(net, x))
