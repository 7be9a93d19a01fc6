"""What the training options behind the profiles do in the bundle: the augmentation switches and the time limit."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from bundle_testing import BUNDLE, TINY, raises, workflow
from monai.bundle import ConfigParser

from monai_ag.data import generate_phantom_dataset
from monai_ag.handlers import TrainingTimeLimit

CONFIGS = BUNDLE / "configs"
PAPER_RECIPE = [  # the paper profile's augmentation: the authors' flips, rotation, zoom and intensity changes
    "ClassesToIndicesd",
    "RandCropByLabelClassesd",
    "RandFlipd",
    "RandFlipd",
    "RandAffined",
    "RandScaleIntensityd",
    "RandShiftIntensityd",
    "AnnotatedClassesd",
]
DEFAULT_RECIPE = [t for t in PAPER_RECIPE if t != "RandFlipd"]  # the CPU default: no flips (docs/results.md)


def _augmentation(*profiles: str, **overrides) -> list[str]:
    parser = ConfigParser(ConfigParser.load_config_files([str(CONFIGS / f) for f in ["train.json", *profiles]]))
    parser.update({"bundle_root": str(BUNDLE), **overrides})
    return [type(t).__name__ for t in parser.get_parsed_content("train#augmentation")]


def test_default_and_paper_augmentation():
    """Switched-off steps leave the list (``_disabled_``): the default drops the flips, the paper profile
    keeps the authors' recipe."""
    assert _augmentation() == DEFAULT_RECIPE
    assert _augmentation("profile_paper.json") == PAPER_RECIPE
    assert _augmentation(flip_augmentation=True) == PAPER_RECIPE


def test_realct_profile_drops_flips_and_adds_scanner_augmentation():
    assert _augmentation("profile_realct.json") == [
        "ClassesToIndicesd",
        "RandCropByLabelClassesd",
        "RandAffined",
        "RandScaleIntensityd",
        "RandShiftIntensityd",
        "RandOrganIntensityShiftd",
        "RandGaussianSmoothd",
        "RandAdjustContrastd",
        "RandGaussianNoised",
        "AnnotatedClassesd",
    ]


@pytest.mark.parametrize("value, flips", [("false", 0), ("False", 0), (False, 0), ("true", 2), (True, 2)])
def test_flip_switch_from_the_command_line(value, flips):
    """``--flip_augmentation false`` arrives as a string from the CLI."""
    assert _augmentation(flip_augmentation=value).count("RandFlipd") == flips


def test_unknown_switch_value_is_a_clear_error():
    with pytest.raises(Exception, match="flip_augmentation"):
        _augmentation(flip_augmentation="sometimes")


def test_time_limit_handler_sits_between_validation_and_checkpoint():
    """It must see a validation already run at the epoch, and the checkpoint must come after its last validation."""
    handlers = [h["_target_"] for h in ConfigParser.load_config_file(str(CONFIGS / "train.json"))["train"]["handlers"]]
    assert handlers.index("ValidationHandler") < handlers.index("monai_ag.handlers.TrainingTimeLimit")
    assert handlers.index("monai_ag.handlers.TrainingTimeLimit") < handlers.index(
        "monai_ag.handlers.TrainingCheckpoint"
    )


def _tiny_bundle(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "phantom"
    generate_phantom_dataset(
        data, num_cases=3, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0), num_validation=1, num_test=0
    )
    root = tmp_path / "bundle"
    shutil.copytree(CONFIGS, root / "configs")
    return root, data


def test_time_limited_training_stops_at_an_epoch_end_with_a_last_validation(tmp_path):
    root, data = _tiny_bundle(tmp_path)
    # a budget every epoch exceeds; validation scheduled far later
    wf = workflow(
        root,
        ["train.json"],
        "train",
        dataset_dir=str(data),
        **{**TINY, "max_epochs": 50, "val_interval": 40},
        time_limit_minutes=1e-6,
    )
    handler = next(h for h in wf.parser.get_parsed_content("train#handlers") if isinstance(h, TrainingTimeLimit))
    assert handler.minutes == 1e-6
    wf.run()
    trainer = wf.parser.get_parsed_content("train#trainer")
    evaluator = wf.parser.get_parsed_content("validate#evaluator")
    assert trainer.state.epoch == 1 and trainer.state.iteration == 1
    assert evaluator.state.epoch == 1  # the last validation ran, on the final weights
    assert "val_mean_dice" in evaluator.state.metrics
    assert (root / "models" / "model.pt").is_file() and (root / "models" / "checkpoint.pt").is_file()


def test_pretrained_weights_start_the_training(tmp_path):
    """``--pretrained_weights model.pt`` loads a plain state dict (another run's ``model.pt``) before the
    first step: with a zero learning rate the saved weights are the loaded ones."""
    import torch

    root, data = _tiny_bundle(tmp_path)
    parser = ConfigParser(ConfigParser.load_config_file(str(CONFIGS / "train.json")))
    parser.update({"bundle_root": str(root), **TINY})
    torch.manual_seed(123)
    start = parser.get_parsed_content("network_def").state_dict()
    torch.save(start, tmp_path / "start.pt")  # no recipe record: the training's own settings apply
    params = [k for k, _ in parser.get_parsed_content("network_def").named_parameters()]  # not BN running statistics

    def train(**overrides) -> dict:
        shutil.rmtree(root / "models", ignore_errors=True)
        wf = workflow(
            root,
            ["train.json"],
            "train",
            dataset_dir=str(data),
            **{**TINY, "max_epochs": 1, "val_interval": 1, "learning_rate": 0.0},
            **overrides,
        )
        wf.run()
        return torch.load(root / "models" / "model.pt", weights_only=True)

    loaded = train(pretrained_weights=str(tmp_path / "start.pt"))
    assert all(torch.equal(loaded[k], start[k]) for k in params)
    fresh = train()  # the bundle's own seeded initialisation
    assert not any(
        torch.equal(fresh[k], start[k]) for k in params if start[k].dim() > 1
    )  # randomly initialised kernels


def test_missing_pretrained_weights_name_the_file(tmp_path):
    root, data = _tiny_bundle(tmp_path)
    missing = tmp_path / "nowhere" / "model.pt"
    wf = workflow(root, ["train.json"], "train", dataset_dir=str(data), **TINY, pretrained_weights=str(missing))
    raises(FileNotFoundError, re.escape(str(missing)), wf.run)
