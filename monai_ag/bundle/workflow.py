"""What a bundle run needs around its workflow: a fail-fast check of the bundle folder, the record of each run
(``run.json``), and the scoring of an inference run's label maps against their references."""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

from monai_ag.utils.config import as_bool
from monai_ag.utils.fileio import atomic_write

__all__ = ["check_bundle", "evaluate_predictions", "save_run_config"]

logger = logging.getLogger(__name__)


def check_bundle(bundle_root: str | os.PathLike) -> str:
    """
    Check that ``bundle_root`` is a bundle (holds ``configs/``), so a run started from the wrong
    working directory stops at once instead of writing models and logs in the wrong place.

    Args:
        bundle_root: the bundle's root folder.

    Returns:
        the absolute bundle root.

    Example::

        check_bundle("bundle")  # "/abs/path/bundle"
    """
    root = Path(bundle_root).resolve()
    if not (root / "configs").is_dir():
        raise FileNotFoundError(
            f"bundle_root '{bundle_root}' (resolved to {root}) has no configs/ folder: run from the bundle "
            "directory or pass --bundle_root <path to bundle>."
        )
    return str(root)


#: options of ``monai.bundle.scripts.run`` that are not config overrides
_RUN_OPTIONS = ("config_file", "meta_file", "logging_file", "tracking", "args_file", "run_id", "init_id", "final_id")


def _cli_record(argv: list[str]) -> dict:
    """
    The config that ``python -m monai.bundle run`` builds from ``argv``, built the way MONAI builds it: ``fire``
    (MONAI's command-line parser, ``monai/bundle/__main__.py``) turns the arguments into ``run``'s keyword
    arguments (an ``args_file`` supplies defaults, as in ``monai.bundle.scripts.run``), and
    :py:class:`monai.bundle.ConfigParser` reads the config files and metadata and applies the overrides, as
    :py:class:`monai.bundle.ConfigWorkflow` does. A record is best effort: it never stops a run.
    """
    import fire
    from monai.bundle import ConfigParser

    if len(argv) < 2 or argv[1] not in ("run", "run_workflow"):
        return {}
    kwargs: dict[str, Any] = {}
    try:
        fire.Fire(lambda *_, **kw: kwargs.update(kw), command=argv[2:], name="monai.bundle run")
        if kwargs.get("args_file"):
            kwargs = {**ConfigParser.load_config_file(kwargs["args_file"]), **kwargs}
        files = kwargs.get("config_file")
        if not files:
            return {}
        parser = ConfigParser()
        parser.read_config(f=files)
        first = Path(files if isinstance(files, str) else files[0])
        meta_file = kwargs.get("meta_file") or first.parent / "metadata.json"
        if not isinstance(meta_file, (str, Path)) or Path(meta_file).is_file():
            parser.read_meta(f=meta_file)
        overrides = {k: v for k, v in kwargs.items() if k not in _RUN_OPTIONS}
        parser.update(pairs=overrides)
    except (Exception, SystemExit) as e:  # noqa: BLE001 (fire exits on arguments it cannot parse)
        logger.warning("could not rebuild the config of %s for the run record: %s", " ".join(argv[1:]), e)
        return {}
    return {"config_files": files, "overrides": overrides, "config": parser.get()}


def save_run_config(run_dir: str | os.PathLike) -> str:
    """
    Write ``<run_dir>/run.json``: the command line, the merged config (files, metadata and overrides, rebuilt
    with MONAI's own argument parsing and ``ConfigParser`` when run from ``python -m monai.bundle run``) and
    the versions of Python, MONAI, PyTorch and monai-ag — so every run's TensorBoard logs sit beside what
    produced them. (MONAI writes an executed config itself only with ``--tracking``, through
    ``ConfigWorkflow.patch_bundle_tracking``, and a config has no handle on the parser that runs it.)

    Example::

        "initialize": ["$monai_ag.bundle.save_run_config(@run_dir)"]

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
        **_cli_record(sys.argv),
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
        [p for p, _ in pairs],
        [lb for _, lb in pairs],
        names,
        output_dir=output_dir,
        overwrite=as_bool(overwrite, "overwrite"),
        annotated=[item.get("annotated") for item in datalist],
    )
