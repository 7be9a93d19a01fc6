from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from monai_ag.networks.blocks import GridAttentionGate


def _randomize(module: torch.nn.Module) -> None:
    """Non-trivial norm statistics/affine so the eval-mode reference exercises them."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def _bn(t: torch.Tensor, bn: torch.nn.BatchNorm3d) -> torch.Tensor:
    shape = (1, -1, 1, 1, 1)
    return (t - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(
        shape
    ) + bn.bias.view(shape)


def _reference_head(x, g, theta_w, phi_w, phi_b, psi_w, psi_b, w_w, w_b, w_bn_slice):
    """One gate of the paper's code written out with functional ops."""
    theta_x = F.conv3d(x, theta_w, stride=2)  # strided, no bias
    phi_g = F.conv3d(g, phi_w, phi_b)
    phi_g = F.interpolate(phi_g, size=theta_x.shape[2:], mode="trilinear", align_corners=False)
    alpha = torch.sigmoid(F.conv3d(F.relu(theta_x + phi_g), psi_w, psi_b))
    alpha = F.interpolate(alpha, size=x.shape[2:], mode="trilinear", align_corners=False)
    return w_bn_slice(F.conv3d(alpha * x, w_w, w_b)), alpha


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("g_size", [(3, 2, 2), (2, 2, 1)])  # same grid as theta, and a coarser one to resample
def test_gate_matches_functional_reference(heads, g_size):
    c, cg, ci = 3, 5, 4
    gate = GridAttentionGate(3, c, cg, inter_channels=ci, heads=heads).eval()
    _randomize(gate)
    x, g = torch.randn(2, c, 6, 5, 4), torch.randn(2, cg, *g_size)
    with torch.no_grad():
        out, alpha = gate(x, g)
        assert gate.theta.bias is None
        w_bn = gate.W[1]
        outs, alphas = [], []
        for h in range(heads):
            sl = slice(h * ci, (h + 1) * ci)
            cs = slice(h * c, (h + 1) * c)
            o, a = _reference_head(
                x,
                g,
                gate.theta.weight[sl],
                gate.phi.weight[sl],
                gate.phi.bias[sl],
                gate.psi.weight[h : h + 1],
                gate.psi.bias[h : h + 1],
                gate.W[0].weight[cs],
                gate.W[0].bias[cs],
                lambda t, cs=cs: (
                    (t - w_bn.running_mean[cs].view(1, -1, 1, 1, 1))
                    / torch.sqrt(w_bn.running_var[cs].view(1, -1, 1, 1, 1) + w_bn.eps)
                    * w_bn.weight[cs].view(1, -1, 1, 1, 1)
                    + w_bn.bias[cs].view(1, -1, 1, 1, 1)
                ),
            )
            outs.append(o)
            alphas.append(a)
        conv, bn = gate.combine.conv, gate.combine.adn.N
        expected = F.relu(_bn(F.conv3d(torch.cat(outs, 1), conv.weight, conv.bias), bn))
    assert out.shape == x.shape and alpha.shape == (2, heads, 6, 5, 4)
    torch.testing.assert_close(alpha, torch.cat(alphas, 1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_gate_parameters_equal_separate_gates():
    # theta C*Ci*8 (no bias), phi Cg*Ci+Ci, psi Ci+1, W C*C+C + norm 2C per head; combine 2C*C+C + norm 2C
    c, cg = 128, 256
    per_head = c * c * 8 + (cg * c + c) + (c + 1) + (c * c + c) + 2 * c
    combine = 2 * c * c + c + 2 * c
    gate = GridAttentionGate(3, c, cg, inter_channels=c, heads=2)
    assert sum(p.numel() for p in gate.parameters()) == 2 * per_head + combine == 394_882


@pytest.mark.parametrize("normalization", ["sigmoid", "softmax"])
@pytest.mark.parametrize("nonlinearity", ["relu", "softplus"])
def test_coefficients_in_unit_interval(normalization, nonlinearity):
    gate = GridAttentionGate(3, 4, 8, heads=2, normalization=normalization, nonlinearity=nonlinearity)
    _, alpha = gate(torch.randn(1, 4, 8, 8, 8) * 10, torch.randn(1, 8, 4, 4, 4) * 10)
    assert alpha.min() >= 0 and alpha.max() <= 1
    if normalization == "softmax":
        # computed on the coarse grid: each head sums to one over its 4^3 cells (mean over the upsampled grid x 64)
        coarse = F.avg_pool3d(alpha, 2)
        torch.testing.assert_close(coarse.sum(dim=(2, 3, 4)), torch.ones(1, 2), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "dims,x_size,g_size,factor",
    [
        (2, (9, 7), (5, 4), 2),
        (3, (9, 7, 5), (5, 4, 3), 2),
        (3, (8, 8, 5), (4, 4, 5), (2, 2, 1)),
        (3, (6, 6, 6), (6, 6, 6), 1),
    ],
)
def test_gate_shapes(dims, x_size, g_size, factor):
    gate = GridAttentionGate(dims, 6, 10, sub_sample_factor=factor, heads=2)
    out, alpha = gate(torch.randn(2, 6, *x_size), torch.randn(2, 10, *g_size))
    assert out.shape == (2, 6, *x_size)
    assert alpha.shape == (2, 2, *x_size)
    assert gate.theta.stride == ((factor,) * dims if isinstance(factor, int) else factor)


def test_gate_attenuates_features():
    """With W = identity and a strongly negative psi bias, the gate suppresses its input."""
    gate = GridAttentionGate(3, 2, 2, heads=1, norm="", act="").eval()
    with torch.no_grad():
        gate.psi.bias.fill_(-50.0)
        gate.W[0].weight.zero_()
        gate.W[0].weight[:, :, 0, 0, 0] = torch.eye(2)
        gate.W[0].bias.zero_()
        gate.combine.conv.weight.zero_()
        gate.combine.conv.weight[:, :, 0, 0, 0] = torch.eye(2)
        gate.combine.conv.bias.zero_()
        x = torch.rand(1, 2, 4, 4, 4)
        out, alpha = gate(x, torch.zeros(1, 2, 2, 2, 2))
    assert alpha.max() < 1e-6
    assert out.abs().max() < 1e-6


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"spatial_dims": 4}, "spatial_dims must be 1, 2 or 3, got 4"),
        ({"in_channels": 0}, "in_channels must be a positive int, got 0"),
        ({"heads": 0}, "heads must be a positive int"),
        ({"sub_sample_factor": (2, 0, 2)}, r"sub_sample_factor must be ints >= 1"),
        ({"nonlinearity": "tanh"}, "tanh"),
        ({"normalization": "range"}, "range"),
    ],
)
def test_gate_bad_arguments(kwargs, match):
    args = {"spatial_dims": 3, "in_channels": 4, "gating_channels": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        GridAttentionGate(**args)
