"""Exact resume of the bundle's training on a tiny phantom: a run interrupted after epoch k (an exception in a
handler, SIGKILL of the process, a kill during the checkpoint write) and resumed ends where the uninterrupted
run ends: same losses, weights and validation metrics."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from bundle_testing import BUNDLE, TINY, raises, workflow  # noqa: E402 (tests/bundle is on the path)
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from monai_ag.bundle import RecipeError
from monai_ag.data import generate_phantom_dataset

# the tiny CPU profile on four training cases, two a batch (an epoch has two iterations, and the shuffle has
# many outcomes), validation after every epoch
RESUME = {**TINY, "max_epochs": 3}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    """4 training cases and 1 validation case at 8 mm."""
    root = tmp_path_factory.mktemp("phantom4")
    generate_phantom_dataset(
        root, num_cases=5, shape=(40, 32, 24), spacing=(8.0, 8.0, 8.0), num_validation=1, num_test=0
    )
    return root


class Interrupt(Exception):
    pass


def _new_bundle(root: Path) -> Path:
    shutil.copytree(BUNDLE / "configs", root / "configs", ignore=shutil.ignore_patterns("monailabel_train.json"))
    return root


def _workflow(root: Path, data: Path, **overrides) -> ConfigWorkflow:
    return workflow(root, ["train.json"], "train", dataset_dir=str(data), **{**RESUME, **overrides})


class Record:
    """What a run did: the loss of every iteration, the validation metrics of every validated epoch, and
    (for a resumed run) the best-model saver's and the lr scheduler's state right after the resume."""

    def __init__(self, wf: ConfigWorkflow) -> None:
        self.trainer = wf.parser.get_parsed_content("train#trainer")
        self.network = wf.parser.get_parsed_content("network")
        self.saver = wf.parser.get_parsed_content("validate#model_saver")
        self.scheduler = wf.parser.get_parsed_content("lr_scheduler")
        validator = wf.parser.get_parsed_content("validate#evaluator")
        self.losses: dict[int, float] = {}
        self.metrics: dict[int, dict] = {}
        self.at_start: dict = {}
        self.trainer.add_event_handler(
            Events.ITERATION_COMPLETED,
            lambda e: self.losses.update({e.state.iteration: float(e.state.output[0]["loss"])}),
        )
        validator.add_event_handler(
            Events.EPOCH_COMPLETED, lambda e: self.metrics.update({self.trainer.state.epoch: dict(e.state.metrics)})
        )
        # attached after the bundle's handlers, so it runs after TrainingCheckpoint's resume
        self.trainer.add_event_handler(
            Events.STARTED,
            lambda e: self.at_start.update(
                epoch=e.state.epoch, saver=self.saver.state_dict(), lr_scheduler=self.scheduler.state_dict()
            ),
        )

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.network.state_dict().items()}


def _run(root: Path, data: Path, stop_at_iteration: int | None = None, **overrides) -> Record:
    wf = _workflow(root, data, **overrides)
    rec = Record(wf)
    if stop_at_iteration is None:
        wf.run()
    else:

        def stop(engine):
            raise Interrupt(f"simulated interruption at iteration {engine.state.iteration}")

        rec.trainer.add_event_handler(Events.ITERATION_COMPLETED(once=stop_at_iteration), stop)
        with pytest.raises(RuntimeError, match="Failed to evaluate") as info:  # the bundle's wrapper
            wf.run()
        assert isinstance(info.value.__cause__, Interrupt)
    wf.finalize()
    return rec


def _assert_same_end(resumed: Record, reference: Record, from_epoch: int) -> None:
    epoch_length = resumed.trainer.state.epoch_length
    assert resumed.trainer.state.epoch == reference.trainer.state.epoch
    # the resumed epochs repeat the uninterrupted run's losses and validation metrics
    assert resumed.losses == {i: v for i, v in reference.losses.items() if i > from_epoch * epoch_length}
    assert resumed.metrics == {e: m for e, m in reference.metrics.items() if e > from_epoch}
    ref = reference.weights()
    for name, value in resumed.weights().items():
        torch.testing.assert_close(value, ref[name], atol=1e-6, rtol=0, msg=name)


def _assert_restored_from(resumed: Record, ckpt: dict, epoch: int) -> None:
    """The resumed run's best-model saver and lr scheduler start from exactly the saved states."""
    assert resumed.at_start["epoch"] == epoch
    assert resumed.at_start["saver"] == ckpt["best_model_saver"]
    assert resumed.at_start["saver"]["_saved"], "the saved best-model tracking is empty"
    assert resumed.at_start["lr_scheduler"] == ckpt["lr_scheduler"]


