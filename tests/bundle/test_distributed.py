"""configs/multi_gpu_train.json and multi_gpu_evaluate.json under torchrun: DDP with gloo on CPU, two ranks,
tiny phantom data; recording handlers (``dist_probe.py``) are injected by config override."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import bundle_testing  # noqa: E402 (tests/bundle is on the path)
import pytest
import torch
from bundle_testing import RANKS, torchrun  # noqa: E402
from monai.bundle import ConfigParser, ConfigWorkflow

from monai_ag.bundle import sha256_file
from monai_ag.utils import distributed

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "bundle"
HERE = Path(__file__).resolve().parent

# the tiny profile with batch size 1 and one patch per case, so one iteration is one case
TINY = {**bundle_testing.TINY, "batch_size": 1}
N_TRAIN, N_VAL, N_TEST = 5, 3, 3  # odd training set, validation and test sets that do not split evenly over 2 ranks

# datalist items carry their file name as "case", and recorders write what every rank processed to <bundle>/probe
PROBE = {
    "+imports": ["$import dist_probe"],
    "probe_dir": "$@bundle_root + '/probe'",
    "train#dataset#data": "$[dict(d, case=os.path.basename(d['image'])) for d in @datalists[0]]",
    "validate#dataset#data": "$[dict(d, case=os.path.basename(d['image'])) for d in @datalists[1]]",
    "+train#handlers": [
        {"_target_": "dist_probe.RecordEpochs", "out_dir": "@probe_dir", "name": "train"},
        {"_target_": "dist_probe.RecordWrites", "out_dir": "@probe_dir"},
    ],
    "+validate#handlers": [{"_target_": "dist_probe.RecordRuns", "out_dir": "@probe_dir", "name": "validate"}],
}
EVAL_PROBE = {
    "+imports": ["$import dist_probe"],
    "+handlers": [{"_target_": "dist_probe.RecordRuns", "out_dir": "$@bundle_root + '/probe'", "name": "evaluate"}],
}
FAIL = {
    "+imports": ["$import dist_probe"],
    "fail_mode": "raise",
    "+train#handlers": [{"_target_": "dist_probe.FailOnRank", "rank": 1, "iteration": 2, "mode": "@fail_mode"}],
}
TRAIN = ["train.json", "multi_gpu_train.json"]
EVALUATE = ["inference.json", "evaluate.json", "multi_gpu_evaluate.json"]


def ok(out: subprocess.CompletedProcess) -> str:
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    return text


def new_bundle(path: Path, extra: dict[str, dict] | None = None) -> Path:
    shutil.copytree(BUNDLE / "configs", path / "configs", ignore=shutil.ignore_patterns("monailabel_train.json"))
    for name, content in (extra or {}).items():
        (path / "configs" / name).write_text(json.dumps(content))
    return path


def cases(folder: Path, kind: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"images{kind}/*.nii.gz"))


def probe(root: Path, name: str) -> list[dict]:
    return [json.loads((root / "probe" / f"{name}_rank{r}.json").read_text()) for r in range(RANKS)]


@pytest.fixture(scope="module")
def dist_phantom(tmp_path_factory) -> Path:
    from monai_ag.data import generate_phantom_dataset

    root = tmp_path_factory.mktemp("dist_phantom")
    generate_phantom_dataset(
        root,
        num_cases=N_TRAIN + N_VAL + N_TEST,
        shape=(40, 32, 24),
        spacing=(8.0, 8.0, 8.0),
        num_validation=N_VAL,
        num_test=N_TEST,
    )
    return root


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, dist_phantom):
    """One two-rank training run with recorders, tracked with MLflow when it is installed (MONAI's tracking
    evaluates the run directory before ``initialize``): (bundle root, launcher output)."""
    root = new_bundle(tmp_path_factory.mktemp("ddp") / "bundle", {"probe.json": PROBE})
    tracking = ["--tracking", "mlflow"] if importlib.util.find_spec("mlflow") else []
    out = torchrun(root, [*TRAIN, "probe.json"], *tracking, dataset_dir=str(dist_phantom), **TINY)
    return root, ok(out)


def single_process_parser(root: Path, files: list[str], **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(root / "configs" / f) for f in files])
    for k, v in {"bundle_root": str(root), **overrides}.items():
        parser[k] = v
    return parser


@pytest.mark.slow
def test_training_cases_split_between_ranks(ddp_run, dist_phantom):
    root, _ = ddp_run
    train_cases = cases(dist_phantom, "Tr")[:N_TRAIN]
    ranks = probe(root, "train")
    for record in ranks:
        assert record["epoch_length"] == math.ceil(N_TRAIN / RANKS)
        assert sorted(record["epochs"]) == ["1", "2"]
    for epoch in ("1", "2"):
        seen = [r["epochs"][epoch] for r in ranks]
        assert all(len(s) == math.ceil(N_TRAIN / RANKS) for s in seen)
        assert set(seen[0]) != set(seen[1]), "both ranks trained on the same cases"
        assert set(seen[0]) | set(seen[1]) == set(train_cases)  # together complete (one case repeated as padding)
    assert ranks[0]["epochs"]["1"] != ranks[0]["epochs"]["2"], "the sampler's epoch is not set: no reshuffle"


@pytest.mark.slow
def test_validation_counts_each_case_once_and_reduces_metrics(ddp_run, dist_phantom):
    root, _ = ddp_run
    val_cases = [p for p in cases(dist_phantom, "Tr") if p not in cases(dist_phantom, "Tr")[:N_TRAIN]]
    ranks = probe(root, "validate")
    assert all(len(r["runs"]) == TINY["max_epochs"] for r in ranks)
    for run0, run1 in zip(ranks[0]["runs"], ranks[1]["runs"]):
        assert sorted(run0["cases"] + run1["cases"]) == sorted(val_cases)  # 2 + 1: no padding duplicate
        assert run0["metrics"] == run1["metrics"]  # every rank holds the metric of all cases


@pytest.mark.slow
def test_rank0_writes_model_checkpoint_and_logs_once(ddp_run, dist_phantom):
    root, log = ddp_run
    model = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in model), "DDP wrapper leaked into model.pt"
    net = single_process_parser(root, ["inference.json"]).get_parsed_content("network_def")  # built from the record
    net.load_state_dict(model, strict=True)
    ckpt = torch.load(root / "models" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["network"])
    assert ckpt["trainer"]["iteration"] == TINY["max_epochs"] * math.ceil(N_TRAIN / RANKS)
    assert sorted(p.name for p in (root / "models").iterdir()) == ["checkpoint.pt", "model.pt", "model.recipe.json"]
    record = json.loads((root / "models" / "model.recipe.json").read_text())
    assert record["model"]["sha256"] == sha256_file(root / "models" / "model.pt")
    assert (
        record["spacing"] == TINY["spacing"]
        and record["network"]["channels"] == TINY["recipe_defaults#network#channels"]
    )
    # only rank 0 writes under models/ (every rank computes the same recipe and checkpoint state)
    writes = {r: (root / "probe" / f"writes_rank{r}.jsonl") for r in range(RANKS)}
    written = {
        r: [Path(json.loads(line)).name for line in p.read_text().splitlines()] if p.is_file() else []
        for r, p in writes.items()
    }
    assert written[1] == [], f"rank 1 wrote {written[1]}"
    assert {"model.pt", "model.recipe.json", "checkpoint.pt"} <= set(written[0])
    (run,) = (root / "runs").iterdir()  # one run_dir for both ranks (MLflow's copy of the executed config too)
    assert (run / "run.json").is_file()
    writers = {
        f.name.split(".")[-2] for f in run.glob("events.out.tfevents.*")
    }  # events.out.tfevents.<time>.<host>.<pid>.<n>
    assert len(writers) == 1, f"TensorBoard files from several processes: {sorted(run.iterdir())}"
    # progress and metrics are logged by rank 0 only: one line per validation, one caching bar per dataset
    assert len(re.findall(r"Key metric: val_mean_dice best value", log)) == TINY["max_epochs"]
    assert len(re.findall(r"Loading dataset:\s+0%", log)) == 2


@pytest.mark.slow
def test_best_dice_equals_single_process_evaluation(ddp_run, dist_phantom):
    root, log = ddp_run
    reported = float(re.findall(r"Key metric: val_mean_dice best value: ([0-9.eE+-]+)", log)[-1])
    best_run = max(probe(root, "validate")[0]["runs"], key=lambda r: r["metrics"]["val_mean_dice"])
    assert best_run["metrics"]["val_mean_dice"] == pytest.approx(reported, abs=1e-12)

    parser = single_process_parser(root, ["train.json"], dataset_dir=str(dist_phantom), **TINY)
    parser["validate#handlers"] = []
    network = parser.get_parsed_content("network")
    network.load_state_dict(
        torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True), strict=True
    )
    evaluator = parser.get_parsed_content("validate#evaluator")
    evaluator.run()
    assert len(evaluator.data_loader) == N_VAL
    assert evaluator.state.metrics["val_mean_dice"] == pytest.approx(reported, abs=1e-6)
    for name, value in best_run["metrics"].items():
        assert evaluator.state.metrics[name] == pytest.approx(value, abs=1e-6), name


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return sorted(csv.DictReader(f), key=lambda r: tuple(r.values()))


@pytest.mark.slow
def test_multi_gpu_evaluate_matches_single_process(ddp_run, dist_phantom, tmp_path):
    root, _ = ddp_run
    runs = {}
    for name in ("ddp", "single"):
        runs[name] = new_bundle(tmp_path / name, {"probe.json": EVAL_PROBE})
        shutil.copytree(root / "models", runs[name] / "models")
    text = ok(torchrun(runs["ddp"], [*EVALUATE, "probe.json"], dataset_dir=str(dist_phantom)))
    assert text.count("evaluated 3 cases") == 1, "the report must be written once, by rank 0"
    shares = [r["runs"][0]["cases"] for r in probe(runs["ddp"], "evaluate")]
    assert [len(s) for s in shares] == [2, 1] and sorted(shares[0] + shares[1]) == cases(dist_phantom, "Ts")
    wf = ConfigWorkflow(
        config_file=[str(runs["single"] / "configs" / f) for f in ("inference.json", "evaluate.json")],
        meta_file=str(runs["single"] / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="infer",
        bundle_root=str(runs["single"]),
        dataset_dir=str(dist_phantom),
    )
    wf.initialize()
    wf.run()
    ddp, single = (_rows(runs[n] / "eval" / "metrics.csv") for n in ("ddp", "single"))
    assert len(ddp) == N_TEST * 4 and [r.keys() for r in ddp] == [r.keys() for r in single]
    for a, b in zip(ddp, single):
        for key in a:
            try:
                assert float(a[key]) == pytest.approx(float(b[key]), abs=1e-6, nan_ok=True), key
            except ValueError:
                assert a[key] == b[key], key
    assert sorted(p.name for p in (runs["ddp"] / "eval" / "predictions").iterdir()) == sorted(
        p.name for p in (runs["single"] / "eval" / "predictions").iterdir()
    )


@pytest.mark.slow
def test_resume_under_torchrun_continues_from_saved_epoch(ddp_run, dist_phantom, tmp_path):
    root, _ = ddp_run
    resumed = new_bundle(tmp_path / "bundle", {"probe.json": PROBE})
    shutil.copytree(root / "models", resumed / "models")
    saved = torch.load(resumed / "models" / "checkpoint.pt", map_location="cpu", weights_only=True)
    ok(
        torchrun(
            resumed, [*TRAIN, "probe.json"], dataset_dir=str(dist_phantom), resume="true", **{**TINY, "max_epochs": 3}
        )
    )
    saved_epoch = saved["trainer"]["iteration"] // saved["trainer"]["epoch_length"]
    assert saved_epoch == TINY["max_epochs"]
    for record in probe(resumed, "train"):
        assert record["started_at_epoch"] == saved_epoch
        assert sorted(record["epochs"]) == ["3"]  # only the remaining epoch ran
    ckpt = torch.load(resumed / "models" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["trainer"]["iteration"] == 3 * math.ceil(N_TRAIN / RANKS)
    # an exact continuation: the same epoch 3 (cases, losses on every rank) and the same final weights as a
    # two-rank run of 3 epochs that was never interrupted
    straight = new_bundle(tmp_path / "straight", {"probe.json": PROBE})
    ok(torchrun(straight, [*TRAIN, "probe.json"], dataset_dir=str(dist_phantom), **{**TINY, "max_epochs": 3}))
    for again, once in zip(probe(resumed, "train"), probe(straight, "train")):
        assert again["epochs"]["3"] == once["epochs"]["3"]
        assert again["losses"]["3"] == once["losses"]["3"]
    reference = torch.load(straight / "models" / "checkpoint.pt", map_location="cpu", weights_only=True)
    for key, value in reference["network"].items():
        assert torch.equal(ckpt["network"][key], value), key


@pytest.mark.slow
def test_failing_rank_stops_the_launch(dist_phantom, tmp_path):
    root = new_bundle(tmp_path / "bundle", {"fail.json": FAIL})
    out = torchrun(root, [*TRAIN, "fail.json"], timeout=300, dataset_dir=str(dist_phantom), **TINY)
    assert out.returncode != 0
    assert "deliberate failure on rank 1" in out.stdout + out.stderr
    assert not (root / "models" / "model.pt").exists()


@pytest.mark.slow
def test_hanging_rank_is_stopped_by_the_process_group_timeout(dist_phantom, tmp_path):
    root = new_bundle(tmp_path / "bundle", {"fail.json": FAIL})
    # rank 1 sleeps for an hour; rank 0 waits in the gradient all-reduce until dist_timeout, then fails and
    # torchrun stops rank 1: the launch ends well inside the subprocess timeout
    started = time.perf_counter()
    out = torchrun(
        root,
        [*TRAIN, "fail.json"],
        timeout=300,
        dataset_dir=str(dist_phantom),
        fail_mode="hang",
        dist_timeout=20,
        **TINY,
    )
    elapsed = time.perf_counter() - started
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "rank 1 hangs on purpose" in text, text[-3000:]  # the failure is the one staged, not a config error
    # gloo's own timeout, with the configured 20 s, stopped rank 0 (MONAI's start-up line "dist_timeout: 20" does
    # not match)
    assert re.search(r"Timed out waiting 20000ms for (send|recv) operation", text), text[-3000:]
    assert elapsed < 150, f"the launch took {elapsed:.0f} s: the timeout did not end it"


@pytest.mark.slow
def test_fewer_validation_cases_than_ranks_is_a_clear_error(tiny_phantom, tmp_path):
    root = new_bundle(tmp_path / "bundle")
    out = torchrun(root, TRAIN, timeout=300, dataset_dir=str(tiny_phantom), **TINY)  # 1 validation case, 2 ranks
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "the validation data (validate#dataset#data) has 1 case(s) but 2 processes were started" in text
    assert "the dataset length is less than the number of participating ranks" not in text  # MONAI's sampler never ran


def test_multi_gpu_config_without_torchrun_is_a_clear_error(tmp_path, tiny_phantom, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    root = new_bundle(tmp_path / "bundle")
    wf = ConfigWorkflow(
        config_file=[str(root / "configs" / f) for f in TRAIN],
        meta_file=str(root / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        bundle_root=str(root),
        dataset_dir=str(tiny_phantom),
        **TINY,
    )
    with pytest.raises(RuntimeError) as info:
        wf.initialize()
    assert "must be started with torchrun" in str(info.value.__cause__ or info.value)


def test_multi_gpu_configs_keep_the_single_process_steps():
    """A multi-GPU config may replace whole expression lists of the configs it is merged over: every
    single-process step must still be there (a step added to train.json but not here would silently not run
    under torchrun)."""
    merged = lambda *names: ConfigParser.load_config_files([str(BUNDLE / "configs" / n) for n in names])  # noqa: E731
    for single_files, multi_file in (
        (["train.json"], "multi_gpu_train.json"),
        (["inference.json", "evaluate.json"], "multi_gpu_evaluate.json"),
    ):
        single, multi = merged(*single_files), merged(*single_files, multi_file)
        for key in ("initialize", "run"):
            for step in single[key]:
                step = step.replace("seed=@seed)", "seed=@seed + monai_ag.utils.distributed.get_rank())")
                assert any(step.lstrip("$") in m for m in multi[key]), f"{multi_file} drops {key} step {step}"
        assert "$monai_ag.utils.distributed.init_process_group(timeout=@dist_timeout)" in multi["initialize"]
        assert multi["finalize"] == ["$monai_ag.utils.distributed.destroy_process_group()"]
    single, multi = (
        merged("inference.json", "evaluate.json"),
        merged("inference.json", "evaluate.json", "multi_gpu_evaluate.json"),
    )
    assert single["report"].lstrip("$") in multi["report"]


def test_helpers_in_a_single_process():
    assert distributed.get_rank() == 0 and distributed.get_world_size() == 1 and distributed.is_main_process()
    assert re.fullmatch(r"\d{8}-\d{6}", distributed.shared_timestamp())
    assert distributed.partition_for_rank([1, 2, 3]) == [1, 2, 3]
    assert distributed.check_cases_per_rank([1]) == [1]
    distributed.barrier()
    distributed.destroy_process_group()


def _destroy_after(rank: int, init_file: str, out_dir: str, delay_s: float) -> None:
    import time

    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    time.sleep(delay_s if rank == 0 else 0.0)
    arrived = time.time()
    distributed.destroy_process_group()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps({"arrived": arrived, "left": time.time()}))


def test_destroy_process_group_lets_ranks_leave_together(tmp_path):
    """A rank leaves only when every rank is done (rank 0 writes last): no rank tears its connections down
    while a peer still works."""
    import torch.multiprocessing as mp

    delay = 1.5
    mp.spawn(_destroy_after, args=(str(tmp_path / "init"), str(tmp_path), delay), nprocs=2, join=True)
    times = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert times[1]["left"] >= times[0]["arrived"]  # rank 1 waited for rank 0
    assert times[1]["left"] - times[1]["arrived"] > delay / 2
    assert not distributed._initialized()


@pytest.mark.parametrize("world", [2, 3])
def test_partition_for_rank_gives_disjoint_equal_shares(monkeypatch, world):
    data = list(range(7))
    monkeypatch.setattr(distributed, "get_world_size", lambda: world)
    shares = []
    for rank in range(world):
        monkeypatch.setattr(distributed, "get_rank", lambda rank=rank: rank)
        shares.append(distributed.partition_for_rank(data, seed=1))
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == math.ceil(len(data) / world)
    assert set().union(*shares) == set(data)
    repeats = Counter(c for s in shares for c in s) - Counter(data)
    assert sum(repeats.values()) == world * len(shares[0]) - len(data)  # only the padding repeats


def test_fewer_cases_than_ranks_message(monkeypatch):
    monkeypatch.setattr(distributed, "get_world_size", lambda: 4)
    with pytest.raises(
        ValueError, match=r"the validation data \(validate#dataset#data\) has 3 case\(s\) but 4 processes"
    ):
        distributed.check_cases_per_rank([1, 2, 3], "validation", "validate#dataset#data")


@pytest.mark.slow
def test_training_without_validation_under_torchrun(dist_phantom, tmp_path):
    """``val_fraction 0`` with a dataset without a validation list: both ranks train on every case, nothing
    validates, and rank 0 saves the final weights as model.pt with its record."""
    data = tmp_path / "data"
    shutil.copytree(dist_phantom, data)
    listing = json.loads((data / "dataset.json").read_text())
    listing["training"] += listing.pop("validation")
    (data / "dataset.json").write_text(json.dumps(listing))
    root = new_bundle(tmp_path / "bundle")
    text = ok(torchrun(root, TRAIN, dataset_dir=str(data), val_fraction=0, **TINY))
    assert "Key metric" not in text  # no validation ran
    model = root / "models" / "model.pt"
    state = torch.load(model, map_location="cpu", weights_only=True)
    final = torch.load(root / "models" / "checkpoint.pt", map_location="cpu", weights_only=True)["network"]
    assert state.keys() == final.keys() and all(torch.equal(state[k], final[k]) for k in state)
    assert json.loads((root / "models" / "model.recipe.json").read_text())["training"]["epoch"] == TINY["max_epochs"]
