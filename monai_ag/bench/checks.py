"""
The benchmark's correctness checks: a fast path is only worth timing if it computes the same function
as the plain modules, and bfloat16 only if it stays within bfloat16 rounding of float32. Both compare
logits on the benchmark's input; an argmax mismatch can only be a near-tie of the reference logits,
so the largest top-2 gap at the mismatches is recorded with them.
"""

from __future__ import annotations

from typing import Any

import torch

from .networks import FAST_PLAIN_PAIRS

__all__ = ["BF16_NOTE", "bf16_check", "compare_logits", "fast_path_checks"]

#: what the bfloat16 check's figures mean for random weights
BF16_NOTE = "untrained weights (random init): margins are small; see docs/precision_parity.json for trained models"


def compare_logits(a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    """
    How far logits ``a`` are from the reference logits ``b`` (both ``(B, C, *spatial)``): max |difference|,
    max |reference logit|, argmax agreement and mismatches, the largest top-2 gap of ``b`` where the
    argmaxes differ (``None`` without mismatches) and the number of voxels.
    """
    a, b = a.float(), b.float()
    mismatch = a.argmax(1) != b.argmax(1)
    top2 = b.topk(2, dim=1).values
    gap = (top2[:, 0] - top2[:, 1])[mismatch]
    return {
        "max_abs_diff": float((a - b).abs().max()),
        "max_abs_logit": float(b.abs().max()),
        "argmax_agreement": 1.0 - float(mismatch.float().mean()),
        "argmax_mismatches": int(mismatch.sum()),
        "largest_top2_gap_at_mismatches": float(gap.max()) if gap.numel() else None,
        "voxels": int(a[:, 0].numel()),
    }


def _eval_logits(nets: dict[str, dict[str, Any]], name: str, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return nets[name]["net"].eval()(x).float()


def fast_path_checks(nets: dict[str, dict[str, Any]], x: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Fast entry -> its :py:func:`compare_logits` figures against its plain twin (the ONNX Runtime
    export against the paper network's plain modules), for the pairs present in ``nets``."""
    checks: dict[str, dict[str, Any]] = {}
    for fast, plain in (*FAST_PLAIN_PAIRS, ("onnxruntime", "attention_unet_plain")):
        if fast in nets and plain in nets:
            c = compare_logits(_eval_logits(nets, fast, x), _eval_logits(nets, plain, x))
            keys = ("max_abs_diff", "argmax_mismatches", "largest_top2_gap_at_mismatches", "voxels")
            checks[fast] = {k: c[k] for k in keys}
    return checks


def bf16_check(nets: dict[str, dict[str, Any]], x: torch.Tensor) -> dict[str, Any]:
    """The bfloat16 paper network against the float32 plain modules (:py:func:`compare_logits` and a note);
    empty when either is not in ``nets``."""
    if "attention_unet_bf16" not in nets or "attention_unet_plain" not in nets:
        return {}
    a = _eval_logits(nets, "attention_unet_bf16", x)
    b = _eval_logits(nets, "attention_unet_plain", x)
    return {**compare_logits(a, b), "note": BF16_NOTE}
