"""TrainingCheckpoint, KeyMetricCheckpointSaver, AtomicDiskSaver and the random-state capture they rely on."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from ignite.engine import Engine, Events
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, RandAffined, Randomizable, Transform
from monai.utils import set_determinism

import monai_ag.handlers.checkpoint as checkpoint_module
from monai_ag.handlers import AtomicDiskSaver, KeyMetricCheckpointSaver, TrainingCheckpoint
from monai_ag.utils.random_state import find_random_sources, get_random_states, set_random_states


class AddNoise(Randomizable, Transform):
    """x + a random number from the transform's own ``R``."""

    def randomize(self, data=None) -> None:
        self._value = self.R.uniform()

    def __call__(self, x):
        self.randomize()
        return x + self._value


def _pipeline() -> Compose:
    # a nested Compose, and a transform whose generators sit two levels down (RandAffined.rand_affine.rand_affine_grid)
    return Compose([AddNoise(), Compose([AddNoise(), RandAffined("x", prob=1.0, rotate_range=0.3)], map_items=False)])


def _loader(generator: bool = True) -> DataLoader:
    data = [torch.full((1,), float(i)) for i in range(4)]
    gen = torch.Generator().manual_seed(7) if generator else None
    return DataLoader(
        Dataset(data, transform=Compose([AddNoise(), Compose([AddNoise()])])), batch_size=1, shuffle=True, generator=gen
    )


def _draw(loader: DataLoader, pipeline: Compose) -> list[float]:
    """One number from every random source the tests know of."""
    inner = pipeline.transforms[1].transforms
    return [
        torch.rand(1).item(),
        float(np.random.rand()),
        random.random(),
        pipeline.transforms[0].R.rand(),
        inner[0].R.rand(),
        inner[1].rand_affine.rand_affine_grid.R.rand(),
        pipeline.R.rand(),
        torch.rand(1, generator=loader.generator).item(),
        *[float(b) for b in loader],  # shuffled order and the dataset's transforms
    ]


def test_find_random_sources_walks_nested_transforms_and_the_loader():
    pipeline, loader = _pipeline(), _loader()
    found = dict(find_random_sources({"pipeline": pipeline, "loader": loader}))
    assert {
        "pipeline.R",
        "pipeline.transforms.0.R",
        "pipeline.transforms.1.R",
        "pipeline.transforms.1.transforms.0.R",
        "pipeline.transforms.1.transforms.1.R",
        "pipeline.transforms.1.transforms.1.rand_affine.R",
        "pipeline.transforms.1.transforms.1.rand_affine.rand_affine_grid.R",
        "loader.dataset.transform.R",
        "loader.dataset.transform.transforms.0.R",
        "loader.dataset.transform.transforms.1.transforms.0.R",
    } <= set(found)
    assert found["loader.sampler.generator"] is loader.generator  # the sampler shares the loader's generator
    assert len({id(g) for g in found.values()}) == len(found), "a generator was reported twice"
    assert dict(find_random_sources(None)) == {}


def test_random_states_round_trip_through_a_weights_only_file(tmp_path):
    set_determinism(0)
    pipeline, loader = _pipeline(), _loader()
    sources = {"pipeline": pipeline, "loader": loader}
    torch.save(get_random_states(sources), tmp_path / "states.pt")
    expected = _draw(loader, pipeline)
    moved_on = _draw(loader, pipeline)
    assert all(a != b for a, b in zip(moved_on[:8], expected[:8])), "every stream must have moved on"
    problems = set_random_states(torch.load(tmp_path / "states.pt", weights_only=True), sources)
    assert problems == []
    assert _draw(loader, pipeline) == expected


def test_set_random_states_reports_a_changed_pipeline():
    states = get_random_states({"pipeline": _pipeline()})
    problems = set_random_states(states, {"pipeline": Compose([AddNoise()])})
    assert "pipeline.transforms.1.R: saved, but no such random generator now" in problems
    problems = set_random_states(states, {"other": AddNoise()})
    assert "other.R: not in the saved random states" in problems


# --- TrainingCheckpoint on a toy training whose every step draws from every random source --------------


