"""How a training ends: at an epoch boundary once a wall-clock budget is spent, or at its last epoch, and
always with its final weights validated."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import torch.distributed as dist
from monai.utils import min_version, optional_import

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")

__all__ = ["TrainingTimeLimit"]

logger = logging.getLogger(__name__)


class TrainingTimeLimit:
    """
    Ends a training at the first epoch end after ``minutes`` of training in this process, and runs
    ``validator`` on the final weights unless the epoch was just validated. With
    ``validate_last_epoch`` (the default) it also validates the last epoch of a training that runs to
    ``max_epochs`` without a budget: with ``max_epochs`` not a multiple of ``val_interval`` (a short
    MONAI Label round: 5 epochs, validation every 10) the final weights would otherwise never be
    validated, and no ``model.pt`` written. A budget counted in
    wall-clock time makes runs of different networks comparable on the same machine ("what does
    each reach in 10 CPU-minutes") where a step count would favour the slower one.

    ignite's ``TimeLimit`` stops in the middle of an epoch and skips the validation, so the saved
    model would be the one from the last scheduled validation; stopping at the epoch end keeps the
    epoch counter, the checkpoint written at that epoch end and the resume exact. The overshoot is
    at most one epoch plus one validation. Attach it after the ``ValidationHandler`` (the bundle's
    ``train#handlers`` order) so a validation already run at this epoch is seen.

    The time counts from the trainer's ``STARTED`` event (data caching before ``run()`` excluded); a
    resumed run gets a new budget.

    **A schedule that ends where the budget ends.** With a ``schedule`` (a
    :py:class:`monai_ag.optimizers.WarmupCosineFactor` behind the run's ``LambdaLR``) the budget becomes a
    number of iterations: the iterations ``skip_iterations + 1 ... skip_iterations + calibration_iterations`` of
    this process are timed (the first ones pay for warm-ups), the rest of the budget is divided by their mean, and
    ``schedule.total_iterations`` is set to the count where the budget ends (rank 0's count, broadcast, under
    torchrun). From then on the learning rate is a function of the iteration alone and the training stops at the
    first epoch end at or after that iteration, with its last validation: runs whose steps take the same time end
    at the same iteration with the learning rate at its floor, and a resumed run continues to the count saved with
    the scheduler (exact resume) instead of drawing a new budget. The wall clock remains a ceiling: a run still short
    of its count when ``minutes`` have passed (validation time is not in the timing) stops there with a warning.
    Without a budget the schedule's length is ``max_epochs`` epochs.

    Args:
        minutes: the training budget; ``None`` or ``0``: no limit.
        validator: the evaluator whose ``run(epoch)`` validates (``validate#evaluator``), optional.
        validate_last_epoch: validate the weights of epoch ``max_epochs`` unless that epoch was just
            validated (needs ``validator``).
        schedule: an object with a ``total_iterations`` attribute to set (see above), or ``None``.
        skip_iterations: iterations left out of the timing.
        calibration_iterations: iterations timed.

    Example::

        TrainingTimeLimit(minutes=10, validator=evaluator).attach(trainer)
    """

    def __init__(
        self,
        minutes: float | None = None,
        validator: Engine | None = None,
        validate_last_epoch: bool = True,
        schedule: Any = None,
        skip_iterations: int = 5,
        calibration_iterations: int = 20,
    ) -> None:
        if minutes is not None and not minutes >= 0:
            raise ValueError(f"TrainingTimeLimit: minutes must be None or >= 0, got {minutes!r}.")
        if skip_iterations < 0 or calibration_iterations < 1:
            raise ValueError(
                f"TrainingTimeLimit: skip_iterations must be >= 0 and calibration_iterations >= 1, got "
                f"{skip_iterations} and {calibration_iterations}."
            )
        self.minutes = minutes
        self.validator = validator
        self.validate_last_epoch = bool(validate_last_epoch)
        self.schedule = schedule
        self.skip_iterations = int(skip_iterations)
        self.calibration_iterations = int(calibration_iterations)
        self._start: float | None = None
        self._seen = 0  # iterations completed in this process
        self._timing_start: float | None = None

    @property
    def total_iterations(self) -> int | None:
        """The iteration the schedule ends at (``None`` before it is known, or without a schedule)."""
        return None if self.schedule is None else self.schedule.total_iterations

    def attach(self, engine: Engine) -> None:
        if self.minutes:
            engine.add_event_handler(Events.STARTED, self._started)
        if self.schedule is not None:
            engine.add_event_handler(Events.ITERATION_STARTED, self._length)
            if self.minutes:
                engine.add_event_handler(Events.ITERATION_COMPLETED, self._calibrate)
        if self.minutes or (self.validate_last_epoch and self.validator is not None) or self.schedule is not None:
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()

    def _length(self, engine: Engine) -> None:
        """Without a budget: the schedule runs over ``max_epochs`` epochs (set at the first iteration of the run,
        after a resume has restored the scheduler)."""
        if not self.minutes and self.schedule.total_iterations is None:
            self.schedule.total_iterations = int(engine.state.max_epochs * engine.state.epoch_length)

    def _calibrate(self, engine: Engine) -> None:
        if self.schedule.total_iterations is not None:
            return  # known: calibrated earlier in this run, or restored with the scheduler
        self._seen += 1
        now = time.perf_counter()
        if self._seen == self.skip_iterations:
            self._timing_start = now
        if self._seen == self.skip_iterations + self.calibration_iterations:
            began = now if self._start is None else self._start
            start = began if self._timing_start is None else self._timing_start
            step = (now - start) / self.calibration_iterations
            remaining = self.minutes * 60.0 - (now - began)
            total = engine.state.iteration + max(0, int(remaining // step)) if step > 0 else engine.state.iteration
            total = _agreed(total)
            self.schedule.total_iterations = total
            logger.info(
                f"Training time budget of {self.minutes:g} min: {step:.2f} s per iteration over iterations "
                f"{engine.state.iteration - self.calibration_iterations + 1}-{engine.state.iteration}, so the schedule "
                f"ends at iteration {total} (stopping at the first epoch end from there)."
            )

    def elapsed_minutes(self) -> float:
        """Minutes since the trainer started (0 before it did)."""
        return 0.0 if self._start is None else (time.perf_counter() - self._start) / 60.0

    def _validate(self, epoch: int) -> None:
        if self.validator is not None and getattr(self.validator.state, "epoch", None) != epoch:
            self.validator.run(epoch)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        elapsed = self.elapsed_minutes()
        total = self.total_iterations if self.minutes else None
        if total is not None and engine.state.iteration >= total:
            logger.info(
                f"Training budget reached: iteration {engine.state.iteration} of the schedule's {total}, after "
                f"{elapsed:.1f} min of this run: stopping after epoch {epoch}."
            )
            self._validate(epoch)
            engine.terminate()
        elif self.minutes and elapsed >= self.minutes:
            if self.schedule is not None:
                logger.warning(
                    f"Training time limit of {self.minutes:g} min reached at iteration {engine.state.iteration}, "
                    "before "
                    f"the schedule's end ({total}): the learning rate did not reach its floor (validation or a slower "
                    "machine took the time the timing of the first iterations did not foresee)."
                )
            logger.info(
                f"Training time limit of {self.minutes:g} min reached after {elapsed:.1f} min: "
                f"stopping after epoch {epoch} (iteration {engine.state.iteration})."
            )
            self._validate(epoch)
            engine.terminate()
        elif self.validate_last_epoch and epoch == engine.state.max_epochs:
            self._validate(epoch)


def _agreed(value: int) -> int:
    """Rank 0's ``value`` on every rank (all ranks call this at the same iteration); ``value`` without torchrun."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])
