"""
The fast inference path (``monai_ag.networks.fast``) computes the plain modules' function, for a matrix
of constructor configurations that covers every argument of ``GridAttentionUNet`` and
``GridAttentionGate`` (``test_equivalence_matrix_covers_every_constructor_argument`` fails when a new
argument has no case).
"""

from __future__ import annotations

import copy
import inspect
import io

import pytest
import torch

from monai_ag.networks.blocks import GridAttentionGate
from monai_ag.networks.fast import FoldedGridAttentionUNet, adapters, fast_path_available
from monai_ag.networks.fast.gate import FoldedGridAttentionGate
from monai_ag.networks.nets import GridAttentionUNet


@pytest.fixture(autouse=True)
def fast_path_on(monkeypatch):
    """These tests vouch for the running torch: the version check passes, the numerical probe still runs."""
    monkeypatch.setattr(adapters, "TESTED_TORCH_VERSIONS", (adapters.torch_version(),))
    fast_path_available.cache_clear()
    yield
    fast_path_available.cache_clear()


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
    assert fast_path_available(GridAttentionUNet, net.spatial_dims, x.dtype), (
        "the fast path is off: nothing would be compared"
    )
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


_PAPER = {"spatial_dims": 3, "in_channels": 1, "out_channels": 5}
_SMALL = {**_PAPER, "channels": (4, 8, 16), "strides": (2, 2)}

# (GridAttentionUNet arguments, input size, batch): every argument appears with a value other than its
# default in some case (required arguments with two values); see the guard test below.
UNET_CASES = [
    (_PAPER, (48, 48, 32), 1),  # the paper configuration
    (_PAPER, (67, 45, 33), 1),  # odd sizes: ceil pooling, resampled gating and upsampling
    ({**_PAPER, "gated_levels": ()}, (35, 33, 17), 1),  # the gate-less backbone
    ({**_PAPER, "gated_levels": (1, 3)}, (33, 32, 17), 1),  # the full-resolution skip gated, level 2 not
    ({**_PAPER, "gate_heads": 1}, (33, 32, 31), 1),
    ({**_PAPER, "deep_supervision": False}, (35, 33, 17), 1),
    ({**_PAPER, "deep_supervision_outputs": True}, (32, 24, 16), 1),  # training-only outputs: eval unchanged
    ({**_PAPER, "gate_nonlinearity": "softplus", "gate_normalization": "softmax"}, (32, 31, 30), 1),
    ({**_PAPER, "channels": (4, 8, 16), "strides": (2, (2, 2, 1))}, (20, 18, 9), 1),  # per-axis stride
    ({**_PAPER, "channels": (4, 8, 16, 32), "strides": (1, 2, 2)}, (19, 17, 15), 1),  # a stride-1 level
    ({**_SMALL, "upsample": "deconv"}, (19, 17, 15), 1),
    ({**_SMALL, "upsample": "deconv", "up_kernel_size": (5, 3, 1)}, (20, 17, 15), 1),
    ({**_SMALL, "kernel_size": (3, 5, 1)}, (21, 18, 11), 1),
    ({**_PAPER, "act": "prelu"}, (32, 32, 32), 1),  # an activation oneDNN does not fuse: applied as a module
    ({**_SMALL, "act": "tanh"}, (21, 18, 11), 1),  # a fused activation other than ReLU
    ({**_PAPER, "norm": "instance"}, (32, 32, 32), 1),  # norms that do not fold: gates run as modules
    ({**_PAPER, "norm": ("group", {"num_groups": 4})}, (33, 32, 16), 1),
    ({**_PAPER, "dropout": 0.2}, (33, 32, 16), 1),
    ({**_PAPER, "fast_inference": False}, (24, 24, 16), 1),  # switched back on by the comparison
    ({"spatial_dims": 2, "in_channels": 2, "out_channels": 4}, (64, 48), 3),
    ({"spatial_dims": 2, "in_channels": 2, "out_channels": 4}, (67, 45), 3),
]


@pytest.mark.parametrize("kwargs,size,batch", UNET_CASES)
def test_fast_path_gives_the_same_outputs(kwargs, size, batch):
    net = GridAttentionUNet(**kwargs).eval()
    _randomize_norms(net)
    _assert_same_outputs(*_fast_and_plain(net, torch.randn(batch, kwargs["in_channels"], *size)))


_GATE = {"spatial_dims": 3, "in_channels": 8, "gating_channels": 16}

# (GridAttentionGate arguments, skip size, gating size): the gate as the fast path runs it (folded, or
# as a module when its norms do not fold) against the module
GATE_CASES = [
    (_GATE, (12, 10, 9), (6, 5, 5)),
    ({**_GATE, "inter_channels": 8, "heads": 2}, (12, 10, 8), (6, 5, 4)),
    ({**_GATE, "heads": 3, "sub_sample_factor": (2, 2, 1)}, (12, 10, 8), (6, 5, 8)),
    ({**_GATE, "sub_sample_factor": 1}, (9, 8, 7), (9, 8, 7)),
    ({**_GATE, "nonlinearity": "softplus", "normalization": "softmax"}, (12, 10, 9), (5, 4, 4)),
    ({**_GATE, "act": "prelu"}, (12, 10, 9), (6, 5, 5)),
    ({**_GATE, "norm": "instance"}, (12, 10, 9), (6, 5, 5)),
    ({"spatial_dims": 2, "in_channels": 6, "gating_channels": 4, "heads": 2}, (15, 12), (8, 6)),
]


