"""
The command line ``python -m monai_ag.bench``: its options, the quick smoke-run sizes, the table on
stdout and the results as JSON (written atomically, never over an existing file without ``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from monai_ag.utils.fileio import atomic_write, refuse_overwrite

from .benchmark import run_benchmark
from .report import format_table

__all__ = ["main"]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m monai_ag.bench",
        description="Speed and memory of GridAttentionUNet vs its gate-less backbone and MONAI's AttentionUnet/UNet.",
    )
    p.add_argument("--patch_size", type=int, nargs="+", default=[96], help="patch size, 1 or 3 ints (default 96)")
    p.add_argument("--volume_size", type=int, nargs=3, default=[200, 200, 120], help="sliding-window volume size")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds of forward/forward+backward (default 5)")
    p.add_argument("--sw_repeats", type=int, default=None, help="rounds of sliding-window inference (default: repeats)")
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--out_channels", type=int, default=5, help="output classes (default 5)")
    p.add_argument("--batch_size", type=int, default=1, help="batch of the forward/training runs (default 1)")
    p.add_argument("--no_amp", action="store_true", help="no float16 autocast on CUDA")
    p.add_argument(
        "--networks",
        nargs="+",
        default=None,
        help="measure only these entries (and the baseline), e.g. attention_unet attention_unet_bf16",
    )
    p.add_argument("--onnx", action="store_true", help="also time the ONNX Runtime export of the paper network (CPU)")
    p.add_argument("--image", default=None, help="a CT file for sliding-window inference (resampled to 2 mm)")
    p.add_argument("--output", default=None, help="JSON file to write (default monai_ag_bench_<device>.json)")
    p.add_argument("--overwrite", action="store_true", help="overwrite --output if it exists")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one round: a smoke run of a few seconds")
    args = p.parse_args(argv)
    if len(args.patch_size) not in (1, 3):
        p.error(f"--patch_size takes 1 or 3 ints, got {args.patch_size}")
    return args


def _benchmark_arguments(args: argparse.Namespace, device: str) -> dict[str, Any]:
    """The keyword arguments of :py:func:`~monai_ag.bench.benchmark.run_benchmark` for the parsed options;
    with ``--quick``, tiny sizes, one round and (unless ``--threads``) one thread."""
    kwargs: dict[str, Any] = dict(
        patch_size=args.patch_size,
        volume_size=args.volume_size,
        repeats=args.repeats,
        sw_repeats=args.sw_repeats,
        device=device,
        threads=args.threads,
        out_channels=args.out_channels,
        batch_size=args.batch_size,
        amp=not args.no_amp,
        image=args.image,
        onnx=args.onnx,
        networks=args.networks,
    )
    if args.quick:
        kwargs.update(patch_size=[32], volume_size=[40, 40, 40], repeats=1, sw_repeats=1, reference_size=16, image=None)
        if args.threads is None:
            kwargs["threads"] = 1  # one thread: no synchronisation stalls on a busy machine, seconds in CI
    return kwargs


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The command line: ``python -m monai_ag.bench [--quick] [--output results.json] ...``."""
    args = _parse(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    output = Path(args.output or f"monai_ag_bench_{torch.device(device).type}.json")
    try:
        refuse_overwrite(output, args.overwrite, option="--overwrite")
    except FileExistsError as e:
        raise SystemExit(str(e)) from None
    results = run_benchmark(**_benchmark_arguments(args, device), log=lambda m: print(m, file=sys.stderr, flush=True))
    results["command"] = "python -m monai_ag.bench " + " ".join(sys.argv[1:] if argv is None else argv)
    print(format_table(results))
    with atomic_write(output) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {output}")
    return results
