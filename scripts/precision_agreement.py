"""How closely the bundle's bf16 inference reproduces its fp32 inference with trained weights: runs
``configs/inference.json`` twice on the same cases (``--precision fp32`` and ``--precision bf16``) and
compares the written label maps voxel by voxel.

Run from the repository root, with a bundle folder that holds a trained ``models/model.pt``::

    python scripts/precision_agreement.py --bundle_root bundle --dataset_dir bundle/data/phantom \\
        --output docs/results/precision_agreement_phantom.json [--config_file configs/profile_realct.json]

Reported per case and over all cases: the fraction of voxels with the same label (``agreement``), the
same over the voxels either run labels as an organ (``organ_agreement``, the stricter number: most
voxels are easy background) and the Dice between the two runs' masks per organ. The two runs go to a
temporary folder; only ``--output`` is written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from monai.transforms import LoadImage

from monai_ag.data.classes import ORGAN_NAMES
from monai_ag.utils.fileio import refuse_overwrite
from monai_ag.utils.precision import cpu_capabilities

REPO = Path(__file__).resolve().parents[1]
ORGANS = ORGAN_NAMES  # label value: organ


def _cpu() -> dict:
    """The machine the numbers come from: cores, torch, and the CPU model and bf16/AMX units (torch's cpuinfo)."""
    return {"cores": os.cpu_count(), "torch": torch.__version__, **cpu_capabilities()}


def _infer(bundle_root: Path, configs: list[str], dataset_dir: Path, key: str, precision: str, out: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(configs),
        "--bundle_root",
        str(bundle_root),
        "--dataset_dir",
        str(dataset_dir),
        "--data_list_key",
        key,
        "--output_dir",
        str(out),
        "--precision",
        precision,
    ]
    log = out.parent / f"{precision}.log"
    with open(log, "w") as f:
        result = subprocess.run(
            cmd, cwd=bundle_root, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
    if result.returncode:
        sys.exit(
            f"inference with --precision {precision} failed (exit {result.returncode}):\n{log.read_text()[-3000:]}"
        )


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Agreement of two label maps of the same shape."""
    same = a == b
    organ = (a > 0) | (b > 0)
    dice = {}
    for value, name in ORGANS.items():
        ma, mb = a == value, b == value
        total = int(ma.sum() + mb.sum())
        dice[name] = None if total == 0 else 2.0 * float((ma & mb).sum()) / total
    return {
        "voxels": int(a.size),
        "differing_voxels": int((~same).sum()),
        "agreement": float(same.mean()),
        "organ_voxels": int(organ.sum()),
        "organ_agreement": float(same[organ].mean()) if organ.any() else 1.0,
        "dice_between_runs": dice,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle_root", type=Path, required=True, help="bundle folder with models/model.pt")
    parser.add_argument("--dataset_dir", type=Path, required=True, help="dataset folder (dataset.json)")
    parser.add_argument("--data_list_key", default="test", help="the dataset.json list to run on (default test)")
    parser.add_argument(
        "--config_file",
        nargs="*",
        default=[],
        help="extra configs after inference.json (not a training profile: the model's recipe record gives "
        "its settings)",
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    refuse_overwrite(args.output, args.overwrite, option="--overwrite")

    bundle_root = args.bundle_root.resolve()
    configs = ["configs/inference.json"] + args.config_file
    loader = LoadImage(image_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {p: Path(tmp) / p for p in ("fp32", "bf16")}
        for precision, out in runs.items():
            print(f"inference in {precision} ...", flush=True)
            _infer(bundle_root, configs, args.dataset_dir.resolve(), args.data_list_key, precision, out)
        cases = {}
        for seg in sorted(runs["fp32"].rglob("*_seg.nii.gz")):
            other = runs["bf16"] / seg.relative_to(runs["fp32"])
            a, b = (np.asarray(loader(str(p))) for p in (seg, other))
            cases[seg.name[: -len("_seg.nii.gz")]] = compare(a, b)
    if not cases:
        sys.exit("no label maps were written: check --dataset_dir and --data_list_key")
    voxels = sum(c["voxels"] for c in cases.values())
    organ = sum(c["organ_voxels"] for c in cases.values())
    differing = sum(c["differing_voxels"] for c in cases.values())
    organ_same = sum(c["organ_agreement"] * c["organ_voxels"] for c in cases.values())
    record = {
        "command": " ".join(["scripts/precision_agreement.py"] + (argv if argv is not None else sys.argv[1:])),
        "configs": configs,
        "cpu": _cpu(),
        "all_cases": {
            "voxels": voxels,
            "differing_voxels": differing,
            "agreement": 1.0 - differing / voxels,
            "organ_agreement": organ_same / organ if organ else 1.0,
        },
        "cases": cases,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    total = record["all_cases"]
    print(
        f"{len(cases)} case(s): bf16 labels equal fp32 on {100 * total['agreement']:.3f} % of {voxels} voxels, "
        f"{100 * total['organ_agreement']:.3f} % of the {organ} organ voxels; wrote {args.output}"
    )


if __name__ == "__main__":
    main()