@pytest.mark.parametrize("kwargs,x_size,g_size", GATE_CASES)
def test_folded_gate_gives_the_same_outputs(kwargs, x_size, g_size):
    gate = GridAttentionGate(**kwargs).eval()
    _randomize_norms(gate)
    x, g = torch.randn(2, kwargs["in_channels"], *x_size), torch.randn(2, kwargs["gating_channels"], *g_size)
    folded = FoldedGridAttentionGate.from_gate(gate)
    assert (folded is None) == (kwargs.get("norm", "batch") != "batch")  # only batch norms fold
    with torch.no_grad():
        out, alpha = (folded or gate)(x, g)
        ref_out, ref_alpha = gate(x, g)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, ref_out, atol=1e-4, rtol=0)


# Constructor arguments that cannot change what the fast path computes, each with the reason. Keep it
# short: an argument belongs here only if no eval-mode output can depend on it.
EXEMPT_ARGUMENTS: dict[type, set[str]] = {GridAttentionUNet: set(), GridAttentionGate: set()}


def _uncovered_arguments(cls: type, cases: list[dict]) -> list[str]:
    """Constructor arguments of ``cls`` that no case sets to a value other than the default (or, for a
    required argument, to two different values)."""
    missing = []
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or name in EXEMPT_ARGUMENTS[cls]:
            continue
        values = [case[name] for case in cases if name in case]
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            covered = False
        elif param.default is inspect.Parameter.empty:
            covered = len({repr(v) for v in values}) >= 2
        else:
            covered = any(repr(v) != repr(param.default) for v in values)
        if not covered:
            missing.append(name)
    return missing


def test_equivalence_matrix_covers_every_constructor_argument():
    unet = _uncovered_arguments(GridAttentionUNet, [case[0] for case in UNET_CASES])
    gate = _uncovered_arguments(GridAttentionGate, [case[0] for case in GATE_CASES])
    assert not unet and not gate, (
        f"constructor arguments without a fast-path equivalence case: GridAttentionUNet {unet}, "
        f"GridAttentionGate {gate}; add a case to UNET_CASES/GATE_CASES in {__file__} (or, if the argument "
        "cannot change eval-mode outputs, to EXEMPT_ARGUMENTS with the reason)"
    )


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
    assert fast_path_available(GridAttentionUNet, 3, torch.float32)  # decided (the probe run) before counting
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


# bfloat16 (CPU autocast): every logit within this fraction of the float32 logits' largest magnitude. Measured
# on these cases (torch 2.13, AMD EPYC avx512_bf16): 0.46-1.5 % for the fast path, 0.77-1.7 % for the plain
# modules under the same autocast; with instance norm, whose per-input statistics amplify the rounding of
# low-variance channels, 4.5 % and 5.1 %. The bounds leave about 1.6x and 1.4x headroom.
BF16_TOLERANCE = 0.025
BF16_TOLERANCE_INSTANCE_NORM = 0.0625
# and never much worse than the plain modules' own bfloat16 error (measured ratio at most 1.07)
BF16_VS_PLAIN = 1.5


@pytest.mark.parametrize("kwargs,size,batch", UNET_CASES)
def test_bf16_fast_path_agrees_with_float32(kwargs, size, batch):
    net = GridAttentionUNet(**kwargs).eval()
    _randomize_norms(net)
    x = torch.randn(batch, kwargs["in_channels"], *size)
    assert fast_path_available(GridAttentionUNet, net.spatial_dims, x.dtype)
    with torch.no_grad():
        net.fast_inference = False
        ref = net(x)  # float32, plain modules
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain_bf16 = net(x)  # the plain modules' own bfloat16 rounding
        net.fast_inference = True
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = net(x)
            bf16_again = net(x)  # the cached bfloat16 graph, its buffers reused
        fp32 = net(x)  # back to the float32 graph
    assert bf16.dtype == torch.float32 and bf16.shape == ref.shape
    assert torch.equal(bf16, bf16_again)
    torch.testing.assert_close(fp32, ref, atol=1e-4, rtol=0)
    tol = (BF16_TOLERANCE_INSTANCE_NORM if kwargs.get("norm") == "instance" else BF16_TOLERANCE) * float(
        ref.abs().max()
    )
    error = float((bf16 - ref).abs().max())
    assert 1e-4 < error <= tol  # bfloat16 really ran, within its rounding
    assert error <= BF16_VS_PLAIN * float((plain_bf16 - ref).abs().max())
    # the argmax is the same wherever float32's top-2 gap is not a near-tie at bfloat16's resolution
    top2 = ref.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * tol
    assert clear.float().mean() > 0.2  # not a vacuous check
    assert torch.equal(bf16.argmax(1)[clear], ref.argmax(1)[clear])
