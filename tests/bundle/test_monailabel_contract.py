"""What MONAI Label's monaibundle app does with this bundle, replayed without installing MONAI Label
(its 0.8.5 wheel pulls ~180 packages): the calls and overrides of its BundleInferTask and
BundleTrainTask, as read from MONAI Label's source."""

from __future__ import annotations

import json
from pathlib import Path

import monai.bundle
import torch
from monai.bundle import ConfigParser
from monai.transforms import Compose, SaveImaged

from monai_ag.data import load_datalist

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"
NARROW = [4, 8, 16, 32, 64]


def _parser(root: Path, name: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / name))
    parser.config.update({"bundle_root": str(root)})  # as MONAI Label does
    return parser


def test_label_names_come_from_channel_def():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    pred = next(iter(meta["network_data_format"]["outputs"].values()))
    labels = {v.lower(): int(k) for k, v in pred["channel_def"].items() if v.lower() != "background"}
    assert labels == {"liver": 1, "spleen": 2, "kidney": 3, "pancreas": 4}
    assert next(iter(meta["network_data_format"]["inputs"])) == "image"


def test_infer_task_contract(bundle_copy, tiny_phantom):
    parser = _parser(bundle_copy, "inference.json")
    parser["network_def"]["dropout"] = 0.2  # MONAI Label's epistemic scoring sets it
    parser["network_def#channels"] = NARROW
    parser["spacing"], parser["patch_size"] = [8.0, 8.0, 8.0], [32, 32, 24]
    network = parser.get_parsed_content("network_def", instantiate=True)  # on its own: no device, no weights
    assert isinstance(network, torch.nn.Module)
    parser.config.update({"device": "cpu"})  # MONAI Label passes a string
    pre = parser.get_parsed_content("preprocessing", instantiate=True)
    post = parser.get_parsed_content("postprocessing", instantiate=True)
    inferer = parser.get_parsed_content("inferer", instantiate=True)
    assert isinstance(pre, Compose) and isinstance(post, Compose)
    kept = [t for t in post.transforms if not isinstance(t, SaveImaged)]  # MONAI Label's post_filter
    assert len(kept) == len(post.transforms) - 1, "the bundle's writer must be a SaveImaged"
    image = tiny_phantom / "imagesTs" / "phantom_003.nii.gz"
    data = pre({"image": str(image)})
    assert "image" in data
    with torch.no_grad():
        pred = inferer(data["image"][None], network.eval())
    assert pred.shape[1] == 5 and pred.shape[2:] == data["image"].shape[1:]


def test_train_task_contract(bundle_copy, tiny_phantom):
    """BundleTrainTask: inserts a CheckpointLoader for models/model.pt into train#handlers unless one is
    there, overrides data, device, epochs and bundle_root, and runs ``monai.bundle.run`` without
    initialize/finalize."""
    parser = _parser(bundle_copy, "train.json")
    handlers = parser.get("train#handlers", [])
    assert all(isinstance(h, dict) and "_target_" in h for h in handlers), "MONAI Label calls .get on every handler"
    assert not [h for h in handlers if h.get("_target_") == "CheckpointLoader"], "a loader here disables fine-tuning"

    # a previous model.pt to fine-tune from, as MONAI Label finds it
    models = bundle_copy / "models"
    models.mkdir()
    parser["network_def#channels"] = NARROW
    net = parser.get_parsed_content("network_def")
    for p in net.parameters():
        torch.nn.init.constant_(p, 0.01)
    torch.save(net.state_dict(), models / "model.pt")
    handlers.insert(0, {"_target_": "CheckpointLoader", "load_path": str(models / "model.pt"),
                        "load_dict": {"model": "$@network"}, "strict": False})
    (bundle_copy / "configs" / "train.json").write_text(json.dumps(parser.config))  # the config MONAI Label reads

    data = load_datalist(tiny_phantom, "training", check=False)
    monai.bundle.run(
        run_id="run", init_id=None, final_id=None,
        meta_file=str(bundle_copy / "configs" / "metadata.json"),
        config_file=str(bundle_copy / "configs" / "train.json"),
        logging_file=str(bundle_copy / "configs" / "logging.conf"),
        bundle_root=str(bundle_copy),
        **{
            "train#trainer#max_epochs": 1,
            "train#dataset#data": data[:1],
            "validate#dataset#data": data[1:2],
            "device": torch.device("cpu"),
            "train#handlers": handlers,
            "spacing": [8.0, 8.0, 8.0], "patch_size": [32, 32, 24], "num_samples": 1, "val_interval": 1,
            "network_def#channels": NARROW,
        },
    )
    trained = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    assert set(trained) == set(net.state_dict())  # model.pt rewritten as a plain state dict
    assert any(not torch.allclose(trained[k].float(), torch.full_like(trained[k].float(), 0.01))
               for k in trained if k.endswith("weight")), "training did not update model.pt"
