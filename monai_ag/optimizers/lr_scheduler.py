"""A learning-rate factor for ``torch.optim.lr_scheduler.LambdaLR`` whose length can be fixed after training has
started: a time budget becomes a number of iterations once the first iterations have been timed
(:py:class:`monai_ag.handlers.TrainingTimeLimit`), and from then on the schedule is a function of the iteration
count alone, so a resumed run and every rank of a distributed run follow the same curve."""

from __future__ import annotations

import math

__all__ = ["WarmupCosineFactor"]


class WarmupCosineFactor:
    """
    The factor ``LambdaLR`` multiplies the base learning rate with at scheduler step ``step`` (one step per
    iteration): a linear warm-up from ``warmup_start`` to 1 over ``warmup_iterations``, then a cosine decay to
    ``floor`` at ``total_iterations``, ``floor`` after it. Until ``total_iterations`` is known (``None``: a time
    budget not calibrated yet) the factor after the warm-up is 1. ``LambdaLR.state_dict`` saves this object's
    attributes (plain numbers), so a checkpoint keeps the length it was given.

    MONAI's ``WarmupCosineSchedule`` needs the length when it is built; this one takes it later.

    Args:
        warmup_iterations: iterations of the linear warm-up (0: none).
        floor: the factor at the end (the learning rate's floor relative to its base).
        warmup_start: the factor at the first iteration.
        total_iterations: the schedule's length, or ``None`` to set it later.

    Example::

        factor = WarmupCosineFactor(warmup_iterations=50, floor=0.01)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        factor.total_iterations = 700  # e.g. from a time budget, once known
    """

    def __init__(
        self,
        warmup_iterations: int = 50,
        floor: float = 0.01,
        warmup_start: float = 0.1,
        total_iterations: int | None = None,
    ) -> None:
        if warmup_iterations < 0:
            raise ValueError(f"warmup_iterations must be >= 0, got {warmup_iterations}.")
        if not 0.0 <= floor <= 1.0 or not 0.0 <= warmup_start <= 1.0:
            raise ValueError(f"floor and warmup_start must be in [0, 1], got {floor} and {warmup_start}.")
        self.warmup_iterations = int(warmup_iterations)
        self.floor = float(floor)
        self.warmup_start = float(warmup_start)
        self.total_iterations = None if total_iterations is None else int(total_iterations)

    def __call__(self, step: int) -> float:
        if step < self.warmup_iterations:
            return self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_iterations
        if self.total_iterations is None:
            return 1.0
        span = max(1, self.total_iterations - self.warmup_iterations)
        progress = min(1.0, (step - self.warmup_iterations) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
