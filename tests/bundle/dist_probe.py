"""Engine handlers that the distributed tests inject into the bundle by config override (``"+train#handlers"``,
``"+validate#handlers"``): they record, per rank, what each engine really processed, or make one rank fail on purpose.
Datalist items carry a ``case`` key (the image file name) that the transforms pass through."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist
from ignite.engine import Engine, Events

__all__ = ["FailOnRank", "RecordEpochs", "RecordRuns", "RecordWrites"]


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _case(item: dict) -> str:
    # the "case" key where the test's datalist adds one, else the image's file name from its metadata
    return item["case"] if "case" in item else os.path.basename(item["image"].meta["filename_or_obj"])


def _cases(engine: Engine) -> list[str]:
    batch = engine.state.batch  # a dict of lists, or a list of dicts once MONAI has decollated it
    return [_case(d) for d in batch] if isinstance(batch, list) else list(batch["case"])


class _Recorder:
    def __init__(self, out_dir: str, name: str) -> None:
        self.out_dir, self.name = Path(out_dir), name
        self.record: dict = {}

    def write(self, engine: Engine | None = None) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"{self.name}_rank{_rank()}.json").write_text(json.dumps(self.record))


class RecordEpochs(_Recorder):
    """A trainer's record: the epoch it started from, its epoch length, and the cases and losses of each epoch."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.write)

    def started(self, engine: Engine) -> None:
        self.record.update(
            started_at_epoch=engine.state.epoch, epoch_length=engine.state.epoch_length, epochs={}, losses={}
        )

    def iteration(self, engine: Engine) -> None:
        epoch = str(engine.state.epoch)
        self.record["epochs"].setdefault(epoch, []).extend(_cases(engine))
        output = engine.state.output  # MONAI decollates it into a list of per-sample dicts, each with the batch loss
        loss = output[0]["loss"] if isinstance(output, list) else output["loss"]
        self.record["losses"].setdefault(epoch, []).append(float(loss))


class RecordRuns(_Recorder):
    """An evaluator's record: for each of its runs, the cases it processed and the metrics it computed."""

    def attach(self, engine: Engine) -> None:
        self.record["runs"] = []
        engine.add_event_handler(Events.STARTED, lambda e: self.record["runs"].append({"cases": [], "metrics": {}}))
        engine.add_event_handler(
            Events.ITERATION_COMPLETED, lambda e: self.record["runs"][-1]["cases"].extend(_cases(e))
        )
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def completed(self, engine: Engine) -> None:
        self.record["runs"][-1]["metrics"] = {k: float(v) for k, v in engine.state.metrics.items()}
        self.write()


class FailOnRank:
    """At iteration ``iteration`` of the engine, rank ``rank`` raises (``mode="raise"``) or hangs (``"hang"``)."""

    def __init__(self, rank: int = 1, iteration: int = 2, mode: str = "raise") -> None:
        self.rank, self.iteration, self.mode = rank, iteration, mode

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED(once=self.iteration), self)

    def __call__(self, engine: Engine) -> None:
        if _rank() != self.rank:
            return
        if self.mode == "hang":
            print(f"rank {self.rank} hangs on purpose (pid {os.getpid()})", flush=True)
            time.sleep(3600)
        raise RuntimeError(f"deliberate failure on rank {self.rank}")


class RecordWrites:
    """Every file this rank puts in place with ``os.replace`` (what ``monai_ag.utils.fileio.atomic_write``, the
    package's one way to write model, record and checkpoint files, ends with), appended to
    ``<out_dir>/writes_rank<r>.jsonl`` as it happens. Built when the config is parsed, so it sees every write."""

    def __init__(self, out_dir: str) -> None:
        out = Path(out_dir)
        original = os.replace

        def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            original(src, dst, *args, **kwargs)
            out.mkdir(parents=True, exist_ok=True)
            with open(out / f"writes_rank{_rank()}.jsonl", "a") as f:
                f.write(json.dumps(str(dst)) + "\n")

        os.replace = replace

    def attach(self, engine: Engine) -> None:
        pass
