"""
Export a trained model with its recipe inside: TorchScript (the record as an extra file, MONAI's
``load_net_with_metadata`` reads it back) or ONNX (the record as a metadata property), so an exported file
keeps what inference needs to know about the data (spacing, orientation, HU window, classes).

MONAI's ``python -m monai.bundle ckpt_export network_def ...`` still works (``network_def`` is built from the
record), but its file carries only the configs, not the record.

Example::

    python -m monai_ag.bundle.export --model models/model.pt --output models/model.ts
    python -m monai_ag.bundle.export --model models/model.pt --output models/model.onnx --format onnx
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from monai_ag.bundle.recipe import build_network, read_recipe, recipe_path
from monai_ag.utils.cli import command_parser, run_command
from monai_ag.utils.fileio import atomic_write, refuse_overwrite

__all__ = ["RECIPE_KEY", "export_model", "main"]

logger = logging.getLogger(__name__)

#: the name of the record inside an exported file: TorchScript extra file, ONNX metadata property
RECIPE_KEY = "model.recipe.json"
_FORMATS = ("torchscript", "onnx")


def export_model(
    model_path: str | os.PathLike,
    filepath: str | os.PathLike,
    format: str = "torchscript",
    overwrite: bool = False,
) -> Path:
    """
    Export the weights at ``model_path`` (a plain state dict with a recipe record beside it, as every
    training of the bundle writes) to ``filepath``, the record embedded under :py:data:`RECIPE_KEY`.

    Args:
        model_path: ``models/model.pt``.
        filepath: the file to write (``.ts`` or ``.onnx``).
        format: ``"torchscript"`` or ``"onnx"`` (needs ``onnx`` and ``onnxscript``, the ``[onnx]`` extra).
        overwrite: replace an existing ``filepath``.

    Returns:
        the path written.

    Raises:
        FileNotFoundError: no weights, or no record beside them.
        ValueError: an unknown format, or a record that cannot be read.
    """
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}.")
    model = Path(model_path)
    if not model.is_file():
        raise FileNotFoundError(f"trained weights not found: {model}.")
    record = read_recipe(model)
    if record is None:
        raise FileNotFoundError(
            f"{model} has no recipe record ({recipe_path(model).name}): an export without it would not say how to "
            "pre-process its input. Retrain, or export with MONAI's ckpt_export."
        )
    out = Path(filepath)
    refuse_overwrite(out, overwrite, option="--overwrite")
    net = build_network(record["network"]).eval()
    net.load_state_dict(torch.load(model, map_location="cpu", weights_only=True), strict=True)
    text = recipe_path(model).read_text()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        if format == "torchscript":
            _torchscript(net, tmp, text)
        else:
            _onnx(net, tmp, text, record)
    logger.info("exported %s with its recipe to %s", model, out)
    return out


def _torchscript(net: torch.nn.Module, path: Path, record_text: str) -> None:
    from monai.data import save_net_with_metadata
    from monai.networks.utils import convert_to_torchscript

    scripted = convert_to_torchscript(net)
    save_net_with_metadata(
        scripted,
        str(path),
        include_config_vals=True,
        append_timestamp=False,
        meta_values={"monai_ag_recipe": json.loads(record_text)},
        more_extra_files={RECIPE_KEY: record_text.encode()},
    )


def _onnx(net: torch.nn.Module, path: Path, record_text: str, record: dict) -> None:
    import onnx

    from monai_ag.networks.export import export_onnx

    export_onnx(net, path, example_size=record["patch_size"])
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = RECIPE_KEY, record_text
    onnx.save(proto, str(path))


def main(argv: Sequence[str] | None = None) -> int:
    parser = command_parser("python -m monai_ag.bundle.export", "Export a trained model with its recipe record inside.")
    parser.add_argument("--model", default="models/model.pt", help="the weights (a recipe record beside them)")
    parser.add_argument("--output", required=True, help="the file to write (.ts or .onnx)")
    parser.add_argument("--format", choices=_FORMATS, default=None, help="default: from the output's suffix")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")

    def run(args) -> None:
        fmt = args.format or ("onnx" if str(args.output).endswith(".onnx") else "torchscript")
        print(export_model(args.model, args.output, fmt, overwrite=args.overwrite))

    return run_command(parser, argv, run)
