from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from monai.losses import DeepSupervisionLoss, DiceCELoss
from monai.networks.nets import AttentionUnet

from monai_ag.networks.nets import GridAttentionUNet


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, 6_473_322),  # the authors' unet_CT_multi_att_dsv_3D
        ({"gate_heads": 1}, 6_214_151),  # their single-gate variant
        ({"gated_levels": ()}, 5_888_004),  # the same backbone without gates
    ],
)
def test_paper_parameter_counts(kwargs, expected):
    assert n_params(GridAttentionUNet(spatial_dims=3, in_channels=1, out_channels=4, **kwargs)) == expected


def test_paper_defaults():
    net = GridAttentionUNet(spatial_dims=3, in_channels=1, out_channels=4)
    assert net.channels == (16, 32, 64, 128, 256)
    assert net.gated_levels == (2, 3, 4)
    assert net.strides == ((2, 2, 2),) * 4
    pools = [m for m in net.modules() if isinstance(m, torch.nn.MaxPool3d)]
    assert len(pools) == 4
    gates = [lv.gate for lv in net.decoder if lv.gate is not None]
    assert [g.heads for g in gates] == [2, 2, 2]
    assert not any(isinstance(m, torch.nn.ConvTranspose3d) for m in net.modules())
    # kaiming init of convs, N(1, 0.02) norm weights
    bn_w = torch.cat([m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d)])
    assert abs(bn_w.mean().item() - 1.0) < 0.01 and 0.01 < bn_w.std().item() < 0.03


@pytest.mark.parametrize(
    "dims,size,kwargs",
    [
        (3, (67, 45, 33), {}),
        (2, (67, 45), {}),
        (3, (20, 18, 9), {"channels": (4, 8, 16), "strides": (2, (2, 2, 1))}),  # per-axis stride
        (3, (19, 17, 15), {"channels": (4, 8, 16, 32), "strides": (1, 2, 2)}),  # a stride-1 level
        (2, (19, 17), {"channels": (4, 8), "strides": (2,)}),  # two levels
        (3, (19, 17, 15), {"channels": (4, 8, 16), "strides": (2, 2), "upsample": "deconv"}),
        (2, (21, 13), {"channels": (4, 8, 16), "strides": (2, 2), "kernel_size": (3, 5), "deep_supervision": False}),
    ],
)
def test_output_has_input_size(dims, size, kwargs):
    net = GridAttentionUNet(dims, 2, 3, **kwargs).eval()
    x = torch.randn(1, 2, *size)
    with torch.no_grad():
        y = net(x)
        maps = net.attention_maps(x)
    assert y.shape == (1, 3, *size)
    assert torch.isfinite(y).all()
    assert len(maps) == len(net.gated_levels)
    for m in maps:
        assert m.shape == (1, 2, *size) and m.min() >= 0 and m.max() <= 1


@pytest.mark.parametrize(
    "args",
    [
        dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2)),
        dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16), strides=(2,)),
        dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2, 2, 2)),
        dict(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(1, 2)),
        dict(
            spatial_dims=2,
            in_channels=1,
            out_channels=2,
            channels=(8, 16, 32),
            strides=((2, 1), 2),
            kernel_size=(3, 3),
            up_kernel_size=3,
            dropout=0.1,
        ),
    ],
)
def test_drop_in_for_monai_attention_unet(args):
    """Whatever MONAI's AttentionUnet accepts builds here with the same arguments and output shape."""
    size = (32,) * args["spatial_dims"]
    x = torch.randn(2, 1, *size)
    ref = AttentionUnet(**args).eval()
    net = GridAttentionUNet(**args).eval()
    with torch.no_grad():
        assert net(x).shape == ref(x).shape


def test_dropout_is_applied():
    net = GridAttentionUNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2), dropout=0.5)
    assert any(isinstance(m, torch.nn.Dropout3d) or isinstance(m, torch.nn.Dropout) for m in net.modules())
    x = torch.randn(2, 1, 16, 16, 16)
    net.train()
    assert not torch.allclose(net(x), net(x))
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x))


def test_every_parameter_gets_a_gradient():
    net = GridAttentionUNet(3, 1, 4, channels=(4, 8, 16, 32), strides=(2, 2, 2)).train()
    net(torch.randn(2, 1, 24, 20, 16)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_deep_supervision_outputs_train_with_monai_loss():
    kw = dict(spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8, 16, 32), strides=(2, 2, 2))
    net = GridAttentionUNet(**kw, deep_supervision_outputs=True).train()
    x = torch.randn(2, 1, 24, 24, 16)
    y = (x > 0.5).float() + (x > 1.0).float()  # DeepSupervisionLoss resizes a float target
    outs = net(x)
    assert isinstance(outs, list) and len(outs) == 4
    assert [tuple(o.shape[2:]) for o in outs] == [(24, 24, 16), (24, 24, 16), (12, 12, 8), (6, 6, 4)]
    loss_fn = DeepSupervisionLoss(DiceCELoss(to_onehot_y=True, softmax=True))
    loss = loss_fn(outs, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in net.parameters())
    # a few optimiser steps lower the loss: the auxiliary outputs really train the network
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
    # eval mode: one tensor; the state dict loads strictly with the option off
    net.eval()
    with torch.no_grad():
        out = net(x)
        plain = GridAttentionUNet(**kw).eval()
        plain.load_state_dict(net.state_dict(), strict=True)
        torch.testing.assert_close(plain(x), out)


