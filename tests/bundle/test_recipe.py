"""A trained model carries its recipe (``model.recipe.json``): every way of running it sees the data as training
did, a contradicting setting stops the run, fine-tuning follows it, and training can use every case."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from bundle_testing import BUNDLE, TINY, raises, workflow  # noqa: E402 (tests/bundle is on the path)
from monai.bundle import ConfigParser

from monai_ag.bundle import (
    RecipeError,
    build_network,
    for_inference,
    for_training,
    network_config,
    read_recipe,
    recipe_path,
    sha256_file,
)
from monai_ag.bundle.export import RECIPE_KEY, export_model
from monai_ag.data import generate_phantom_dataset
from monai_ag.networks.nets import GridAttentionUNet

DEFAULTS = ConfigParser.load_config_file(str(BUNDLE / "configs" / "inference.json"))["recipe_defaults"]
GAUNET = "monai_ag.networks.nets.grid_attention_unet.GridAttentionUNet"
SETTINGS = ("spacing", "orientation", "hu_window", "class_names", "network")


def _defaults() -> dict:
    """inference.json's recipe_defaults as the parser gives them (the network as a callable)."""
    return {
        **DEFAULTS,
        "network": functools.partial(
            GridAttentionUNet, **{k: v for k, v in DEFAULTS["network"].items() if not k.startswith("_")}
        ),
    }


def _segs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(nib.load(str(p)).dataobj) for p in sorted(folder.glob("*_seg.nii.gz"))}


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_phantom) -> Path:
    """A bundle trained with TINY: 8 mm spacing, a 32 x 32 x 24 patch, channels 4 ... 64 (none the default)."""
    import shutil

    root = tmp_path_factory.mktemp("trained") / "bundle"
    shutil.copytree(BUNDLE / "configs", root / "configs")
    wf = workflow(root, ["train.json"], "train", dataset_dir=str(tiny_phantom), **TINY)
    wf.run()
    wf.finalize()
    return root


# ------------------------------------------------------------------ what a training writes


def test_training_writes_the_recipe_beside_the_model(trained, tiny_phantom):
    record = json.loads((trained / "models" / "model.recipe.json").read_text())
    assert record["format"] == "monai-ag model recipe" and record["version"] == 1
    assert record["model"] == {"file": "model.pt", "sha256": sha256_file(trained / "models" / "model.pt")}
    assert record["spacing"] == [8.0, 8.0, 8.0] and record["orientation"] == "RAS"
    assert record["hu_window"] == [-175.0, 250.0] and record["patch_size"] == [32, 32, 24]
    assert record["class_names"] == DEFAULTS["class_names"]
    assert record["network"] == {
        "_target_": GAUNET,
        "spatial_dims": 3,
        "in_channels": 1,
        "channels": [4, 8, 16, 32, 64],
        "strides": [2, 2, 2, 2],
        "deep_supervision_outputs": True,
        "out_channels": 5,
    }
    assert record["training"]["settings"]["max_epochs"] == 2
    assert record["training"]["epoch"] in (1, 2)  # the best validation's
    assert record["training"]["settings"]["dataset_dir"] == str(tiny_phantom)
    assert record["training"]["profiles"] == [] and record["training"]["start_weights"] is None
    assert {"monai_ag", "monai", "torch", "python"} <= set(record["versions"])


def test_profiles_name_themselves_in_the_record():
    files = [str(BUNDLE / "configs" / f) for f in ("train.json", "profile_realct.json")]
    parser = ConfigParser(ConfigParser.load_config_files(files))
    parser["bundle_root"] = str(BUNDLE)
    recipe = parser.get_parsed_content("recipe")
    assert recipe.training["profiles"] == ["profile_realct.json"] and recipe.spacing == [3.0, 3.0, 3.0]
    assert recipe.patch_size == [96, 96, 64] and recipe.training["settings"]["precision"] == "auto"


# ------------------------------------------------------------------ every way of running it, the same labels


