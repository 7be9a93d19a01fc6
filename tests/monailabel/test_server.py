"""MONAI Label as 3D Slicer uses it: ``monailabel start_server`` with the bundle, driven over HTTP by MONAI
Label's own client (``monailabel.client.MONAILabelClient``, the code 3D Slicer's module runs): info, infer,
save a corrected label, a training round, infer again. The bundle's model was trained with a non-default
recipe (8 mm, a narrow network, given at training only): over HTTP it must segment exactly as
``monai.bundle run`` with ``configs/inference.json`` does in the same environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from needs import needs_module, needs_shared_data  # noqa: E402 (tests/ is on the path)

needs_module(
    "monailabel.client",
    "MONAILABEL",
    "MONAI Label is not installed here; tests/monailabel runs in the "
    "environment scripts/monailabel_env.sh makes (scripts/monailabel_tests.sh)",
)

import mlabel_helpers as helpers  # noqa: E402 (tests/monailabel is on the path)
from monai.bundle import ConfigWorkflow  # noqa: E402
from monailabel.client import MONAILabelClient  # noqa: E402

from monai_ag.data import ORGAN_NAMES  # noqa: E402

NAME = "attention_unet_abdominal_ct"
TEST_STUDY = "phantom_004"  # unlabelled at start: the study a user opens, segments, corrects and submits
START_TIMEOUT_S = 300
TRAIN_TIMEOUT_S = 900
# the model's recipe, given at training only (the bundle's configs keep their defaults)
RECIPE = {"spacing": [8.0, 8.0, 8.0], "recipe_defaults#network#channels": [4, 8, 16, 32, 64]}
# free training settings written into the copy's train.json, so that MONAI Label's rounds take seconds
ROUND_SETTINGS = {"patch_size": [32, 32, 24], "batch_size": 2, "num_samples": 1, "val_interval": 1, "cache_rate": 0.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else "(no log)"


def _env() -> dict:
    """The environment's own ``bin`` first (``monailabel`` runs ``python -m monailabel.main`` with the
    ``python`` on PATH), monai_ag from this checkout, the helpers importable for the configs."""
    repo = Path(__file__).resolve().parents[2]
    path = [str(repo), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
    }


def _train_model(root: Path, data: Path) -> None:
    wf = ConfigWorkflow(
        config_file=str(root / "configs" / "train.json"),
        meta_file=str(root / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        bundle_root=str(root),
        dataset_dir=str(data),
        max_epochs=3,
        device="cpu",
        **RECIPE,
    )
    wf.initialize()
    wf.run()
    wf.finalize()


def bundle_run(root: Path, image: Path, out: Path) -> np.ndarray:
    """``python -m monai.bundle run --config_file configs/inference.json`` on ``image``, as a user types it, in
    this environment: the label map it writes."""
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "configs/inference.json",
        "--input_path",
        str(image),
        "--output_dir",
        str(out),
    ]
    run = subprocess.run(cmd, cwd=root, env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (seg,) = out.glob("*_seg.nii.gz")
    return np.asarray(nib.load(str(seg)).dataobj)


class Server:
    """A running ``monailabel start_server`` and what it serves."""

    def __init__(self, app: Path, studies: Path, bundle: Path, log: Path, timings: dict) -> None:
        self.app, self.studies, self.bundle, self.log, self.timings = app, studies, bundle, log, timings
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [
            "monailabel",
            "start_server",
            "--app",
            str(self.app),
            "--studies",
            str(self.studies),
            "--conf",
            "models",
            NAME,
            "--conf",
            "zoo_source",
            "github",
            "--conf",
            "sam2",
            "false",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        started = time.perf_counter()
        with open(self.log, "w") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        client = MONAILabelClient(self.url)
        while time.perf_counter() - started < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                pytest.fail(f"monailabel start_server exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                client.info()
                self.timings["server_start_s"] = round(time.perf_counter() - started, 2)
                return
            except Exception:  # noqa: BLE001 (not listening yet)
                time.sleep(1)
        pytest.fail(f"monailabel start_server did not answer /info/ within {START_TIMEOUT_S} s:\n{_tail(self.log)}")

    def stop(self) -> None:
        """Stop the server and everything it started (its training processes share its process group)."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.time() + 30
            while _group_alive(pgid) and time.time() < deadline:
                time.sleep(0.5)
            if _group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)
                time.sleep(1)
        self.proc.wait(timeout=30)
        assert not _group_alive(pgid), f"processes of the server's group {pgid} are still running"
        deadline = time.time() + 30
        while not _port_free(self.port) and time.time() < deadline:
            time.sleep(0.5)
        assert _port_free(self.port), f"port {self.port} is still taken after the server stopped"


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_phantom):
    """The monaibundle app (MONAI Label's own sample app, copied offline), the bundle in it with a trained
    ``models/model.pt`` and its record, a studies folder (four labelled phantom studies, one unlabelled, and
    the shared real CT where present), and the server on a free port; stopped at the end, whatever happens."""
    work = tmp_path_factory.mktemp("server")
    apps = work / "apps"
    env = _env()
    out = subprocess.run(
        ["monailabel", "apps", "--download", "--name", "monaibundle", "--output", str(apps)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    app = apps / "monaibundle"
    bundle = helpers.make_app_bundle(app, **ROUND_SETTINGS)
    _train_model(bundle, tiny_phantom)
    studies = helpers.make_local_datastore(tiny_phantom, work / "studies")
    shutil.copy(tiny_phantom / "imagesTs" / f"{TEST_STUDY}.nii.gz", studies / f"{TEST_STUDY}.nii.gz")
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "totalseg" / "example_ct.nii.gz"
    if shared.is_file():
        shutil.copy(shared, studies / "example_ct.nii.gz")  # tmp only
    timings: dict = {}
    srv = Server(app, studies, bundle, work / "server.log", timings)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        target = os.environ.get("MONAI_AG_SERVER_TIMINGS")
        if target and timings:
            from monai_ag.utils.precision import cpu_capabilities

            record = {
                "command": "MONAI_AG_SERVER_TIMINGS=<file> bash scripts/monailabel_tests.sh -k server",
                "cpu": {"cores": os.cpu_count(), **cpu_capabilities()},
                "model": {"recipe": RECIPE, "patch_size": ROUND_SETTINGS["patch_size"]},
                "studies": {p.name: list(nib.load(str(p)).shape) for p in sorted(studies.glob("*.nii.gz"))},
                "timings_s": timings,
            }
            Path(target).write_text(json.dumps(record, indent=2) + "\n")


def _timed(timings: dict, key: str, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    timings[key] = round(time.perf_counter() - start, 2)
    return result


def test_info_lists_the_model_and_its_labels(server):
    info = _timed(server.timings, "info_s", MONAILabelClient(server.url).info)
    model = info["models"][NAME]
    assert model["type"] == "segmentation"
    assert model["labels"] == {"liver": 1, "spleen": 2, "kidney": 3, "pancreas": 4}
    assert NAME in info["trainers"]


def _infer(server: Server, study: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    client = MONAILabelClient(server.url, tmpdir=str(server.log.parent))
    label, params = _timed(server.timings, key, client.infer, NAME, study, {})
    assert params["label_names"] == {"liver": 1, "spleen": 2, "kidney": 3, "pancreas": 4}
    img = nib.load(label)
    seg = np.asarray(img.dataobj)
    # the organ volumes of the result JSON (what 3D Slicer and OHIF receive) are those of the label sent (to
    # the rounding to 0.01 mL; the file's affine is float32)
    voxel_ml = abs(np.linalg.det(img.affine[:3, :3])) / 1000
    expected = {name: float((seg == value).sum() * voxel_ml) for value, name in ORGAN_NAMES.items()}
    assert params["organ_volumes_ml"] == pytest.approx(expected, abs=0.006)
    return seg, img.affine


def _study(server: Server, name: str) -> Path:
    return server.studies / f"{name}.nii.gz"


def test_infer_over_http_equals_bundle_run(server, tmp_path):
    seg, affine = _infer(server, TEST_STUDY, "infer_s")
    study = nib.load(str(_study(server, TEST_STUDY)))
    assert seg.shape == study.shape
    np.testing.assert_allclose(affine, study.affine, atol=1e-4)
    np.testing.assert_array_equal(seg, bundle_run(server.bundle, _study(server, TEST_STUDY), tmp_path / "bundle"))
    assert (seg > 0).any() and (seg == 0).any(), "a constant label map cannot show agreement"


def test_infer_real_ct_over_http_equals_bundle_run(server, tmp_path):
    needs_shared_data()
    seg, affine = _infer(server, "example_ct", "infer_real_ct_s")
    study = nib.load(str(_study(server, "example_ct")))
    assert seg.shape == study.shape
    np.testing.assert_allclose(affine, study.affine, atol=1e-4)
    np.testing.assert_array_equal(seg, bundle_run(server.bundle, _study(server, "example_ct"), tmp_path / "bundle"))


def test_submit_train_and_infer_with_the_new_model(server, tmp_path, tiny_phantom):
    client = MONAILabelClient(server.url, tmpdir=str(tmp_path))
    model = server.bundle / "models" / "model.pt"
    before = model.read_bytes()
    seg_before, _ = _infer(server, TEST_STUDY, "infer_before_training_s")
    assert (seg_before > 0).any()

    # the annotator corrects the label (here: the reference) and submits it
    corrected = tmp_path / f"{TEST_STUDY}.nii.gz"
    shutil.copy(tiny_phantom / "labelsTs" / f"{TEST_STUDY}.nii.gz", corrected)
    _timed(server.timings, "save_label_s", client.save_label, TEST_STUDY, str(corrected), "final")
    saved = server.studies / "labels" / "final" / f"{TEST_STUDY}.nii.gz"
    assert saved.is_file()
    np.testing.assert_array_equal(
        np.asarray(nib.load(str(saved)).dataobj), np.asarray(nib.load(str(corrected)).dataobj)
    )

    started = time.perf_counter()
    client.train_start(NAME, {"max_epochs": 2, "val_split": 0.2, "device": "cpu", "multi_gpu": False})
    status = {}
    while time.perf_counter() - started < TRAIN_TIMEOUT_S:
        status = client.train_status()
        if status.get("status") not in ("SUBMITTED", "RUNNING", None):  # DONE, ERROR, STOPPED
            break
        time.sleep(2)
    server.timings["train_round_2_epochs_s"] = round(time.perf_counter() - started, 2)
    assert status.get("status") == "DONE", f"training did not finish: {json.dumps(status)[-2000:]}\n{_tail(server.log)}"
    assert model.read_bytes() != before, "the round did not write a new models/model.pt"
    record = json.loads((server.bundle / "models" / "model.recipe.json").read_text())
    assert (
        record["spacing"] == RECIPE["spacing"]
        and record["network"]["channels"] == RECIPE["recipe_defaults#network#channels"]
    )

    seg_after, _ = _infer(server, TEST_STUDY, "infer_after_training_s")
    assert (seg_after > 0).any(), "the trained round predicts no foreground"
    np.testing.assert_array_equal(seg_after, bundle_run(server.bundle, _study(server, TEST_STUDY), tmp_path / "bundle"))
    assert not np.array_equal(seg_after, seg_before), "the inference after the round did not use the new model.pt"