def test_default_forward_is_a_tensor_in_training():
    net = GridAttentionUNet(2, 1, 2, channels=(4, 8), strides=(2,)).train()
    assert isinstance(net(torch.randn(2, 1, 8, 8)), torch.Tensor)


def test_attention_maps_do_not_change_forward():
    net = GridAttentionUNet(3, 1, 2, channels=(4, 8, 16), strides=(2, 2)).eval()
    x = torch.randn(1, 1, 17, 16, 15)
    with torch.no_grad():
        before = net(x)
        maps = net.attention_maps(x)
        after = net(x)
    torch.testing.assert_close(before, after)
    assert [m.shape for m in maps] == [torch.Size([1, 2, 17, 16, 15])]


def test_training_too_small_input_is_a_clear_error():
    net = GridAttentionUNet(3, 1, 2).train()
    with pytest.raises(ValueError, match=r"too small to train: the bottleneck is \(1, 1, 1\)"):
        net(torch.randn(1, 1, 16, 16, 16))
    net(torch.randn(2, 1, 16, 16, 16))  # two values per channel are enough for batch norm


@pytest.mark.parametrize("size", [(8, 8, 8), (5, 7, 3), (1, 1, 1), (9, 17, 2)])
def test_eval_tiny_inputs(size):
    """Skips smaller than a gate's stride are padded for theta: every size works in eval mode."""
    net = GridAttentionUNet(3, 1, 2).eval()
    x = torch.randn(1, 1, *size)
    with torch.no_grad():
        fast = net(x)
        net.fast_inference = False
        plain = net(x)
    assert fast.shape == plain.shape == (1, 2, *size)
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=0)
    assert torch.equal(fast.argmax(1), plain.argmax(1))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(spatial_dims=4), "spatial_dims must be 2 or 3, got 4"),
        (dict(channels=(16,)), r"channels must hold at least 2 positive ints"),
        (dict(channels=(8, 16, 32, 64), strides=(2, 2)), r"strides needs one entry per downsampling.*= 3, got 2"),
        (dict(strides=(2, 0, 2, 2)), "strides must be ints >= 1"),
        (dict(kernel_size=4), "kernel_size must be odd"),
        (dict(gated_levels=(5,)), r"gated_levels must be levels in 1\.\.4"),
        (dict(deep_supervision=False, deep_supervision_outputs=True), "needs deep_supervision=True"),
        (dict(upsample="nearest"), "nearest"),
        (dict(out_channels=0), "out_channels must be a positive int, got 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(spatial_dims=3, in_channels=1, out_channels=2) | kwargs
    with pytest.raises(ValueError, match=match):
        GridAttentionUNet(**args)


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.randn(1, 1, 32, 32), r"spatial_dims=3 expects a 5D input \(B, C, H, W, D\), got a 4D tensor"),
        (torch.randn(1, 3, 32, 32, 32), r"expects 1 input channel\(s\) \(in_channels\), got 3"),
    ],
)
def test_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        GridAttentionUNet(3, 1, 2).eval()(x)


def test_not_a_tensor():
    with pytest.raises(TypeError, match="expects a torch.Tensor, got ndarray"):
        GridAttentionUNet(3, 1, 2).eval()(torch.randn(1, 1, 16, 16, 16).numpy())


def test_torchscript_round_trip(tmp_path):
    net = GridAttentionUNet(3, 1, 4).eval()
    x = torch.randn(1, 1, 35, 33, 17)
    path = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(net), str(path))
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), atol=1e-5, rtol=1e-5)
        for a, b in zip(loaded.attention_maps(x), net.attention_maps(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_onnx_dynamic_spatial_axes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from monai_ag.networks import export_onnx

    net = GridAttentionUNet(3, 1, 4).eval()
    path = export_onnx(net, tmp_path / "net.onnx", example_size=(64, 64, 48))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in [(64, 64, 48), (67, 45, 33)]:
        x = torch.randn(1, 1, *size)
        (y,) = session.run(None, {"image": x.numpy()})
        with torch.no_grad():
            ref = net(x)
        assert y.shape == tuple(ref.shape)
        torch.testing.assert_close(torch.from_numpy(y), ref, atol=1e-4, rtol=0)


REGISTRATION = textwrap.dedent(
    """
    import sys
    from monai.bundle import ConfigParser
    imports = ["$import monai_ag"] if sys.argv[1] == "with" else []
    parser = ConfigParser({
        "imports": imports,
        "net": {"_target_": "GridAttentionUNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 4},
        "gate": {"_target_": "GridAttentionGate", "spatial_dims": 2, "in_channels": 8, "gating_channels": 16},
    })
    net, gate = parser.get_parsed_content("net"), parser.get_parsed_content("gate")
    print(type(net).__module__, type(gate).__module__, sum(p.numel() for p in net.parameters()))
    """
)


def test_short_name_resolution_in_a_fresh_bundle_parser():
    ok = subprocess.run([sys.executable, "-c", REGISTRATION, "with"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == [
        "monai_ag.networks.nets.grid_attention_unet",
        "monai_ag.networks.blocks.grid_attention",
        "6473322",
    ]
    bad = subprocess.run([sys.executable, "-c", REGISTRATION, "without"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0
    assert "GridAttentionUNet" in bad.stderr


def test_public_names_do_not_clash_with_monai():
    import monai.networks.blocks as mb
    import monai.networks.nets as mn

    import monai_ag

    for name in monai_ag.__all__:
        assert not hasattr(mn, name) and not hasattr(mb, name), name