@pytest.mark.slow
def test_every_inference_path_gives_the_same_labels(trained, tiny_phantom, tmp_path):
    """inference.json alone (as MONAI Label reads it), with the training overrides repeated, evaluate.json and
    the command line give voxel-identical labels, at the model's spacing and patch."""
    ways = {
        "alone": {},
        "repeated": {k: TINY[k] for k in ("spacing", "patch_size", "recipe_defaults#network#channels")},
    }
    segs = {}
    for name, overrides in ways.items():
        wf = workflow(
            trained,
            ["inference.json"],
            "infer",
            dataset_dir=str(tiny_phantom),
            output_dir=str(tmp_path / name),
            **overrides,
        )
        recipe = wf.parser.get_parsed_content("recipe")
        assert recipe.spacing == [8.0, 8.0, 8.0] and recipe.patch_size == [32, 32, 24]
        assert list(wf.parser.get_parsed_content("sliding_window").roi_size) == [32, 32, 24]
        wf.run()
        segs[name] = _segs(tmp_path / name)
    workflow(
        trained,
        ["inference.json", "evaluate.json"],
        "infer",
        dataset_dir=str(tiny_phantom),
        output_dir=str(tmp_path / "eval"),
    ).run()
    segs["evaluate"] = _segs(tmp_path / "eval" / "predictions")
    out = _cli(
        [
            "--config_file",
            "configs/inference.json",
            "--dataset_dir",
            str(tiny_phantom),
            "--output_dir",
            str(tmp_path / "cli"),
        ],
        trained,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "has no recipe record" not in out.stdout + out.stderr
    segs["cli"] = _segs(tmp_path / "cli")
    assert len(segs["alone"]) == 2 and sum(int((s > 0).sum()) for s in segs["alone"].values()) > 0
    for name, seg in segs.items():
        assert seg.keys() == segs["alone"].keys(), name
        for case in seg:
            np.testing.assert_array_equal(seg[case], segs["alone"][case], err_msg=f"{name}: {case}")


def test_contradicting_inference_setting_names_both_values(trained, tiny_phantom):
    err = raises(
        RecipeError,
        r"spacing: trained with \[8.0, 8.0, 8.0\], this run sets \[4.0, 4.0, 4.0\]",
        workflow,
        trained,
        ["inference.json"],
        "infer",
        dataset_dir=str(tiny_phantom),
        spacing=[4.0, 4.0, 4.0],
    )
    assert str(trained / "models" / "model.recipe.json") in str(err) and "--override_recipe true" in str(err)
    # several at once, the network among them
    err = raises(
        RecipeError,
        "hu_window: trained with",
        workflow,
        trained,
        ["inference.json"],
        "infer",
        dataset_dir=str(tiny_phantom),
        hu_window=[-100, 300],
        network_spec={
            "_target_": "monai_ag.GridAttentionUNet",
            "_mode_": "callable",
            "spatial_dims": 3,
            "in_channels": 1,
            "channels": [8, 16, 32, 64, 128],
            "strides": [2, 2, 2, 2],
        },
    )
    assert "network_spec: trained with GridAttentionUNet(" in str(err) and "channels=[8, 16, 32, 64, 128]" in str(err)


def test_override_recipe_lets_the_user_win_with_a_warning(trained, tiny_phantom, caplog):
    with caplog.at_level(logging.WARNING, logger="monai_ag.bundle.recipe"):
        recipe = for_inference(trained / "models" / "model.pt", _defaults(), spacing=[4, 4, 4], override="true")
    assert recipe.spacing == [4.0, 4.0, 4.0] and recipe.hu_window == [-175.0, 250.0]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "override_recipe: spacing [4.0, 4.0, 4.0] instead of [8.0, 8.0, 8.0]" in warning


@pytest.mark.slow
def test_model_without_a_record_runs_as_before_with_one_warning(trained, tiny_phantom, tmp_path):
    import shutil

    root = tmp_path / "bundle"
    shutil.copytree(trained / "configs", root / "configs")
    (root / "models").mkdir()
    shutil.copy(trained / "models" / "model.pt", root / "models" / "model.pt")  # weights only, e.g. from elsewhere
    args = [
        "--config_file",
        "configs/inference.json",
        "--dataset_dir",
        str(tiny_phantom),
        "--output_dir",
        str(tmp_path / "out"),
        "--spacing",
        "[8, 8, 8]",
        "--patch_size",
        "[32, 32, 24]",
        "--recipe_defaults#network#channels",
        "[4, 8, 16, 32, 64]",
    ]
    out = _cli(args, root)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert text.count("has no recipe record") == 1, text[-3000:]
    assert "models/model.pt has no recipe record (model.recipe.json" in text
    # given the training's settings by hand, it segments as the recorded model does
    workflow(
        trained, ["inference.json"], "infer", dataset_dir=str(tiny_phantom), output_dir=str(tmp_path / "recorded")
    ).run()
    for case, seg in _segs(tmp_path / "out").items():
        np.testing.assert_array_equal(seg, _segs(tmp_path / "recorded")[case])


def test_record_that_does_not_match_the_weights_is_reported(trained, tmp_path, caplog):
    import shutil

    model = tmp_path / "model.pt"
    shutil.copy(trained / "models" / "model.recipe.json", recipe_path(model))
    torch.save(GridAttentionUNet(3, 1, 5, channels=(4, 8, 16, 32, 64)).state_dict(), model)  # other weights
    with caplog.at_level(logging.WARNING, logger="monai_ag.bundle.recipe"):
        record = read_recipe(model)
    assert record["spacing"] == [8.0, 8.0, 8.0]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        f"describes a model file with sha256 {record['model']['sha256']}, but {model} has sha256 {sha256_file(model)}"
        in warning
    )