class Toy:
    """A training of a 1-parameter network whose inputs come through a shuffled loader with random transforms
    and get noise from torch, numpy and Python; an end-of-epoch handler attached *after* the checkpoint draws
    from torch too, as validation does."""

    def __init__(self, path: Path, resume: bool = False, stop_at: int | None = None, max_epochs: int = 3, **kwargs):
        set_determinism(0)
        self.loader = _loader()
        self.net = torch.nn.Linear(1, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=1, gamma=0.5)
        self.losses: dict[int, float] = {}
        self.trainer = Engine(self._step)
        self.handler = TrainingCheckpoint(
            path,
            {"net": self.net, "opt": self.opt, "sched": self.sched},
            resume=resume,
            random_sources={"loader": self.loader},
            **kwargs,
        )
        self.handler.attach(self.trainer)
        self.trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: self.sched.step())
        self.trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: torch.rand(3))
        self.stop_at, self.max_epochs = stop_at, max_epochs

    def _step(self, engine, batch):
        x = batch.view(-1, 1) + torch.rand(1) + float(np.random.rand()) + random.random()
        loss = (self.net(x) - 1.0).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.losses[engine.state.iteration] = loss.item()
        if engine.state.iteration == self.stop_at:
            raise KeyboardInterrupt("simulated kill")
        return loss.item()

    def run(self) -> Toy:
        self.trainer.run(self.loader, max_epochs=self.max_epochs)
        return self


def test_toy_resume_is_exact(tmp_path):
    reference = Toy(tmp_path / "ref.pt").run()
    path = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        Toy(path, stop_at=6).run()  # killed during epoch 2 (4 iterations an epoch)
    assert torch.load(path, weights_only=True)["trainer"]["iteration"] == 4
    resumed = Toy(path, resume=True).run()
    assert resumed.trainer.state.epoch == 3
    assert resumed.losses == {i: v for i, v in reference.losses.items() if i > 4}
    torch.testing.assert_close(resumed.net.state_dict(), reference.net.state_dict(), atol=0, rtol=0)


def test_checkpoint_holds_each_state(tmp_path):
    path = tmp_path / "ckpt.pt"
    toy = Toy(path, max_epochs=2)
    saver = KeyMetricCheckpointSaver(
        str(tmp_path), {"model": toy.net}, save_key_metric=True, key_metric_filename="model.pt"
    )
    validator = Engine(lambda e, b: None)
    validator.state.best_metric, validator.state.best_metric_epoch = 0.75, 2
    saver._key_metric_checkpoint.load_state_dict({"_saved": [(0.75, "model_key_metric=0.7500.pt")]})
    toy.handler = TrainingCheckpoint(
        path,
        {"net": toy.net, "opt": toy.opt, "sched": toy.sched, "saver": saver},
        validator=validator,
        random_sources={"loader": toy.loader},
    )
    toy.handler.attach(toy.trainer)
    toy.run()
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"net", "opt", "sched", "saver", "trainer", "validator_best", "random_states"}
    torch.testing.assert_close(ckpt["net"], toy.net.state_dict())
    assert ckpt["opt"]["state"][0]["momentum_buffer"].equal(toy.opt.state_dict()["state"][0]["momentum_buffer"])
    assert ckpt["sched"] == toy.sched.state_dict()
    assert ckpt["saver"] == {"_saved": [(0.75, "model_key_metric=0.7500.pt")]}
    assert ckpt["trainer"]["iteration"] == 8 and ckpt["trainer"]["epoch_length"] == 4
    assert ckpt["validator_best"] == {"best_metric": 0.75, "best_metric_epoch": 2}
    assert len(ckpt["random_states"]) == 1  # one process
    assert ckpt["random_states"][0]["torch"].equal(torch.get_rng_state())

    # and a new run restores each of them at Events.STARTED
    fresh = Toy(tmp_path / "unused.pt", max_epochs=2)
    fresh_saver = KeyMetricCheckpointSaver(
        str(tmp_path), {"model": fresh.net}, save_key_metric=True, key_metric_filename="model.pt"
    )
    fresh_validator = Engine(lambda e, b: None)
    handler = TrainingCheckpoint(
        path,
        {"net": fresh.net, "opt": fresh.opt, "sched": fresh.sched, "saver": fresh_saver},
        validator=fresh_validator,
        resume=True,
        random_sources={"loader": fresh.loader},
    )
    handler.attach(fresh.trainer)
    torch.rand(5)
    handler.load(fresh.trainer)
    torch.testing.assert_close(fresh.net.state_dict(), toy.net.state_dict())
    assert fresh.opt.state_dict()["state"][0]["momentum_buffer"].equal(
        toy.opt.state_dict()["state"][0]["momentum_buffer"]
    )
    assert fresh.sched.state_dict() == toy.sched.state_dict()
    assert fresh_saver.state_dict() == {"_saved": [(0.75, "model_key_metric=0.7500.pt")]}
    assert (fresh.trainer.state.epoch, fresh.trainer.state.iteration) == (2, 8)
    assert (fresh_validator.state.best_metric, fresh_validator.state.best_metric_epoch) == (0.75, 2)
    assert torch.get_rng_state().equal(ckpt["random_states"][0]["torch"])


