"""The bundle end to end on tiny phantom data: train -> evaluate -> infer, resume, and bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from bundle_testing import BUNDLE, TINY, raises, recorded_model, workflow  # noqa: E402 (tests/bundle is on the path)
from monai.bundle import ConfigWorkflow
from monai.transforms import LoadImage
from needs import needs_shared_data  # noqa: E402 (tests/ is on the path)

from monai_ag.data import InvalidImageError


def train(root: Path, data: Path, **overrides) -> ConfigWorkflow:
    wf = workflow(root, ["train.json"], "train", dataset_dir=str(data), **{**TINY, **overrides})
    wf.run()
    wf.finalize()
    return wf


def workflow_parser(root: Path):
    """inference.json alone, as MONAI Label reads it (run ``recorded_model`` first for its recipe)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser["bundle_root"] = str(root)
    return parser


def test_check_properties(bundle_copy, tiny_phantom):
    assert (
        workflow(bundle_copy, ["train.json"], "train", dataset_dir=str(tiny_phantom), **TINY).check_properties() == []
    )
    recorded_model(bundle_copy)
    infer = workflow(bundle_copy, ["inference.json"], "infer", dataset_dir=str(tiny_phantom))
    assert infer.check_properties() == []


def test_optional_steps_follow_their_command_line_flags(bundle_copy):
    """``--save_probabilities true`` etc. arrive as strings: each enables exactly its own step."""
    from monai.inferers import SlidingWindowInferer

    from monai_ag.inferers import FlipTTAInferer

    flags = ("save_probabilities", "save_attention_maps", "keep_largest_component", "flip_tta")
    recorded_model(bundle_copy)
    for on in [(), *[(f,) for f in flags], flags]:
        parser = workflow_parser(bundle_copy)
        parser["device"] = "cpu"
        for f in flags:
            parser[f] = "true" if f in on else "false"
        post = parser.get_parsed_content("postprocessing")
        names = [type(t).__name__ for t in post.transforms]
        written = sorted(t.saver.folder_layout.postfix for t in post.transforms if type(t).__name__ == "SafeSaveImaged")
        expected = sorted(
            ["seg"] + ["prob"] * ("save_probabilities" in on) + ["attention"] * ("save_attention_maps" in on)
        )
        assert written == expected, (on, names)
        assert ("AttentionMapsd" in names) == ("save_attention_maps" in on), (on, names)
        # the label map is always inverted; a probability copy and the attention maps each have their own
        inverted = sorted(k for t in post.transforms if type(t).__name__ == "Invertd" for k in t.keys)
        expected_inverted = sorted(
            ["pred"] + ["prob"] * ("save_probabilities" in on) + ["attention"] * ("save_attention_maps" in on)
        )
        assert inverted == expected_inverted, (on, names)
        assert ("KeepOrganComponentsd" in names) == ("keep_largest_component" in on), (on, names)
        if "keep_largest_component" in on:  # on the network's grid, before the label map is inverted
            assert names.index("KeepOrganComponentsd") < names.index("Invertd")
        inferer = parser.get_parsed_content("inferer")
        assert type(inferer) is (FlipTTAInferer if "flip_tta" in on else SlidingWindowInferer), on
    parser = workflow_parser(bundle_copy)
    parser["save_probabilities"] = "maybe"
    raises(
        ValueError,
        "^save_probabilities must be true or false, got 'maybe'.$",
        parser.get_parsed_content,
        "postprocessing",
    )


def test_metadata_validates_against_schema(tmp_path):
    schema = needs_shared_data().parent / "schema" / "meta_schema_20240725.json"  # ../shared, as in CI
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "monai.bundle",
            "verify_metadata",
            "--meta_file",
            str(BUNDLE / "configs" / "metadata.json"),
            "--filepath",
            str(schema),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "metadata is verified with no error" in out.stdout + out.stderr


def test_channel_def_matches_configs():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    channel_def = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    for name in ("train.json", "inference.json"):
        config = json.loads((BUNDLE / "configs" / name).read_text())
        assert config["recipe_defaults"]["class_names"] == channel_def
        assert len(channel_def) == meta["network_data_format"]["outputs"]["pred"]["num_channels"]


