"""Deprecated: the bundle helpers moved to :py:mod:`monai_ag.bundle` (``check_bundle``, ``save_run_config``,
``evaluate_predictions``, ``require_file``, ``refuse_overwrite``) and :py:mod:`monai_ag.utils.config`
(``as_bool``). Bundle configs written before the move call them here; they still work, with a
``DeprecationWarning`` naming the new place. This module goes in a later release."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

from monai_ag.bundle import workflow
from monai_ag.utils import config, fileio

__all__ = ["as_bool", "check_bundle", "evaluate_predictions", "refuse_overwrite", "require_file", "save_run_config"]


def _moved(function: Callable[..., Any], new_place: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"monai_ag.utils.bundle.{function.__name__} moved to {new_place}.{function.__name__}; update the config "
            "(the old name goes in a later release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return function(*args, **kwargs)

    return wrapper


as_bool = _moved(config.as_bool, "monai_ag.utils")
require_file = _moved(config.require_file, "monai_ag.bundle")
refuse_overwrite = _moved(fileio.refuse_overwrite, "monai_ag.bundle")
check_bundle = _moved(workflow.check_bundle, "monai_ag.bundle")
save_run_config = _moved(workflow.save_run_config, "monai_ag.bundle")
evaluate_predictions = _moved(workflow.evaluate_predictions, "monai_ag.bundle")
