"""
A trained model's recipe: what inference needs to see the data and build the network as training did.

nnU-Net keeps the plans a model was trained with beside its weights, and inference reads them; a bundle
with training profiles needs the same, or a model trained at 3 mm is run at the bundle's default 4 mm
without a word. Every training of this bundle writes ``model.recipe.json`` beside each ``model.pt``
(:py:meth:`ModelRecipe.write`, called by the model saver, rank 0 only, atomically) and every way of
running the model (``inference.json``, ``evaluate.json``, ``multi_gpu_evaluate.json``, MONAI Label's
``BundleInferTask``, which reads ``inference.json`` only) takes the *fixed* settings from it
(:py:func:`for_inference`). A training that starts from weights with a record (``pretrained_weights``,
or MONAI Label's fine-tuning from ``models/model.pt``) takes them from that record
(:py:func:`for_training`).

Fixed settings (:py:data:`FIXED_SETTINGS`): ``spacing``, ``orientation``, ``hu_window``, ``class_names``
and the ``network`` (its class and constructor arguments). In the configs each is ``null`` unless the
user sets it; ``null`` means "the model's" (or the config's ``recipe_defaults`` when there is no
record). A value that contradicts the record stops the run with both values named, unless
``override_recipe`` is true. The training patch is recorded too: it is inference's default
sliding-window ROI, a free setting.

The record (JSON, :py:data:`RECIPE_VERSION` 1)::

    {"format": "monai-ag model recipe", "version": 1,
     "model": {"file": "model.pt", "sha256": "..."},
     "spacing": [3.0, 3.0, 3.0], "orientation": "RAS", "hu_window": [-175.0, 250.0],
     "class_names": {"0": "background", "1": "liver", ...},
     "network": {"_target_": "monai_ag.networks.nets.grid_attention_unet.GridAttentionUNet", ...},
     "patch_size": [96, 96, 64],
     "training": {"profiles": [...], "start_weights": ..., "settings": {...}},
     "versions": {"monai_ag": ..., "monai": ..., "torch": ..., "python": ...},
     "written": "2026-12-07T12:00:00Z"}

The weights and the record cannot be replaced in one atomic step: the record names the ``sha256`` of
the ``model.pt`` it describes, and a reader that finds other weights says so (one warning).
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from pydoc import locate
from typing import Any

import numpy as np
import torch
from monai.utils import ensure_tuple

from monai_ag.utils.config import as_bool
from monai_ag.utils.fileio import atomic_write, sha256_file

__all__ = [
    "FIXED_SETTINGS",
    "RECIPE_FORMAT",
    "RECIPE_VERSION",
    "ModelRecipe",
    "RecipeError",
    "build_network",
    "for_inference",
    "for_training",
    "network_config",
    "read_recipe",
    "recipe_path",
    "sha256_file",
]

logger = logging.getLogger(__name__)

RECIPE_FORMAT = "monai-ag model recipe"
RECIPE_VERSION = 1
#: the settings inference must take from the model, in the order messages list them
FIXED_SETTINGS = ("spacing", "orientation", "hu_window", "class_names", "network")
#: constructor arguments that only shape training outputs; inference builds the network without them
_TRAINING_ONLY_ARGS = {"deep_supervision_outputs": False}
_OVERRIDE_HINT = "pass --override_recipe true to use yours anyway"


class RecipeError(ValueError):
    """A recipe record that cannot be read, or settings that contradict it."""


def recipe_path(model_path: str | os.PathLike) -> Path:
    """The record beside ``model_path``: ``models/model.pt`` -> ``models/model.recipe.json``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".recipe.json")


# ---------------------------------------------------------------------------------------------------------------
# the settings, normalised so that equal settings compare equal


def _spacing(value: Any, where: str) -> list[float]:
    values = [float(v) for v in ensure_tuple(value)]
    if not values or any(not v > 0 for v in values):
        raise RecipeError(f"{where}: spacing must be positive voxel sizes in mm, got {value!r}.")
    return values