def test_resume_without_file_fails_at_attach(tmp_path):
    handler = TrainingCheckpoint(tmp_path / "none.pt", {"net": torch.nn.Linear(1, 1)}, resume=True)
    with pytest.raises(
        FileNotFoundError, match=r"^resume was requested but there is no training checkpoint at .*none\.pt;"
    ):
        handler.attach(Engine(lambda e, b: None))


def test_resume_from_a_checkpoint_without_a_key_names_it(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"net": torch.nn.Linear(1, 1).state_dict(), "trainer": {}}, path)
    handler = TrainingCheckpoint(path, {"net": torch.nn.Linear(1, 1), "optimizer": torch.nn.Linear(1, 1)}, resume=True)
    with pytest.raises(KeyError, match=r"ckpt\.pt lacks \['optimizer'\]; it holds \['net', 'trainer'\]"):
        handler.attach(Engine(lambda e, b: None))


def test_interrupted_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    toy = Toy(path, max_epochs=1).run()
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(Path(f).read_bytes()[:100])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(checkpoint_module.torch, "save", half_then_fail)
    toy.trainer.state.epoch += 1  # a new state to save
    with pytest.raises(OSError, match="simulated"):
        toy.handler.save(toy.trainer)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert torch.load(path, weights_only=True)["trainer"]["iteration"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no temporary file left


def test_resume_log_names_file_epoch_and_iteration(tmp_path, caplog):
    path = tmp_path / "ckpt.pt"
    Toy(path, max_epochs=1).run()
    with caplog.at_level(logging.INFO, logger="monai_ag.handlers.checkpoint"):
        Toy(path, resume=True, max_epochs=2).run()
    assert f"resuming training from {path} at epoch 2 of 2, iteration 5 (epochs 1-1 done, 4 iterations)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="monai_ag.handlers.checkpoint"):
        toy = Toy(path, resume=True, max_epochs=2).run()  # already at epoch 2 of 2
    assert "is at epoch 2 of 2: training is already complete" in caplog.text
    assert toy.losses == {}


def test_resume_warns_when_random_states_cannot_be_restored(tmp_path, caplog):
    path = tmp_path / "ckpt.pt"
    Toy(path, max_epochs=1).run()
    ckpt = torch.load(path, weights_only=True)
    torch.save({**ckpt, "random_states": ckpt["random_states"] * 2}, path)  # as if saved by 2 processes
    with caplog.at_level(logging.INFO, logger="monai_ag.handlers.checkpoint"):
        Toy(path, resume=True, max_epochs=2).run()
    assert "holds the random states of 2 process(es) but this run has 1" in caplog.text
    assert "NOT an exact continuation" in caplog.text


# --- crash-safe best-model files ---------------------------------------------------------------------------


def test_key_metric_saver_writes_model_pt_atomically(tmp_path, monkeypatch):
    net = torch.nn.Linear(1, 1)
    saver = KeyMetricCheckpointSaver(
        str(tmp_path), {"model": net}, save_key_metric=True, key_metric_filename="model.pt"
    )
    assert isinstance(saver._key_metric_checkpoint.save_handler, AtomicDiskSaver)
    evaluator = Engine(lambda e, b: None)
    evaluator.state.metrics = {"dice": 0.5}
    evaluator.state.key_metric_name = "dice"
    saver.attach(evaluator)
    evaluator.run([0], max_epochs=1)
    first = torch.load(tmp_path / "model.pt", weights_only=True)

    # a better score whose write fails half-way: model.pt is still the previous best, whole
    with torch.no_grad():
        net.weight.add_(1.0)
    evaluator.state.metrics = {"dice": 0.9}

    def fail(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a file")
        raise OSError("killed (simulated)")

    monkeypatch.setattr(checkpoint_module.torch, "save", fail)
    with pytest.raises(OSError, match="simulated"):
        saver._key_metric_checkpoint(evaluator)
    monkeypatch.undo()
    torch.testing.assert_close(torch.load(tmp_path / "model.pt", weights_only=True), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_atomic_disk_saver_removes_old_files_only_after_the_new_one_is_written(tmp_path):
    saver = AtomicDiskSaver(tmp_path)
    saver({"a": torch.zeros(1)}, "old.pt")
    saver.remove("old.pt")  # ignite removes before it saves
    assert (tmp_path / "old.pt").is_file()
    saver({"a": torch.ones(1)}, "new.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pt"]


# --- distributed: rank 0 writes, every rank restores its own random states --------------------------------


def _ddp_rank(rank: int, world: int, tmp: str) -> None:
    import torch.distributed as dist

    tmp_dir = Path(tmp)
    dist.init_process_group("gloo", init_method=f"file://{tmp_dir / 'rendezvous'}", rank=rank, world_size=world)
    try:
        writes = []
        real_save = torch.save
        checkpoint_module.torch.save = lambda obj, f, *a, **k: (writes.append(str(f)), real_save(obj, f, *a, **k))
        path = tmp_dir / "ckpt.pt"
        torch.manual_seed(100 + rank)
        net = torch.nn.Linear(1, 1)
        trainer = Engine(lambda e, b: torch.rand(1))
        TrainingCheckpoint(path, {"net": net}).attach(trainer)
        trainer.run([0, 1], max_epochs=1)
        expected = torch.rand(3)
        checkpoint_module.torch.save = real_save
        dist.barrier()

        torch.manual_seed(999)  # a new process would start from the configured seed
        resumed = Engine(lambda e, b: torch.rand(1))
        TrainingCheckpoint(path, {"net": torch.nn.Linear(1, 1)}, resume=True).attach(resumed)
        resumed.run([0, 1], max_epochs=1)  # already complete: restores and stops
        files = [w for w in writes if w.endswith("ckpt.pt")]  # (the process group pickles objects with torch.save too)
        torch.save({"writes": len(files), "expected": expected, "got": torch.rand(3)}, tmp_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_rank0_writes_and_each_rank_restores_its_own_states(tmp_path):
    mp.spawn(_ddp_rank, args=(2, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["writes"] for r in ranks] == [1, 0]  # the main process only
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert len(ckpt["random_states"]) == 2
    assert not ckpt["random_states"][0]["torch"].equal(ckpt["random_states"][1]["torch"])
    for r in ranks:
        assert r["got"].equal(r["expected"])
    assert not ranks[0]["got"].equal(ranks[1]["got"])


def test_atomic_disk_saver_writes_nothing_off_rank_0(tmp_path, monkeypatch):
    """Under torchrun every rank runs the saver; only rank 0 may write (or remove) files, or describe them."""
    described = []
    saver = AtomicDiskSaver(tmp_path, "model.pt", after_write=described.append)
    (tmp_path / "old.pt").write_bytes(b"x")
    monkeypatch.setattr(checkpoint_module, "is_main_process", lambda: False)
    saver({"w": torch.ones(2)}, "ignored.pt")
    saver.remove("old.pt")
    saver({"w": torch.ones(2)}, "ignored.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pt"] and described == []
    monkeypatch.setattr(checkpoint_module, "is_main_process", lambda: True)
    saver({"w": torch.ones(2)}, "ignored.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "old.pt"] and described == [tmp_path / "model.pt"]