def test_metadata_must_name_the_model_classes(tmp_path):
    model = tmp_path / "models" / "model.pt"
    meta = tmp_path / "metadata.json"
    meta.write_text(
        json.dumps({"network_data_format": {"outputs": {"pred": {"channel_def": DEFAULTS["class_names"]}}}})
    )
    for_inference(model, _defaults(), metadata_file=meta)  # agrees
    three = {"0": "background", "1": "liver", "2": "tumour"}
    raises(
        RecipeError,
        r"channel_def is .* but the model's classes are .*tumour.*MONAI Label names labels from channel_def",
        for_inference,
        model,
        _defaults(),
        class_names=three,
        metadata_file=meta,
    )


# ------------------------------------------------------------------ fine-tuning follows the start weights' record


def test_fine_tuning_follows_the_start_model_and_refuses_a_contradiction(trained, tiny_phantom, tmp_path):
    import shutil

    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", root / "configs")
    start = str(trained / "models" / "model.pt")
    wf = workflow(root, ["train.json"], "train", dataset_dir=str(tiny_phantom), pretrained_weights=start, max_epochs=1)
    recipe = wf.parser.get_parsed_content("recipe")
    assert recipe.spacing == [8.0, 8.0, 8.0] and recipe.network["channels"] == [4, 8, 16, 32, 64]
    assert recipe.training["start_weights"] == start and recipe.patch_size == [64, 64, 48]  # the patch stays free
    raises(
        RecipeError,
        r"spacing: trained with \[8.0, 8.0, 8.0\], this run sets \[3.0, 3.0, 3.0\]",
        workflow,
        root,
        ["train.json", "profile_realct.json"],
        "train",
        dataset_dir=str(tiny_phantom),
        pretrained_weights=start,
    )
    # MONAI Label's fine-tuning: its CheckpointLoader for models/model.pt inserted first in train#handlers
    handlers = ConfigParser.load_config_file(str(root / "configs" / "train.json"))["train"]["handlers"]
    loader = {"_target_": "CheckpointLoader", "load_path": start, "load_dict": {"model": "$@network"}, "strict": False}
    wf = workflow(
        root, ["train.json"], "train", dataset_dir=str(tiny_phantom), **{"train#handlers": [loader, *handlers]}
    )
    assert wf.parser.get_parsed_content("recipe").spacing == [8.0, 8.0, 8.0]


# ------------------------------------------------------------------ training on every case


@pytest.fixture(scope="module")
def no_validation_list(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("four")
    generate_phantom_dataset(
        root, num_cases=4, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0), num_validation=0, num_test=0
    )
    assert not json.loads((root / "dataset.json").read_text()).get("validation")
    return root


def _final_weights_saved(wf, model: Path) -> bool:
    state = torch.load(model, map_location="cpu", weights_only=True)
    return all(torch.equal(state[k], v) for k, v in wf.parser.get_parsed_content("network").state_dict().items())