def _orientation(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) < 2:
        raise RecipeError(f"{where}: orientation must be axis codes such as 'RAS', got {value!r}.")
    return value.upper()


def _hu_window(value: Any, where: str) -> list[float]:
    values = [float(v) for v in ensure_tuple(value)]
    if len(values) != 2 or not values[0] < values[1]:
        raise RecipeError(f"{where}: hu_window must be [low, high] with low < high, got {value!r}.")
    return values


def _class_names(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise RecipeError(f"{where}: class_names must be a mapping id -> name, got {value!r}.")
    try:
        names = {int(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise RecipeError(f"{where}: class_names keys must be integer ids, got {sorted(value)!r}.") from None
    if sorted(names) != list(range(len(names))):
        raise RecipeError(f"{where}: class_names ids must be 0 ... n-1 (0 the background), got {sorted(names)}.")
    return {str(k): names[k] for k in sorted(names)}


def _target_name(target: Any) -> str:
    return target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"


def _accepts(target: Any, name: str) -> bool:
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _locate(name: str, where: str) -> Any:
    target = locate(name)
    if target is None:
        raise RecipeError(f"{where}: the network class {name!r} cannot be imported.")
    return target


def network_config(spec: Any, num_classes: int, where: str = "network_spec") -> dict[str, Any]:
    """
    A network as JSON: ``{"_target_": "<full import path>", **constructor arguments}``.

    Args:
        spec: what a config gives: a class (``"_mode_": "callable"`` without arguments), a
            ``functools.partial`` of a class with its arguments (``"_mode_": "callable"``), or such a dict
            (as read from a record).
        num_classes: fills ``out_channels`` when the spec leaves it out and the class takes it.
        where: names the setting in messages.

    Example::

        network_config(functools.partial(GridAttentionUNet, spatial_dims=3, in_channels=1), 5)
        # {"_target_": "monai_ag.networks.nets.grid_attention_unet.GridAttentionUNet", "spatial_dims": 3,
        #  "in_channels": 1, "out_channels": 5}
    """
    if isinstance(spec, torch.nn.Module):
        raise RecipeError(
            f'{where} must be the network class and its arguments (a config component with "_mode_": "callable"), '
            f"not a built {type(spec).__name__}: the recipe records how to build it."
        )
    if isinstance(spec, Mapping):
        if not isinstance(spec.get("_target_"), str):
            raise RecipeError(f"{where}: a network dict needs a '_target_' import path, got {dict(spec)!r}.")
        kwargs = {k: v for k, v in spec.items() if not k.startswith("_")}
        target = _locate(spec["_target_"], where)
    elif isinstance(spec, functools.partial):
        if spec.args:
            raise RecipeError(f"{where}: give the network's arguments by name, got positional {spec.args!r}.")
        target, kwargs = spec.func, dict(spec.keywords)
    elif callable(spec):
        target, kwargs = spec, {}
    else:
        raise RecipeError(f"{where}: expected a network class with its arguments, got {spec!r}.")
    if "out_channels" not in kwargs and _accepts(target, "out_channels"):
        kwargs["out_channels"] = int(num_classes)
    if kwargs.get("out_channels", num_classes) != num_classes:
        raise RecipeError(
            f"{where}: out_channels is {kwargs['out_channels']} but there are {num_classes} classes (class_names)."
        )
    try:
        kwargs = json.loads(json.dumps(kwargs))  # tuples become lists, as they come back from the record
    except TypeError as e:
        raise RecipeError(f"{where}: the network's arguments cannot be recorded as JSON: {e}") from None
    return {"_target_": _target_name(target), **kwargs}


def build_network(config: Mapping[str, Any], training: bool = False) -> torch.nn.Module:
    """
    Build the network of a :py:func:`network_config` dict; for inference (``training=False``) without
    training-only outputs (``deep_supervision_outputs``), so that it returns one tensor in any mode.
    """
    target = _locate(config["_target_"], "network")
    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    if not training:
        kwargs.update({k: v for k, v in _TRAINING_ONLY_ARGS.items() if _accepts(target, k)})
    return target(**kwargs)


def _same(key: str, a: Any, b: Any) -> bool:
    if key in ("spacing", "hu_window"):
        return len(a) == len(b) and bool(np.allclose(a, b, rtol=0, atol=1e-6))
    if key == "network":
        strip = set(_TRAINING_ONLY_ARGS)
        a_args = {k: v for k, v in a.items() if k != "_target_" and k not in strip}
        b_args = {k: v for k, v in b.items() if k != "_target_" and k not in strip}
        return locate(a["_target_"]) is locate(b["_target_"]) and a_args == b_args
    return a == b


def _show(key: str, value: Any) -> str:
    if key == "network":
        args = ", ".join(f"{k}={v}" for k, v in value.items() if k != "_target_")
        return f"{value['_target_'].rsplit('.', 1)[-1]}({args})"
    return json.dumps(value)


def _warn_override(key: str, mine: Any, theirs: Any, which: str) -> None:
    logger.warning("override_recipe: %s %s instead of %s, which %s", key, _show(key, mine), _show(key, theirs), which)


def _conflict(key: str, mine: Any, theirs: Any, used: str) -> str:
    """One line of a contradiction message: ``used`` says where ``theirs`` comes from ("trained with", ...)."""
    name = "network_spec" if key == "network" else key
    return f"  {name}: {used} {_show(key, theirs)}, this run sets {_show(key, mine)}"


# ---------------------------------------------------------------------------------------------------------------
# the recipe


@dataclass
class ModelRecipe:
    """
    The settings a model is trained or run with, and where they came from.

    Attributes:
        spacing, orientation, hu_window, class_names, network: the fixed settings (see the module).
        patch_size: the training patch (inference's default sliding-window ROI).
        record: the record file the fixed settings were read from, ``None`` when they come from the config.
        training: how the model was trained (written into the record; see :py:func:`for_training`).
    """

    spacing: list[float]
    orientation: str
    hu_window: list[float]
    class_names: dict[str, str]
    network: dict[str, Any]
    patch_size: list[int]
    record: Path | None = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def network_def(self, training: bool = False) -> torch.nn.Module:
        """The network (see :py:func:`build_network`)."""
        return build_network(self.network, training=training)

    def fixed_settings(self) -> dict[str, Any]:
        """The fixed settings (:py:data:`FIXED_SETTINGS`) as plain values, e.g. to store in a checkpoint."""
        return json.loads(json.dumps({k: getattr(self, k) for k in FIXED_SETTINGS}))

    def require_same(self, saved: Mapping[str, Any], source: str, override: Any = False, hint: str = "") -> None:
        """
        Check these fixed settings against ``saved`` (those of :py:meth:`fixed_settings`, read back from
        ``source``, e.g. the training checkpoint a run resumes): a difference raises :py:class:`RecipeError`
        naming both values and ending with ``hint`` (what to do instead), or with ``override`` is logged as a
        warning per setting. Keys ``saved`` lacks are not checked.
        """
        differ = [k for k in FIXED_SETTINGS if k in saved and not _same(k, getattr(self, k), saved[k])]
        if not differ:
            return
        if as_bool(override, "override_recipe"):
            for key in differ:
                _warn_override(key, getattr(self, key), saved[key], f"{source} used")
            return
        lines = [_conflict(k, getattr(self, k), saved[k], f"{source} used") for k in differ]
        advice = f"{hint}; or {_OVERRIDE_HINT}" if hint else _OVERRIDE_HINT.capitalize()
        raise RecipeError(f"settings contradict {source}:\n" + "\n".join(lines) + f"\n{advice}.")

    def describe(self) -> str:
        """One line: the settings, for the log."""
        return (
            f"spacing {_show('spacing', self.spacing)} mm, {self.orientation}, "
            f"HU window {_show('hu_window', self.hu_window)}, {self.num_classes} classes, "
            f"{_show('network', self.network)}, patch {_show('patch_size', self.patch_size)}"
        )

    def to_dict(self, model_sha256: str, model_file: str, epoch: int | None = None) -> dict[str, Any]:
        import monai

        import monai_ag

        return {
            "format": RECIPE_FORMAT,
            "version": RECIPE_VERSION,
            "model": {"file": model_file, "sha256": model_sha256},
            "spacing": self.spacing,
            "orientation": self.orientation,
            "hu_window": self.hu_window,
            "class_names": self.class_names,
            "network": self.network,
            "patch_size": self.patch_size,
            "training": {**self.training, "epoch": epoch},
            "versions": {
                "monai_ag": monai_ag.__version__,
                "monai": monai.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def write(self, model_path: str | os.PathLike, epoch: int | None = None) -> Path:
        """
        Write the record of the weights just written to ``model_path`` beside it (atomically: a kill
        during the write leaves the previous record). Call it on one process only (the model saver does,
        on rank 0). ``epoch``: the training epoch the weights are from, when known.
        """
        model = Path(model_path)
        path = recipe_path(model)
        text = json.dumps(self.to_dict(sha256_file(model), model.name, epoch), indent=2, default=str)
        with atomic_write(path) as tmp:
            tmp.write_text(text + "\n")
        logger.debug("recipe record written to %s", path)
        return path


def read_recipe(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """
    The record beside ``model_path`` checked and normalised, or ``None`` when there is none. A record that
    does not describe the ``model_path`` file as it is now (another ``sha256``) is used all the same, with a
    warning: the two files are written one after the other and may have been replaced separately.

    Raises:
        RecipeError: naming the file and the key, for a record that is not JSON, another format or a newer
            version, or lacks or holds a wrong setting.
    """
    path = recipe_path(model_path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecipeError(f"{path}: cannot read the model's recipe record: {e}") from None
    if not isinstance(data, dict) or data.get("format") != RECIPE_FORMAT:
        raise RecipeError(f"{path}: not a monai-ag recipe record (its 'format' should be {RECIPE_FORMAT!r}).")
    if not isinstance(data.get("version"), int) or data["version"] > RECIPE_VERSION:
        raise RecipeError(
            f"{path}: recipe record version {data.get('version')!r}; this monai-ag reads version {RECIPE_VERSION} "
            "(a newer monai-ag wrote it: upgrade)."
        )
    missing = [k for k in (*FIXED_SETTINGS, "patch_size") if k not in data]
    if missing:
        raise RecipeError(f"{path}: the recipe record lacks {', '.join(missing)}.")
    num_classes = len(_class_names(data["class_names"], f"{path}: class_names"))
    data.update(
        spacing=_spacing(data["spacing"], f"{path}: spacing"),
        orientation=_orientation(data["orientation"], f"{path}: orientation"),
        hu_window=_hu_window(data["hu_window"], f"{path}: hu_window"),
        class_names=_class_names(data["class_names"], f"{path}: class_names"),
        network=network_config(data["network"], num_classes, f"{path}: network"),
        patch_size=[int(v) for v in ensure_tuple(data["patch_size"])],
    )
    recorded = (data.get("model") or {}).get("sha256")
    model = Path(model_path)
    if model.is_file() and recorded != sha256_file(model):
        logger.warning(
            "%s describes a model file with sha256 %s, but %s has sha256 %s: the weights were replaced after the "
            "record was written (or the record's write was interrupted). Using the record's settings.",
            path,
            recorded,
            model,
            sha256_file(model),
        )
    return data


def _normalise(requested: Mapping[str, Any], num_classes: int, where: str) -> dict[str, Any]:
    """The requested fixed settings that are set (not ``None``), normalised."""
    out: dict[str, Any] = {}
    checks = {"spacing": _spacing, "orientation": _orientation, "hu_window": _hu_window, "class_names": _class_names}
    for key, check in checks.items():
        if requested.get(key) is not None:
            out[key] = check(requested[key], f"{where}{key}")
    if requested.get("network") is not None:
        out["network"] = network_config(requested["network"], num_classes, f"{where}network_spec")
    return out


def _resolve(
    defaults: Mapping[str, Any],
    requested: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    record_file: Path,
    override: bool,
    what: str,
) -> dict[str, Any]:
    """
    The fixed settings: the record's (a set value must agree with it, unless ``override``), else the set
    values, else ``defaults``.
    """
    if record is not None:
        num_classes = len(requested.get("class_names") or record["class_names"])
    else:
        num_classes = len(_class_names(requested.get("class_names") or defaults["class_names"], "class_names"))
    asked = _normalise(requested, num_classes, "")
    if record is None:
        base = _normalise(defaults, num_classes, "recipe_defaults#")
        return {k: asked.get(k, base[k]) for k in FIXED_SETTINGS}
    settings, conflicts = {}, []
    for key in FIXED_SETTINGS:
        mine, theirs = asked.get(key), record[key]
        if mine is None or _same(key, mine, theirs):
            settings[key] = theirs
        elif override:
            _warn_override(key, mine, theirs, f"{what} was trained with ({record_file})")
            settings[key] = mine
        else:
            conflicts.append(_conflict(key, mine, theirs, "trained with"))
    if conflicts:
        raise RecipeError(
            f"settings contradict the recipe of {what} (its record: {record_file}):\n" + "\n".join(conflicts) + "\n"
            f"Leave them unset to use the model's, or {_OVERRIDE_HINT}."
        )
    return settings


def _no_record_warning(model: Path, use: str) -> None:
    logger.warning(
        "%s has no recipe record (%s: written with model.pt by every training since monai-ag 0.1); %s with this "
        "config's spacing, orientation, HU window, classes and network. If the model was trained with other "
        "settings (a profile, overrides), pass them too, or retrain to get a record.",
        model,
        recipe_path(model).name,
        use,
    )


def for_inference(
    model_path: str | os.PathLike,
    defaults: Mapping[str, Any],
    spacing: Any = None,
    orientation: Any = None,
    hu_window: Any = None,
    class_names: Any = None,
    network_spec: Any = None,
    patch_size: Any = None,
    override: Any = False,
    metadata_file: str | os.PathLike | None = None,
) -> ModelRecipe:
    """
    The settings to run the model at ``model_path`` with: the fixed ones from its record; a value set here
    must agree with it (unless ``override``). Without a record, the values set here, else ``defaults``
    (one warning when the model exists). The sliding-window ROI is ``patch_size`` when set, else the
    training patch.

    Args:
        model_path: the weights (``ckpt_path``); the record is :py:func:`recipe_path` of it.
        defaults: the config's ``recipe_defaults``: ``spacing``, ``orientation``, ``hu_window``,
            ``class_names``, ``network`` (callable spec) and ``patch_size``, for a model without a record.
        spacing, orientation, hu_window, class_names, network_spec: fixed settings set by the user, or ``None``.
        patch_size: the sliding-window ROI, or ``None`` for the training patch.
        override: let set values win over the record (each logged as a warning).
        metadata_file: the bundle's ``metadata.json``; its output ``channel_def`` (the labels MONAI Label
            shows) must name the model's classes.

    Example::

        "recipe": {"_target_": "monai_ag.bundle.recipe.for_inference", "model_path": "@ckpt_path",
                   "defaults": "@recipe_defaults", "spacing": "@spacing", ...}
    """

    model = Path(model_path)
    record = read_recipe(model)
    requested = {
        "spacing": spacing,
        "orientation": orientation,
        "hu_window": hu_window,
        "class_names": class_names,
        "network": network_spec,
    }
    settings = _resolve(
        defaults, requested, record, recipe_path(model), as_bool(override, "override_recipe"), str(model)
    )
    if record is None and model.is_file():
        _no_record_warning(model, "it runs")
    roi = patch_size if patch_size is not None else (record["patch_size"] if record else defaults["patch_size"])
    recipe = ModelRecipe(
        **settings, patch_size=[int(v) for v in ensure_tuple(roi)], record=recipe_path(model) if record else None
    )
    if metadata_file is not None:
        _check_metadata(Path(metadata_file), recipe)
    logger.info("inference settings (%s): %s", recipe.record or "this config, no record", recipe.describe())
    return recipe


def _check_metadata(path: Path, recipe: ModelRecipe) -> None:
    if not path.is_file():
        return
    meta = json.loads(path.read_text())
    channel_def = meta.get("network_data_format", {}).get("outputs", {}).get("pred", {}).get("channel_def")
    if channel_def is not None and {str(k): str(v) for k, v in channel_def.items()} != recipe.class_names:
        raise RecipeError(
            f"{path}: network_data_format.outputs.pred.channel_def is {json.dumps(channel_def)} but the model's "
            "classes "
            f"are {json.dumps(recipe.class_names)}: MONAI Label names labels from channel_def only; make it match."
        )


def for_training(
    defaults: Mapping[str, Any],
    patch_size: Sequence[int],
    spacing: Any = None,
    orientation: Any = None,
    hu_window: Any = None,
    class_names: Any = None,
    network_spec: Any = None,
    start_weights: str | os.PathLike | None = None,
    override: Any = False,
    profiles: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
) -> ModelRecipe:
    """
    The settings a training uses, and the record it will write beside its ``model.pt``. When it starts from
    ``start_weights`` that have a record (fine-tuning: ``pretrained_weights``, MONAI Label's rounds), the
    fixed settings are that record's and a value set here must agree with it (unless ``override``);
    otherwise they are the values set here, else ``defaults``.

    Args:
        defaults: the config's ``recipe_defaults`` (``spacing``, ``orientation``, ``hu_window``,
            ``class_names``, ``network``).
        patch_size: the training patch (recorded as inference's default ROI).
        spacing, orientation, hu_window, class_names, network_spec: fixed settings set by the user, or ``None``.
        start_weights: the weights training starts from, or ``None``.
        override: let set values win over the start weights' record.
        profiles: the profile files merged into the config (their ``+profiles`` entries), for the record.
        settings: other training settings to record (precision, epochs, ...), as parsed.

    Example::

        "recipe": {"_target_": "monai_ag.bundle.recipe.for_training", "defaults": "@recipe_defaults",
                   "patch_size": "@patch_size", "spacing": "@spacing", ...}
    """

    start = None if start_weights in (None, "", "null", "None") else Path(start_weights)
    record = read_recipe(start) if start is not None else None
    if start is not None and record is None and start.is_file():
        _no_record_warning(start, "the training starting from it runs")
    requested = {
        "spacing": spacing,
        "orientation": orientation,
        "hu_window": hu_window,
        "class_names": class_names,
        "network": network_spec,
    }
    fixed = _resolve(
        defaults,
        requested,
        record,
        recipe_path(start) if start else Path(),
        as_bool(override, "override_recipe"),
        f"the start weights {start}",
    )
    training = {
        "profiles": list(profiles or []),
        "start_weights": str(start) if start else None,
        "settings_from": str(recipe_path(start)) if record else "config",
        "settings": json.loads(json.dumps(dict(settings or {}), default=str)),
    }
    recipe = ModelRecipe(
        **fixed,
        patch_size=[int(v) for v in ensure_tuple(patch_size)],
        record=recipe_path(start) if record else None,
        training=training,
    )
    logger.info("training settings (%s): %s", recipe.record or "config", recipe.describe())
    return recipe
