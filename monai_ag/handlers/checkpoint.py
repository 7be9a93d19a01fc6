"""Resumable training state for ignite/MONAI engines."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.handlers import CheckpointSaver

from monai_ag.utils.bundle import as_bool
from monai_ag.utils.fileio import atomic_write

__all__ = ["KeyMetricCheckpointSaver", "TrainingCheckpoint"]


def _is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _unwrap(obj: Any) -> Any:
    # DDP-wrapped networks are saved as their plain module so the state dict loads anywhere
    return obj.module if isinstance(obj, torch.nn.parallel.DistributedDataParallel) else obj


class KeyMetricCheckpointSaver(CheckpointSaver):
    """
    :py:class:`monai.handlers.CheckpointSaver` whose best-key-metric tracking can itself be
    checkpointed (``state_dict``/``load_state_dict``), so a resumed run keeps comparing against
    the best score so far and cannot overwrite a better ``model.pt`` with a worse one.
    ``model.pt`` stays a plain state dict (``key_metric_save_state`` is not needed).

    Args:
        args, kwargs: the arguments of :py:class:`monai.handlers.CheckpointSaver`.
    """

    def state_dict(self) -> dict:
        return {} if self._key_metric_checkpoint is None else self._key_metric_checkpoint.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict:
            super().load_state_dict(state_dict)


class TrainingCheckpoint:
    """
    Saves everything needed to continue an interrupted training — e.g. network, optimizer,
    lr scheduler, trainer (epoch/iteration) and the best-model saver's tracking — to one file
    after every ``interval`` epochs, atomically (temporary file, then rename), on the main
    process only; with ``resume=True`` it restores that file when the trainer starts.

    It is deliberately not a :py:class:`monai.handlers.CheckpointLoader`: MONAI Label adds its own
    loader for ``models/model.pt`` to ``train#handlers`` only when none is there already, so a
    resume loader of that class would silently disable fine-tuning from ``model.pt``.

    Args:
        save_path: the checkpoint file, e.g. ``models/checkpoint.pt``.
        save_dict: name -> object with ``state_dict``/``load_state_dict`` (networks, optimizers,
            schedulers, :py:class:`KeyMetricCheckpointSaver`).
        engine_key: the name under which the engine this handler is attached to (its epoch and
            iteration) is saved; given here because a config cannot reference the trainer from
            inside the trainer's own handler list. ``None`` leaves it out.
        resume: restore ``save_path`` at ``Events.STARTED``; a missing file is an error.
        interval: save every ``interval`` epochs (and when training completes).
        validator: optional evaluator whose ``best_metric``/``best_metric_epoch`` are kept too.
        map_location: ``map_location`` for ``torch.load``; defaults to CPU.

    Example::

        TrainingCheckpoint("models/checkpoint.pt", {"network": net, "optimizer": opt}, resume=True).attach(trainer)
    """

    def __init__(
        self,
        save_path: str | os.PathLike,
        save_dict: Mapping[str, Any],
        resume: bool = False,
        interval: int = 1,
        engine_key: str | None = "trainer",
        validator: Engine | None = None,
        map_location: Any = "cpu",
    ) -> None:
        if not save_dict:
            raise ValueError("save_dict must name at least one object to checkpoint.")
        if interval < 1:
            raise ValueError(f"interval must be >= 1 epoch, got {interval}.")
        self.save_path = Path(save_path)
        self.save_dict = dict(save_dict)
        self.resume = as_bool(resume, "resume")
        self.engine_key = engine_key
        self.interval = interval
        self.validator = validator
        self.map_location = map_location
        self.logger = logging.getLogger(__name__)

    def attach(self, engine: Engine) -> None:
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval) | Events.COMPLETED, self.save)

    def save(self, engine: Engine) -> None:
        if not _is_main_process():
            return
        state = {k: _unwrap(v).state_dict() for k, v in self.save_dict.items()}
        if self.validator is not None:
            state["validator_best"] = {
                "best_metric": float(getattr(self.validator.state, "best_metric", -1.0)),
                "best_metric_epoch": int(getattr(self.validator.state, "best_metric_epoch", -1)),
            }
        with atomic_write(self.save_path) as tmp:
            torch.save(state, tmp)
        self.logger.debug("saved training checkpoint (epoch %d) to %s", engine.state.epoch, self.save_path)

    def load(self, engine: Engine) -> None:
        if not self.save_path.is_file():
            raise FileNotFoundError(
                f"resume was requested but there is no training checkpoint at {self.save_path}; "
                "start without resume (it is written after every epoch)."
            )
        checkpoint = torch.load(self.save_path, map_location=self.map_location, weights_only=True)
        missing = sorted(set(self.save_dict) - set(checkpoint))
        if missing:
            raise KeyError(f"training checkpoint {self.save_path} lacks {missing}; it holds {sorted(checkpoint)}.")
        max_epochs = engine.state.max_epochs
        Checkpoint.load_objects(
            to_load={k: _unwrap(v) for k, v in self.save_dict.items()}, checkpoint=checkpoint, strict=True
        )
        if self.validator is not None and "validator_best" in checkpoint:
            self.validator.state.best_metric = checkpoint["validator_best"]["best_metric"]
            self.validator.state.best_metric_epoch = checkpoint["validator_best"]["best_metric_epoch"]
        # keep this run's max_epochs so a resumed run can also be extended
        engine.state.max_epochs = max(max_epochs or 0, engine.state.epoch)
        self.logger.info(
            "resumed from %s at epoch %d of %d", self.save_path, engine.state.epoch, engine.state.max_epochs
        )
