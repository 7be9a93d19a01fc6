"""Resumable training state for ignite/MONAI engines, and crash-safe checkpoint files."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from ignite.handlers.checkpoint import BaseSaveHandler
from monai.handlers import CheckpointSaver

from monai_ag.utils.config import as_bool
from monai_ag.utils.distributed import get_rank, get_world_size, is_main_process
from monai_ag.utils.fileio import atomic_write
from monai_ag.utils.random_state import get_random_states, set_random_states

if TYPE_CHECKING:
    from monai_ag.bundle.recipe import ModelRecipe

__all__ = ["AtomicDiskSaver", "KeyMetricCheckpointSaver", "TrainingCheckpoint"]


def _unwrap(obj: Any) -> Any:
    # DDP-wrapped networks are saved as their plain module so the state dict loads anywhere
    return obj.module if isinstance(obj, torch.nn.parallel.DistributedDataParallel) else obj


def _finish_data_iterator(engine: Engine) -> None:
    """
    Let the engine's data iterator of the epoch that just ended finish now rather than at the start of the
    next epoch. Ignite keeps the exhausted iterator and asks it for one more batch when the next epoch
    starts; that request still draws random numbers (torch's ``RandomSampler`` computes one more
    permutation with its generator) in the uninterrupted run but never in a resumed one, which starts
    with a fresh iterator. Finishing it before the random states are captured makes both runs start the
    next epoch from the same states. It is done only when the epoch used the whole iterator
    (``epoch_length == len(dataloader)``), and not at all if ignite's internals change (one private
    attribute, ``Engine._dataloader_iter``).
    """
    iterator = getattr(engine, "_dataloader_iter", None)
    data = getattr(engine.state, "dataloader", None)
    if iterator is None or data is None or not hasattr(data, "__len__"):
        return
    try:
        if engine.state.epoch_length != len(data) or engine.state.iteration % engine.state.epoch_length:
            return  # not a whole iterator, or stopped mid-epoch (terminate): nothing to finish
    except TypeError:
        return
    try:
        next(iterator)
    except StopIteration:
        return
    logging.getLogger(__name__).warning(
        "the data iterator still had batches after a whole epoch of %d iterations (one was skipped); a run "
        "resumed from this checkpoint will not be an exact continuation.",
        engine.state.epoch_length,
    )


class AtomicDiskSaver(BaseSaveHandler):
    """
    An ignite save handler (``Checkpoint(save_handler=...)``) that writes on the main process only, through
    :py:func:`monai_ag.utils.fileio.atomic_write`: a file is replaced in one step, never left truncated.
    Ignite removes the file it replaces *before* saving the new one; here the removal waits until the new
    file is written, so a kill at any moment leaves the previous checkpoint (MONAI's ``CheckpointSaver``
    writes ``model.pt`` in place, non-atomically, after deleting the old one).

    Args:
        dirname: the directory the files go to.
        filename: a fixed file name that replaces ignite's generated one (MONAI's ``key_metric_filename``).
        after_write: called with the path of each file once it is in place (on the main process), e.g. to
            write a file that describes it.

    Example::

        Checkpoint({"model": net}, AtomicDiskSaver("models", "model.pt"), score_function=..., n_saved=1)
    """

    def __init__(
        self,
        dirname: str | os.PathLike,
        filename: str | None = None,
        after_write: Callable[[Path], Any] | None = None,
    ) -> None:
        self.dirname = Path(dirname)
        self.filename = filename
        self.after_write = after_write
        self._to_remove: list[str] = []

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        if not is_main_process():
            return
        name = self.filename or filename
        with atomic_write(self.dirname / name) as tmp:
            torch.save(checkpoint, tmp)
        if self.after_write is not None:
            self.after_write(self.dirname / name)
        for old in self._to_remove:
            if old != name:
                (self.dirname / old).unlink(missing_ok=True)
        self._to_remove.clear()

    def remove(self, filename: str) -> None:
        if is_main_process():
            self._to_remove.append(self.filename or filename)


class KeyMetricCheckpointSaver(CheckpointSaver):
    """
    :py:class:`monai.handlers.CheckpointSaver` whose files are written atomically (:py:class:`AtomicDiskSaver`:
    a kill during a write leaves the previous ``model.pt``, never a truncated or missing one), whose
    best-key-metric tracking can itself be checkpointed (``state_dict``/``load_state_dict``), so a resumed
    run keeps comparing against the best score so far and cannot overwrite a better ``model.pt`` with a
    worse one, and which writes the model's recipe record beside each file it saves
    (:py:meth:`monai_ag.bundle.ModelRecipe.write`). ``model.pt`` stays a plain state dict
    (``key_metric_save_state`` is not needed).

    With ``save_final`` (a training without validation: ``model.pt`` is the final weights) the final file is
    written when the run completes, a time limit's stop included, but not when it fails: MONAI's saver also
    writes it on an exception, which would leave the weights of a broken run looking like a finished model.

    Args:
        args, kwargs: the arguments of :py:class:`monai.handlers.CheckpointSaver`.
        recipe: the :py:class:`monai_ag.bundle.ModelRecipe` to write beside every file saved, or ``None``.

    Example::

        KeyMetricCheckpointSaver("models", {"model": net}, save_key_metric=True, key_metric_filename="model.pt")
    """

    def __init__(self, *args: Any, recipe: ModelRecipe | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self._engine: Engine | None = None
        after_write = None if recipe is None else self._write_recipe
        for saver in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if saver is not None:
                saver.save_handler = AtomicDiskSaver(
                    self.save_dir, getattr(saver.save_handler, "filename", None), after_write=after_write
                )

    def attach(self, engine: Engine) -> None:
        self._engine = engine
        super().attach(engine)

    def _write_recipe(self, path: Path) -> None:
        # an evaluator's epoch is the trainer's epoch it validated (ValidationHandler runs it with that epoch)
        epoch = None if self._engine is None else int(self._engine.state.epoch)
        self.recipe.write(path, epoch=epoch)  # type: ignore[union-attr]

    def exception_raised(self, engine: Engine, e: Exception) -> None:
        raise e

    def state_dict(self) -> dict:
        return {} if self._key_metric_checkpoint is None else self._key_metric_checkpoint.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict:
            super().load_state_dict(state_dict)


class TrainingCheckpoint:
    """
    Saves everything needed to continue an interrupted training exactly — network, optimizer, lr scheduler,
    trainer (epoch/iteration), the best-model saver's tracking, and every random state that decides what the
    next epoch does — to one file after every ``interval`` epochs, atomically
    (:py:func:`monai_ag.utils.fileio.atomic_write`: a kill during the write leaves the previous checkpoint);
    with ``resume=True`` it restores that file when the trainer starts and logs the epoch and iteration it
    continues from and the file.

    **Exact resume.** The random states saved are torch's CPU generator, the current CUDA device's generator
    (when CUDA is in use), numpy's and Python's global generators, and every generator found in
    ``random_sources`` (see :py:func:`monai_ag.utils.random_state.find_random_sources`: the ``R`` of each
    randomizable transform, nested ones included, and the data loader's/sampler's ``torch.Generator``). The
    save runs after every other end-of-epoch handler attached before the run (validation included, which
    draws random numbers too), so the states are those the next epoch starts from; they are restored at
    ``Events.STARTED`` (attach handlers that draw random numbers at ``STARTED`` before this one). On the
    same machine, with the same library versions, number of threads and data loader workers, a run resumed
    after epoch ``k`` then computes the same losses, weights and validation metrics as the run that was not
    interrupted. Limits: training resumes at an epoch boundary (an interrupted epoch is recomputed);
    GPU kernels that are not deterministic (``torch.use_deterministic_algorithms``) differ from run to run
    anyway; with ``num_workers > 0`` each worker's transforms are seeded from a base seed drawn from the
    loader's generator when an epoch's iterator starts, which is reproducible, but ``persistent_workers=True``
    keeps worker states across epochs that cannot be captured from the main process.

    **Distributed (torchrun).** Every rank must have this handler: at each save the ranks' random states are
    gathered to rank 0 (``all_gather_object``) and saved as a list indexed by rank (``"random_states"``);
    only rank 0 writes the file. On resume each rank loads the file and restores its own entry; with a
    different number of processes the random states are not restored (a warning says the run is then not
    an exact continuation). A ``DistributedSampler``'s order depends only on its seed and the epoch, which
    MONAI's engines set each epoch.

    It is deliberately not a :py:class:`monai.handlers.CheckpointLoader`: MONAI Label adds its own
    loader for ``models/model.pt`` to ``train#handlers`` only when none is there already, so a
    resume loader of that class would silently disable fine-tuning from ``model.pt``.

    Args:
        save_path: the checkpoint file, e.g. ``models/checkpoint.pt``.
        save_dict: name -> object with ``state_dict``/``load_state_dict`` (networks, optimizers,
            schedulers, :py:class:`KeyMetricCheckpointSaver`).
        resume: restore ``save_path`` when the trainer starts; a missing file is an error (raised by
            ``attach``, before the run starts).
        interval: save every ``interval`` epochs (and when training completes).
        engine_key: the name under which the engine this handler is attached to (its epoch and
            iteration) is saved; given here because a config cannot reference the trainer from
            inside the trainer's own handler list. ``None`` leaves it out.
        validator: optional evaluator whose ``best_metric``/``best_metric_epoch`` are kept too.
        map_location: ``map_location`` for ``torch.load``; defaults to CPU.
        random_sources: name -> object whose random generators are saved and restored besides the global
            ones: typically the training ``DataLoader`` (its generator, its sampler's, and the ``R`` of every
            randomizable transform of its dataset), or transforms, datasets, generators. ``None`` saves the
            global generators only.
        recipe: the training's :py:class:`monai_ag.bundle.ModelRecipe`: its fixed settings (spacing,
            orientation, HU window, classes, network) are saved, and a resume with other ones stops before the
            run with both values (:py:meth:`~monai_ag.bundle.ModelRecipe.require_same`): continuing the weights
            on other preprocessing would quietly give a model its record misdescribes. ``None``: not checked.
        override_recipe: resume despite such differences, with a warning per setting.

    Example::

        TrainingCheckpoint(
            "models/checkpoint.pt", {"network": net, "optimizer": opt}, resume=True,
            random_sources={"train_loader": train_loader},
        ).attach(trainer)
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
        random_sources: Mapping[str, Any] | None = None,
        recipe: ModelRecipe | None = None,
        override_recipe: bool = False,
    ) -> None:
        if not save_dict:
            raise ValueError("save_dict must name at least one object to checkpoint.")
        if interval < 1:
            raise ValueError(f"interval must be >= 1 epoch, got {interval}.")
        if random_sources is not None and not isinstance(random_sources, Mapping):
            raise TypeError(f"random_sources must be a mapping name -> object, got {type(random_sources).__name__}.")
        self.save_path = Path(save_path)
        self.save_dict = dict(save_dict)
        self.resume = as_bool(resume, "resume")
        self.engine_key = engine_key
        self.interval = interval
        self.validator = validator
        self.map_location = map_location
        self.random_sources = dict(random_sources or {})
        self.recipe = recipe
        self.override_recipe = override_recipe
        self.logger = logging.getLogger(__name__)
        self._pending: dict | None = None
        self._last_saved: tuple[int, int] | None = None
        self._save_attached: set[int] = set()

    def attach(self, engine: Engine) -> None:
        """Register the resume at ``Events.STARTED`` and the saves (added when the engine starts, after the
        handlers attached before the run). With ``resume``, the checkpoint is read here (a missing file fails
        before the run) and the engine's epoch and iteration are set at once, so ignite's own "Engine run
        resuming from ..." line shows them."""
        if self.engine_key is not None:
            self.save_dict[self.engine_key] = engine
        if self.resume:
            self._pending = self._read()
            saved = self._pending.get(self.engine_key) if self.engine_key is not None else None
            state = engine.state
            if saved and saved.get("epoch_length") and state.max_epochs is not None:
                epoch = saved["iteration"] // saved["epoch_length"]
                if epoch < state.max_epochs:  # a finished run is left to `load` (ignite would start it anew)
                    state.iteration, state.epoch = saved["iteration"], epoch
            engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.STARTED, self._attach_save)

    def _attach_save(self, engine: Engine) -> None:
        # added at STARTED so that it runs after every EPOCH_COMPLETED handler attached before the run
        # (validation draws random numbers): the saved random states are those the next epoch starts from
        if id(engine) not in self._save_attached:
            self._save_attached.add(id(engine))
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval) | Events.COMPLETED, self.save)

    def save(self, engine: Engine) -> None:
        """Write the checkpoint (rank 0; every rank contributes its random states)."""
        stamp = (engine.state.epoch, engine.state.iteration)
        if stamp == self._last_saved:  # EPOCH_COMPLETED and COMPLETED of the last epoch
            return
        self._last_saved = stamp
        _finish_data_iterator(engine)
        rank, world = get_rank(), get_world_size()
        random_states = [get_random_states(self.random_sources)]
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, random_states[0])
            random_states = gathered
        if rank != 0:
            return
        state = {k: _unwrap(v).state_dict() for k, v in self.save_dict.items()}
        if self.validator is not None:
            state["validator_best"] = {
                "best_metric": float(getattr(self.validator.state, "best_metric", -1.0)),
                "best_metric_epoch": int(getattr(self.validator.state, "best_metric_epoch", -1)),
            }
        state["random_states"] = random_states
        if self.recipe is not None:
            state["recipe"] = self.recipe.fixed_settings()
        with atomic_write(self.save_path) as tmp:
            torch.save(state, tmp)
        self.logger.debug("saved training checkpoint (epoch %d) to %s", engine.state.epoch, self.save_path)

    def _read(self) -> dict:
        if not self.save_path.is_file():
            raise FileNotFoundError(
                f"resume was requested but there is no training checkpoint at {self.save_path}; "
                "start without resume (it is written after every epoch)."
            )
        checkpoint = torch.load(self.save_path, map_location=self.map_location, weights_only=True)
        missing = sorted(set(self.save_dict) - set(checkpoint))
        if missing:
            raise KeyError(f"training checkpoint {self.save_path} lacks {missing}; it holds {sorted(checkpoint)}.")
        if self.recipe is not None and "recipe" in checkpoint:
            self.recipe.require_same(
                checkpoint["recipe"],
                f"the training checkpoint {self.save_path}",
                self.override_recipe,
                hint="A resumed run continues with the settings it started with: leave them as they were, or start "
                "a new training from its weights (--pretrained_weights)",
            )
        return checkpoint

    def load(self, engine: Engine) -> None:
        """Restore the checkpoint into the objects, the engine and the random states."""
        checkpoint = self._pending if self._pending is not None else self._read()
        self._pending = None
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
        self._last_saved = (engine.state.epoch, engine.state.iteration)  # no need to write the same state again
        exact = self._restore_random_states(checkpoint.get("random_states"))
        if engine.state.epoch >= engine.state.max_epochs:
            self.logger.info(
                "training checkpoint %s is at epoch %d of %d: training is already complete, nothing to resume "
                "(pass a larger max_epochs to continue it)",
                self.save_path,
                engine.state.epoch,
                engine.state.max_epochs,
            )
            return
        self.logger.info(
            "resuming training from %s at epoch %d of %d, iteration %d (epochs 1-%d done, %d iterations); %s",
            self.save_path,
            engine.state.epoch + 1,
            engine.state.max_epochs,
            engine.state.iteration + 1,
            engine.state.epoch,
            engine.state.iteration,
            "random states restored: an exact continuation" if exact else "NOT an exact continuation (see warning)",
        )

    def _restore_random_states(self, saved: list | None) -> bool:
        rank, world = get_rank(), get_world_size()
        if saved is None:
            self.logger.warning(
                "training checkpoint %s holds no random states (written by an older version); the resumed run "
                "continues with fresh random streams and is not an exact continuation.",
                self.save_path,
            )
            return False
        if len(saved) != world:
            self.logger.warning(
                "training checkpoint %s holds the random states of %d process(es) but this run has %d: they are "
                "not restored, and the resumed run is not an exact continuation.",
                self.save_path,
                len(saved),
                world,
            )
            return False
        problems = set_random_states(saved[rank], self.random_sources)
        if problems:
            self.logger.warning(
                "training checkpoint %s: some random states could not be restored, the resumed run is not an "
                "exact continuation: %s",
                self.save_path,
                "; ".join(problems),
            )
        return not problems