def test_train_evaluate_infer(bundle_copy, tiny_phantom, tmp_path):
    wf = train(bundle_copy, tiny_phantom)
    trainer = wf.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2
    model = bundle_copy / "models" / "model.pt"
    assert model.is_file() and (bundle_copy / "models" / "checkpoint.pt").is_file()
    runs = list((bundle_copy / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "run.json").is_file()
    assert any(f.name.startswith("events.out.tfevents") for f in runs[0].iterdir())

    # model.pt is a plain state dict that loads strictly into the inference network_def, which the recipe builds
    infer = workflow(bundle_copy, ["inference.json"], "infer", dataset_dir=str(tiny_phantom))
    net = infer.parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(model, map_location="cpu", weights_only=True), strict=True)
    assert not net.deep_supervision_outputs

    ev = workflow(bundle_copy, ["inference.json", "evaluate.json"], "infer", dataset_dir=str(tiny_phantom))
    ev.run()
    summary = json.loads((bundle_copy / "eval" / "summary.json").read_text())
    assert 0.0 <= summary["mean_dice"] <= 1.0
    with open(bundle_copy / "eval" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 4  # 2 test cases x 4 organs
    preds = sorted((bundle_copy / "eval" / "predictions").glob("*_seg.nii.gz"))
    assert len(preds) == 2
    # a second evaluation refuses to replace the first one's results before doing any work
    raises(
        FileExistsError,
        r"metrics.csv already exists from an earlier run; pass --overwrite true",
        workflow,
        bundle_copy,
        ["inference.json", "evaluate.json"],
        "infer",
        dataset_dir=str(tiny_phantom),
    )

    # inference on a single file writes a uint8 label map in the input's geometry
    image = tiny_phantom / "imagesTs" / "phantom_003.nii.gz"
    out_dir = tmp_path / "single"
    inf = workflow(
        bundle_copy,
        ["inference.json"],
        "infer",
        input_path=str(image),
        output_dir=str(out_dir),
        save_probabilities=True,
        save_attention_maps=True,
        keep_largest_component=True,
    )
    inf.run()
    seg = nib.load(str(out_dir / "phantom_003_seg.nii.gz"))
    src = nib.load(str(image))
    assert seg.shape == src.shape and seg.get_data_dtype() == np.uint8
    np.testing.assert_allclose(seg.affine, src.affine, atol=1e-4)
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 3, 4}
    prob = nib.load(str(out_dir / "phantom_003_prob.nii.gz"))
    assert prob.shape == (*src.shape, 5)
    np.testing.assert_allclose(np.asarray(prob.dataobj).sum(-1), 1.0, atol=1e-3)
    att = nib.load(str(out_dir / "phantom_003_attention.nii.gz"))
    assert att.shape == (*src.shape, 6)  # 3 gated levels x 2 heads
    a = np.asarray(att.dataobj)
    assert a.min() >= -1e-6 and a.max() <= 1 + 1e-6
    assert not list(out_dir.glob(".*partial*"))


def test_inference_without_weights_fails_early(bundle_copy, tiny_phantom):
    raises(
        FileNotFoundError,
        r"trained weights not found: .*models/model.pt. Train first",
        workflow,
        bundle_copy,
        ["inference.json"],
        "infer",
        dataset_dir=str(tiny_phantom),
    )


def _bad_inputs(folder: Path) -> dict[str, str]:
    """Inference inputs a user may pass by mistake, with the problem the check must name for each."""
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    ct = np.full((24, 20, 16), 40.0, np.float32)
    ct[0] = -1000.0
    nib.save(nib.Nifti1Image(np.stack([ct, ct], -1), affine), str(folder / "four_d.nii.gz"))
    nib.save(nib.Nifti1Image(np.full(ct.shape, np.nan, np.float32), affine), str(folder / "all_nan.nii.gz"))
    some = ct.copy()
    some[3:5, 3:5, 3:5] = np.nan
    nib.save(nib.Nifti1Image(some, affine), str(folder / "some_nan.nii.gz"))
    (folder / "not_an_image.nii.gz").write_text("hello")
    return {
        "all_nan.nii.gz": "no finite value: all 7680 voxels are NaN or infinite",
        "four_d.nii.gz": r"4D image with 2 volumes \(shape \(24, 20, 16, 2\)\)",
        "not_an_image.nii.gz": "cannot read the image: ImageFileError: .* is not a gzip file",
        "some_nan.nii.gz": r"8 of 7680 voxels \(0.1 %\) are NaN or infinite; replace them",
    }


