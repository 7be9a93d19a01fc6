"""Averaged weights over the late part of a training (stochastic weight averaging), with batch-norm statistics
recomputed for them at the end."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import min_version, optional_import
from torch.optim.swa_utils import AveragedModel

from monai_ag.utils.config import as_bool

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")

__all__ = ["WeightAveraging"]

logger = logging.getLogger(__name__)


class WeightAveraging:
    """
    Averages the network's weights over the iterations after ``start_fraction`` of the training (equal weights,
    ``torch.optim.swa_utils.AveragedModel``), then, when the training completes, recomputes the averaged network's
    batch-norm statistics from ``bn_batches`` training batches (the running statistics of the live network do not
    belong to the averaged weights; torch's ``update_bn`` does the same for loaders of plain tensors). The
    averaged network (:py:attr:`averaged_network`) is what the bundle saves as ``model.pt`` when averaging is on.

    Why: with a few cases and a time budget, the weights of the last epoch swing from one epoch to the next; their
    average over the late part of a decaying schedule does not depend on where the run happened to stop.

    The training length comes from ``schedule.total_iterations`` (a :py:class:`monai_ag.optimizers.WarmupCosineFactor`
    whose length a time budget fixes) when given, else ``max_epochs`` epochs. ``state_dict``/``load_state_dict``
    hold the average and its count, so :py:class:`TrainingCheckpoint` resumes it exactly. ``enabled=False`` makes
    every method a no-op (no copy of the network is made), so a config can list the handler unconditionally.

    Args:
        network: the trained network (a ``DistributedDataParallel`` wrapper is looked through).
        enabled: whether to average at all.
        start_fraction: the fraction of the training's iterations after which averaging starts, in [0, 1).
        schedule: an object with ``total_iterations`` (the training's length), or ``None``.
        bn_batches: how many training batches recompute the batch-norm statistics at the end.
        image_key: the key of the network's input in a batch.

    Example::

        averaging = WeightAveraging(net, start_fraction=0.5)
        averaging.attach(trainer)
        trainer.run()
        torch.save(averaging.averaged_network.state_dict(), "model.pt")
    """

    def __init__(
        self,
        network: torch.nn.Module,
        enabled: Any = True,
        start_fraction: float = 0.5,
        schedule: Any = None,
        bn_batches: int = 16,
        image_key: str = "image",
    ) -> None:
        if not 0.0 <= start_fraction < 1.0:
            raise ValueError(f"WeightAveraging: start_fraction must be in [0, 1), got {start_fraction}.")
        if bn_batches < 1:
            raise ValueError(f"WeightAveraging: bn_batches must be >= 1, got {bn_batches}.")
        self.enabled = as_bool(enabled, "weight_averaging")
        self.network = getattr(network, "module", network)
        self.start_fraction = float(start_fraction)
        self.schedule = schedule
        self.bn_batches = int(bn_batches)
        self.image_key = image_key
        self.averaged: AveragedModel | None = AveragedModel(self.network) if self.enabled else None

    @property
    def averaged_network(self) -> torch.nn.Module:
        """The averaged network (the live one when averaging is off)."""
        return self.network if self.averaged is None else self.averaged.module

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.ITERATION_COMPLETED, self._update)
            engine.add_event_handler(Events.COMPLETED, self._recompute_batch_norm)

    def start_iteration(self, engine: Engine) -> int:
        """The iteration after which the weights are averaged."""
        total = getattr(self.schedule, "total_iterations", None)
        if total is None:
            total = engine.state.max_epochs * engine.state.epoch_length
        return int(self.start_fraction * total)

    def _update(self, engine: Engine) -> None:
        if engine.state.iteration > self.start_iteration(engine):
            self.averaged.update_parameters(self.network)  # type: ignore[union-attr]

    @torch.no_grad()
    def _recompute_batch_norm(self, engine: Engine) -> None:
        averaged = self.averaged.module  # type: ignore[union-attr]
        if int(self.averaged.n_averaged) == 0:  # type: ignore[union-attr]
            logger.warning(
                "WeightAveraging: the training ended before averaging started; the averaged network is "
                "the final weights."
            )
            self.averaged.update_parameters(self.network)  # type: ignore[union-attr]
        norms = [m for m in averaged.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = {m: m.momentum for m in norms}
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
        was_training = averaged.training
        averaged.train()
        device = next(averaged.parameters()).device
        seen = 0
        while seen < self.bn_batches:
            for batch in engine.state.dataloader:
                averaged(batch[self.image_key].to(device))
                seen += 1
                if seen >= self.bn_batches:
                    break
        for m, momentum in momenta.items():
            m.momentum = momentum
        averaged.train(was_training)
        logger.info(
            f"WeightAveraging: {int(self.averaged.n_averaged)} iterations averaged (after iteration "  # type: ignore[union-attr]
            f"{self.start_iteration(engine)}); batch-norm statistics recomputed from {seen} training batches."
        )

    def state_dict(self) -> dict:
        return {} if self.averaged is None else self.averaged.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.averaged is not None and state_dict:
            self.averaged.load_state_dict(state_dict)
