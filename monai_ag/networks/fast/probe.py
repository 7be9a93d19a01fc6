"""Whether the fast inference path may be used here: a tested torch version and a numerical probe."""

from __future__ import annotations

import logging
from functools import lru_cache

import torch

from monai_ag.networks.fast import adapters

__all__ = ["PROBE_TOLERANCE", "fast_path_available", "probe"]

logger = logging.getLogger("monai_ag.networks.fast")

#: largest difference allowed between the fast path and the plain modules in the probe, relative to
#: the largest plain output (at least 1); a dtype not listed is not probed and runs the plain modules.
PROBE_TOLERANCE: dict[torch.dtype, float] = {torch.float64: 1e-9, torch.float32: 1e-4}


def probe(network_class: type, spatial_dims: int, dtype: torch.dtype = torch.float32) -> float:
    """
    Compare the fast path with the plain modules on a tiny ``GridAttentionUNet`` (two-head gates on
    every gated level, deep supervision, odd input size, batch-norm statistics away from their
    initial values, work buffers forced on) and return the largest difference of their outputs,
    relative to the largest plain output (at least 1). Leaves torch's random state as it was.
    ``network_class`` is ``GridAttentionUNet`` (passed by the network's dispatch: the fast path never imports
    the network it folds).
    Runs in ``dtype`` whatever autocast the caller has on: the first eval-mode call of a network
    often happens under bf16 autocast (``precision="bf16"``), and a float32 probe run there would
    compare two bfloat16 computations against a float32 tolerance and turn the path off.

    Example::

        assert probe(GridAttentionUNet, 3) < 1e-4
    """
    from monai_ag.networks.fast.unet import FoldedGridAttentionUNet

    size = (13, 11, 9)[:spatial_dims]
    no_autocast = torch.autocast("cpu", enabled=False)
    with torch.random.fork_rng(devices=[]), torch.no_grad(), no_autocast:
        torch.manual_seed(20180411)
        net = network_class(spatial_dims, 2, 3, channels=(4, 8, 16), strides=(2, 2), fast_inference=False)
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.data.uniform_(-0.5, 0.5)
        net = net.to(dtype).eval()
        x = torch.randn(2, 2, *size, dtype=dtype)
        plain = net(x)
        folded = FoldedGridAttentionUNet(net)
        folded.pool.min_numel = 1  # exercise the work buffers too
        fast = folded(x)
        fast_again = folded(x)  # the second call reuses the buffers
        if fast.shape != plain.shape or fast_again.shape != plain.shape:
            return float("inf")
        scale = max(1.0, plain.abs().max().item())
        diff = max((fast - plain).abs().max().item(), (fast_again - plain).abs().max().item())
        return diff / scale if diff == diff else float("inf")  # NaN: a failure


@lru_cache(maxsize=None)
def fast_path_available(network_class: type, spatial_dims: int, dtype: torch.dtype) -> bool:
    """
    Whether ``GridAttentionUNet`` may compute eval-mode ``forward`` with the fast path for
    ``spatial_dims`` and ``dtype``: the running torch is one the path was tested with
    (:py:data:`~monai_ag.networks.fast.adapters.TESTED_TORCH_VERSIONS`) and :py:func:`probe` agrees
    with the plain modules within :py:data:`PROBE_TOLERANCE`. Decided once per process (per
    ``spatial_dims`` and ``dtype``; ``network_class`` is ``GridAttentionUNet``, given by its dispatch); when the
    answer is no, one warning says why and the plain modules
    run instead. ``fast_path_available.cache_clear()`` decides again.
    """
    tol = PROBE_TOLERANCE.get(dtype)
    if tol is None:
        return False  # no stated tolerance for this dtype: the plain modules, silently (as on CUDA)
    if not adapters.torch_version_tested():
        tested = ", ".join(f"{a}.{b}" for a, b in adapters.TESTED_TORCH_VERSIONS)
        logger.warning(
            "GridAttentionUNet's fast inference path is off: it relies on private torch APIs and was tested "
            "with torch %s, not %s; running the plain modules (same outputs, slower). "
            "Pass fast_inference=False to silence this.",
            tested,
            torch.__version__,
        )
        return False
    try:
        diff = probe(network_class, spatial_dims, dtype)
        reason = f"differs from the plain modules by {diff:.3g} (relative; allowed {tol:g})"
    except Exception as e:  # a private API that changed or vanished
        diff, reason = float("inf"), f"failed: {type(e).__name__}: {e}"
    if not diff <= tol:
        logger.warning(
            "GridAttentionUNet's fast inference path is off: its numerical check (%dD, %s) %s with torch %s; "
            "running the plain modules (same outputs, slower). Pass fast_inference=False to silence this.",
            spatial_dims,
            str(dtype).replace("torch.", ""),
            reason,
            torch.__version__,
        )
        return False
    return True