def test_bad_inference_inputs_fail_before_the_run(bundle_copy, tmp_path):
    recorded_model(bundle_copy)
    bad = _bad_inputs(tmp_path / "in")
    for name, problem in bad.items():
        path = tmp_path / "in" / name
        raises(
            InvalidImageError,
            f"^{re.escape(str(path))}: {problem}",
            workflow,
            bundle_copy,
            ["inference.json"],
            "infer",
            input_path=str(path),
            output_dir=str(tmp_path / "out"),
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_bad_inference_inputs_named_by_the_command_line(bundle_copy, tmp_path):
    """What a user sees: one ERROR line per bad file naming it and its problem, the same text as the
    exception the traceback shows, and a last line naming the input check."""
    recorded_model(bundle_copy)
    bad = _bad_inputs(tmp_path / "in")
    nib.save(
        nib.Nifti1Image(np.full((24, 20, 16), 0.5, np.float32), np.diag([8.0, 8.0, 8.0, 1.0])),
        str(tmp_path / "in" / "normalized.nii.gz"),
    )  # not HU: a warning, not an error
    out = _cli(
        [
            "--config_file",
            "configs/inference.json",
            "--input_path",
            str(tmp_path / "in"),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        bundle_copy,
    )
    assert out.returncode != 0
    errors = [line.split(" - ERROR - ", 1)[1] for line in out.stdout.splitlines() if " - ERROR - " in line]
    assert len(errors) == len(bad), out.stdout[-3000:]
    for line, (name, problem) in zip(errors, bad.items()):
        assert re.match(f"{re.escape(str(tmp_path / 'in' / name))}: {problem}", line), line
    warnings = [line for line in out.stdout.splitlines() if " - WARNING - " in line and "normalized.nii.gz" in line]
    assert len(warnings) == 1 and "none at or below -500: a CT in Hounsfield units holds air" in warnings[0]
    expected = f"monai_ag.data.checks.InvalidImageError: {len(bad)} input images cannot be segmented:\n" + "\n".join(
        errors
    )
    assert expected in out.stderr
    assert out.stderr.rstrip().endswith("check_inference_inputs(__local_refs['datalist'])\"")
    assert not (tmp_path / "out").exists()


def test_missing_dataset_dir_fails_early(bundle_copy, tmp_path):
    missing = tmp_path / "nowhere"
    wf = workflow(bundle_copy, ["train.json"], "train", dataset_dir=str(missing), **TINY)
    raises(
        FileNotFoundError,
        rf"^dataset_dir {re.escape(str(missing))} does not exist.$",
        wf.parser.get_parsed_content,
        "train#dataset",
    )


def test_bad_label_values_fail_early(bundle_copy, tiny_phantom, tmp_path):
    data = tmp_path / "bad"
    data.mkdir()
    entries = json.loads((tiny_phantom / "dataset.json").read_text())
    for split in ("training", "validation"):
        for e in entries[split]:
            for k in ("image", "label"):
                e[k] = str((tiny_phantom / e[k]).resolve())
    bad = nib.load(entries["training"][0]["label"])
    arr = np.asarray(bad.dataobj).copy()
    arr[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(arr, bad.affine), str(data / "bad_label.nii.gz"))
    entries["training"][0]["label"] = str(data / "bad_label.nii.gz")
    (data / "dataset.json").write_text(json.dumps(entries))
    wf = workflow(bundle_copy, ["train.json"], "train", dataset_dir=str(data), **TINY)
    raises(
        ValueError,
        r"label .*bad_label.nii.gz has values \[7\] outside the allowed classes \[0, 1, 2, 3, 4\]",
        wf.parser.get_parsed_content,
        "train#dataset",
    )


def test_bundle_root_without_configs_fails_early(tmp_path, tiny_phantom):
    wf = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "train.json"),
        workflow_type="train",
        bundle_root=str(tmp_path),
        dataset_dir=str(tiny_phantom),
        logging_file=False,
    )
    raises(
        FileNotFoundError,
        f"bundle_root '{re.escape(str(tmp_path))}' .* has no configs/ folder: run from the bundle directory",
        wf.initialize,
    )


