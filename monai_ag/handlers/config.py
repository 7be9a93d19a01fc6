"""Config plumbing for engine handlers."""

from __future__ import annotations

from typing import Any

__all__ = ["listed"]


def listed(handler: Any) -> Any:
    """
    Return ``handler``: lists a handler that is built elsewhere in a bundle config (because other entries
    reference it too) in ``train#handlers``, where MONAI's ``ConfigWorkflow.check_properties`` expects every item to
    be a dict with a ``_target_``, not a bare ``"@id"`` reference.

    Example::

        "train": {"handlers": [{"_target_": "monai_ag.handlers.listed", "handler": "@weight_average"}, ...]}
    """
    return handler
