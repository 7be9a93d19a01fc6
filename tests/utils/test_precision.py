from __future__ import annotations

import pytest
import torch

import monai_ag.utils.precision as precision
from monai_ag.networks.nets import GridAttentionUNet
from monai_ag.utils.precision import PrecisionNetwork, autocast, resolve_precision, with_precision


@pytest.mark.parametrize(
    "value,expected",
    [
        ("fp32", "fp32"),
        ("FP32", "fp32"),
        ("float32", "fp32"),
        ("bf16", "bf16"),
        ("bfloat16", "bf16"),
        (" bf16 ", "bf16"),
    ],
)
def test_explicit_precisions(value, expected):
    assert resolve_precision(value, "cpu") == expected


@pytest.mark.parametrize("value", ["fp16", "half", "", "bf 16", None, 16, True])
def test_unknown_precision_is_a_clear_error(value):
    with pytest.raises(ValueError, match=r"precision must be one of 'auto', 'bf16', 'fp32', got"):
        resolve_precision(value)


def test_auto_follows_the_capability_probe(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # a CPU without bf16 units
    assert resolve_precision("auto", "cpu") == "fp32"
    with autocast("auto") as used:
        assert used == "fp32" and not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    with autocast("auto") as used:
        assert used == "bf16" and torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_probe_reads_the_cpu_capabilities(monkeypatch):
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": False})
    assert not precision.cpu_has_bf16() and not precision.cpu_has_amx()
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {"avx512_bf16": True, "amx_bf16": False})
    assert precision.cpu_has_bf16() and not precision.cpu_has_amx()
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {"avx512_bf16": True, "amx_bf16": True})
    assert precision.cpu_has_bf16() and precision.cpu_has_amx()
    monkeypatch.setattr(precision, "cpu_capabilities", lambda: {})
    assert not precision.cpu_has_bf16()


def test_cuda_keeps_amp_in_charge():
    assert resolve_precision("auto", "cuda") == "fp32"
    with pytest.warns(UserWarning, match="ignored"):
        assert resolve_precision("bf16", "cuda:0") == "fp32"
    net = torch.nn.Conv3d(1, 1, 1)
    with pytest.warns(UserWarning, match="ignored"):
        assert with_precision(net, "bf16", "cuda") is net


def test_precision_network_runs_bf16_and_returns_float32():
    net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16), deep_supervision_outputs=True).train()
    model = with_precision(net, "bf16", "cpu")
    assert isinstance(model, PrecisionNetwork) and model.network is net
    assert set(model.state_dict()) == {"network." + k for k in net.state_dict()}
    seen = []
    hook = net.encoder[0][0].conv.register_forward_hook(lambda m, i, o: seen.append((o.dtype, i[0].stride())))
    out = model(torch.rand(2, 1, 16, 16, 12))
    hook.remove()
    assert isinstance(out, list) and all(o.dtype == torch.float32 for o in out)
    assert seen[0][0] == torch.bfloat16  # the convolution ran in bf16
    x_cl = torch.rand(2, 1, 16, 16, 12).contiguous(memory_format=torch.channels_last_3d)
    assert seen[0][1] == x_cl.stride()  # the input was fed channels-last
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_precision_network_fp32_matches_the_network():
    net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16)).eval()
    x = torch.rand(1, 1, 16, 16, 12)
    with torch.no_grad():
        torch.testing.assert_close(with_precision(net, "fp32")(x), net(x), atol=1e-5, rtol=0)


def test_precision_network_rejects_unresolved_values():
    with pytest.raises(ValueError, match="resolved precision"):
        PrecisionNetwork(torch.nn.Identity(), "auto")


def test_channels_last_keeps_values_and_state_dict_keys():
    net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16)).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    precision.to_channels_last(net)
    assert net.encoder[0][0].conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    after = net.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)


def test_short_bf16_training_decreases_the_loss_and_loads_strictly_in_fp32(tmp_path):
    from monai.losses import DeepSupervisionLoss, DiceCELoss

    from monai_ag.data.phantom import generate_phantom_case

    image, label, _ = generate_phantom_case(0, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0))
    x = torch.as_tensor((image.clip(-175, 250) + 175) / 425, dtype=torch.float32)[None, None]
    y = torch.as_tensor(label, dtype=torch.float32)[None, None]
    net = GridAttentionUNet(3, 1, 5, channels=(4, 8, 16, 32), deep_supervision_outputs=True)
    model = with_precision(net, "bf16", "cpu")
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, fused=True)
    loss_fn = DeepSupervisionLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    losses = []
    model.train()
    for _ in range(12):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses
    torch.save(net.state_dict(), tmp_path / "model.pt")
    fp32 = GridAttentionUNet(3, 1, 5, channels=(4, 8, 16, 32))
    fp32.load_state_dict(torch.load(tmp_path / "model.pt", map_location="cpu"), strict=True)
    assert all(p.dtype == torch.float32 for p in fp32.state_dict().values() if p.is_floating_point())
    with torch.no_grad():
        plain = fp32.eval()(x)
        ref = net.eval()(x)
    torch.testing.assert_close(plain, ref, atol=1e-4, rtol=0)


def test_fast_inference_path_is_unchanged_by_the_layout():
    import copy

    net = GridAttentionUNet(3, 1, 5).eval()
    ref = copy.deepcopy(net)
    model = with_precision(net, "fp32", "cpu")
    x = torch.randn(1, 1, 33, 32, 17)
    with torch.no_grad():
        ref.fast_inference = False
        torch.testing.assert_close(model(x), ref(x), atol=1e-4, rtol=0)


def test_bf16_probe_leaves_the_random_stream_alone():
    from monai_ag.networks.fast.adapters import mkldnn_bf16_available

    torch.manual_seed(0)
    before = torch.get_rng_state()
    mkldnn_bf16_available.__wrapped__()
    assert torch.get_rng_state().equal(before)
