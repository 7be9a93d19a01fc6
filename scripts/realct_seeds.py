"""Compare training recipes on the shared real CT over folds and seeds: every recipe x network x fold x seed is
trained (``configs/train.json`` + ``configs/profile_realct.json`` + the recipe's settings + ``--seed``) and
evaluated on its fold's held-out case, and the report gives each organ's mean ± standard deviation over folds x
seeds and each fold's seed-to-seed spread. One run per recipe cannot tell recipes apart (single runs of the
real-CT recipe were seen to swing from liver 0.44 to 0.89): a difference smaller than the spread is a tie.

Run from the repository root::

    python scripts/realct_seeds.py --data ../shared/data --work /tmp/realct --epochs 60 --seeds 0 1 2 \\
        --recipe constant '{}' \\
        --recipe cosine_swa '{"lr_schedule": "cosine", "weight_averaging": true}' \\
        --output docs/results/realct --name seeds_screen

``--epochs`` fixes the step budget (equal steps for every recipe and network: the screening mode; the CPU changes
between sessions, so wall-clock budgets do not compare across sessions); ``--minutes`` gives a time budget
instead. The sweep is resumable: each run writes ``result.json`` in its own folder under ``--work/<name>`` and a
rerun of the same command skips the runs that are there (``--overwrite`` only governs the output JSON, which is
rewritten after every run). The held-out cases are the folds' (``--folds``, default IRCAD 01 and the
TotalSegmentator NIfTI example, the two cases with several organs); the others train.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realct_side_by_side import (  # noqa: E402 (the same folds, import and training as the side-by-side script)
    NETWORKS,
    _cpu,
    _organ_values,
    import_cases,
    train_and_evaluate,
    write_fold,
)

from monai_ag.data.classes import ORGAN_NAMES  # noqa: E402
from monai_ag.utils.fileio import refuse_overwrite  # noqa: E402

__all__ = ["aggregate", "fold_table", "markdown_table", "run_sweep"]


def _one_run(recipe: str, settings: dict, network: str, fold_case: str, seed: int, args) -> dict:
    """One training + evaluation, or its stored result when this exact run was done before."""
    run_dir = args.work / args.name / recipe / fold_case / f"{network}_seed{seed}"
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    fold = write_fold(import_cases(args.data, args.work), fold_case, args.work)
    run = train_and_evaluate(network, fold, run_dir, args.minutes, args.epochs, {**settings, "seed": seed})
    run.update(recipe=recipe, settings=settings, fold=fold_case, seed=seed)
    done.write_text(json.dumps(run, indent=2))
    return run


def run_sweep(args, recipes: dict[str, dict]) -> Iterator[dict]:
    """Every fold x seed x recipe x network (resumable), each run as it ends: recipes interleaved, so a sweep
    stopped early still compares them on the same folds and seeds."""
    for fold_case in args.folds:
        for seed in args.seeds:
            for recipe, settings in recipes.items():
                for network in args.networks:
                    print(f"[{recipe}] {network} fold {fold_case} seed {seed} ...", flush=True)
                    run = _one_run(recipe, settings, network, fold_case, seed, args)
                    print(
                        f"  {run['steps']} steps, {run['wall_minutes_training_run']:.1f} min; Dice "
                        f"{_organ_values(run['summary'], 'dice')}",
                        flush=True,
                    )
                    yield run


def _stats(values: list[float]) -> dict:
    v = [x for x in values if x is not None and x == x]
    return {
        "n": len(v),
        "mean": statistics.fmean(v) if v else None,
        "std": statistics.stdev(v) if len(v) > 1 else None,
        "spread": (max(v) - min(v)) if v else None,
    }


def aggregate(runs: list[dict]) -> dict:
    """Per recipe and network: each organ's Dice over all folds x seeds (mean, std, n), each fold's seed-to-seed
    spread (max - min) and mean, and the training steps and minutes."""
    out: dict = {}
    for run in runs:
        key = f"{run['recipe']} / {run['network']}"
        entry = out.setdefault(key, {"recipe": run["recipe"], "network": run["network"], "runs": []})
        entry["runs"].append(run)
    for entry in out.values():
        runs_here = entry.pop("runs")
        dice = [_organ_values(r["summary"], "dice") for r in runs_here]
        entry["organs"] = {o: _stats([d.get(o) for d in dice]) for o in ORGAN_NAMES.values()}
        entry["folds"] = {}
        for fold in sorted({r["fold"] for r in runs_here}):
            fold_dice = [d for d, r in zip(dice, runs_here) if r["fold"] == fold]
            entry["folds"][fold] = {o: _stats([d.get(o) for d in fold_dice]) for o in ORGAN_NAMES.values()}
        entry["steps"] = _stats([r["steps"] for r in runs_here])
        entry["training_minutes"] = _stats([r["wall_minutes_training_run"] for r in runs_here])
    return out


def _cell(s: dict) -> str:
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if s["std"] is not None else f"{s['mean']:.3f}"


def markdown_table(summary: dict) -> str:
    """Mean ± std over folds x seeds per organ, the largest seed-to-seed spread of a fold, steps and minutes."""
    organs = list(ORGAN_NAMES.values())
    head = (
        ["recipe / network"]
        + [f"{o} Dice" for o in organs]
        + ["largest fold spread (liver, spleen, kidney)", "steps", "training min"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, entry in summary.items():
        spread = [max((f[o]["spread"] or 0.0) for f in entry["folds"].values()) for o in ("liver", "spleen", "kidney")]
        row = [key] + [_cell(entry["organs"][o]) for o in organs]
        row += [
            " / ".join(f"{s:.2f}" for s in spread),
            f"{entry['steps']['mean']:.0f}",
            f"{entry['training_minutes']['mean']:.1f}",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def fold_table(summary: dict) -> str:
    """Per fold: each organ's mean ± std over the seeds, one row per recipe / network (the folds differ: a
    held-out case's organ can be out of reach for every recipe while the other fold's is found)."""
    organs = list(ORGAN_NAMES.values())
    head = ["fold", "recipe / network"] + [f"{o} Dice" for o in organs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    folds = sorted({fold for entry in summary.values() for fold in entry["folds"]})
    for fold in folds:
        for key, entry in summary.items():
            if fold in entry["folds"]:
                lines.append("| " + " | ".join([fold, key] + [_cell(entry["folds"][fold][o]) for o in organs]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work", type=Path, help="folder for the imported cases and the runs (resumable)")
    parser.add_argument("--report", type=Path, help="only print the table of an existing output JSON")
    parser.add_argument(
        "--recipe",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "JSON"),
        help="a recipe: its name and the config settings it overrides (repeat for each recipe)",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="a fixed step budget: this many epochs for every run")
    budget.add_argument("--minutes", type=float, help="a time budget per run instead")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", nargs="+", default=["ircad01", "example_ct"], help="the held-out case of each fold")
    parser.add_argument("--networks", nargs="+", default=["GridAttentionUNet"], choices=list(NETWORKS))
    parser.add_argument("--output", type=Path, help="folder for <name>.json")
    parser.add_argument("--name", default="seeds", help="the output's and the runs' name")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output/<name>.json")
    args = parser.parse_args(argv)
    if args.report:
        summary = json.loads(args.report.read_text())["summary"]
        print(markdown_table(summary) + "\n\n" + fold_table(summary))
        return
    if args.work is None or args.output is None or not args.recipe or (args.epochs is None and args.minutes is None):
        parser.error("--work, --output, at least one --recipe and --epochs or --minutes are required (unless --report)")
    recipes = {name: json.loads(settings) for name, settings in args.recipe}
    args.work.mkdir(parents=True, exist_ok=True)
    args.output.mkdir(parents=True, exist_ok=True)
    out_file = args.output / f"{args.name}.json"
    refuse_overwrite(out_file, args.overwrite, option="--overwrite")
    record = {
        "command": " ".join(["scripts/realct_seeds.py"] + (argv if argv is not None else sys.argv[1:])),
        "profile": "configs/profile_realct.json",
        "recipes": recipes,
        "epochs": args.epochs,
        "minutes": args.minutes,
        "cpu": _cpu(),
        "runs": [],
    }
    for run in run_sweep(args, recipes):
        record["runs"].append(run)
        record["summary"] = aggregate(record["runs"])
        out_file.write_text(json.dumps(record, indent=2))
    print(markdown_table(record["summary"]) + "\n\n" + fold_table(record["summary"]))
    print(f"wrote {out_file}")


if __name__ == "__main__":
    main()
