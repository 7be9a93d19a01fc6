"""
Capture and restore every random state that decides what a training does next, so that a run resumed
from a checkpoint draws the same random numbers as the run that was not interrupted.

The states are plain tensors, numbers, strings, lists, tuples and dicts, so a checkpoint holding them
loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from monai.transforms import Randomizable, Transform
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["find_random_sources", "get_random_states", "set_random_states"]

# objects whose attributes are searched for random generators (transforms nest transforms; datasets hold
# their transform; loaders hold their dataset, sampler and generator); anything else is a leaf
_SEARCHED = (Transform, Randomizable, Dataset, DataLoader, Sampler)
_LEAVES = (str, bytes, int, float, complex, bool, type(None), torch.Tensor, np.ndarray, np.generic)


def find_random_sources(
    sources: Mapping[str, Any] | None,
) -> Iterator[tuple[str, np.random.RandomState | torch.Generator]]:
    """
    Every random generator reachable from ``sources``: the ``R`` (``numpy.random.RandomState``) of each
    MONAI ``Randomizable``, including those nested in ``Compose`` (and ``Compose``'s own), in other
    transforms (e.g. ``RandAffined.rand_affine.rand_affine_grid``) and in a dataset's transform, and each
    ``torch.Generator`` (a ``DataLoader``'s ``generator``, a ``RandomSampler``'s). Each generator is
    reported once, under the first path that reaches it, in a deterministic order: the same pipeline
    gives the same paths in another process.

    Args:
        sources: name -> object to search (a ``DataLoader``, a dataset, a transform, a generator, or a
            list/dict of those). ``None`` finds nothing.

    Example::

        for path, generator in find_random_sources({"train_loader": loader}):
            print(path)  # e.g. train_loader.generator, train_loader.dataset.transform.transforms.9.R
    """
    seen: set[int] = set()
    for name, obj in (sources or {}).items():
        yield from _walk(obj, str(name), seen)


def _walk(obj: Any, path: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, _LEAVES) or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, (np.random.RandomState, torch.Generator)):
        yield path, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from _walk(value, f"{path}.{key}", seen)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{path}.{i}", seen)
    elif isinstance(obj, _SEARCHED):
        if isinstance(obj, Randomizable):  # `R` may still be the class attribute every instance shares
            yield from _walk(obj.R, f"{path}.R", seen)
        for key, value in vars(obj).items():
            yield from _walk(value, f"{path}.{key}", seen)


def _numpy_state(state: Mapping) -> dict:
    # numpy's dict form of an MT19937 state, its key array as a tensor
    return {
        "bit_generator": state["bit_generator"],
        "key": torch.from_numpy(state["state"]["key"].astype(np.int64)),
        "pos": int(state["state"]["pos"]),
        "has_gauss": int(state["has_gauss"]),
        "gauss": float(state["gauss"]),
    }


def _numpy_state_dict(state: Mapping) -> dict:
    return {
        "bit_generator": state["bit_generator"],
        "state": {"key": state["key"].numpy().astype(np.uint32), "pos": state["pos"]},
        "has_gauss": state["has_gauss"],
        "gauss": state["gauss"],
    }


def _cuda_state() -> dict | None:
    # only the current device's generator, and only when this process has used CUDA: asking for every
    # device's state would create a CUDA context on each GPU in every process of a torchrun job
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    device = torch.cuda.current_device()
    return {"device": device, "state": torch.cuda.get_rng_state(device)}


def get_random_states(sources: Mapping[str, Any] | None = None) -> dict:
    """
    The random states of this process: torch's CPU generator, the current CUDA device's generator (when
    CUDA is in use), numpy's global generator, Python's ``random``, and every generator
    :py:func:`find_random_sources` finds in ``sources``.

    Args:
        sources: name -> object whose random generators are captured too (see :py:func:`find_random_sources`).

    Returns:
        a dict of tensors, numbers and strings (``weights_only``-loadable) for :py:func:`set_random_states`.

    Example::

        states = get_random_states({"train_loader": loader})
        ...
        set_random_states(states, {"train_loader": loader})
    """
    found = {}
    for path, gen in find_random_sources(sources):
        found[path] = gen.get_state() if isinstance(gen, torch.Generator) else _numpy_state(gen.get_state(legacy=False))
    return {
        "torch": torch.get_rng_state(),
        "cuda": _cuda_state(),
        "numpy": _numpy_state(np.random.get_state(legacy=False)),
        "python": random.getstate(),
        "sources": found,
    }


def set_random_states(states: Mapping, sources: Mapping[str, Any] | None = None) -> list[str]:
    """
    Restore what :py:func:`get_random_states` captured.

    Args:
        states: the output of :py:func:`get_random_states` (possibly after a ``torch.save``/``torch.load``).
        sources: the same names and (equivalent) objects as at capture time.

    Returns:
        what could not be restored, one line each (a generator found now but not captured, or captured but
        not found now, e.g. because the pipeline changed; CUDA states saved without CUDA now). Empty when
        everything was restored.

    Example::

        problems = set_random_states(torch.load("states.pt", weights_only=True), {"train_loader": loader})
    """
    problems = []
    torch.set_rng_state(states["torch"])
    cuda = states.get("cuda")
    if cuda is not None:
        if torch.cuda.is_available():
            torch.cuda.set_rng_state(cuda["state"], torch.cuda.current_device())
        else:
            problems.append("the CUDA random state was saved but CUDA is not available now")
    np.random.set_state(_numpy_state_dict(states["numpy"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    saved = dict(states.get("sources", {}))
    for path, gen in find_random_sources(sources):
        if path not in saved:
            problems.append(f"{path}: not in the saved random states")
            continue
        state = saved.pop(path)
        if isinstance(gen, torch.Generator):
            gen.set_state(state)
        else:
            gen.set_state(_numpy_state_dict(state))
    problems += [f"{path}: saved, but no such random generator now" for path in saved]
    return problems