@pytest.fixture(scope="module")
def reference(phantom, tmp_path_factory) -> Record:
    """The uninterrupted run."""
    return _run(_new_bundle(tmp_path_factory.mktemp("reference")), phantom)


def _load(root: Path) -> dict:
    return torch.load(root / "models" / "checkpoint.pt", map_location="cpu", weights_only=True)


class _Lines(logging.Handler):
    """Collects the messages of a logger (the bundle's logging.conf replaces the root's handlers, pytest's too)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.INFO)
        self.name, self.messages = name, []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> list[str]:
        logging.getLogger(self.name).addHandler(self)
        return self.messages

    def __exit__(self, *exc) -> None:
        logging.getLogger(self.name).removeHandler(self)


def test_resume_after_exception_is_exact(reference, phantom, tmp_path):
    root = _new_bundle(tmp_path)
    epoch_length = reference.trainer.state.epoch_length
    _run(root, phantom, stop_at_iteration=epoch_length + 1)  # interrupted during epoch 2
    ckpt = _load(root)
    assert ckpt["trainer"]["iteration"] == epoch_length  # the checkpoint of epoch 1

    with _Lines("monai_ag.handlers.checkpoint") as lines, _Lines("ignite.engine") as ignite_lines:
        resumed = _run(root, phantom, resume=True)
    _assert_restored_from(resumed, ckpt, epoch=1)
    _assert_same_end(resumed, reference, from_epoch=1)
    assert any(f"at epoch 2 of 3, iteration {epoch_length + 1}" in m and "checkpoint.pt" in m for m in lines), lines
    # ignite's own line shows the resumed epoch too, not "iteration 0, epoch 0"
    assert any(f"resuming from iteration {epoch_length}, epoch 1 until 3 epochs" in m for m in ignite_lines), (
        ignite_lines
    )


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, phantom):
    wf = _workflow(_new_bundle(tmp_path), phantom, resume=True)
    with pytest.raises(Exception) as info:  # raised when the trainer is built, before any epoch
        wf.parser.get_parsed_content("train#trainer")
    err = info.value
    while not isinstance(err, FileNotFoundError) and err.__cause__ is not None:
        err = err.__cause__
    assert isinstance(err, FileNotFoundError)
    assert str(err).startswith(f"resume was requested but there is no training checkpoint at {tmp_path}")


# the training as a separate process that SIGKILLs itself half-way through writing its second checkpoint
# (epoch 2's): the bytes written so far are in the temporary file, checkpoint.pt is still epoch 1's
_KILLED_DURING_WRITE = textwrap.dedent(
    """
    import io, json, os, signal, sys
    from pathlib import Path
    import torch
    sys.path.insert(0, sys.argv[1])
    from test_resume import _workflow

    real_save, writes = torch.save, []

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and "random_states" in obj:
            writes.append(f)
            if len(writes) == 2:
                buf = io.BytesIO()
                real_save(obj, buf)
                Path(f).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    torch.save = save
    _workflow(Path(sys.argv[2]), Path(sys.argv[3]), **json.loads(sys.argv[4])).run()
    """
)


@pytest.mark.slow
def test_resume_after_sigkill_during_checkpoint_write_is_exact(reference, phantom, tmp_path):
    root = _new_bundle(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_DURING_WRITE,
            str(Path(__file__).parent),
            str(root),
            str(phantom),
            json.dumps({}),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    assert list((root / "models").glob(".partial-*-checkpoint.pt")), "the kill did not happen during the write"
    ckpt = _load(root)  # the previous checkpoint, complete
    assert ckpt["trainer"]["iteration"] == reference.trainer.state.epoch_length

    resumed = _run(root, phantom, resume=True)
    _assert_restored_from(resumed, ckpt, epoch=1)
    _assert_same_end(resumed, reference, from_epoch=1)
    assert not list((root / "models").glob(".partial-*")), "the killed write's temporary file was left behind"


@pytest.mark.slow
def test_resume_with_loader_workers_is_exact(phantom, tmp_path):
    """With worker processes each epoch's workers seed their transforms from a base seed that the loader
    draws from torch's generator in the main process: restoring that generator restores the workers."""
    workers = {"num_workers": 2}
    ref = _run(_new_bundle(tmp_path / "reference"), phantom, **workers)
    root = _new_bundle(tmp_path / "interrupted")
    _run(root, phantom, stop_at_iteration=ref.trainer.state.epoch_length + 1, **workers)
    ckpt = _load(root)
    resumed = _run(root, phantom, resume=True, **workers)
    _assert_restored_from(resumed, ckpt, epoch=1)
    _assert_same_end(resumed, ref, from_epoch=1)


