"""
Every private torch API the fast inference path uses, in one place.

The fast path (:py:mod:`monai_ag.networks.fast`) calls oneDNN's fused convolutions, resamples into
preallocated outputs and tracks in-place weight changes through names torch does not promise to keep:

- ``torch.ops.mkldnn._convolution_pointwise`` and its in-place binary form
  ``torch.ops.mkldnn._convolution_pointwise_.binary`` (convolution + sum + activation in one call);
- ``torch.ops.mkldnn._reorder_convolution_weight`` (weights prepacked for one input size);
- ``torch.ops.mkldnn._is_mkldnn_bf16_supported`` (whether oneDNN runs bfloat16 here);
- ``torch._C._nn.upsample_trilinear3d`` / ``upsample_bilinear2d`` with ``out=``;
- ``torch.nn.modules.conv._ConvNd._conv_forward`` (a module's own padding modes with other weights);
- ``torch.Tensor._version`` (the in-place modification counter).

Nothing else in the package names them. The fast path is used only with the torch versions in
:py:data:`TESTED_TORCH_VERSIONS`, and only after a numerical probe agrees with the plain modules
(:py:func:`monai_ag.networks.fast.fast_path_available`); otherwise ``GridAttentionUNet`` runs its
plain modules and logs one warning. To vouch for another torch version, run
``python -m pytest tests/networks/fast`` with it and add it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "TESTED_TORCH_VERSIONS",
    "conv_forward",
    "mkldnn_available",
    "mkldnn_bf16_available",
    "mkldnn_conv",
    "mkldnn_conv_add_",
    "mkldnn_pack_weight",
    "state_key",
    "torch_version",
    "torch_version_tested",
    "upsample_linear_into",
]

#: ``(major, minor)`` torch releases the fast path's tests pass with (``tests/networks/fast``): 2.13 in the main
#: environment, 2.14 in MONAI Label 0.8.5's (``scripts/monailabel_env.sh``).
TESTED_TORCH_VERSIONS: tuple[tuple[int, int], ...] = ((2, 13), (2, 14))


def torch_version() -> tuple[int, int]:
    """The running torch's ``(major, minor)`` (``"2.13.0+cpu"`` gives ``(2, 13)``)."""
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def torch_version_tested() -> bool:
    """Whether the running torch's ``(major, minor)`` is in :py:data:`TESTED_TORCH_VERSIONS`."""
    return torch_version() in TESTED_TORCH_VERSIONS


@lru_cache(maxsize=None)
def mkldnn_available() -> bool:
    """
    Whether oneDNN's fused convolutions (:py:func:`mkldnn_conv`, :py:func:`mkldnn_conv_add_`,
    :py:func:`mkldnn_pack_weight`) run and agree with ``torch.nn.functional.conv3d`` here; probed
    once, so a torch build without them uses ``torch.nn.functional`` convolutions instead.
    """
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        g = torch.Generator().manual_seed(
            0
        )  # not torch's global generator: the probe must not shift a training's random stream
        x = torch.randn(1, 3, 5, 4, 3, generator=g).contiguous(memory_format=torch.channels_last_3d)
        w = torch.randn(4, 3, 3, 3, 3, generator=g).contiguous(memory_format=torch.channels_last_3d)
        b = torch.randn(4, generator=g)
        one = [1, 1, 1]
        ref = F.conv3d(x, w, b, padding=1).relu()
        y = mkldnn_conv(x, w, b, one, one, 1, "relu")
        packed = mkldnn_pack_weight(w, one, one, 1, x.shape)
        out = torch.zeros_like(ref, memory_format=torch.channels_last_3d)
        out = mkldnn_conv_add_(out, x, packed, b, one, one, 1, "relu")
        return bool(torch.allclose(y, ref, atol=1e-4, rtol=1e-4) and torch.allclose(out, ref, atol=1e-4, rtol=1e-4))
    except Exception:  # any failure (missing op, unsupported build) means: use the torch path
        return False


