"""The fast path turns itself off (plain modules, one warning) on an untested torch or a failed numerical check."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch

from monai_ag.networks.fast import FoldedGridAttentionUNet, adapters, fast_path_available, probe
from monai_ag.networks.nets import GridAttentionUNet

LOGGER = "monai_ag.networks.fast"


@pytest.fixture
def fresh_decision():
    """Decide about the fast path again in this test, and again after it."""
    fast_path_available.cache_clear()
    yield
    fast_path_available.cache_clear()


@pytest.fixture
def folded_calls(monkeypatch):
    """The input shapes the folded network was called with, but the probe's (its inputs have 2 channels,
    these tests' 1)."""
    calls: list[tuple] = []
    original = FoldedGridAttentionUNet.__call__

    def counting(self, x):
        if x.shape[1] == 1:
            calls.append(tuple(x.shape))
        return original(self, x)

    monkeypatch.setattr(FoldedGridAttentionUNet, "__call__", counting)
    return calls


def _net() -> GridAttentionUNet:
    net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16), strides=(2, 2)).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net


def _outputs(net: GridAttentionUNet, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The network's outputs with its default (fast) setting, then with ``fast_inference=False``."""
    with torch.no_grad():
        default = [net(x) for x in xs]
        net.fast_inference = False
        plain = [net(x) for x in xs]
        net.fast_inference = True
    return default, plain


def _fallback_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def _assert_plain_with_one_warning(caplog, folded_calls: list, xs: list[torch.Tensor]) -> str:
    """Run a network on ``xs`` (twice over) by default and with ``fast_inference=False``: the outputs must
    be identical, the folded network never called for them, and exactly one warning logged (returned)."""
    net = _net()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        default, plain = _outputs(net, xs + xs)
    assert folded_calls == []
    assert all(torch.equal(a, b) for a, b in zip(default, plain))
    (message,) = _fallback_warnings(caplog)
    assert "running the plain modules" in message and "fast_inference=False" in message
    return message


def test_probe_agrees_on_this_torch():
    assert adapters.torch_version_tested(), f"torch {torch.__version__} is not in TESTED_TORCH_VERSIONS"
    assert probe.probe(GridAttentionUNet, 3) < 1e-5 and probe.probe(GridAttentionUNet, 2) < 1e-5
    assert probe.probe(GridAttentionUNet, 3, torch.float64) < 1e-12


def test_probe_leaves_the_random_state_alone():
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    probe.probe(GridAttentionUNet, 2)
    assert torch.equal(torch.rand(4), expected)


def test_torch_version_parsing(monkeypatch):
    for text, expected in (("2.13.0+cpu", (2, 13)), ("2.4.1", (2, 4)), ("2.14.0a0+git1234", (2, 14)), ("3.0", (3, 0))):
        monkeypatch.setattr(torch, "__version__", text)
        assert adapters.torch_version() == expected


def test_untested_torch_version_runs_the_plain_modules(monkeypatch, caplog, fresh_decision, folded_calls):
    monkeypatch.setattr(adapters, "TESTED_TORCH_VERSIONS", ((1, 0),))
    net, other = _net(), GridAttentionUNet(3, 1, 2, channels=(4, 8), strides=(2,)).eval()
    xs = [torch.randn(1, 1, 17, 16, 12), torch.randn(2, 1, 16, 16, 16)]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        default, plain = _outputs(net, xs)
        with torch.no_grad():
            other(xs[0])  # another network: no second warning
    assert folded_calls == []
    assert all(torch.equal(a, b) for a, b in zip(default, plain))
    (message,) = _fallback_warnings(caplog)
    assert "tested with torch 1.0" in message and torch.__version__ in message
    assert "fast_inference=False" in message


def test_wrong_fast_result_runs_the_plain_modules(monkeypatch, caplog, fresh_decision, folded_calls):
    # a private oneDNN call whose meaning changed in a new torch: its results are off by a little
    real = adapters.mkldnn_conv

    def drifted(*args, **kwargs):
        return real(*args, **kwargs) * 1.01

    monkeypatch.setattr(adapters, "mkldnn_conv", drifted)
    xs = [torch.randn(1, 1, 17, 16, 12), torch.randn(1, 1, 20, 16, 12)]
    message = _assert_plain_with_one_warning(caplog, folded_calls, xs)
    assert "numerical check (3D, float32) differs from the plain modules" in message


def test_failing_private_api_runs_the_plain_modules(monkeypatch, caplog, fresh_decision, folded_calls):
    def gone(*args, **kwargs):
        raise RuntimeError("No such operator mkldnn::_convolution_pointwise_")

    monkeypatch.setattr(adapters, "mkldnn_conv_add_", gone)
    message = _assert_plain_with_one_warning(caplog, folded_calls, [torch.randn(1, 1, 17, 16, 12)])
    assert "failed: RuntimeError: No such operator" in message


def test_working_fast_path_is_silent(caplog, fresh_decision, folded_calls):
    net = _net()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        default, plain = _outputs(net, [torch.randn(1, 1, 17, 16, 12)])
    assert folded_calls == [(1, 1, 17, 16, 12)]
    assert _fallback_warnings(caplog) == []
    torch.testing.assert_close(default[0], plain[0], atol=1e-4, rtol=0)


def test_dtype_without_a_tolerance_runs_the_plain_modules(caplog, fresh_decision, folded_calls):
    net = _net().to(torch.float16)
    with caplog.at_level(logging.WARNING, logger=LOGGER), torch.no_grad():
        net(torch.randn(1, 1, 9, 8, 8, dtype=torch.float16))
    assert folded_calls == [] and _fallback_warnings(caplog) == []


def test_import_monai_ag_does_not_load_the_fast_path():
    code = (
        "import sys, torch, monai_ag\n"
        "assert 'monai_ag.networks.fast' not in sys.modules, 'imported by monai_ag'\n"
        "net = monai_ag.GridAttentionUNet(3, 1, 2, channels=(4, 8), strides=(2,), fast_inference=False).eval()\n"
        "with torch.no_grad(): net(torch.randn(1, 1, 8, 8, 8))\n"
        "assert 'monai_ag.networks.fast' not in sys.modules, 'imported with fast_inference=False'\n"
        "net.fast_inference = True\n"
        "with torch.no_grad(): net(torch.randn(1, 1, 8, 8, 8))\n"
        "assert 'monai_ag.networks.fast' in sys.modules, 'not used'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr


def test_first_call_under_bf16_autocast_keeps_the_fast_path():
    # the once-per-process decision must not be taken under the caller's autocast: a float32 probe run in
    # bfloat16 differs by ~1e-2 and would turn the path off for the whole process (a fresh process, so the
    # decision has not been cached by another test)
    code = (
        "import logging, torch\n"
        "from monai_ag import GridAttentionUNet\n"
        "from monai_ag.networks.fast import FoldedGridAttentionUNet, fast_path_available\n"
        "from monai_ag.utils.precision import with_precision\n"
        "calls = []\n"
        "original = FoldedGridAttentionUNet.__call__\n"
        "def counting(self, x):\n"
        "    calls.append((x.shape[1], torch.is_autocast_enabled('cpu')))\n"
        "    return original(self, x)\n"
        "FoldedGridAttentionUNet.__call__ = counting\n"
        "net = GridAttentionUNet(3, 1, 3, channels=(4, 8, 16), strides=(2, 2)).eval()\n"
        "with torch.no_grad():\n"
        "    with_precision(net, 'bf16', 'cpu')(torch.rand(1, 1, 16, 16, 16))\n"
        "assert (1, True) in calls, f'the folded bf16 path was not called: {calls}'\n"
        "assert fast_path_available(GridAttentionUNet, 3, torch.float32)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "fast inference path is off" not in run.stderr
