"""Helpers for the MONAI Label tests: a bundle laid out as MONAI Label's ``monaibundle`` app wants
it, phantom studies in MONAI Label's ``LocalDatastore`` layout, a synthetic DICOM series, and an
engine handler that records the weights a training run starts from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"
MODEL_NAME = "attention_unet_abdominal_ct"  # no deepedit/deepgrow/detection/classification in it

# A CPU-second profile for training rounds, written into the bundle copy's train.json (MONAI Label
# reads the configs from the bundle folder; it overrides only data, epochs, device and handlers). A trained
# model records spacing and network in models/model.recipe.json, which inference.json reads: it needs no copy.
TINY_TRAIN = {
    "spacing": [8.0, 8.0, 8.0],
    "patch_size": [32, 32, 24],
    "batch_size": 2,
    "num_samples": 1,
    "val_interval": 1,
    "cache_rate": 0.0,
}
TINY_CHANNELS = [4, 8, 16, 32, 64]


def make_app_bundle(app: Path, tiny: bool = False, **train_settings) -> Path:
    """Copy the bundle to ``<app>/model/<name>`` (MONAI Label's monaibundle layout) and return it.
    ``tiny`` writes :data:`TINY_TRAIN` and a narrow network into the copy's train.json;
    ``train_settings`` are written there too."""
    root = app / "model" / MODEL_NAME
    shutil.copytree(
        BUNDLE,
        root,
        ignore=shutil.ignore_patterns("models", "runs", "eval", "outputs", "data", "monailabel_train.json"),
    )
    path = root / "configs" / "train.json"
    config = json.loads(path.read_text())
    if tiny:
        config.update(TINY_TRAIN)
        config["recipe_defaults"]["network"]["channels"] = TINY_CHANNELS
    config.update(train_settings)
    path.write_text(json.dumps(config, indent=1))
    return root


def network_def(root: Path, config: str = "inference.json") -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / config))
    parser["bundle_root"] = str(root)
    return parser.get_parsed_content("network_def")


def write_random_weights(root: Path, seed: int = 0, **train_overrides) -> dict[str, torch.Tensor]:
    """``models/model.pt`` with freshly initialised weights and its recipe record, as a training with the
    copy's train.json (and ``train_overrides``) writes them (no pretrained weights ship; MONAI Label skips a
    bundle without a model file)."""
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "train.json"))
    parser.update({"bundle_root": str(root), **train_overrides})
    recipe = parser.get_parsed_content("recipe")
    torch.manual_seed(seed)
    state = recipe.network_def(training=True).state_dict()
    (root / "models").mkdir(exist_ok=True)
    torch.save(state, root / "models" / "model.pt")
    recipe.write(root / "models" / "model.pt")
    return state


def make_local_datastore(phantom: Path, studies: Path) -> Path:
    """Phantom cases as MONAI Label's ``LocalDatastore`` expects: images in ``studies/``, submitted
    labels in ``studies/labels/final/`` under the same file names."""
    (studies / "labels" / "final").mkdir(parents=True)
    for image in sorted((phantom / "imagesTr").glob("*.nii.gz")):
        shutil.copy(image, studies / image.name)
        shutil.copy(phantom / "labelsTr" / image.name, studies / "labels" / "final" / image.name)
    return studies


def write_dicom_series(volume: np.ndarray, spacing: tuple[float, float, float], folder: Path) -> Path:
    """Write an ``(x, y, z)`` int16 HU volume as a CT DICOM series (one file per slice, LPS identity
    orientation, slice positions ``z * spacing[2]``): the main suite's writer, which handles pydicom 2."""
    from dicom_testing import write_ct_series  # tests/ is on the path (tests/conftest.py)

    return write_ct_series(volume, spacing, folder)


def load_nifti(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine


class RecordStartWeights:
    """Engine handler: when the trainer starts (after every handler attached before it, such as the
    ``CheckpointLoader`` MONAI Label inserts first), save ``network``'s state dict to ``path``.
    ``network`` is the config's ``@network``, the module MONAI Label's loader loads into (the
    trainer may run it inside a wrapper)."""

    def __init__(self, network: torch.nn.Module, path: str) -> None:
        self.network = getattr(network, "module", network)  # DistributedDataParallel
        self.path = path

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        torch.save({k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()}, self.path)


class RecordFinalWeights(RecordStartWeights):
    """Engine handler: when the trainer completes, save ``network``'s state dict to ``path`` (the round's
    final weights)."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)