def test_val_fraction_zero_trains_on_every_case_and_saves_the_final_weights(no_validation_list, tmp_path):
    import shutil

    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", root / "configs")
    wf = workflow(root, ["train.json"], "train", dataset_dir=str(no_validation_list), **TINY, val_fraction=0)
    assert len(wf.parser.get_parsed_content("train#dataset#data")) == 4
    assert wf.parser.get_parsed_content("validate#dataset#data") == []
    wf.run()
    assert wf.parser.get_parsed_content("train#trainer").state.epoch == TINY["max_epochs"]
    assert wf.parser.get_parsed_content("validate#evaluator").state.epoch == 0  # never validated
    model = root / "models" / "model.pt"
    assert _final_weights_saved(wf, model)
    assert read_recipe(model)["model"]["sha256"] == sha256_file(model)
    assert read_recipe(model)["training"]["epoch"] == TINY["max_epochs"]
    # a time budget ends it at an epoch end, with the final weights saved as well
    shutil.rmtree(root / "models")
    wf = workflow(
        root,
        ["train.json"],
        "train",
        dataset_dir=str(no_validation_list),
        **{**TINY, "max_epochs": 50},
        val_fraction=0,
        time_limit_minutes=1e-6,
    )
    wf.run()
    assert wf.parser.get_parsed_content("train#trainer").state.epoch == 1 and _final_weights_saved(wf, model)


def test_a_failed_training_without_validation_leaves_no_model(no_validation_list, tmp_path):
    import shutil

    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", root / "configs")
    (root / "configs" / "fail.json").write_text(
        json.dumps(
            {
                "+imports": ["$import dist_probe"],
                "+train#handlers": [{"_target_": "dist_probe.FailOnRank", "rank": 0, "iteration": 3}],
            }
        )
    )
    wf = workflow(
        root, ["train.json", "fail.json"], "train", dataset_dir=str(no_validation_list), **TINY, val_fraction=0
    )
    raises(RuntimeError, "deliberate failure on rank 0", wf.run)
    assert not (root / "models" / "model.pt").exists() and (root / "models" / "checkpoint.pt").exists()


# ------------------------------------------------------------------ the record file itself


_KILLED_DURING_RECORD_WRITE = textwrap.dedent(
    """
    import os, signal, sys, pathlib
    import torch
    from monai_ag.bundle import read_recipe

    model = pathlib.Path(sys.argv[1])
    recipe = read_recipe(model)
    from monai_ag.bundle.recipe import ModelRecipe
    recipe = ModelRecipe(**{k: recipe[k] for k in ("spacing", "orientation", "hu_window", "class_names", "network",
                                                   "patch_size")})
    recipe.spacing = [1.0, 1.0, 1.0]
    real = pathlib.Path.write_text

    def half_then_die(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    pathlib.Path.write_text = half_then_die
    recipe.write(model)
    """
)


def test_a_kill_during_the_record_write_leaves_the_previous_record(trained, tmp_path):
    import shutil

    model = tmp_path / "model.pt"
    shutil.copy(trained / "models" / "model.pt", model)
    shutil.copy(trained / "models" / "model.recipe.json", recipe_path(model))
    before = recipe_path(model).read_text()
    out = subprocess.run(
        [sys.executable, "-c", _KILLED_DURING_RECORD_WRITE, str(model)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    assert list(tmp_path.glob(".partial-*-model.recipe.json")), "the kill did not happen during the write"
    assert recipe_path(model).read_text() == before
    assert read_recipe(model)["spacing"] == [8.0, 8.0, 8.0]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "cannot read the model's recipe record"),
        (json.dumps({"format": "something else"}), "not a monai-ag recipe record"),
        (
            json.dumps({"format": "monai-ag model recipe", "version": 2}),
            "recipe record version 2; this monai-ag reads version 1",
        ),
        (
            json.dumps({"format": "monai-ag model recipe", "version": 1, "spacing": [1, 1, 1]}),
            "the recipe record lacks orientation, hu_window, class_names, network, patch_size",
        ),
    ],
)
def test_unreadable_records_name_the_file_and_the_problem(tmp_path, content, message):
    model = tmp_path / "model.pt"
    recipe_path(model).write_text(content)
    err = raises(RecipeError, message, read_recipe, model)
    assert str(err).startswith(str(recipe_path(model)))