@lru_cache(maxsize=None)
def mkldnn_bf16_available() -> bool:
    """
    Whether oneDNN's fused convolutions also run in bfloat16 here (``torch.ops.mkldnn``'s own check,
    natively with ``avx512_bf16``/AMX or emulated) and agree with float32 within bfloat16 rounding;
    probed once. Without it, a bfloat16 folded graph uses ``torch.nn.functional`` convolutions.
    """
    try:
        if not mkldnn_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        g = torch.Generator().manual_seed(0)  # not torch's global generator (see mkldnn_available)
        x = torch.randn(1, 3, 5, 4, 3, generator=g).contiguous(memory_format=torch.channels_last_3d)
        w = torch.randn(4, 3, 3, 3, 3, generator=g).contiguous(memory_format=torch.channels_last_3d)
        b = torch.randn(4, generator=g)
        one = [1, 1, 1]
        ref = F.conv3d(x, w, b, padding=1).relu()
        xb, wb, bb = x.bfloat16(), w.bfloat16(), b.bfloat16()
        y = mkldnn_conv(xb, wb, bb, one, one, 1, "relu")
        packed = mkldnn_pack_weight(wb, one, one, 1, x.shape)
        out = mkldnn_conv_add_(torch.zeros_like(y), xb, packed, bb, one, one, 1, "relu")
        tol = 0.05 * float(ref.abs().max())
        return bool(
            torch.allclose(y.float(), ref, atol=tol, rtol=0) and torch.allclose(out.float(), ref, atol=tol, rtol=0)
        )
    except Exception:  # any failure (missing op, unsupported build) means: use the torch path
        return False


def mkldnn_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: Sequence[int],
    stride: Sequence[int],
    groups: int,
    act: str,
) -> torch.Tensor:
    """``act(conv(x, weight, bias))`` as one oneDNN call (``x`` channels-last; ``act`` ``"none"``,
    ``"relu"``, ``"sigmoid"`` or ``"tanh"``; ``weight`` dense or from :py:func:`mkldnn_pack_weight`)."""
    ones = [1] * (x.dim() - 2)
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, bias, list(padding), list(stride), ones, groups, act, [], ""
    )


def mkldnn_conv_add_(
    acc: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: Sequence[int],
    stride: Sequence[int],
    groups: int,
    act: str,
) -> torch.Tensor:
    """``acc = act(conv(x, weight, bias) + acc)`` in place as one oneDNN call (``acc`` and ``x``
    channels-last; ``act`` ``"none"`` or ``"relu"``). Returns ``acc``."""
    ones = [1] * (x.dim() - 2)
    torch.ops.mkldnn._convolution_pointwise_.binary(
        acc,
        x,
        weight,
        bias,
        list(padding),
        list(stride),
        ones,
        groups,
        "add",
        None,
        "relu" if act == "relu" else None,
        [],
        None,
    )
    return acc


def mkldnn_pack_weight(
    weight: torch.Tensor, padding: Sequence[int], stride: Sequence[int], groups: int, input_shape: Sequence[int]
) -> torch.Tensor:
    """``weight`` in oneDNN's blocked layout for inputs of ``input_shape`` (made once, not on every call)."""
    ones = [1] * (len(input_shape) - 2)
    return torch.ops.mkldnn._reorder_convolution_weight(
        weight, list(padding), list(stride), ones, groups, [int(s) for s in input_shape]
    )


def upsample_linear_into(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """
    ``out[:] = F.interpolate(src, size=out.shape[2:], mode="(bi/tri)linear", align_corners=False)``
    without allocating the result where torch's kernel can write into ``out`` (2D and 3D); otherwise
    through ``F.interpolate`` and a copy. Returns ``out``.
    """
    size = [int(s) for s in out.shape[2:]]
    if src.dim() == 5:
        torch._C._nn.upsample_trilinear3d(src, size, False, None, None, None, out=out)
    elif src.dim() == 4:
        torch._C._nn.upsample_bilinear2d(src, size, False, None, None, out=out)
    else:
        mode = {3: "linear", 4: "bilinear", 5: "trilinear"}[src.dim()]
        out.copy_(F.interpolate(src, size=size, mode=mode, align_corners=False))
    return out


def conv_forward(conv: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv``'s own convolution (its padding mode, dilation, groups) with ``weight`` and ``bias``
    instead of its parameters."""
    return conv._conv_forward(x, weight, bias)


def state_key(module: nn.Module) -> tuple:
    """
    A key that changes when any parameter or buffer of ``module`` is replaced or modified in place
    (``load_state_dict``, an optimiser step, running statistics): each tensor's storage address and
    in-place modification counter.
    """
    return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))
