"""
Primitives of the fused inference path: convolutions with their eval-mode batch norm folded in and the
activation applied in the same pass, reusable work buffers, and separable (bi/tri)linear resampling as
matrix products.

They compute the same function as the modules they replace (up to float rounding); the networks use
them only in eval mode without autograd (see ``GridAttentionUNet(fast_inference=...)``). The private
torch calls they rely on are in :py:mod:`monai_ag.networks.fast.adapters`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_weights

from monai_ag.networks.fast import adapters
from monai_ag.networks.fast.adapters import mkldnn_available, mkldnn_bf16_available

__all__ = [
    "BufferPool",
    "FoldedConv",
    "apply_act_",
    "channels_last",
    "conv_act",
    "conv_add_act_",
    "fold_convolution",
    "fold_post",
    "foldable_norm",
    "fuse_norm",
    "linear_resize_matrix",
    "mkldnn_available",
    "mkldnn_bf16_available",
    "resize_linear",
    "run_module",
]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_FUSED_ACTS = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
_SKIPPED = (nn.Identity, nn.modules.dropout._DropoutNd, nn.Dropout)


def _cl_format(dim: int) -> torch.memory_format:
    return torch.channels_last_3d if dim == 5 else torch.channels_last if dim == 4 else torch.contiguous_format


def _cl_strides(shape: Sequence[int]) -> tuple[int, ...]:
    # (B, C, *spatial) stored as (B, *spatial, C)
    strides = [0] * len(shape)
    acc = 1
    for d in [1, *range(len(shape) - 1, 1, -1), 0]:
        strides[d] = acc
        acc *= shape[d]
    return tuple(strides)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """
    ``x`` in the channels-last layout with its canonical strides. ``Tensor.contiguous`` returns a
    one-channel tensor unchanged (both layouts describe it), and oneDNN would then produce a
    default-layout output; restriding such a tensor is free.
    """
    if x.dim() not in (4, 5):
        return x.contiguous()
    strides = _cl_strides(x.shape)
    if x.stride() == strides:
        return x
    if not x.is_contiguous(memory_format=_cl_format(x.dim())):
        x = x.contiguous(memory_format=_cl_format(x.dim()))
    # the strides now differ at most on size-1 axes, where any stride addresses the same memory
    return x if x.stride() == strides else x.as_strided(x.shape, strides)


def _use_mkldnn(x: torch.Tensor) -> bool:
    if x.device.type != "cpu" or x.dim() not in (4, 5):
        return False
    if x.dtype == torch.float32:
        return mkldnn_available()
    return x.dtype == torch.bfloat16 and mkldnn_bf16_available()


class BufferPool:
    """
    Work buffers of the fused inference path, kept between calls: a buffer handed back serves the
    next request of the same shape, so a sliding-window run writes into the same memory for every
    window instead of faulting in fresh pages for each large intermediate (on this CPU, fresh pages
    cost about ten times the arithmetic of a ReLU over them). Holds at most the largest set of
    buffers one call had alive at once; :py:meth:`clear` drops them.

    Example::

        pool = BufferPool()
        buf = pool.take((1, 16, 96, 96, 96), like=x)  # channels-last, uninitialised
        pool.give(buf)  # when no longer needed; the next take of that shape returns it
    """

    def __init__(self, min_numel: int = 1 << 20) -> None:
        self.min_numel = min_numel
        self._free: dict[tuple, list[torch.Tensor]] = {}
        self._owned: dict[int, torch.Tensor] = {}

    def wants(self, shape: Sequence[int]) -> bool:
        """Whether a tensor of ``shape`` is large enough to be pooled (smaller ones are cheap to allocate)."""
        n = 1
        for s in shape:
            n *= int(s)
        return n >= self.min_numel

    def take(self, shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
        """An uninitialised channels-last tensor of ``shape`` with ``like``'s dtype and device (a new,
        unpooled one when ``shape`` is small)."""
        key = (tuple(int(s) for s in shape), like.dtype, like.device)
        free = self._free.get(key)
        if free:
            return free.pop()
        t = torch.empty(key[0], dtype=like.dtype, device=like.device, memory_format=_cl_format(len(key[0])))
        t = channels_last(t)
        if self.wants(key[0]):
            self._owned[id(t)] = t
        return t

    def give(self, *tensors: torch.Tensor | None) -> None:
        """Hand buffers back (tensors not from this pool are ignored)."""
        for t in tensors:
            if t is not None and self._owned.get(id(t)) is t:
                free = self._free.setdefault((tuple(t.shape), t.dtype, t.device), [])
                if not any(f is t for f in free):
                    free.append(t)

    def clear(self) -> None:
        """Drop every buffer."""
        self._free.clear()
        self._owned.clear()

    @property
    def nbytes(self) -> int:
        """Memory held by the pool's buffers."""
        return sum(t.numel() * t.element_size() for t in self._owned.values())


