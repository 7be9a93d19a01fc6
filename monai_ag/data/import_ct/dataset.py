"""A whole import: every case of the sources into one dataset folder with its ``dataset.json`` (:py:func:`import_ct`),
and the command ``python -m monai_ag.data.import_ct`` (:py:func:`main`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_ag.data.classes import CLASS_NAMES
from monai_ag.data.presets import PRESETS, get_preset, load_mapping
from monai_ag.utils.cli import EXPECTED_ERRORS, command_parser, run_command
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

from .case import import_case
from .sources import CaseSource, find_cases

__all__ = ["import_ct", "main"]


def _describe(item: Mapping[str, Any]) -> str:
    parts = []
    for name, organ in item["summary"]["organs"].items():
        if not organ["annotated"]:
            parts.append(f"{name} not annotated")
        elif organ["volume_ml"]:
            parts.append(f"{name} {organ['volume_ml']:.1f} mL at {organ['mean_hu']:.0f} HU")
        else:
            parts.append(f"{name} absent")
    shape = "x".join(str(s) for s in item["summary"]["shape"])
    spacing = "x".join(f"{s:g}" for s in item["summary"]["spacing_mm"])
    return f"{shape} voxels of {spacing} mm; " + ", ".join(parts)


def import_ct(
    sources: Sequence[str | os.PathLike] = (),
    output: str | os.PathLike = "dataset",
    preset: str | None = None,
    mapping: str | os.PathLike | Mapping[str, Any] | None = None,
    pairs: Sequence[Sequence[str | os.PathLike]] = (),
    validation: Sequence[str] = (),
    overwrite: bool = False,
    check_alignment: bool = True,
    verbose: bool = True,
) -> Path:
    """
    Import real CT cases into ``output`` and write its ``dataset.json`` (see the module docstring).

    Args:
        sources: case folders or dataset folders (see :py:func:`find_cases`).
        output: the dataset folder to create; ``--dataset_dir`` for the bundle.
        preset: label convention of label-map sources and TotalSegmentator folders
            (:py:data:`monai_ag.data.presets.PRESETS`).
        mapping: a user mapping instead of ``preset`` (JSON file or dict, see
            :py:func:`monai_ag.data.presets.load_mapping`).
        pairs: ``(image, label_map)`` pairs.
        validation: case ids to list under ``"validation"`` instead of ``"training"``.
        overwrite: replace an existing ``dataset.json`` and case files (refused otherwise, before any work).
        check_alignment: refuse organs that lie mostly in fat or air (CT in HU only).
        verbose: print one line per case.

    Returns:
        the path of ``dataset.json``.

    Example::

        import_ct(["ircad01", "ircad17"], "data/real")  # then: --dataset_dir data/real
    """
    if preset is not None and mapping is not None:
        raise ValueError("give either a preset or a mapping, not both.")
    chosen = load_mapping(mapping) if mapping is not None else get_preset(preset) if preset else None
    cases = [c for src in sources for c in find_cases(src)]
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"a pair is (image, label map), got {list(pair)}.")
        for p in pair:
            if not os.path.exists(p):
                raise FileNotFoundError(f"pair file {p} does not exist.")
        cases.append(CaseSource.from_pair(pair[0], pair[1]))
    if not cases:
        raise ValueError("nothing to import: give source folders and/or --pair IMAGE LABEL.")
    ids = [c.case_id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"several sources give the case id(s) {dupes}; rename the folders/files so ids are unique.")
    unknown = sorted(set(validation) - set(ids))
    if unknown:
        raise ValueError(f"validation case(s) {unknown} are not among the imported cases {ids}.")
    out = Path(output)
    json_path = out / "dataset.json"
    for path in [json_path] + [out / d / f"{i}.nii.gz" for i in ids for d in ("imagesTr", "labelsTr")]:
        refuse_overwrite(path, overwrite, option="--overwrite")
    items = []
    for n, case in enumerate(cases, 1):
        start = time.perf_counter()
        if verbose:
            print(f"[{n}/{len(cases)}] {case.case_id} ({case.layout}) ...", flush=True)
        item = import_case(case, out, chosen, check_alignment=check_alignment)
        item["case_id"] = case.case_id
        items.append(item)
        if verbose:
            print(
                f"[{n}/{len(cases)}] {case.case_id}: {_describe(item)} ({time.perf_counter() - start:.1f} s)",
                flush=True,
            )
    dataset = {
        "name": out.name,
        "description": "real CT imported with monai_ag.data.import_ct",
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "labels": {str(k): v for k, v in CLASS_NAMES.items()},
        "numTraining": len(items),
        "training": [
            {k: i[k] for k in ("image", "label", "annotated", "case_id")}
            for i in items
            if i["case_id"] not in validation
        ],
        "validation": [
            {k: i[k] for k in ("image", "label", "annotated", "case_id")} for i in items if i["case_id"] in validation
        ],
        "import_summary": {i["case_id"]: i["summary"] for i in items},
    }
    if not dataset["validation"]:
        del dataset["validation"]
    if not dataset["training"]:
        raise ValueError("every case is in the validation list: leave at least one for training.")
    with atomic_write(json_path) as tmp:
        tmp.write_text(json.dumps(dataset, indent=2) + "\n", encoding="utf-8")
    if verbose:
        print(f"wrote {json_path} ({len(items)} cases): train with --dataset_dir {out}", flush=True)
    return json_path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m monai_ag.data.import_ct SRC [SRC ...] --output DIR [--preset NAME]``."""
    parser = command_parser(
        "python -m monai_ag.data.import_ct",
        "Import real abdominal CT (IRCAD or TotalSegmentator folders, image + label-map pairs) into an MSD-style "
        "dataset in the bundle's classes (1 liver, 2 spleen, 3 kidney, 4 pancreas).",
    )
    parser.epilog = "presets: " + "; ".join(f"{k}: {p.description}" for k, p in PRESETS.items())
    parser.add_argument("sources", nargs="*", metavar="SRC", help="case folders or dataset folders")
    parser.add_argument(
        "--output", required=True, help="the dataset folder to write (dataset.json, imagesTr, labelsTr)"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=sorted(PRESETS), help="label convention of the sources")
    group.add_argument("--mapping", help="JSON file mapping label values / mask names to bundle classes")
    parser.add_argument(
        "--pair", nargs=2, action="append", default=[], metavar=("IMAGE", "LABEL"), help="an image and its label map"
    )
    parser.add_argument("--validation", nargs="+", default=[], metavar="CASE", help="case ids for the validation list")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset.json and case files")
    parser.add_argument("--no_alignment_check", action="store_true", help="skip the fat/air check (non-CT images)")

    def run(args) -> None:
        import_ct(
            args.sources,
            args.output,
            preset=args.preset,
            mapping=args.mapping,
            pairs=args.pair,
            validation=args.validation,
            overwrite=args.overwrite,
            check_alignment=not args.no_alignment_check,
            verbose=not args.quiet,
        )

    return run_command(parser, argv, run, errors=(*EXPECTED_ERRORS, KeyError))
