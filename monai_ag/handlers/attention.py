"""The attention maps of one validation case as a TensorBoard image at every validation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.utils import min_version, optional_import

from monai_ag.visualize.attention import attention_figure, figure_to_array

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")

__all__ = ["AttentionImageHandler"]

logger = logging.getLogger(__name__)


def _is_rank_zero() -> bool:
    return (
        not (torch.distributed.is_available() and torch.distributed.is_initialized())
        or torch.distributed.get_rank() == 0
    )


class AttentionImageHandler:
    """
    At every validation run of the evaluator it is attached to, renders the attention maps of the run's first
    case — a ``roi_size`` patch around its organs, one axial and one coronal slice through their centroid, each
    gated level with a colour bar and the reference contours (:py:func:`monai_ag.visualize.attention.attention_figure`)
    — and logs the picture to TensorBoard under ``tag`` at the trainer's epoch. Cheap: one network pass on one
    patch, rank 0 only (other ranks do nothing and open no writer). Needs matplotlib and a network with
    ``attention_maps`` (e.g. not MONAI's ``UNet`` swapped in through ``network_def``); without either, it warns
    once and does nothing, so training is never stopped by it.

    Args:
        network: the :py:class:`~monai_ag.networks.nets.GridAttentionUNet` (a DDP wrapper is unwrapped).
        log_dir: TensorBoard folder, used when ``summary_writer`` is not given (the writer is opened on first use).
        summary_writer: an existing ``SummaryWriter``.
        roi_size: the patch the maps are computed on (e.g. the training patch size); ``None``: the whole image.
        tag: the TensorBoard image tag.
        image_key: the image in the evaluator's batch (preprocessed, channel first).
        label_key: the reference label in the batch (for the centre and the contours), optional.
        window: grey-level window of the preprocessed image.

    Example::

        AttentionImageHandler(network=net, log_dir="runs/x", roi_size=(64, 64, 48)).attach(evaluator)
    """

    def __init__(
        self,
        network: torch.nn.Module,
        log_dir: str = "./runs",
        summary_writer: Any = None,
        roi_size: Sequence[int] | None = None,
        tag: str = "attention",
        image_key: str = "image",
        label_key: str | None = "label",
        window: Sequence[float] = (0.0, 1.0),
    ) -> None:
        self.network = network
        self.log_dir = log_dir
        self._writer = summary_writer
        self._internal_writer = summary_writer is None
        self.roi_size = tuple(int(s) for s in roi_size) if roi_size is not None else None
        self.tag = tag
        self.image_key = image_key
        self.label_key = label_key
        self.window = tuple(window)
        self._pending = False
        self._disabled = False

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._arm)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self._flush)

    def _arm(self, engine: Engine) -> None:
        self._pending = True

    def _flush(self, engine: Engine) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _case(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        item = (
            batch[0]
            if isinstance(batch, (list, tuple))
            else {k: v[0] for k, v in batch.items() if isinstance(v, torch.Tensor)}
        )
        label = item.get(self.label_key) if self.label_key else None
        return torch.as_tensor(item[self.image_key]), None if label is None else torch.as_tensor(label)

    def _crop(self, image: torch.Tensor, label: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.roi_size is None:
            return image, label
        spatial = image.shape[1:]
        fg = torch.nonzero(label[0] > 0) if label is not None else torch.zeros(0, len(spatial))
        centre = fg.float().mean(0).round().long().tolist() if len(fg) else [s // 2 for s in spatial]
        starts = [min(max(c - r // 2, 0), max(s - r, 0)) for c, r, s in zip(centre, self.roi_size, spatial)]
        box = (slice(None),) + tuple(slice(b, b + r) for b, r in zip(starts, self.roi_size))
        return image[box], None if label is None else label[box]

    def __call__(self, engine: Engine) -> None:
        if not self._pending or self._disabled or not _is_rank_zero():
            return
        self._pending = False
        plt, has_plt = optional_import("matplotlib.pyplot")
        if not has_plt:
            logger.warning("AttentionImageHandler: matplotlib is not installed, no attention images are logged.")
            self._disabled = True
            return
        net = getattr(self.network, "module", self.network)
        if not hasattr(net, "attention_maps"):
            logger.warning(f"AttentionImageHandler: {type(net).__name__} has no attention_maps(), no attention images.")
            self._disabled = True
            return
        image, label = self._crop(*self._case(engine.state.batch))
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                device = next(net.parameters()).device
                maps = [m[0].mean(0).float().cpu().numpy() for m in net.attention_maps(image[None].to(device).float())]
        finally:
            net.train(was_training)
        ref = None if label is None else label[0].cpu().numpy().astype(np.int16)
        fig = attention_figure(
            image[0].float().cpu().numpy(), maps, ref, window=self.window, title=f"epoch {engine.state.epoch}"
        )
        try:
            picture = figure_to_array(fig)
        finally:
            plt.close(fig)
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415

            self._writer = SummaryWriter(log_dir=self.log_dir)
        self._writer.add_image(self.tag, picture, global_step=engine.state.epoch, dataformats="HWC")

    def close(self) -> None:
        """Close the writer this handler opened."""
        if self._internal_writer and self._writer is not None:
            self._writer.close()
            self._writer = None