def _cli(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def _overrides(d: dict) -> list[str]:
    out = []
    for k, v in d.items():
        out += [f"--{k}", json.dumps(v) if not isinstance(v, str) else v]
    return out


@pytest.mark.slow
def test_command_line_train_and_evaluate(bundle_copy, tiny_phantom):
    train_cli = _cli(
        ["--config_file", "configs/train.json", "--dataset_dir", str(tiny_phantom), *_overrides(TINY)], bundle_copy
    )
    assert train_cli.returncode == 0, train_cli.stderr[-3000:]
    assert (bundle_copy / "models" / "model.pt").is_file()
    ev = _cli(
        ["--config_file", "['configs/inference.json','configs/evaluate.json']", "--dataset_dir", str(tiny_phantom)],
        bundle_copy,
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "mean" in ev.stdout and (bundle_copy / "eval" / "summary.csv").is_file()
    record = json.loads(next((bundle_copy / "runs").iterdir()).joinpath("run.json").read_text())
    assert record["config"]["max_epochs"] in (2, "2")


def test_bundle_fails_at_once_without_monai_ag(bundle_copy, tiny_phantom):
    blocker = (
        "import sys, runpy\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'monai_ag' or name.startswith('monai_ag.'):\n"
        "            raise ModuleNotFoundError(f\"No module named '{name}'\")\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['monai.bundle', 'run', '--config_file', 'configs/train.json', '--dataset_dir', sys.argv[1]]\n"
        "runpy.run_module('monai.bundle', run_name='__main__')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", blocker, str(tiny_phantom)], cwd=bundle_copy, capture_output=True, text=True, timeout=300
    )
    assert out.returncode != 0
    # the first error printed is the import check's, naming the package; the last lines show the check itself
    first = next(line for line in out.stderr.splitlines() if "Error: " in line)
    assert first == (
        "monai.utils.module.OptionalImportError: import monai_ag -- this bundle needs monai-ag: "
        "pip install -e <monai-ag checkout> (No module named 'monai_ag')."
    ), first
    assert "this bundle needs" in "".join(out.stderr.splitlines()[-3:])
    assert "Loading dataset" not in out.stderr + out.stdout  # it stopped before any work


@pytest.mark.slow
def test_inference_geometry_real_nifti_and_dicom(bundle_copy, shared_data, tmp_path):
    recorded_model(bundle_copy)
    for source, reader in [
        (shared_data / "totalseg" / "example_ct.nii.gz", None),  # flipped direction (-1, -1, 1)
        (shared_data / "totalseg" / "example_ct_dicom", "ITKReader"),
    ]:
        out_dir = tmp_path / source.name
        wf = workflow(bundle_copy, ["inference.json"], "infer", input_path=str(source), output_dir=str(out_dir))
        wf.run()
        (seg_path,) = list(out_dir.glob("*_seg.nii.gz"))
        ref = LoadImage(image_only=True, reader=reader)(str(source))
        seg = LoadImage(image_only=True)(str(seg_path))
        assert tuple(seg.shape) == tuple(ref.shape)
        np.testing.assert_allclose(np.asarray(seg.affine), np.asarray(ref.affine), atol=1e-4)


HU_WINDOW = (-175.0, 250.0)  # inference.json's hu_window
THRESHOLD_HU = 100.5  # between integer HU values: no voxel sits on it


def _threshold_weights(root: Path) -> dict:
    """A ThresholdNet checkpoint labelling voxels above THRESHOLD_HU as class 1, and the override using it
    (``stand_ins`` must be importable: see the ``stand_ins_importable`` fixture)."""
    from stand_ins import ThresholdNet

    (root / "models").mkdir(exist_ok=True)
    normalized = (THRESHOLD_HU - HU_WINDOW[0]) / (HU_WINDOW[1] - HU_WINDOW[0])
    torch.save(ThresholdNet(normalized).state_dict(), root / "models" / "threshold.pt")
    # built with threshold 0: the value comes from the checkpoint, as the bundle loads it; no recipe record: the
    # settings are given here (one warning says so)
    return {
        "network_spec": {"_target_": "stand_ins.ThresholdNet", "_mode_": "callable"},
        "ckpt_path": str(root / "models" / "threshold.pt"),
    }


@pytest.fixture
def stand_ins_importable(monkeypatch):
    """``tests/bundle`` on ``sys.path`` for the bundle's ``_target_: stand_ins.ThresholdNet`` (other tests may
    have reset ``sys.path`` since pytest put it there)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))


def _ras_spacing(affine: np.ndarray) -> list[float]:
    """The voxel sizes along R, A, S once reoriented (the bundle's Spacingd works in RAS)."""
    ornt = nib.orientations.io_orientation(affine)
    sizes = nib.affines.voxel_sizes(affine)
    return [float(sizes[int(np.flatnonzero(ornt[:, 0] == k)[0])]) for k in range(3)]


def _check_labels_land_on_the_right_voxels(root: Path, source: Path, out_dir: Path, reader: str | None = None) -> int:
    """Segment ``source`` at its own spacing with the threshold stand-in; the written label map must be
    the threshold applied to the input in its original grid, voxel by voxel. Returns the voxels above."""
    ref = LoadImage(image_only=True, reader=reader)(str(source))
    overrides = {
        **_threshold_weights(root),
        "spacing": _ras_spacing(np.asarray(ref.affine)),
        "patch_size": [64, 64, 32],
    }
    workflow(root, ["inference.json"], "infer", input_path=str(source), output_dir=str(out_dir), **overrides).run()
    (seg_path,) = list(out_dir.glob("*_seg.nii.gz"))
    seg = LoadImage(image_only=True)(str(seg_path))
    np.testing.assert_allclose(np.asarray(seg.affine), np.asarray(ref.affine), atol=1e-4)
    expected = (np.asarray(ref) > THRESHOLD_HU).astype(np.uint8)
    got = np.asarray(seg).astype(np.uint8)
    assert got.shape == expected.shape
    wrong = int((got != expected).sum())
    assert wrong == 0, f"{wrong} of {expected.size} voxels labelled differently from the input's own grid"
    return int(expected.sum())


def _non_ras_phantom(path: Path) -> Path:
    """A synthetic CT stored with its axes permuted and flipped (P, I, L), anisotropic voxels and an
    off-centre bright block, so a wrong axis order or direction moves the labels."""
    hu = np.full((30, 24, 18), -1000.0, np.float32)  # air
    hu[4:26, 3:21, 2:16] = 40.0  # soft tissue
    hu[6:11, 5:9, 3:12] = 300.0  # a bright block near one corner
    hu[20:24, 15:19, 12:15] = 150.0
    # voxel axis i -> posterior (-y), j -> inferior (-z), k -> left (-x); spacings 2, 3, 4 mm
    affine = np.array([[0, 0, -4.0, 60.0], [-2.0, 0, 0, 30.0], [0, -3.0, 0, 20.0], [0, 0, 0, 1]])
    assert "".join(nib.aff2axcodes(affine)) == "PIL"
    nib.save(nib.Nifti1Image(hu, affine), str(path))
    return path


def test_labels_land_on_the_right_voxels_non_ras_synthetic(bundle_copy, tmp_path, stand_ins_importable):
    source = _non_ras_phantom(tmp_path / "pil.nii.gz")
    assert _check_labels_land_on_the_right_voxels(bundle_copy, source, tmp_path / "out") == 5 * 4 * 9 + 4 * 4 * 3


@pytest.mark.slow
def test_labels_land_on_the_right_voxels_real_ct(bundle_copy, shared_data, tmp_path, stand_ins_importable):
    """Real CT: the TotalSegmentator DICOM series (LPS in MONAI's RAS terms) and example_ct.nii.gz, as
    shipped (RAS: its ITK direction (-1, -1, 1) is LPS-flipped) and re-stored with permuted, flipped axes."""
    nifti = shared_data / "totalseg" / "example_ct.nii.gz"
    img = nib.load(str(nifti))
    # the same voxels stored as (P, S, R): new voxel (i, j, k) is old (k, ny - 1 - i, j) (written to tmp only)
    data = np.transpose(np.asarray(img.dataobj), (1, 2, 0))[::-1].copy()
    perm = np.eye(4)[[1, 2, 0, 3]].T
    flip = np.diag([-1.0, 1, 1, 1])
    flip[0, 3] = data.shape[0] - 1
    affine = img.affine @ perm @ flip
    restored = tmp_path / "example_ct_ASL.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(restored))
    assert "".join(nib.aff2axcodes(affine)) == "PSR" and np.allclose(
        affine @ [0, 0, 0, 1], img.affine @ [0, data.shape[0] - 1, 0, 1]
    )
    for i, (source, reader) in enumerate(
        [
            (shared_data / "totalseg" / "example_ct_dicom", "ITKReader"),
            (nifti, None),
            (restored, None),
        ]
    ):
        assert _check_labels_land_on_the_right_voxels(bundle_copy, source, tmp_path / f"out{i}", reader) > 1000


def test_verify_net_in_out_and_ckpt_export(bundle_copy, tmp_path):
    from monai.bundle import ckpt_export, verify_net_in_out

    configs = bundle_copy / "configs"
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(configs / "metadata.json"),
        config_file=str(configs / "inference.json"),
        device="cpu",
        bundle_root=str(bundle_copy),
    )
    recorded_model(bundle_copy)
    ts = tmp_path / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts),
        ckpt_file=str(bundle_copy / "models" / "model.pt"),
        meta_file=str(configs / "metadata.json"),
        config_file=str(configs / "inference.json"),
        bundle_root=str(bundle_copy),
    )
    loaded = torch.jit.load(str(ts))
    parser = workflow_parser(bundle_copy)
    net = parser.get_parsed_content("network_def").eval()
    net.load_state_dict(torch.load(bundle_copy / "models" / "model.pt", weights_only=True))
    x = torch.rand(1, 1, 35, 33, 21)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), atol=1e-5, rtol=1e-5)


