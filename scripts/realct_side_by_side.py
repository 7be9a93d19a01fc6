"""Train the bundle's real-CT recipe on the shared real cases, with the Attention U-Net and with MONAI's
``UNet`` and ``AttentionUnet`` swapped in through ``network_spec`` only, at equal wall-clock time and at equal
steps, one fold per validation case, and report each run's validation Dice and HD95 per organ.

Run from the repository root (everything the runs write goes under ``--work``; only ``--output`` is
written into the repository)::

    python scripts/realct_side_by_side.py --data ../shared/data --work /tmp/realct --minutes 10 \\
        --output docs/results/realct

What it does:

1. imports the shared cases with ``python -m monai_ag.data.import_ct`` (IRCAD 01 and 17, the
   TotalSegmentator example CT and its 20-slice DICOM series) into ``--work/dataset``;
2. for each fold (``--folds``: the validation case; the others train), writes a ``dataset.json`` whose
   ``validation`` and ``test`` lists hold that case;
3. trains each network with ``configs/train.json`` + ``configs/profile_realct.json`` (+ a file that
   sets ``network_spec``) for ``--minutes`` of training (``time_limit_minutes``), validating once, on
   the final weights (``val_interval`` larger than any run, so no checkpoint is picked on the
   validation case);
4. with ``--equal_steps``, trains the MONAI networks again for as many epochs (= steps: same data,
   batch and patches) as the Attention U-Net's timed run managed;
5. evaluates each ``models/model.pt`` on the validation case with ``evaluate.json`` and no profile (the
   model's recipe record gives spacing, window and network; fp32 inference,
   the per-organ Dice, HD95 and the rest of ``summary.json``) and writes ``--output/side_by_side.json``
   (every run: fold, network, budget, wall minutes, epochs, steps, metrics, the CPU).

``--set ID JSON`` overrides a config id in every run (an ablation of the profile, e.g.
``--set flip_augmentation true --name flips``).

The fold's validation case is the only held-out data: with three real cases this is a smoke test of
generalisation, not a benchmark (see ``docs/results.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

from monai_ag.data.classes import ORGAN_NAMES
from monai_ag.utils.fileio import refuse_overwrite
from monai_ag.utils.precision import cpu_capabilities

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundle"
PROFILE = "configs/profile_realct.json"

# the same width and depth for every network: only the architecture differs
CHANNELS = [8, 16, 32, 64, 128]
NETWORKS = {
    "GridAttentionUNet": None,  # the bundle's own network (monai_ag.GridAttentionUNet, deep supervision)
    # a network_spec: the class and its arguments (out_channels follows the classes); the model's recipe record
    # carries it to inference
    "UNet": {
        "_target_": "monai.networks.nets.UNet",
        "_mode_": "callable",
        "spatial_dims": 3,
        "in_channels": 1,
        "channels": CHANNELS,
        "strides": [2, 2, 2, 2],
        "num_res_units": 2,
        "norm": "batch",
    },
    "AttentionUnet": {
        "_target_": "monai.networks.nets.AttentionUnet",
        "_mode_": "callable",
        "spatial_dims": 3,
        "in_channels": 1,
        "channels": CHANNELS,
        "strides": [2, 2, 2, 2],
    },
}


def _cpu() -> dict:
    """The machine the numbers come from: cores, torch, and the CPU model and bf16/AMX units (torch's cpuinfo)."""
    return {"cores": os.cpu_count(), "torch": torch.__version__, **cpu_capabilities()}


def _run(cmd: list[str], log: Path, cwd: Path) -> float:
    """Run ``cmd`` in ``cwd`` with its output in ``log``; the wall time in minutes."""
    start = time.perf_counter()
    with open(log, "w") as out:
        result = subprocess.run(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
    if result.returncode:
        sys.exit(f"command failed (exit {result.returncode}), see {log}:\n  {' '.join(cmd)}")
    return (time.perf_counter() - start) / 60.0


def import_cases(data: Path, work: Path) -> Path:
    """The shared cases as a bundle dataset folder under ``work/dataset`` (imported once)."""
    dataset = work / "dataset"
    if (dataset / "dataset.json").is_file():
        return dataset
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for case in ("ircad01", "ircad17"):
        if not (src / case).is_dir():
            with tarfile.open(data / f"{case}.tar.gz") as tar:
                tar.extractall(src, filter="data")
    ts = data / "totalseg"
    cmd = [
        sys.executable,
        "-m",
        "monai_ag.data.import_ct",
        str(src / "ircad01"),
        str(src / "ircad17"),
        "--pair",
        str(ts / "example_ct.nii.gz"),
        str(ts / "example_ct_seg_v2.nii.gz"),
        "--pair",
        str(ts / "example_ct_dicom"),
        str(ts / "example_seg_dicom.nii.gz"),
        "--preset",
        "totalsegmentator_v2",
        "--output",
        str(dataset),
    ]
    _run(cmd, work / "import.log", REPO)
    return dataset


def write_fold(dataset: Path, case: str, work: Path) -> Path:
    """A dataset folder whose validation and test lists hold ``case`` and whose training list the others."""
    desc = json.loads((dataset / "dataset.json").read_text())
    items = [
        dict(i, image=str(dataset / i["image"]), label=str(dataset / i["label"]))
        for i in desc["training"] + desc.get("validation", [])
    ]
    held_out = [i for i in items if i.get("case_id") == case]
    if not held_out:
        sys.exit(
            f"--folds: no case {case!r} in {dataset / 'dataset.json'} (cases: {[i.get('case_id') for i in items]})"
        )
    fold = work / "folds" / case
    fold.mkdir(parents=True, exist_ok=True)
    desc = {
        "name": f"shared real CT, validation {case}",
        "labels": desc.get("labels", {}),
        "training": [i for i in items if i.get("case_id") != case],
        "validation": held_out,
        "test": held_out,
    }
    (fold / "dataset.json").write_text(json.dumps(desc, indent=2))
    return fold


def train_and_evaluate(
    name: str, fold: Path, run_dir: Path, minutes: float | None, epochs: int | None, settings: dict | None = None
) -> dict:
    """One training of network ``name`` on ``fold`` (``settings``: config ids to override, e.g. an ablation) and
    its evaluation on the validation case."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    shutil.copytree(BUNDLE, run_dir, ignore=shutil.ignore_patterns("models", "runs", "eval", "data"))
    configs = ["configs/train.json", PROFILE]
    eval_configs = ["configs/inference.json", "configs/evaluate.json"]  # the model's recipe record says the rest
    if NETWORKS[name] is not None:
        settings = {**(settings or {}), "network_spec": NETWORKS[name]}
    if settings:
        (run_dir / "configs" / "settings.json").write_text(json.dumps(settings, indent=2))
        configs.append("configs/settings.json")
    # one validation, of the final weights: at the time limit, or at the last epoch
    if minutes:
        overrides = ["--time_limit_minutes", str(minutes), "--val_interval", "100000"]
    else:
        overrides = ["--time_limit_minutes", "None", "--max_epochs", str(epochs), "--val_interval", str(epochs)]
    overrides += ["--dataset_dir", str(fold)]
    bundle_run = [sys.executable, "-m", "monai.bundle", "run", "--config_file"]
    wall = _run(bundle_run + [str(configs)] + overrides, run_dir / "train.log", run_dir)
    trainer = torch.load(run_dir / "models" / "checkpoint.pt", weights_only=False, map_location="cpu")["trainer"]
    _run(
        bundle_run + [str(eval_configs), "--dataset_dir", str(fold), "--precision", "fp32", "--overwrite", "true"],
        run_dir / "evaluate.log",
        run_dir,
    )
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    return {
        "network": name,
        "network_def": NETWORKS[name] or "monai_ag.GridAttentionUNet (the bundle's)",
        "budget_minutes": minutes,
        "wall_minutes_training_run": round(wall, 2),
        "epochs": trainer["iteration"] // trainer["epoch_length"],
        "steps": trainer["iteration"],
        "summary": summary,
    }


def _organ_values(summary: dict, metric: str) -> dict:
    """``{organ: mean metric}`` from an evaluation's ``summary.json`` (None where not scored)."""
    return {
        o: summary["classes"][o]["metrics"][metric]["mean"] for o in ORGAN_NAMES.values() if o in summary["classes"]
    }


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def markdown_table(record: dict) -> str:
    """The runs of a ``side_by_side.json`` as a Markdown table: Dice and HD95 (mm) per organ, steps and minutes."""
    organs = list(ORGAN_NAMES.values())
    head = ["fold (validation case)", "network", "comparison", "epochs / steps", "training min"]
    head += [f"{o} Dice" for o in organs] + [f"{o} HD95" for o in organs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run in record["runs"]:
        dice, hd95 = _organ_values(run["summary"], "dice"), _organ_values(run["summary"], "hd95_mm")
        row = [
            run["fold"],
            run["network"],
            run["comparison"],
            f"{run['epochs']} / {run['steps']}",
            f"{run['wall_minutes_training_run']:.1f}",
        ]
        row += [_cell(dice.get(o), 3) for o in organs] + [_cell(hd95.get(o), 1) for o in organs]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--work", type=Path, help="folder for the imported cases, runs and evaluations")
    parser.add_argument("--report", type=Path, help="only print the Markdown table of an existing side_by_side.json")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per run (default 10)")
    parser.add_argument("--folds", nargs="+", default=["ircad01", "example_ct"], help="validation case of each fold")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument(
        "--equal_steps", action="store_true", help="also train the MONAI networks for the Attention U-Net's epochs"
    )
    parser.add_argument(
        "--equal_steps_epochs",
        type=int,
        help="with --equal_steps: this many epochs (e.g. from an earlier run's JSON) instead of the Attention "
        "U-Net's in this run",
    )
    parser.add_argument(
        "--set",
        nargs=2,
        action="append",
        default=[],
        metavar=("ID", "JSON"),
        help="override a config id for every run (an ablation), e.g. --set flip_augmentation true",
    )
    parser.add_argument("--output", type=Path, help="folder for side_by_side.json")
    parser.add_argument("--name", default="side_by_side", help="the JSON's and the runs' name (default side_by_side)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output/<name>.json")
    args = parser.parse_args(argv)
    if args.report:
        print(markdown_table(json.loads(args.report.read_text())))
        return
    if args.work is None or args.output is None:
        parser.error("--work and --output are required (unless --report)")

    args.work.mkdir(parents=True, exist_ok=True)
    args.output.mkdir(parents=True, exist_ok=True)
    out_file = args.output / f"{args.name}.json"
    refuse_overwrite(out_file, args.overwrite, option="--overwrite")
    settings = {key: json.loads(value) for key, value in args.set}
    record = {
        "command": " ".join(["scripts/realct_side_by_side.py"] + (argv if argv is not None else sys.argv[1:])),
        "profile": PROFILE,
        "settings": settings,
        "cpu": _cpu(),
        "runs": [],
    }
    dataset = import_cases(args.data, args.work)
    for case in args.folds:
        fold = write_fold(dataset, case, args.work)
        ours_epochs = None
        for name in args.networks:
            print(f"[{case}] {name}: {args.minutes:g} min of training ...", flush=True)
            run = train_and_evaluate(
                name, fold, args.work / args.name / case / f"{name}_time", args.minutes, None, settings
            )
            run.update(fold=case, comparison="equal time")
            record["runs"].append(run)
            out_file.write_text(json.dumps(record, indent=2))
            print(
                f"  {run['epochs']} epochs, {run['steps']} steps; Dice {_organ_values(run['summary'], 'dice')}",
                flush=True,
            )
            if name == "GridAttentionUNet":
                ours_epochs = run["epochs"]
        ours_epochs = args.equal_steps_epochs or ours_epochs
        if args.equal_steps and ours_epochs:
            for name in args.networks:
                if name == "GridAttentionUNet":
                    continue
                print(f"[{case}] {name}: {ours_epochs} epochs (the Attention U-Net's) ...", flush=True)
                run = train_and_evaluate(
                    name, fold, args.work / args.name / case / f"{name}_steps", None, ours_epochs, settings
                )
                run.update(fold=case, comparison="equal steps")
                record["runs"].append(run)
                out_file.write_text(json.dumps(record, indent=2))
                print(
                    f"  {run['wall_minutes_training_run']:.1f} min; Dice {_organ_values(run['summary'], 'dice')}",
                    flush=True,
                )
    print(markdown_table(record))
    print(f"wrote {out_file}")


if __name__ == "__main__":
    main()
