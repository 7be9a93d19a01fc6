"""Small helpers the bundle's configs call: fail-fast checks and run records."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

from monai_ag.utils.fileio import atomic_write, refuse_overwrite  # refuse_overwrite re-exported: the configs call monai_ag.utils.bundle.refuse_overwrite

__all__ = ["as_bool", "check_bundle", "evaluate_predictions", "refuse_overwrite", "require_file", "save_run_config"]

logger = logging.getLogger(__name__)


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0", "")


def as_bool(value: Any, name: str = "flag") -> bool:
    """
    A config flag as a bool. ``python -m monai.bundle run --flag false`` passes the *string*
    ``"false"``, which Python treats as true; this reads ``true/false/yes/no/on/off/1/0`` (any case)
    and real bools, and rejects anything else with a message naming the flag.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}.")


def check_bundle(bundle_root: str | os.PathLike, *_: Any) -> str:
    """
    Check that ``bundle_root`` is a bundle (holds ``configs/``), so a run started from the wrong
    working directory stops at once instead of writing models and logs in the wrong place.
    Extra arguments are ignored (configs pass their import checks here to evaluate them first).

    Returns:
        the absolute bundle root.
    """
    root = Path(bundle_root).resolve()
    if not (root / "configs").is_dir():
        raise FileNotFoundError(
            f"bundle_root '{bundle_root}' (resolved to {root}) has no configs/ folder: run from the bundle "
            "directory or pass --bundle_root <path to bundle>."
        )
    return str(root)


def require_file(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """Raise ``FileNotFoundError`` naming ``path`` and what it should hold when it is not a file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} not found: {path}. {hint}".strip())
    return str(path)


def _cli_record() -> dict:
    """The config files and overrides of a ``python -m monai.bundle run`` command line, merged."""
    from monai.bundle import ConfigParser

    argv = sys.argv[1:]
    if not argv or argv[0] not in ("run", "run_workflow"):
        return {}
    files: Any = None
    overrides: dict[str, Any] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            if not _ and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            if key == "config_file":
                files = value
            elif key not in ("meta_file", "logging_file", "tracking", "args_file", "run_id", "init_id", "final_id"):
                overrides[key] = value
        i += 1
    if files is None:
        return {}
    try:
        files = json.loads(files.replace("'", '"')) if files.strip().startswith("[") else files
        parser = ConfigParser(ConfigParser.load_config_files(files))
    except Exception as e:  # a record is best effort: never stop a run for it
        logger.warning("could not re-read the config files %s for the run record: %s", files, e)
        return {}
    for k, v in overrides.items():
        parser[k] = v
    return {"config_files": files, "overrides": overrides, "config": parser.get()}


def save_run_config(run_dir: str | os.PathLike) -> str:
    """
    Write ``<run_dir>/run.json``: the command line, the merged config (files and overrides) when
    run from ``python -m monai.bundle run``, and the versions of Python, MONAI, PyTorch and
    monai-ag — so every run's TensorBoard logs sit beside what produced them.

    Returns:
        the path written.
    """
    import monai
    import torch

    import monai_ag

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    record = {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "versions": {
            "python": platform.python_version(),
            "monai": monai.__version__,
            "torch": torch.__version__,
            "monai_ag": monai_ag.__version__,
        },
        **_cli_record(),
    }
    path = run / "run.json"
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))
    logger.info("run record written to %s", path)
    return str(path)


def evaluate_predictions(
    pred_dir: str | os.PathLike,
    datalist: list[dict],
    class_names: dict,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    postfix: str = "seg",
) -> dict:
    """
    Score the label maps that inference wrote to ``pred_dir`` against the ``label`` of each
    ``datalist`` item with :py:func:`monai_ag.metrics.segmentation_report` (Dice, HD95, MSD in mm,
    precision, recall; CSV and summary in ``output_dir``).

    Returns:
        the summary.
    """
    from monai_ag.metrics import pair_predictions, segmentation_report

    unlabelled = [item["image"] for item in datalist if not item.get("label")]
    if unlabelled:
        raise ValueError(f"evaluation needs a label for every case; these have none: {unlabelled[:5]}")
    pairs = pair_predictions(pred_dir, datalist, postfix=postfix)
    names = {int(k): v for k, v in class_names.items() if int(k) != 0}
    return segmentation_report(
        [p for p, _ in pairs], [lb for _, lb in pairs], names, output_dir=output_dir,
        overwrite=as_bool(overwrite, "overwrite"), annotated=[item.get("annotated") for item in datalist],
    )
