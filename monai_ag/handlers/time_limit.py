"""How a training ends: at an epoch boundary once a wall-clock budget is spent, or at its last epoch, and
always with its final weights validated."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

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

    Args:
        minutes: the training budget; ``None`` or ``0``: no limit.
        validator: the evaluator whose ``run(epoch)`` validates (``validate#evaluator``), optional.
        validate_last_epoch: validate the weights of epoch ``max_epochs`` unless that epoch was just
            validated (needs ``validator``).

    Example::

        TrainingTimeLimit(minutes=10, validator=evaluator).attach(trainer)
    """

    def __init__(
        self, minutes: float | None = None, validator: Engine | None = None, validate_last_epoch: bool = True
    ) -> None:
        if minutes is not None and not minutes >= 0:
            raise ValueError(f"TrainingTimeLimit: minutes must be None or >= 0, got {minutes!r}.")
        self.minutes = minutes
        self.validator = validator
        self.validate_last_epoch = bool(validate_last_epoch)
        self._start: float | None = None

    def attach(self, engine: Engine) -> None:
        if self.minutes:
            engine.add_event_handler(Events.STARTED, self._started)
        if self.minutes or (self.validate_last_epoch and self.validator is not None):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _started(self, engine: Engine) -> None:
        self._start = time.perf_counter()

    def elapsed_minutes(self) -> float:
        """Minutes since the trainer started (0 before it did)."""
        return 0.0 if self._start is None else (time.perf_counter() - self._start) / 60.0

    def _validate(self, epoch: int) -> None:
        if self.validator is not None and getattr(self.validator.state, "epoch", None) != epoch:
            self.validator.run(epoch)

    def __call__(self, engine: Engine) -> None:
        epoch = engine.state.epoch
        elapsed = self.elapsed_minutes()
        if self.minutes and elapsed >= self.minutes:
            logger.info(
                f"Training time limit of {self.minutes:g} min reached after {elapsed:.1f} min: "
                f"stopping after epoch {epoch} (iteration {engine.state.iteration})."
            )
            self._validate(epoch)
            engine.terminate()
        elif self.validate_last_epoch and epoch == engine.state.max_epochs:
            self._validate(epoch)