def conv_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    groups: int = 1,
    act: str = "none",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """
    ``act(conv(x, weight, bias))`` with zero padding, ``act`` one of ``"none"``, ``"relu"``,
    ``"sigmoid"``, ``"tanh"``. On CPU in float32 it is one oneDNN call in the channels-last layout
    (the activation is a post-op; torch's own dispatch picks a slow non-oneDNN kernel for some 3D
    shapes), written into ``out`` when given (a channels-last buffer of the output's shape; not with
    ``"sigmoid"``/``"tanh"``); elsewhere ``torch.nn.functional.convNd`` and an in-place activation.
    ``weight`` may be prepacked by :py:func:`~monai_ag.networks.fast.adapters.mkldnn_pack_weight` for
    the oneDNN path.

    Returns:
        the result: ``out`` when it was used, else a new tensor.

    Example::

        y = conv_act(x, w, b, stride=(1, 1, 1), padding=(1, 1, 1), act="relu")
    """
    if _use_mkldnn(x):
        if out is not None and act in ("none", "relu"):
            return conv_add_act_(out.zero_(), x, weight, bias, stride, padding, groups, act)
        return adapters.mkldnn_conv(channels_last(x), weight, bias, padding, stride, groups, act)
    if weight.is_mkldnn:
        weight = weight.to_dense()
    conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.dim()]
    bias = None if bias is None else bias.to(x.dtype)
    y = conv(x, weight.to(x.dtype), bias, tuple(stride), tuple(padding), 1, groups)
    return apply_act_(y, act)


def conv_add_act_(
    acc: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: Sequence[int],
    padding: Sequence[int],
    groups: int = 1,
    act: str = "none",
) -> torch.Tensor:
    """
    ``acc = act(conv(x, weight, bias) + acc)`` in place, ``act`` ``"none"`` or ``"relu"``: on CPU in
    float32 one oneDNN call with the sum and the activation as post-ops (``acc`` channels-last).

    Returns:
        ``acc``.
    """
    if act not in ("none", "relu"):
        raise ValueError(f"conv_add_act_ fuses act 'none' or 'relu', got {act!r}.")
    if _use_mkldnn(x) and acc.is_contiguous(memory_format=_cl_format(acc.dim())):
        return adapters.mkldnn_conv_add_(acc, channels_last(x), weight, bias, padding, stride, groups, act)
    acc.add_(conv_act(x, weight, bias, stride, padding, groups))
    return apply_act_(acc, act)


def run_module(module: nn.Module, *args: torch.Tensor) -> Any:
    """
    ``module(*args)``; when the first argument is bfloat16 (a bfloat16 folded graph calling a module it
    does not fold, e.g. a PReLU, an instance norm or an unfolded gate with float32 weights), under CPU
    autocast to bfloat16, with tensor outputs cast back to bfloat16; a norm layer computes its
    statistics in float32.
    """
    x = args[0]
    if x.dtype != torch.bfloat16:
        return module(*args)
    if isinstance(module, _NORMS):  # statistics over many values: in float32
        return module(x.float()).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(*args)
    if isinstance(out, torch.Tensor):
        return out.to(torch.bfloat16)
    if isinstance(out, (tuple, list)):
        return type(out)(
            o.to(torch.bfloat16) if isinstance(o, torch.Tensor) and o.is_floating_point() else o for o in out
        )
    return out