def test_bad_settings_are_named(tmp_path):
    model = tmp_path / "none.pt"
    raises(
        RecipeError,
        r"spacing must be positive voxel sizes in mm, got \[0, 1, 1\]",
        for_inference,
        model,
        _defaults(),
        spacing=[0, 1, 1],
    )
    raises(
        RecipeError,
        r"hu_window must be \[low, high\] with low < high",
        for_inference,
        model,
        _defaults(),
        hu_window=[5, 1],
    )
    raises(
        RecipeError,
        r"class_names ids must be 0 \.\.\. n-1",
        for_inference,
        model,
        _defaults(),
        class_names={"0": "bg", "2": "x"},
    )
    raises(
        RecipeError,
        r"out_channels is 3 but there are 5 classes",
        for_inference,
        model,
        _defaults(),
        network_spec=functools.partial(GridAttentionUNet, spatial_dims=3, in_channels=1, out_channels=3),
    )
    raises(
        RecipeError,
        r"not a built GridAttentionUNet: the recipe records how to build it",
        for_inference,
        model,
        _defaults(),
        network_spec=GridAttentionUNet(3, 1, 5),
    )


def test_network_config_round_trip():
    spec = functools.partial(
        GridAttentionUNet,
        spatial_dims=3,
        in_channels=1,
        channels=(4, 8, 16),
        strides=(2, 2),
        deep_supervision_outputs=True,
    )
    config = network_config(spec, 5)
    assert config == {
        "_target_": GAUNET,
        "spatial_dims": 3,
        "in_channels": 1,
        "channels": [4, 8, 16],
        "strides": [2, 2],
        "deep_supervision_outputs": True,
        "out_channels": 5,
    }
    assert network_config(config, 5) == config  # as read back from a record
    torch.manual_seed(0)
    training = build_network(config, training=True)
    torch.manual_seed(0)
    inference = build_network(config)
    assert training.deep_supervision_outputs and not inference.deep_supervision_outputs  # one tensor in any mode
    assert training.state_dict().keys() == inference.state_dict().keys()


def test_for_training_without_start_weights_uses_the_config(caplog):
    with caplog.at_level(logging.WARNING):
        recipe = for_training(_defaults(), patch_size=[16, 16, 16], spacing=[2, 2, 2], start_weights="null")
    assert recipe.spacing == [2.0, 2.0, 2.0] and recipe.record is None and recipe.training["start_weights"] is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# ------------------------------------------------------------------ export keeps the recipe


def test_torchscript_export_carries_the_recipe(trained, tmp_path):
    from monai.data import load_net_with_metadata

    out = export_model(trained / "models" / "model.pt", tmp_path / "model.ts")
    net, meta, extra = load_net_with_metadata(str(out), more_extra_files=(RECIPE_KEY,))
    assert json.loads(extra[RECIPE_KEY]) == json.loads((trained / "models" / "model.recipe.json").read_text())
    assert meta["monai_ag_recipe"]["spacing"] == [8.0, 8.0, 8.0]
    reference = build_network(read_recipe(trained / "models" / "model.pt")["network"]).eval()
    reference.load_state_dict(torch.load(trained / "models" / "model.pt", weights_only=True))
    x = torch.rand(1, 1, 32, 32, 24)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x), atol=1e-5, rtol=1e-5)
    raises(
        FileExistsError,
        "already exists from an earlier run; pass --overwrite",
        export_model,
        trained / "models" / "model.pt",
        out,
    )


def test_export_needs_a_record(tmp_path):
    model = tmp_path / "model.pt"
    torch.save(GridAttentionUNet(3, 1, 5).state_dict(), model)
    raises(
        FileNotFoundError,
        "has no recipe record .*an export without it would not say how to pre-process",
        export_model,
        model,
        tmp_path / "model.ts",
    )
    assert not (tmp_path / "model.ts").exists()


@pytest.mark.slow
def test_onnx_export_carries_the_recipe(trained, tmp_path):
    onnx = pytest.importorskip("onnx")
    out = export_model(trained / "models" / "model.pt", tmp_path / "model.onnx", format="onnx")
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props[RECIPE_KEY])["patch_size"] == [32, 32, 24]


def test_export_command_line(trained, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai_ag.bundle.export",
            "--model",
            str(trained / "models" / "model.pt"),
            "--output",
            str(tmp_path / "m.ts"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert out.returncode == 0 and out.stdout.strip() == str(tmp_path / "m.ts"), out.stderr