def test_mlflow_tracking(bundle_copy, tiny_phantom, tmp_path):
    pytest.importorskip("mlflow")
    # the bundle's default tracking_uri: an SQLite file in the bundle (MLflow dropped the file store)
    wf = ConfigWorkflow(
        config_file=str(bundle_copy / "configs" / "train.json"),
        meta_file=str(bundle_copy / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        bundle_root=str(bundle_copy),
        dataset_dir=str(tiny_phantom),
        tracking="mlflow",
        **{**TINY, "max_epochs": 1},
    )
    uri = "sqlite:///" + str((bundle_copy / "mlruns.db").resolve())
    wf.initialize()
    wf.run()
    wf.finalize()
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert runs, "no MLflow run was recorded"
    assert any("val_mean_dice" in r.data.metrics for r in runs)


@pytest.mark.slow
def test_train_and_evaluate_on_real_ircad_dicom(bundle_copy, shared_data, tmp_path):
    """The whole bundle on real CT: an IRCAD DICOM series as the image, its organ masks merged into
    a NIfTI label (written only to tmp: the data is CC BY-NC-ND), train briefly, then evaluate."""
    import tarfile

    with tarfile.open(shared_data / "ircad01.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    case = tmp_path / "ircad01"
    load = LoadImage(reader="ITKReader", image_only=True)
    image = load(str(case / "PATIENT_DICOM"))
    label = np.zeros(image.shape, np.uint8)
    for value, organs in {1: ["liver"], 2: ["spleen"], 3: ["leftkidney", "rightkidney"]}.items():
        for organ in organs:
            label[np.asarray(load(str(case / "MASKS_DICOM" / organ))) > 0] = value
    nib.save(nib.Nifti1Image(label, np.asarray(image.affine)), str(tmp_path / "ircad01_label.nii.gz"))
    pair = {"image": str(case / "PATIENT_DICOM"), "label": str(tmp_path / "ircad01_label.nii.gz")}
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "dataset.json").write_text(json.dumps({"training": [pair], "validation": [pair], "test": [pair]}))

    train(bundle_copy, data, max_epochs=1)
    ev = workflow(bundle_copy, ["inference.json", "evaluate.json"], "infer", dataset_dir=str(data))
    ev.run()
    with open(bundle_copy / "eval" / "metrics.csv") as f:
        rows = {r["class_name"]: r for r in csv.DictReader(f)}
    # the reference volumes are measured in the original 0.57 x 0.57 x 1.6 mm geometry
    assert 1400 < float(rows["liver"]["ref_volume_ml"]) < 1600
    assert 100 < float(rows["spleen"]["ref_volume_ml"]) < 130
    assert rows["pancreas"]["dice"] == ""  # not labelled in IRCAD: NaN, left out of the means
    (seg,) = list((bundle_copy / "eval" / "predictions").glob("*_seg.nii.gz"))
    assert nib.load(str(seg)).shape == tuple(image.shape)