def test_fast_path_probes_leave_the_random_streams_alone():
    """The network's one-time checks of its fast CPU path run at the first validation of a process; drawing
    from torch's generator there would make a resumed process (which probes again) diverge."""
    from monai_ag.networks.fast.adapters import mkldnn_available
    from monai_ag.networks.fast.probe import fast_path_available
    from monai_ag.networks.nets import GridAttentionUNet

    torch.manual_seed(0)
    before = torch.get_rng_state()
    mkldnn_available.__wrapped__()
    fast_path_available.__wrapped__(GridAttentionUNet, 3, torch.float32)
    assert torch.get_rng_state().equal(before)


# the real-CT recipe's schedule and averaged weights: a cosine over the run's iterations, the weights averaged over
# its second half (both in the checkpoint), model.pt the averaged network
AVERAGED = {"lr_schedule": "cosine", "warmup_iterations": 2, "weight_averaging": True, "averaging_start": 0.3}


def test_resume_with_cosine_schedule_and_averaged_weights_is_exact(phantom, tmp_path):
    reference = _run(_new_bundle(tmp_path / "reference"), phantom, **AVERAGED)
    root = _new_bundle(tmp_path / "interrupted")
    epoch_length = reference.trainer.state.epoch_length
    _run(root, phantom, stop_at_iteration=2 * epoch_length + 1, **AVERAGED)  # during epoch 3, averaging under way
    ckpt = _load(root)
    assert int(ckpt["weight_average"]["n_averaged"]) > 0
    assert ckpt["lr_scheduler"]["lr_lambdas"][0]["total_iterations"] == 3 * epoch_length
    resumed = _run(root, phantom, resume=True, **AVERAGED)
    _assert_same_end(resumed, reference, from_epoch=2)
    # model.pt: the averaged network, identical in both runs, not the live weights
    model = torch.load(root / "models" / "model.pt", weights_only=True)
    expected = torch.load(tmp_path / "reference" / "models" / "model.pt", weights_only=True)
    for name, value in model.items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=0, msg=name)
    live = resumed.weights()
    assert any(not torch.equal(model[k], live[k]) for k in live if live[k].is_floating_point())
    assert (root / "models" / "model_best_validation.pt").is_file()


def test_resume_with_other_fixed_settings_is_refused(phantom, tmp_path):
    """The checkpoint holds the run's fixed settings: resuming with another spacing (a forgotten profile)
    stops before the first step, naming both values; --override_recipe resumes with a warning."""
    root = _new_bundle(tmp_path)
    _run(root, phantom, max_epochs=1)
    saved = _load(root)["recipe"]
    assert saved["spacing"] == [8.0, 8.0, 8.0] and saved["network"]["channels"] == [4, 8, 16, 32, 64]
    ckpt = root / "models" / "checkpoint.pt"
    wf = _workflow(root, phantom, resume=True, max_epochs=2, spacing=[6.0, 6.0, 6.0])
    err = raises(
        RecipeError, "settings contradict the training checkpoint", wf.parser.get_parsed_content, "train#trainer"
    )
    assert f"spacing: the training checkpoint {ckpt} used [8.0, 8.0, 8.0], this run sets [6.0, 6.0, 6.0]" in str(err)
    assert "network_spec" not in str(err) and "--pretrained_weights" in str(err) and "--override_recipe" in str(err)

    with _Lines("monai_ag.bundle.recipe") as lines:
        resumed = _run(root, phantom, resume=True, max_epochs=2, spacing=[6.0, 6.0, 6.0], override_recipe=True)
    assert resumed.trainer.state.epoch == 2
    assert min(resumed.losses) == resumed.trainer.state.epoch_length + 1  # it continued at epoch 2
    assert any(
        f"spacing [6.0, 6.0, 6.0] instead of [8.0, 8.0, 8.0], which the training checkpoint {ckpt}" in m for m in lines
    ), lines