def apply_act_(y: torch.Tensor, act: str) -> torch.Tensor:
    """``y`` with the activation named ``act`` (see :py:func:`conv_act`) applied in place."""
    if act == "relu":
        return y.relu_()
    if act == "sigmoid":
        return y.sigmoid_()
    if act == "tanh":
        return y.tanh_()
    return y


def foldable_norm(norm: nn.Module | None) -> bool:
    """
    Whether ``norm`` is, in eval mode, a per-channel affine map that folds into the convolution before
    it: a batch norm in eval mode with running statistics (not an instance/group/layer norm).
    """
    return isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training and norm.running_var is not None


def fuse_norm(weight: torch.Tensor, bias: torch.Tensor | None, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """
    ``(weight, bias)`` of a convolution followed by the batch norm ``norm`` (see
    :py:func:`foldable_norm`) as one convolution, by ``torch.nn.utils.fusion.fuse_conv_bn_weights``,
    computed in float64.
    """

    def f64(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().double()

    w, b = fuse_conv_bn_weights(
        f64(weight),
        f64(bias),
        f64(norm.running_mean),
        f64(norm.running_var),
        norm.eps,
        f64(norm.weight),
        f64(norm.bias),
    )
    return w.detach(), b.detach()


def fold_post(post: Sequence[nn.Module]) -> tuple[nn.Module | None, str, list[nn.Module]]:
    """
    Split the eval-mode modules that follow a linear map into ``(norm, act, rest)``: the leading norm
    when it folds (see :py:func:`foldable_norm`; else ``None``), the next activation when oneDNN
    fuses it (``"relu"``, ``"sigmoid"``, ``"tanh"``; else ``"none"``), and the modules left to apply
    as they are. Identities and dropouts (no-ops in eval) are dropped.
    """
    mods = [m for m in post if not isinstance(m, _SKIPPED)]
    norm = mods[0] if mods and foldable_norm(mods[0]) else None
    if norm is not None:
        mods = mods[1:]
    act = "none"
    if mods and type(mods[0]) in _FUSED_ACTS:
        act = _FUSED_ACTS[type(mods[0])]
        mods = mods[1:]
    return norm, act, mods


class FoldedConv:
    """
    A convolution with the eval-mode modules that follow it folded in: a batch norm into the weights,
    then a ReLU/sigmoid/tanh as a fused activation; any other module (an instance norm, a PReLU) is
    applied afterwards as it is, and dropout (identity in eval) is skipped. It can also be built
    from folded weights directly (``weight``, ``bias``).

    Args:
        conv: the convolution (``nn.ConvNd``).
        post: the modules applied after it, in order (e.g. the ``N``, ``D``, ``A`` of MONAI's ``ADN``).
        weight: folded weights replacing ``conv``'s (then ``post`` must not start with a norm).
        bias: the bias going with ``weight``.
        dtype: the dtype of the folded weights and bias, and so of the computation (e.g.
            ``torch.bfloat16``; folding itself is done in float64); default: ``conv``'s.

    Example::

        fc = FoldedConv(block.conv, list(block.adn.children()))  # block: a MONAI Convolution
        y = fc(x)  # == block(x) in eval mode
    """

    def __init__(
        self,
        conv: nn.Module,
        post: Sequence[nn.Module] = (),
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if not isinstance(conv, _CONV_TYPES):
            raise TypeError(f"FoldedConv needs a torch.nn.ConvNd, got {type(conv).__name__}.")
        dtype = conv.weight.dtype if dtype is None else dtype
        norm, self.act, self.post = fold_post(post)
        if weight is not None:
            if norm is not None:
                raise ValueError("FoldedConv: with folded weights, post must not start with a norm to fold.")
            w, b = weight.detach().double(), None if bias is None else bias.detach().double()
        elif norm is not None:
            w, b = fuse_norm(conv.weight, conv.bias, norm)
        else:
            w = conv.weight.detach().double()
            b = conv.bias.detach().double() if conv.bias is not None else None
        self.weight = w.to(dtype).contiguous(memory_format=_cl_format(w.dim()))
        self.bias = None if b is None else b.to(dtype)
        self.kernel = list(self.weight.shape[2:])
        self.stride = list(conv.stride)
        self.padding = list(conv.padding) if not isinstance(conv.padding, str) else None
        self.generic = conv.padding_mode != "zeros" or self.padding is None or any(d != 1 for d in conv.dilation)
        self.groups = conv.groups
        self.conv = conv
        self._packed: dict[tuple, torch.Tensor] = {}

    def out_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """The output shape for input ``x`` (zero padding, no dilation)."""
        spatial = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(x.shape[2:], self.padding, self.kernel, self.stride)]
        return (x.shape[0], self.weight.shape[0], *spatial)

    def _weight_for(self, x: torch.Tensor) -> torch.Tensor:
        if not _use_mkldnn(x):
            return self.weight
        key = tuple(x.shape)
        packed = self._packed.get(key)
        if packed is None:
            # oneDNN's blocked weight layout for this input size, made once instead of on every call
            if len(self._packed) >= 2:
                self._packed.clear()
            packed = adapters.mkldnn_pack_weight(self.weight, self.padding, self.stride, self.groups, key)
            self._packed[key] = packed
        return packed

    def add_into(self, acc: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``acc = act(conv(x) + acc)`` in place (one oneDNN call on CPU, see :py:func:`conv_add_act_`);
        needs no ``post`` modules. Returns ``acc``."""
        if self.post:
            raise ValueError("FoldedConv.add_into: the modules after the convolution cannot be fused.")
        if self.generic or self.act not in ("none", "relu"):
            bias = None if self.bias is None else self.bias.to(x.dtype)
            acc.add_(adapters.conv_forward(self.conv, x, self.weight.to(x.dtype), bias))
            return apply_act_(acc, self.act)
        w = self._weight_for(x)
        return conv_add_act_(acc, x, w, self.bias, self.stride, self.padding, self.groups, self.act)

    def __call__(self, x: torch.Tensor, pool: BufferPool | None = None) -> torch.Tensor:
        if self.generic:  # padding modes / dilation: the module's own conv with the folded weights
            bias = None if self.bias is None else self.bias.to(x.dtype)
            y = apply_act_(adapters.conv_forward(self.conv, x, self.weight.to(x.dtype), bias), self.act)
        else:
            out = None
            if pool is not None and not self.post and self.act in ("none", "relu") and _use_mkldnn(x):
                shape = self.out_shape(x)
                out = pool.take(shape, like=x) if pool.wants(shape) else None
            w = self._weight_for(x)
            y = conv_act(x, w, self.bias, self.stride, self.padding, self.groups, self.act, out=out)
        for m in self.post:
            y = run_module(m, y)
        return y


def fold_convolution(block: nn.Module, dtype: torch.dtype | None = None) -> FoldedConv:
    """
    A :py:class:`FoldedConv` for a MONAI ``Convolution`` block (``conv`` then ``adn``), an
    ``nn.Sequential`` starting with a convolution, or a bare convolution; ``dtype`` as in ``FoldedConv``.
    """
    if isinstance(block, _CONV_TYPES):
        return FoldedConv(block, dtype=dtype)
    if hasattr(block, "conv") and isinstance(block.conv, _CONV_TYPES):
        adn = getattr(block, "adn", None)
        return FoldedConv(block.conv, list(adn.children()) if adn is not None else [], dtype=dtype)
    if isinstance(block, nn.Sequential) and len(block) > 0 and isinstance(block[0], _CONV_TYPES):
        return FoldedConv(block[0], list(block)[1:], dtype=dtype)
    raise TypeError(f"cannot fold {type(block).__name__}: expected a convolution block.")


@lru_cache(maxsize=256)
def _resize_matrix_cached(n_in: int, n_out: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    # torch's linear resampling with align_corners=False and an explicit output size:
    # src = max((dst + 0.5) * n_in / n_out - 0.5, 0), neighbours floor(src) and min(floor(src) + 1, n_in - 1)
    # (torch computes the weights in float64 for float64 data, in float32 otherwise)
    opmath = torch.float64 if dtype == torch.float64 else torch.float32
    scale = torch.tensor(n_in / n_out, dtype=opmath)
    dst = torch.arange(n_out, dtype=opmath)
    src = ((dst + 0.5) * scale - 0.5).clamp_min(0)
    i0 = src.floor().long().clamp_max(n_in - 1)
    i1 = (i0 + 1).clamp_max(n_in - 1)
    l1 = src - i0.to(opmath)
    m = torch.zeros(n_out, n_in, dtype=opmath)
    m.index_put_((torch.arange(n_out), i0), 1 - l1, accumulate=True)
    m.index_put_((torch.arange(n_out), i1), l1, accumulate=True)
    return m.to(device=device, dtype=dtype)


def linear_resize_matrix(
    n_in: int, n_out: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """
    The ``(n_out, n_in)`` matrix of 1D linear resampling as ``torch.nn.functional.interpolate`` does it
    with ``align_corners=False`` and ``size=n_out``: ``interpolate(x, size=n_out) == x @ M.T``.
    """
    return _resize_matrix_cached(int(n_in), int(n_out), str(torch.device(device)), dtype)


def resize_linear(
    xs: torch.Tensor | Sequence[torch.Tensor], size: Sequence[int], out: torch.Tensor | None = None
) -> torch.Tensor:
    """
    ``F.interpolate(x, size, mode="(bi/tri)linear", align_corners=False)`` for each tensor of ``xs``,
    summed, as one small matrix product per axis (for the few channels of segmentation heads it is
    several times faster than torch's kernel; the results agree to float rounding). The products
    along the first spatial axis of all inputs are one (their grids stacked along that axis), so the
    sum costs a single pass over the output.

    Args:
        xs: a tensor ``(B, C, *spatial)`` or several with the same ``B`` and ``C``.
        size: the output's spatial size.
        out: a contiguous tensor of the output's shape to add the result to, in place.

    Returns:
        the (summed) resampled tensors, contiguous; ``out`` when given.

    Example::

        y = resize_linear(torch.rand(1, 5, 12, 12, 12), (96, 96, 96))
        y = resize_linear([torch.rand(1, 5, 12, 12, 12), torch.rand(1, 5, 24, 24, 24)], (96, 96, 96))
    """
    xs = [xs] if isinstance(xs, torch.Tensor) else list(xs)
    size = [int(s) for s in size]
    x0 = xs[0]
    n_sp, b, c = x0.dim() - 2, x0.shape[0], x0.shape[1]
    if len(size) != n_sp or any(x.dim() != x0.dim() or x.shape[:2] != x0.shape[:2] for x in xs):
        raise ValueError(f"resize_linear needs tensors of equal batch and channels and {n_sp} output sizes.")
    rest_out = 1
    for s in size[1:]:
        rest_out *= s
    mats, parts = [], []
    for x in xs:
        # (B * C, *spatial), contiguous; every axis but the first, innermost first
        t = x.contiguous().view(b * c, *x.shape[2:])
        shape = list(t.shape)
        for axis in range(n_sp, 1, -1):
            n_in, n_out = shape[axis], size[axis - 1]
            if n_in == n_out:
                continue
            m = linear_resize_matrix(n_in, n_out, x.device, x.dtype)
            outer, inner = 1, 1
            for s in shape[:axis]:
                outer *= s
            for s in shape[axis + 1 :]:
                inner *= s
            shape[axis] = n_out
            if inner == 1:
                t = (t.reshape(outer, n_in) @ m.t()).view(shape)
            else:
                t = torch.matmul(m, t.reshape(outer, n_in, inner)).view(shape)
        mats.append(linear_resize_matrix(shape[1], size[0], x.device, x.dtype))
        parts.append(t.reshape(b * c, shape[1], rest_out))
    m = mats[0] if len(mats) == 1 else torch.cat(mats, dim=1)
    t = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    if out is None:
        return torch.matmul(m, t).view(b, c, *size)
    if tuple(out.shape) != (b, c, *size) or not out.is_contiguous():
        raise ValueError(f"resize_linear: out must be a contiguous tensor of shape {(b, c, *size)}.")
    out.view(b * c, size[0], rest_out).baddbmm_(m.expand(b * c, *m.shape), t)
    return out
