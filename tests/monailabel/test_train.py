"""MONAI Label 0.8.5's BundleTrainTask on this bundle, as the monaibundle app builds it, with
MONAI Label's LocalDatastore: a first round writes models/model.pt and the next inference uses it;
a second round fine-tunes from it; the multi-GPU path (torchrun, two CPU processes) trains too."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from needs import needs_module  # noqa: E402 (tests/ is on the path)

needs_module(
    # not just "monailabel": tests/monailabel itself is a namespace package of that name
    "monailabel.tasks.infer.bundle",
    "MONAILABEL",
    "MONAI Label is not installed here; tests/monailabel runs in the environment scripts/monailabel_env.sh makes "
    "(scripts/monailabel_tests.sh)",
)

from monailabel.datastore.local import LocalDatastore  # noqa: E402
from monailabel.tasks.infer.bundle import BundleInferTask  # noqa: E402
from monailabel.tasks.train.bundle import BundleTrainTask  # noqa: E402


@pytest.fixture
def app(tmp_path, helpers, tiny_phantom):
    """A tiny-profile bundle in a monaibundle app folder, a recorder of the weights each training
    round starts from (appended to the copy's ``train#handlers``), and a LocalDatastore of
    labelled phantom studies."""
    root = helpers.make_app_bundle(tmp_path / "app", tiny=True)
    config = json.loads((root / "configs" / "train.json").read_text())
    recorder = {
        "_target_": "mlabel_helpers.RecordStartWeights",
        "_disabled_": "@is_not_rank0",
        "network": "@network",
        "path": str(tmp_path / "start.pt"),
    }
    final = {
        "_target_": "mlabel_helpers.RecordFinalWeights",
        "_disabled_": "@is_not_rank0",
        "network": "@network",
        "path": str(tmp_path / "final.pt"),
    }
    config["train"]["handlers"] += [recorder, final]
    (root / "configs" / "train.json").write_text(json.dumps(config, indent=1))
    store = LocalDatastore(
        str(helpers.make_local_datastore(tiny_phantom, tmp_path / "studies")), extensions=("*.nii.gz",)
    )
    assert len(store.datalist()) == 4
    return root, store, tmp_path / "start.pt"


def train(root: Path, store, **request) -> None:
    task = BundleTrainTask(str(root), conf={})
    assert task.is_valid()
    task(
        {"model": root.name, "max_epochs": 1, "device": "cpu", "val_split": 0.25, "multi_gpu": False, **request}, store
    )


def segment(root: Path, image: Path) -> np.ndarray:
    label, _ = BundleInferTask(str(root), conf={})({"image": str(image), "device": "cpu"})
    return np.asarray(nib.load(label).dataobj)


def load_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_train_rounds_then_infer(app, helpers, tiny_phantom):
    root, store, start = app
    model = root / "models" / "model.pt"
    test_image = tiny_phantom / "imagesTs" / "phantom_004.nii.gz"
    assert not model.exists() and not BundleInferTask(str(root), conf={}).is_valid()

    # round 1: no model.pt, so nothing to fine-tune from; training writes models/model.pt
    train(root, store)
    assert model.exists(), "the first training round wrote no models/model.pt"
    round1 = load_state(model)
    assert round1.keys() == helpers.network_def(root).state_dict().keys()  # loads into the inference network
    assert differs(load_state(start), round1), "round 1 did not change the weights"
    seg1 = segment(root, test_image)

    # round 2: model.pt exists, MONAI Label inserts a CheckpointLoader: training starts from round 1
    train(root, store)
    assert_same(load_state(start), round1)
    round2 = load_state(model)
    assert differs(round1, round2), "round 2 did not update models/model.pt"
    seg2 = segment(root, test_image)
    assert seg2.shape == seg1.shape == nib.load(str(test_image)).shape
    # two all-background maps would be equal whatever model ran: the rounds must predict foreground
    assert (seg1 > 0).any() and (seg2 > 0).any(), "a training round predicts no foreground"
    assert not np.array_equal(seg1, seg2), "the inference after round 2 did not use the new model.pt"


def test_multi_gpu_path_two_cpu_processes(app, helpers, monkeypatch, caplog, capfd):
    """``force_multi_gpu`` with ``gpus "0,1"``: MONAI Label writes configs/monailabel_train.json and
    launches ``torchrun --nproc_per_node=2 -m monai.bundle run`` with configs/multi_gpu_train.json
    merged in; without CUDA both processes train on the CPU (gloo) and rank 0 writes model.pt."""
    root, store, start = app
    # MONAI Label runs "torchrun" from PATH: this environment's
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            p for p in [str(helpers.REPO), str(Path(helpers.__file__).parent), os.environ.get("PYTHONPATH")] if p
        ),
    )
    round0 = helpers.write_random_weights(root, seed=1)  # fine-tuning in DDP: the loader must reach the wrapped module
    with caplog.at_level(logging.INFO, logger="monailabel"):
        # two training and two validation cases: each of the two processes gets one of each
        train(root, store, force_multi_gpu=True, gpus="0,1", multi_gpu=True, val_split=0.5)
    out = capfd.readouterr().out
    assert "Return code: 0" in caplog.text, out[-3000:]  # MONAI Label only logs torchrun's exit status
    assert (root / "configs" / "monailabel_train.json").exists()
    assert "--nproc_per_node=2" in caplog.text
    assert_same(load_state(start), round0)
    assert differs(round0, load_state(root / "models" / "model.pt"))


def test_short_round_still_writes_a_model(app):
    """A round shorter than the validation interval (2 epochs, validation every 10) ends with its final
    weights validated (``TrainingTimeLimit``'s last-epoch validation), so MONAI Label gets a model.pt."""
    root, store, _ = app
    path = root / "configs" / "train.json"
    config = json.loads(path.read_text())
    config["val_interval"] = 10
    path.write_text(json.dumps(config, indent=1))
    train(root, store, max_epochs=2)
    assert (root / "models" / "model.pt").exists(), "a 2-epoch round wrote no models/model.pt"
    # validated once, after epoch 2: model.pt is the round's final weights
    assert_same(load_state(root / "models" / "model.pt"), load_state(root.parents[2] / "final.pt"))


def test_round_on_a_recorded_model_keeps_its_recipe(tmp_path, helpers, tiny_phantom):
    """A model trained with another spacing and width (here: its record says 8 mm, channels 4 ... 64; the
    bundle's train.json says neither): a MONAI Label round starts from it and keeps both."""
    from monai_ag.bundle import read_recipe

    root = helpers.make_app_bundle(tmp_path / "app", patch_size=[32, 32, 24], num_samples=1, cache_rate=0.0)
    start = helpers.write_random_weights(
        root, seed=3, spacing=[8.0, 8.0, 8.0], **{"recipe_defaults#network#channels": helpers.TINY_CHANNELS}
    )
    config = json.loads((root / "configs" / "train.json").read_text())
    config["train"]["handlers"].append(
        {"_target_": "mlabel_helpers.RecordStartWeights", "network": "@network", "path": str(tmp_path / "start.pt")}
    )
    (root / "configs" / "train.json").write_text(json.dumps(config, indent=1))
    store = LocalDatastore(
        str(helpers.make_local_datastore(tiny_phantom, tmp_path / "studies")), extensions=("*.nii.gz",)
    )
    train(root, store)
    assert_same(load_state(tmp_path / "start.pt"), start)  # fine-tuned from it, not from a default-width network
    record = read_recipe(root / "models" / "model.pt")
    assert record["spacing"] == [8.0, 8.0, 8.0] and record["network"]["channels"] == helpers.TINY_CHANNELS
    assert record["training"]["start_weights"] == str(root / "models" / "model.pt")
    assert differs(start, load_state(root / "models" / "model.pt"))


def test_round_without_validation_trains_on_every_study(app):
    """``val_split 0``: MONAI Label passes an empty validation list; the round trains on all four studies and
    saves its final weights, with their record."""
    from monai_ag.bundle import read_recipe, sha256_file

    root, store, _ = app
    train(root, store, val_split=0.0, max_epochs=2)
    model = root / "models" / "model.pt"
    assert model.exists(), "a round without validation wrote no models/model.pt"
    assert read_recipe(model)["model"]["sha256"] == sha256_file(model)
    assert read_recipe(model)["training"]["settings"]["max_epochs"] == 2  # MONAI Label's, not train.json's
    assert read_recipe(model)["training"]["epoch"] == 2
